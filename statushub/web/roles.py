"""
Who a request is, and what that lets it do.

Two bearer tokens: C{[server] token} is the operator's, who may do
everything; C{[server] viewer_token} is a viewer's, who may only read
(C{GET}, and so the feeds).  With no token configured, anyone may do
anything (the hub then listens on loopback only, by default).

A resource is mounted readable by either role, and changeable by the
operator only, in one line::

    root.putChild(b"metrics", roles.guard(MetricsResource()))
"""

from __future__ import annotations

import hmac
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import IResource
from twisted.web.server import Request

from statushub.web.audit import Refusal, isChange
from statushub.web.guard import Guard

log = Logger(namespace="statushub.auth")

OPERATOR = "operator"
VIEWER = "viewer"
#: no token is configured: everyone may do everything
ANONYMOUS = "anonymous"
#: tokens are configured, and the request has none of them
UNAUTHENTICATED = "unauthenticated"


def presentedToken(request: Request) -> Optional[bytes]:
    """
    The token from C{Authorization: Bearer ...}, else from C{?token=}
    (browsers cannot set headers on a WebSocket).
    """
    header = request.getHeader(b"authorization")
    if header is not None:
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() == b"bearer":
            return credentials.strip()
        return None
    values = request.args.get(b"token")
    return values[0] if values else None


class Roles:
    """
    The configured tokens, and the role each one grants.

    @ivar failures: the peers that sent wrong tokens.
    """

    def __init__(
        self,
        operatorToken: str,
        viewerToken: str = "",
        failures: Optional["TokenFailures"] = None,
    ) -> None:
        if viewerToken and not operatorToken:
            # read-only access with full access open to all makes no sense
            raise ValueError("a viewer token needs an operator token beside it")
        self._operator = operatorToken.encode("utf-8")
        self._viewer = viewerToken.encode("utf-8")
        if failures is None:
            from twisted.internet import reactor as failures  # type: ignore[assignment]

            failures = TokenFailures(failures)
        self.failures = failures

    @classmethod
    def fromConfig(
        cls, server: Mapping[str, Any], failures: Optional["TokenFailures"] = None
    ) -> "Roles":
        """
        The roles of the C{[server]} section.
        """
        return cls(server["token"], server["viewer_token"], failures)

    def identify(self, request: Request) -> str:
        """
        The role of C{request}: L{OPERATOR}, L{VIEWER}, L{ANONYMOUS} (no
        tokens configured) or L{UNAUTHENTICATED}.
        """
        if not self._operator:
            return ANONYMOUS
        token = presentedToken(request)
        if token is None:
            return UNAUTHENTICATED
        # both compared, whichever matches, so the time says nothing
        isOperator = hmac.compare_digest(token, self._operator)
        isViewer = bool(self._viewer) and hmac.compare_digest(token, self._viewer)
        if isOperator:
            return OPERATOR
        if isViewer:
            return VIEWER
        return UNAUTHENTICATED

    def guard(self, resource: IResource) -> IResource:
        """
        C{resource} (and everything under it) readable by a viewer or the
        operator, changeable by the operator only.
        """
        return RoleGuard(resource, self)


class RoleGuard(Guard):
    """
    Lets a request through to what its role may do: 401 without a valid
    token, 403 for a viewer's change request.
    """

    def __init__(self, wrapped: IResource, roles: Roles) -> None:
        super().__init__(wrapped)
        self._roles = roles

    def refusal(self, request: Request) -> Optional[IResource]:
        failures = self._roles.failures
        peer = peerAddress(request)
        blocked = failures.blockedFor(peer)
        if blocked:
            return Refusal(
                429,
                f"too many wrong tokens from {peer}: try again in {math.ceil(blocked)} s",
                UNAUTHENTICATED,
                {b"retry-after": str(math.ceil(blocked)).encode("ascii")},
            )
        role = self._roles.identify(request)
        if role == UNAUTHENTICATED:
            if presentedToken(request) is not None:
                failures.failed(peer, request)
            return Refusal(
                401,
                "a valid token is required: send 'Authorization: Bearer <token>' "
                "or ?token=<token>",
                role,
                {b"www-authenticate": b'Bearer realm="statushub"'},
            )
        if role == VIEWER and isChange(request):
            return Refusal(
                403,
                "the viewer token may only read: this request changes something "
                "and needs the operator token ([server] token)",
                role,
            )
        return None


