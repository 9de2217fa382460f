"""
Endpoint descriptions (statushub/listen.py): the accept backlog every
listening endpoint gets, and which endpoints only this host can reach.
"""

from __future__ import annotations

import inspect

import pytest
import pytest_twisted
from twisted.internet import endpoints
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor

from statushub import listen


def backlogOf(description: str) -> int:
    """
    The backlog Twisted listens with, for a tcp description.
    """
    reactor = MemoryReactor()
    listen.serverEndpoint(reactor, description).listen(Factory())
    [(port, factory, backlog, interface)] = reactor.tcpServers
    return backlog


@pytest.mark.parametrize(
    "description",
    [
        "tcp:8080",
        "tcp:8080:interface=127.0.0.1",
        "tcp:0:interface=0.0.0.0",
        "tcp6:8080",
        "tcp6:8080:interface=\\:\\:1",
        "tcp:interface=127.0.0.1:port=8080",
    ],
)
def test_a_tcp_endpoint_naming_no_backlog_gets_the_default(description: str) -> None:
    assert backlogOf(description) == listen.DEFAULT_BACKLOG >= 1024


@pytest.mark.parametrize(
    "description, backlog",
    [
        ("tcp:8080:backlog=50", 50),
        ("tcp:8080:interface=127.0.0.1:backlog=4096", 4096),
        # by position: tcp's third parameter, tcp6's second
        ("tcp:8080:127.0.0.1:10", 10),
        ("tcp6:8080:12", 12),
    ],
)
def test_a_backlog_the_endpoint_names_is_kept(description: str, backlog: int) -> None:
    assert backlogOf(description) == backlog


def test_the_rest_of_the_description_survives() -> None:
    """
    Escaped colons and equals signs (a Windows path, an IPv6 address) mean
    the same after the backlog is added.
    """
    description = "ssl:443:privateKey=C\\:/keys/a\\=b.pem:certKey=/c\\:d.pem:interface=\\:\\:1"
    raised = listen.withBacklog(description)
    args, named = endpoints._parse(raised)
    assert args == ["ssl", "443"]
    assert named == {
        "privateKey": "C:/keys/a=b.pem",
        "certKey": "/c:d.pem",
        "interface": "::1",
        "backlog": "1024",
    }


def test_unix_sockets_get_the_backlog_and_other_types_are_left_alone() -> None:
    assert endpoints._parse(listen.withBacklog("unix:/run/statushub.sock"))[1] == {
        "backlog": "1024"
    }
    # a plugin's endpoint: its parameters are its own business
    assert listen.withBacklog("systemd:domain=INET:index=0") == "systemd:domain=INET:index=0"


def test_the_parameter_order_is_twisteds() -> None:
    """
    L{listen.PARAMETERS} says which positional argument is the backlog or
    the interface: it must be the order Twisted's own parsers take them in.
    """
    parsers = {
        "tcp": endpoints._parseTCP,
        "ssl": endpoints._parseSSL,
        "unix": endpoints._parseUNIX,
        "tcp6": endpoints._TCP6ServerParser()._parseServer,
    }
    for kind, parser in parsers.items():
        names = [
            name
            for name in inspect.signature(parser).parameters
            if name not in ("factory", "reactor")
        ]
        assert tuple(names) == listen.PARAMETERS[kind], kind


@pytest.mark.parametrize(
    "description, problem",
    [
        ("", "names no type"),
        ("tcp", "names no port"),
        ("tcp:http", "port must be a whole number"),
        ("tcp:8080:backlog=0", "backlog must be a whole number of at least 1"),
        ("tcp:8080:backlog=many", "backlog must be"),
        ("tcp:8080:interface=127.0.0.1\\", "cannot parse"),
    ],
)
def test_a_bad_description_is_named(description: str, problem: str) -> None:
    with pytest.raises(listen.EndpointError, match=problem):
        listen.parse(description)


@pytest.mark.parametrize(
    "description, loopback",
    [
        ("tcp:8080:interface=127.0.0.1", True),
        ("tcp:8080:interface=127.0.0.2", True),
        ("tcp:8080:interface=localhost", True),
        ("tcp:8080:127.0.0.1", True),
        ("tcp6:8080:interface=\\:\\:1", True),
        ("tcp6:8080:interface=\\:\\:ffff\\:127.0.0.1", True),
        ("ssl:8443:interface=127.0.0.1:privateKey=k.pem", True),
        ("unix:/run/statushub.sock", True),
        # no interface: every address of the host
        ("tcp:8080", False),
        ("tcp6:8080", False),
        ("ssl:8443:privateKey=k.pem", False),
        ("tcp:8080:interface=", False),
        ("tcp:8080:interface=0.0.0.0", False),
        ("tcp6:8080:interface=\\:\\:", False),
        ("tcp:8080:interface=192.168.1.10", False),
        # a name could resolve to anything
        ("tcp:8080:interface=hub.example.com", False),
        # a type whose address this module cannot tell
        ("systemd:domain=INET:index=0", False),
    ],
)
def test_loopback_only(description: str, loopback: bool) -> None:
    assert listen.isLoopbackOnly(description) is loopback


def test_tls() -> None:
    assert listen.isTLS("ssl:8443:privateKey=k.pem")
    assert not listen.isTLS("tcp:8080")


@pytest.mark.parametrize(
    "description, problem",
    [
        ("unix:/tmp/s:reuseport=yes", "reuseport is for tcp and tcp6 only"),
        ("tcp:0:reuseport=maybe", "reuseport must be yes or no"),
    ],
)
def test_reuseport_is_checked(description: str, problem: str) -> None:
    with pytest.raises(listen.EndpointError, match=problem):
        listen.parse(description)


@pytest_twisted.ensureDeferred
async def test_two_listeners_share_one_port_with_reuseport() -> None:
    """
    Two listening ports (two hub processes, in production) on one address
    and port: both bind, and connections are accepted.
    """
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
    from twisted.internet.protocol import Protocol

    accepted = []

    class Count(Protocol):
        def connectionMade(self) -> None:
            accepted.append(self)

    first = await listen.serverEndpoint(
        reactor, "tcp:0:interface=127.0.0.1:reuseport=yes"
    ).listen(Factory.forProtocol(Count))
    port = first.getHost().port
    second = await listen.serverEndpoint(
        reactor, f"tcp:{port}:interface=127.0.0.1:reuseport=yes"
    ).listen(Factory.forProtocol(Count))
    try:
        assert second.getHost().port == port
        clients = [
            await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), Protocol())
            for _ in range(4)
        ]
        from tests.waiting import waitUntil

        await waitUntil(lambda: len(accepted) == 4, 5, what="accepted")
        for client in clients:
            client.transport.loseConnection()
    finally:
        await first.stopListening()
        await second.stopListening()
    # without it, the port is taken
    from twisted.internet.error import CannotListenError

    held = await listen.serverEndpoint(reactor, "tcp:0:interface=127.0.0.1").listen(Factory())
    try:
        with pytest.raises(CannotListenError):
            await listen.serverEndpoint(
                reactor, f"tcp:{held.getHost().port}:interface=127.0.0.1"
            ).listen(Factory())
    finally:
        await held.stopListening()
