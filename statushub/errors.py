"""
Why a change request cannot be carried out: the errors every room may raise
and the web layer turns into answers (a leaf module: it imports nothing of
statushub's).

Each carries the HTTP status it means, so the API (and a follower handing a
request to the leader, PRODUCT.md "Several hubs as one") answers the same
code for the same cause wherever it was decided.
"""

from __future__ import annotations

from typing import Sequence


class RequestError(Exception):
    """
    A change request that was refused; C{str()} is the text for the answer.

    @cvar code: the HTTP status this refusal is answered with.
    """

    code = 400


class DeploymentConflict(RequestError):
    """
    The request does not fit the current state (the name exists, a deploy or
    teardown is in progress, the limit is reached, another action on the
    node is under way); the message says which.

    @ivar deployments: the names concerned, when the conflict is about
        several.
    """

    code = 409

    def __init__(self, message: str, deployments: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.deployments = list(deployments)


class UnknownDeployment(RequestError, KeyError):
    """
    No current deployment has that name.
    """

    code = 404

    def __str__(self) -> str:
        return f"no deployment named {self.args[0]!r}"


class UnknownNode(RequestError, KeyError):
    """
    The deployment has no node of that id.
    """

    code = 404

    def __init__(self, deployment: str, node: str) -> None:
        super().__init__(deployment, node)

    def __str__(self) -> str:
        return f"deployment {self.args[0]!r} has no node {self.args[1]!r}"


class Unavailable(RequestError):
    """
    Nobody can carry the request out now (no leader, the cluster's store
    unreachable); the message names the cause.
    """

    code = 503