def peerAddress(request: Request) -> str:
    """
    The address a request comes from, without its port (behind a proxy:
    the proxy's).
    """
    address = request.getClientAddress()
    return str(getattr(address, "host", address))


@dataclass
class _Peer:
    """
    What is known of a peer that sent wrong tokens.
    """

    #: the times of its failures within the last window (at most LIMIT)
    failures: deque[float]
    #: until when it is refused
    blockedUntil: float = 0.0
    #: when its last line was logged, and its failures since
    loggedAt: float = -math.inf
    unlogged: int = 0


class TokenFailures:
    """
    Wrong tokens, by peer: each one counted, and logged at most once a peer
    a L{WINDOW}; a peer that sent L{LIMIT} within a window gets 429 for a
    window, whatever it sends, so that guessing a token takes ages.  A
    request without a token tried nothing: it is only refused (401).

    @param counted: called once for every wrong token (the metric).
    """

    #: seconds a failure is remembered, and a peer refused
    WINDOW = 60.0
    #: failures within a window that get a peer refused
    LIMIT = 20
    #: peers remembered at most: past it, those quiet for a window go, then
    #: the longest known
    MAX_PEERS = 10_000

    def __init__(
        self, clock: IReactorTime, counted: Optional[Callable[[], None]] = None
    ) -> None:
        self._clock = clock
        self._counted = counted
        self._peers: dict[str, _Peer] = {}

    def __len__(self) -> int:
        return len(self._peers)

    def blockedFor(self, peer: str) -> float:
        """
        Seconds C{peer} is still refused; 0 when it is not.
        """
        known = self._peers.get(peer)
        if known is None:
            return 0.0
        return max(0.0, known.blockedUntil - self._clock.seconds())

    def failed(self, peer: str, request: Request) -> None:
        """
        C{peer} sent a wrong token with C{request}.
        """
        now = self._clock.seconds()
        if self._counted is not None:
            self._counted()
        known = self._peers.get(peer)
        if known is None:
            if len(self._peers) >= self.MAX_PEERS:
                self._forget(now)
            known = self._peers[peer] = _Peer(deque(maxlen=self.LIMIT))
        known.failures.append(now)
        while known.failures[0] <= now - self.WINDOW:
            known.failures.popleft()
        if len(known.failures) >= self.LIMIT:
            known.blockedUntil = now + self.WINDOW
            known.failures.clear()
        if now - known.loggedAt < self.WINDOW:
            known.unlogged += 1
            return
        log.warn(
            "authentication failed: a wrong token from {peer} for {method} {path!r}"
            "{unlogged}; {limit} within {window:.0f} s get a peer refused (429) for "
            "{window:.0f} s{refused}",
            peer=peer,
            method=request.method.decode("ascii", "replace"),
            path=request.path.decode("utf-8", "replace"),
            unlogged=f" ({known.unlogged} more since the last line)" if known.unlogged else "",
            limit=self.LIMIT,
            window=self.WINDOW,
            refused=", as this one is now" if known.blockedUntil > now else "",
        )
        known.loggedAt, known.unlogged = now, 0

    def _forget(self, now: float) -> None:
        quiet = [
            peer for peer, known in self._peers.items()
            if known.blockedUntil <= now and known.loggedAt <= now - self.WINDOW
            and (not known.failures or known.failures[-1] <= now - self.WINDOW)
        ]
        for peer in quiet:
            del self._peers[peer]
        while len(self._peers) >= self.MAX_PEERS:
            del self._peers[next(iter(self._peers))]
