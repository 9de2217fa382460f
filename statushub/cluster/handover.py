"""
Change requests on a cluster: the hub that receives one carries it out when
it leads, and otherwise hands it to the leader through Redis and answers
with the leader's outcome (same codes as one hub).

The hand-over: the request (its method and arguments as JSON) is stored
under a key of its own with an expiry, and its id published on the
leader's request channel (L{statushub.cluster.scripts.SUBMIT}, which also
says at once when no hub leads or the leader does not listen).  The leader
takes it with C{GETDEL}, so it is carried out at most once; its answer is
stored under a reply key (with an expiry) and published on the asking
hub's channel.  An asker that has heard nothing within C{timeout} seconds
withdraws the request: deleted before the leader took it, it was not
carried out (503 says so); already taken, the stored reply is read, or the
503 says it may have been.

Only the methods of L{IDeploymentControl} cross; a topology crosses as the
document it was validated from, and the leader validates it again.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Callable, Optional

import redis
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from statushub.errors import (
    DeploymentConflict,
    RequestError,
    Unavailable,
    UnknownDeployment,
    UnknownNode,
)
from statushub.interfaces import IDeploymentControl, ILeadership
from statushub.resources import ResourcePolicy
from statushub.topology import validateTopology

#: every method a request may name: the contract's, nothing else
METHODS = frozenset(IDeploymentControl.names())
#: how long an answer is kept for an asker whose subscription missed it
REPLY_TTL_MS = 60_000
_KINDS = {
    cls.__name__: cls
    for cls in (RequestError, DeploymentConflict, UnknownDeployment, UnknownNode, Unavailable)
}

#: per method, how its arguments cross (encode on the asker, decode on the
#: leader); a method not named here sends its arguments as they are
Codecs = dict[str, tuple[Callable[..., list], Callable[..., list]]]


def topologyCodecs(policy: ResourcePolicy = ResourcePolicy()) -> Codecs:
    """
    A topology crosses to the leader as the document it was read from; the
    leader validates it again, with the hub's resource policy.
    """
    return {"deploy": (
        lambda topology: [dict(topology.document)],
        lambda document: [validateTopology(document, policy)],
    )}


def refusalToJSON(error: RequestError) -> dict:
    return {
        "kind": type(error).__name__,
        "args": [a if isinstance(a, (str, int, float)) else str(a) for a in error.args],
        "deployments": list(getattr(error, "deployments", [])),
        "code": error.code,
        "text": str(error),
    }


def refusalFromJSON(data: dict) -> RequestError:
    """
    The leader's refusal, as the class it raised when it is one of
    L{statushub.errors}', else a L{RequestError} with its code and text.
    """
    kind = _KINDS.get(data.get("kind", ""))
    error: Optional[RequestError] = None
    try:
        if kind is DeploymentConflict:
            error = DeploymentConflict(data["args"][0], data.get("deployments", []))
        elif kind is not None:
            error = kind(*data["args"])
    except (IndexError, KeyError, TypeError):
        error = None
    if error is None or str(error) != data.get("text") or error.code != data.get("code"):
        error = RequestError(str(data.get("text", "the leader refused the request")))
        error.code = int(data.get("code", 400))
    return error


class _ControlByCall:
    """
    An L{IDeploymentControl} whose every method is one C{call(method,
    *args)}: what the two controls below do differently is only that call.
    """

    def call(self, method: str, *args: Any) -> "Deferred[Any]":
        raise NotImplementedError()

    def deploy(self, topology: Any) -> "Deferred[dict]":
        return self.call("deploy", topology)

    def teardown(self, name: str) -> "Deferred[dict]":
        return self.call("teardown", name)

    def act(self, name: str, node: str, action: str) -> "Deferred[tuple[bool, dict]]":
        return self.call("act", name, node, action)

    def __getattr__(self, name: str) -> Any:
        # every other method of the contract, as it grows
        if name in METHODS:
            return lambda *args: self.call(name, *args)
        raise AttributeError(name)


@implementer(IDeploymentControl)
class ConfirmedControl(_ControlByCall):
    """
    The leader's own deployment control, answering only once the picture
    it answers with is written (shown by this hub's mirror): no client ever
    sees a C{(epoch, seq)} that Redis refused.
    """

    def __init__(self, local: Any, mirror: Any, clock: IReactorTime, timeout: float = 5.0) -> None:
        self._local = local
        self._mirror = mirror
        self._clock = clock
        self._timeout = timeout

    def call(self, method: str, *args: Any) -> "Deferred[Any]":
        d = maybeDeferred(getattr(self._local, method), *args)
        return d.addCallback(self._confirmed)

    def _confirmed(self, result: Any) -> "Deferred[Any]":
        # a picture, or (act) a pair (started, picture)
        picture = result[1] if isinstance(result, (tuple, list)) else result
        seen = self._mirror.whenSeen(picture.get("deployment"), picture.get("seq", 0))
        seen.addTimeout(self._timeout, self._clock)

        def unwritten(failure: Failure) -> Failure:
            return Failure(Unavailable(
                "the change was started, but its picture could not be written to the "
                "cluster's Redis: this hub may no longer lead"
            ))

        return seen.addCallbacks(lambda _: result, unwritten)


@implementer(IDeploymentControl)
class ClusterControl(_ControlByCall):
    """
    What the API acts through on a cluster.

    @param leadership: whether this hub leads.
    @param connection: a L{statushub.cluster.connection.RedisConnection}.
    @param hubId: this hub (where answers come back).
    @param codecs: how arguments cross, per method (a topology: as the
        document it was validated from).
    @param timeout: seconds to wait for the leader's answer.
    @ivar local: the leader's own control while this hub leads and has
        taken over (L{None} otherwise).
    """

    log = Logger()

    def __init__(
        self,
        leadership: ILeadership,
        connection: Any,
        hubId: str,
        clock: IReactorTime,
        codecs: Optional[Codecs] = None,
        timeout: float = 10.0,
    ) -> None:
        self._leadership = leadership
        self._connection = connection
        self._keys = connection.keys
        self.hubId = hubId
        self._clock = clock
        self._codecs = codecs or {}
        self.timeout = timeout
        self.local: Any = None
        self._waiting: dict[str, tuple[Deferred[dict], Any]] = {}

    def call(self, method: str, *args: Any) -> "Deferred[dict]":
        """
        Carry C{method(*args)} of L{IDeploymentControl} out here, or on the
        leader.
        """
        if self._leadership.isLeader:
            if self.local is None:
                return _refuse("this hub is taking over as the cluster's leader; try again "
                               "in a moment")
            return maybeDeferred(getattr(self.local, method), *args)
        codec = self._codecs.get(method)
        try:
            crossing = codec[0](*args) if codec else list(args)
        except Exception as e:
            return _refuse(f"the request cannot be handed to the leader: {e}")
        return self._handOver(method, crossing)

    # -- the asking side -----------------------------------------------

    def _handOver(self, method: str, args: list) -> "Deferred[dict]":
        requestId = secrets.token_hex(12)
        body = json.dumps({"id": requestId, "from": self.hubId, "method": method, "args": args})
        keys = self._keys
        answer: Deferred[dict] = Deferred()
        submitted = self._connection.script(
            # kept past the wait: a withdrawal must find it, taken or not
            "submit", [keys.lease], [keys.prefix, requestId, body, int(self.timeout * 2000) + 1000]
        )

        def sent(reply: list) -> None:
            if reply[0] == "noleader":
                answer.errback(Unavailable(
                    "no hub leads the cluster now (a new leader is being chosen, or none "
                    "can reach Redis); try again in a moment"
                ))
            elif reply[0] == "unheard":
                answer.errback(Unavailable(
                    f"the cluster's leader ({reply[1]}) does not listen for requests now; "
                    "try again in a moment"
                ))
            else:
                timer = self._clock.callLater(self.timeout, self._timedOut, requestId)
                self._waiting[requestId] = (answer, timer)

        def unreachable(failure: Failure) -> None:
            if not failure.check(redis.RedisError):
                self.log.failure("handing a request to the leader failed", failure)
            answer.errback(Unavailable("the cluster's Redis cannot be reached: nothing was done"))

        submitted.addCallbacks(sent, unreachable)
        return answer

    def receiveReply(self, reply: dict) -> None:
        """
        An answer published to this hub (from the subscription).
        """
        waiting = self._waiting.pop(str(reply.get("id")), None)
        if waiting is None:
            return  # timed out meanwhile, or not ours
        answer, timer = waiting
        if timer.active():
            timer.cancel()
        _settle(answer, reply)

    def _timedOut(self, requestId: str) -> None:
        waiting = self._waiting.pop(requestId, None)
        if waiting is None:
            return
        answer = waiting[0]
        keys = self._keys

        def withdraw(client: redis.Redis) -> tuple[int, Optional[str]]:
            pipe = client.pipeline(transaction=True)
            pipe.delete(keys.request(requestId))
            pipe.get(keys.reply(requestId))
            deleted, reply = pipe.execute()
            return deleted, reply

        def withdrawn(result: tuple[int, Optional[str]]) -> None:
            deleted, reply = result
            if reply is not None:
                _settle(answer, json.loads(reply))
            elif deleted:
                answer.errback(Unavailable(
                    f"the cluster's leader did not take the request within {self.timeout:g} s; "
                    "nothing was done"
                ))
            else:
                answer.errback(Unavailable(
                    f"the cluster's leader took the request but did not answer within "
                    f"{self.timeout:g} s; it may have been carried out"
                ))

        def unreachable(failure: Failure) -> None:
            answer.errback(Unavailable(
                f"no answer from the cluster's leader within {self.timeout:g} s, and Redis "
                "cannot be reached: the request may have been carried out"
            ))

        self._connection.call(withdraw).addCallbacks(withdrawn, unreachable)


def _refuse(why: str) -> "Deferred[dict]":
    d: Deferred[dict] = Deferred()
    d.errback(Unavailable(why))
    return d


def _settle(answer: "Deferred[Any]", reply: dict) -> None:
    if "picture" in reply:
        value = reply["picture"]
        # a pair (act's (started, picture)) crossed as a JSON list
        answer.callback(tuple(value) if isinstance(value, list) else value)
    else:
        answer.errback(refusalFromJSON(reply.get("refusal", {})))


class RequestServer:
    """
    The leader's side: takes the requests handed to this hub and answers
    them.

    @param control: this hub's L{ClusterControl} (its C{local} carries the
        request out).
    @param codecs: the same as the askers' (the decoding half is used).
    """

    log = Logger()

    def __init__(
        self,
        leadership: ILeadership,
        connection: Any,
        control: ClusterControl,
        codecs: Optional[Codecs] = None,
    ) -> None:
        self._leadership = leadership
        self._connection = connection
        self._keys = connection.keys
        self._control = control
        self._codecs = codecs or {}

    def receiveRequest(self, requestId: str) -> "Deferred[None]":
        """
        A request was handed to this hub (from the subscription): take it,
        carry it out, answer.
        """
        if not self._leadership.isLeader:
            # not taken: the asker's withdrawal finds it there, undone
            return succeed(None)
        key = self._keys.request(requestId)
        taken = self._connection.call(lambda client: client.getdel(key))
        taken.addCallback(self._carryOut)
        taken.addErrback(lambda f: self.log.info(
            "cluster: cannot take request {id}: {error}", id=requestId, error=f.getErrorMessage()
        ))
        return taken

    def _carryOut(self, body: Optional[str]) -> Optional[Deferred[None]]:
        if body is None:
            return None  # withdrawn, or expired: the asker has answered
        request = json.loads(body)
        requestId, asker, method = request["id"], request["from"], request["method"]
        d = maybeDeferred(self._call, method, request.get("args", []))

        def picture(result: dict) -> dict:
            return {"id": requestId, "picture": result}

        def refusal(failure: Failure) -> dict:
            if failure.check(RequestError):
                return {"id": requestId, "refusal": refusalToJSON(failure.value)}
            self.log.failure("cluster: request {method} from {asker} failed", failure,
                             method=method, asker=asker)
            error = RequestError(f"the leader could not carry the request out: "
                                 f"{failure.getErrorMessage()}")
            error.code = 500
            return {"id": requestId, "refusal": refusalToJSON(error)}

        d.addCallbacks(picture, refusal)
        d.addCallback(self._answer, asker)
        return d

    def _call(self, method: str, args: list) -> Any:
        if method not in METHODS:
            raise RequestError(f"not a change request: {method!r}")
        codec = self._codecs.get(method)
        if codec is not None:
            try:
                args = codec[1](*args)
            except Exception as e:
                raise RequestError(f"the leader cannot read the request: {e}") from e
        if not self._leadership.isLeader or self._control.local is None:
            raise Unavailable("the hub the request was handed to no longer leads the cluster; "
                              "nothing was done")
        return getattr(self._control.local, method)(*args)

    def _answer(self, reply: dict, asker: str) -> "Deferred[Any]":
        text = json.dumps(reply)
        keys = self._keys

        def send(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=True)
            pipe.set(keys.reply(reply["id"]), text, px=REPLY_TTL_MS)
            pipe.publish(keys.replies(asker), text)
            pipe.execute()

        return self._connection.call(send).addErrback(lambda f: self.log.warn(
            "cluster: cannot answer request {id}: {error}", id=reply["id"],
            error=f.getErrorMessage(),
        ))
