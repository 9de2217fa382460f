"""
Where the hub listens: Twisted endpoint descriptions (C{tcp:8080:...}),
read the way L{twisted.internet.endpoints.serverFromString} reads them.

Two things are decided here, before anything is bound:

  - the accept backlog.  Twisted's default is 50: when thousands of feed
    clients reconnect at once after a restart, the kernel drops the SYNs
    that do not fit and the clients retry 1, 3, 7, 15 s later.  A listening
    socket endpoint that names no backlog gets L{DEFAULT_BACKLOG}; one that
    names it keeps it.
  - whether the endpoint can be reached from other hosts (protected mode:
    L{statushub.tap}).

One option is the hub's own: C{reuseport=yes} on a C{tcp} or C{tcp6}
endpoint sets C{SO_REUSEPORT} on the listening socket, so that several hub
processes (several hubs as one, on one machine) listen on one port and the
kernel spreads the connections between them.

And the service that serves on it says where (L{AnnouncingEndpointService}).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import Deferred, execute
from twisted.internet.endpoints import _parse, serverFromString
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from zope.interface import implementer

# Large enough that a storm of reconnecting clients waits in the kernel's
# accept queue instead of being dropped; the kernel caps it at
# net.core.somaxconn (4096 on current Linux).
DEFAULT_BACKLOG = 1024

# The parameters Twisted's parsers take, in positional order (after the
# type): an argument may be given by position or by name.
PARAMETERS: dict[str, tuple[str, ...]] = {
    "tcp": ("port", "interface", "backlog"),
    "tcp6": ("port", "backlog", "interface"),
    "ssl": (
        "port",
        "privateKey",
        "certKey",
        "sslmethod",
        "interface",
        "backlog",
        "extraCertChain",
        "dhParameters",
    ),
    "unix": ("address", "mode", "backlog", "lockfile"),
}

# The address each network type listens on when it names no interface:
# every address of the host.
_ALL_ADDRESSES = {"tcp": "", "tcp6": "::", "ssl": ""}


class EndpointError(ValueError):
    """
    An endpoint description that cannot be used; the message says why.
    """


@dataclass(frozen=True)
class Endpoint:
    """
    A parsed endpoint description.

    @ivar kind: the type: C{tcp}, C{tcp6}, C{ssl}, C{unix}, or another one
        (a plugin's, C{systemd}, ...) that this module does not interpret.
    @ivar positional: the arguments given by position, after the type.
    @ivar named: the arguments given as C{name=value}.
    """

    kind: str
    positional: tuple[str, ...]
    named: dict[str, str]

    def get(self, name: str) -> str | None:
        """
        The value of parameter C{name}, given by name or by position, or
        L{None} when the description does not give it.
        """
        if name in self.named:
            return self.named[name]
        order = PARAMETERS.get(self.kind, ())
        if name in order and order.index(name) < len(self.positional):
            return self.positional[order.index(name)]
        return None

    def describe(self) -> str:
        """
        The description again, quoted so that L{parse} gives this back.
        """
        parts = [_quote(self.kind), *map(_quote, self.positional)]
        parts += [f"{_quote(name)}={_quote(value)}" for name, value in self.named.items()]
        return ":".join(parts)


def _quote(text: str) -> str:
    # what _tokenize treats as syntax: the escape, and both separators
    for special in "\\:=":
        text = text.replace(special, "\\" + special)
    return text


def parse(description: str) -> Endpoint:
    """
    Parse an endpoint description, with Twisted's own tokenizer (colons,
    C{=} and backslash escapes as L{serverFromString} reads them).

    @raise EndpointError: it cannot be parsed, or a port or backlog of a
        type this module knows is not a number.
    """
    try:
        args, named = _parse(description)
    except Exception as e:
        # a trailing lone backslash ends the tokenizer's iterator
        raise EndpointError(f"cannot parse endpoint description {description!r}") from e
    if not args or not args[0]:
        raise EndpointError(
            f"endpoint description {description!r} names no type (e.g. tcp:8080)"
        )
    kind = args[0].lower() if args[0].lower() == "tcp6" else args[0]
    endpoint = Endpoint(kind, tuple(args[1:]), dict(named))
    if kind in ("tcp", "tcp6", "ssl"):
        _checkNumber(description, "port", endpoint.get("port"), minimum=0)
    if kind in PARAMETERS and endpoint.get("backlog") is not None:
        _checkNumber(description, "backlog", endpoint.get("backlog"), minimum=1)
    if "reuseport" in endpoint.named:
        if kind not in ("tcp", "tcp6"):
            raise EndpointError(
                f"endpoint description {description!r}: reuseport is for tcp and tcp6 only"
            )
        if endpoint.named["reuseport"].lower() not in _YES + _NO:
            raise EndpointError(
                f"endpoint description {description!r}: reuseport must be yes or no, "
                f"got {endpoint.named['reuseport']!r}"
            )
    return endpoint


_YES, _NO = ("yes", "true", "1"), ("no", "false", "0")


def _checkNumber(description: str, name: str, value: str | None, minimum: int) -> None:
    if value is None:
        raise EndpointError(f"endpoint description {description!r} names no {name}")
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise EndpointError(
            f"endpoint description {description!r}: {name} must be a whole number "
            f"of at least {minimum}, got {value!r}"
        )


def withBacklog(description: str, backlog: int = DEFAULT_BACKLOG) -> str:
    """
    C{description} with an accept backlog of C{backlog} when it listens on a
    socket (tcp, tcp6, ssl, unix) and names none; otherwise unchanged.
    """
    endpoint = parse(description)
    if endpoint.kind not in PARAMETERS or endpoint.get("backlog") is not None:
        return description
    named = dict(endpoint.named, backlog=str(backlog))
    return Endpoint(endpoint.kind, endpoint.positional, named).describe()


def serverEndpoint(reactor: Any, description: str) -> IStreamServerEndpoint:
    """
    The endpoint to serve on: L{serverFromString} of C{description} with
    the backlog of L{withBacklog}; a L{ReusePortEndpoint} when it says
    C{reuseport=yes}.
    """
    endpoint = parse(withBacklog(description))
    reuse = endpoint.named.pop("reuseport", "no").lower() in _YES
    if not reuse:
        return serverFromString(reactor, endpoint.describe())
    return ReusePortEndpoint(
        reactor,
        int(endpoint.get("port") or 0),
        endpoint.get("interface") or _ALL_ADDRESSES[endpoint.kind],
        int(endpoint.get("backlog") or DEFAULT_BACKLOG),
        socket.AF_INET6 if endpoint.kind == "tcp6" else socket.AF_INET,
    )


@implementer(IStreamServerEndpoint)
class ReusePortEndpoint:
    """
    A TCP server endpoint whose socket has C{SO_REUSEPORT}: every process
    that binds the same address and port this way gets a share of the
    connections (Linux spreads them by a hash of the peer's address).
    """

    def __init__(
        self, reactor: Any, port: int, interface: str, backlog: int, family: int
    ) -> None:
        self._reactor = reactor
        self._port = port
        self._interface = interface
        self._backlog = backlog
        self._family = family

    def listen(self, factory: IProtocolFactory) -> "Deferred[IListeningPort]":
        return execute(self._listen, factory)

    def _listen(self, factory: IProtocolFactory) -> IListeningPort:
        listener = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind((self._interface, self._port))
            listener.listen(self._backlog)
            listener.setblocking(False)
            # the reactor takes a copy of the descriptor
            return self._reactor.adoptStreamPort(listener.fileno(), self._family, factory)
        finally:
            listener.close()


def isLoopbackOnly(description: str) -> bool:
    """
    Whether only this host can connect: a network endpoint bound to a
    loopback address (127.0.0.0/8, ::1, C{localhost}), or a UNIX socket.
    Anything else counts as reachable from other hosts: an endpoint with no
    C{interface} (every address), a host name, a type this module cannot
    interpret.
    """
    endpoint = parse(description)
    if endpoint.kind == "unix":
        return True
    if endpoint.kind not in _ALL_ADDRESSES:
        return False
    interface = endpoint.get("interface")
    if interface is None:
        interface = _ALL_ADDRESSES[endpoint.kind]
    return isLoopbackAddress(interface)


def isLoopbackAddress(host: str) -> bool:
    """
    Whether C{host}, an address to bind to, is a loopback address.
    """
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def isTLS(description: str) -> bool:
    """
    Whether the endpoint speaks TLS (C{https://}, C{wss://}).
    """
    return parse(description).kind == "ssl"


class AnnouncingEndpointService(StreamServerEndpointService):
    """
    Logs the address actually bound, so that C{tcp:0} (any free port) is
    usable: the tests start the hub that way and read this line.

    The line waits for the reactor to run: the port is bound before twistd
    installs its signal handlers, and a process told "serving" must already
    stop cleanly on SIGINT or SIGTERM.
    """

    log = Logger(namespace="statushub")

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        factory: IProtocolFactory,
        reactor: IReactorCore,
        tls: bool = False,
    ) -> None:
        super().__init__(endpoint, factory)
        self._reactor = reactor
        self.scheme = "https" if tls else "http"

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._waitingForPort.addCallback(self._announce)

    def _announce(self, port: Any) -> Any:
        self._reactor.callWhenRunning(self._logAddress, port.getHost())
        return port

    def _logAddress(self, address: Any) -> None:
        self.log.info(
            "statushub serving on {scheme}://{host}:{port}/",
            scheme=self.scheme,
            host=getattr(address, "host", address),
            port=getattr(address, "port", ""),
        )
