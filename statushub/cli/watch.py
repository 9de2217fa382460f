"""
C{statushub watch}: the status feed in a terminal.

A table that redraws in place when stdout is a terminal: every deployment
(one block each), or with a NAME that one only; one JSON line per message
with C{--json}, for scripts.  Like the dashboard, it reconnects by
itself with backoff and takes the fresh snapshot when the hub comes back.
Built on Autobahn's Twisted client.

The C{statushub} command calls L{addArguments} to set up its C{watch}
subcommand and L{run} to run it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TextIO
from urllib.parse import urlencode, urlsplit, urlunsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IReactorTime
from twisted.internet.ssl import optionsForClientTLS
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

DEFAULT_URL = "http://127.0.0.1:8080"

# Exit codes of run().
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_REFUSED = 3

# What `statushub watch --help` says about ending it.  The reactor stops on
# SIGTERM, and on SIGINT unless the process started with SIGINT ignored: then,
# like other Unix programs run as a background job, it leaves it ignored.
STOPPING = (
    "Ctrl-C or SIGTERM (kill PID) ends it with status 0; a hub that refuses the "
    "token, with status 3. Started with SIGINT ignored, as a shell script starts "
    "a background job (statushub watch &), it keeps ignoring Ctrl-C, as Unix "
    "programs do: stop it with SIGTERM."
)


class Refused(Exception):
    """
    The hub refused the feed (a wrong or missing token, a bad path):
    retrying would not help.
    """


def feedURL(url: str, deployment: Optional[str] = None) -> str:
    """
    The feed's address for the hub at C{url}: C{http://host:port} becomes
    C{ws://host:port/ws/status} (C{https} gives C{wss}); a C{ws://} or
    C{wss://} address is taken as it is.  With a C{deployment}, the feed of
    that deployment only (C{?deployment=NAME}).

    @raise ValueError: C{url} is not an address of a hub.
    """
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise ValueError(f"--url must be http://HOST:PORT or https://HOST:PORT, not {url!r}")
    path = parts.path
    if parts.scheme in ("http", "https"):
        path = path.rstrip("/") + "/ws/status"
    query = parts.query
    if deployment is not None:
        query = "&".join(q for q in (query, urlencode({"deployment": deployment})) if q)
    return urlunsplit((scheme, parts.netloc, path or "/", query, ""))


class SeqGaps:
    """
    Tells missed messages apart, per deployment: C{seq} grows by one with
    each message about a deployment, and is comparable only within one
    C{epoch}.  Counted afresh on each connection, whose first message about
    a deployment is its current picture whatever the seq.
    """

    def __init__(self) -> None:
        self._last: dict[Optional[str], tuple[Any, int]] = {}

    def reset(self) -> None:
        self._last.clear()

    def check(self, message: dict[str, Any]) -> int:
        """
        Note C{message}; return how many messages about its deployment were
        missed just before it (0 for none).
        """
        name, epoch, seq = message.get("deployment"), message.get("epoch"), message.get("seq")
        if not isinstance(seq, int):
            return 0
        before = self._last.get(name)
        if before is not None and before[0] == epoch and seq <= before[1]:
            return 0  # a repeat or older: the newer one stays the reference
        self._last[name] = (epoch, seq)
        if before is None or before[0] != epoch:
            return 0
        return seq - before[1] - 1


@dataclass
class Backoff:
    """
    Delays between reconnection attempts: doubling from C{initial} up to
    C{maximum}, each drawn between half and all of that (jitter, so that many
    clients of a restarted hub do not all come back at once).
    """

    initial: float = 0.5
    maximum: float = 10.0
    random: Callable[[], float] = random.random
    attempts: int = 0

    def next(self) -> float:
        base = min(self.maximum, self.initial * 2**self.attempts)
        self.attempts += 1
        return base / 2 + self.random() * base / 2

    def reset(self) -> None:
        self.attempts = 0


# ---- displays -----------------------------------------------------------


class JSONLines:
    """
    One JSON object per line on C{out}, flushed at once so that a script
    reading a pipe sees each message when it comes; notes about the
    connection go to C{err}, where they do not break the stream.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err

    def message(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message, separators=(",", ":")) + "\n")
        self._out.flush()

    def connection(self, state: str, detail: str = "") -> None:
        self._err.write(f"statushub watch: {state}{': ' + detail if detail else ''}\n")
        self._err.flush()

    def missed(self, message: dict[str, Any], count: int) -> None:
        self.connection("missed", f"{count} message(s) about "
                        f"{message.get('deployment') or 'no deployment'} before seq "
                        f"{message.get('seq')}")

    def tick(self) -> None:
        pass

    def close(self) -> None:
        pass


GOOD = {"running", "healthy", "deployed", "live", "reachable"}
BAD = {"exited", "dead", "missing", "unhealthy", "failed", "disconnected", "unreachable"}
WARN = {"created", "restarting", "paused", "removing", "starting", "deploying", "pending",
        "tearing_down", "reconnecting", "connecting"}


def _colour(word: str, enabled: bool) -> str:
    # colour helps the eye; the word is always there for everyone else
    if not enabled:
        return word
    code = "32" if word in GOOD else "31" if word in BAD else "33" if word in WARN else None
    return f"\x1b[{code}m{word}\x1b[0m" if code else word


def formatDuration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass
class NodeClock:
    """
    Since when (our clock) each node has been in its status and health.
    """

    since: dict[str, tuple[str, Optional[str], float]] = field(default_factory=dict)

    def update(self, nodes: list[dict[str, Any]], now: float) -> None:
        since = {}
        for node in nodes:
            key = (node.get("status"), node.get("health"))
            before = self.since.get(node["nodeId"])
            kept = before is not None and before[:2] == key
            since[node["nodeId"]] = before if kept else (*key, now)
        self.since = since

    def seconds(self, nodeId: str, now: float) -> Optional[float]:
        entry = self.since.get(nodeId)
        return None if entry is None else now - entry[2]


def renderTable(
    message: Optional[dict[str, Any]],
    connection: str,
    detail: str,
    clock: NodeClock,
    now: float,
    colour: bool = False,
    header: bool = True,
    missed: int = 0,
) -> list[str]:
    """
    The lines of the terminal view of C{message} (the latest picture, if
    any yet), under the connection state if C{header}; C{missed} is how
    many messages about it the feed is known to have skipped.
    """
    c = lambda word: _colour(word, colour)  # noqa: E731
    lines = []
    if header:
        lines.append(f"feed: {c(connection)}{'  (' + detail + ')' if detail else ''}")
    if message is None:
        lines.append("waiting for the first status message")
        return lines
    lines.append(
        f"last update: {message.get('timestamp', '?')}  seq {message.get('seq', '?')}"
    )
    lines.append(
        f"deployment: {message.get('deployment') or 'none'}"
        f"  status: {c(message.get('deployStatus', '?'))}"
        f"  engine: {c(message.get('engine') or 'unknown')}"
    )
    if message.get("error"):
        lines.append(f"error: {message['error']}")
    if missed:
        lines.append(f"missed: {missed} update(s) on the feed; this is the latest picture")
    nodes = message.get("nodeStatuses") or []
    if not nodes:
        lines.append("no nodes")
        return lines
    # on a swarm every node names its host: a last column then
    onCluster = any(node.get("host") or node.get("hostStatus") for node in nodes)
    rows = [("NODE", "CONTAINER", "STATUS", "HEALTH", "FOR") + (("HOST",) if onCluster else ())]
    for node in nodes:
        seconds = clock.seconds(node["nodeId"], now)
        host = node.get("host") or "-"
        if node.get("hostStatus") not in (None, "ready"):
            host += f" ({node['hostStatus']})"
        rows.append(
            (
                node["nodeId"],
                (node.get("containerId") or "-")[:12],
                node.get("status", "?"),
                node.get("health") or "-",
                "-" if seconds is None else formatDuration(seconds),
            )
            + ((host,) if onCluster else ())
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.append("")
    for index, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            padding = " " * (widths[i] - len(cell))
            # colour only the words, after measuring them
            shown = c(cell) if index and i in (2, 3) else cell
            cells.append(shown + padding)
        lines.append("  ".join(cells).rstrip())
    return lines


def renderOverview(
    pictures: dict[Optional[str], dict[str, Any]],
    connection: str,
    detail: str,
    clocks: dict[Optional[str], NodeClock],
    now: float,
    colour: bool = False,
    header: bool = True,
    missed: Optional[dict[Optional[str], int]] = None,
    started: bool = True,
) -> list[str]:
    """
    The lines of the terminal view of every deployment: a block per
    deployment, in name order, as L{renderTable} draws one.  C{pictures}
    maps a name to its latest picture (C{None} to the idle picture of a hub
    with no deployment); C{started} says whether any message came yet.
    """
    c = lambda word: _colour(word, colour)  # noqa: E731
    lines = []
    if header:
        lines.append(f"feed: {c(connection)}{'  (' + detail + ')' if detail else ''}")
    if not started:
        lines.append("waiting for the first status message")
        return lines
    if not pictures:
        lines.append("no deployments")
        return lines
    missed = missed or {}
    for index, name in enumerate(sorted(pictures, key=lambda n: (n is not None, n or ""))):
        if index or header:
            lines.append("")
        lines.extend(renderTable(pictures[name], connection, detail,
                                 clocks.get(name) or NodeClock(), now, colour,
                                 header=False, missed=missed.get(name, 0)))
    return lines


class Table:
    """
    The pictures as tables: every deployment's (a block each), or with
    C{deployment} that one's only.  On a terminal it redraws in place (and
    the "for" column keeps counting between messages); otherwise each new
    picture is printed below the last.
    """

    CLEAR = "\x1b[H\x1b[2J"

    def __init__(self, out: TextIO, clock: IReactorTime, tty: bool, colour: bool,
                 deployment: Optional[str] = None) -> None:
        self._out = out
        self._clock = clock
        self._tty = tty
        self._colour = colour
        self._following = deployment
        self._pictures: dict[Optional[str], dict[str, Any]] = {}
        self._clocks: dict[Optional[str], NodeClock] = {}
        self._missed: dict[Optional[str], int] = {}
        self._started = False
        # a new connection's snapshot replaces everything shown before it
        self._fresh = True
        self._connection = "connecting"
        self._detail = ""

    def message(self, message: dict[str, Any]) -> None:
        name = message.get("deployment")
        if self._following is not None:
            name = self._following
        if self._fresh:
            self._fresh = False
            self._pictures = {}
        before = self._pictures.get(name)
        if (before is not None and before.get("epoch") == message.get("epoch")
                and isinstance(message.get("seq"), int) and isinstance(before.get("seq"), int)
                and message["seq"] < before["seq"]):
            return  # older than what is shown
        self._started = True
        clock = self._clocks.setdefault(name, NodeClock())
        clock.update(message.get("nodeStatuses") or [], self._clock.seconds())
        if self._following is not None:
            self._pictures = {name: message}
        elif name is None:
            # the hub has no deployment at all
            self._pictures = {None: message}
        else:
            self._pictures.pop(None, None)
            if message.get("deployStatus") == "idle" and not message.get("nodeStatuses"):
                # torn down: its last message, then it drops out
                self._pictures.pop(name, None)
            else:
                self._pictures[name] = message
        for gone in set(self._clocks) - set(self._pictures):
            del self._clocks[gone]
            self._missed.pop(gone, None)
        self._draw()

    def missed(self, message: dict[str, Any], count: int) -> None:
        name = self._following if self._following is not None else message.get("deployment")
        self._missed[name] = self._missed.get(name, 0) + count

    def connection(self, state: str, detail: str = "") -> None:
        if state == "live":
            self._fresh = True
        self._connection, self._detail = state, detail
        if self._tty:
            self._draw()
        else:
            self._out.write(f"feed: {state}{'  (' + detail + ')' if detail else ''}\n")
            self._out.flush()

    def tick(self) -> None:
        if self._tty and self._started:
            self._draw()

    def _draw(self) -> None:
        now = self._clock.seconds()
        # off a terminal, connection changes are lines of their own
        header = self._tty
        if self._following is not None:
            lines = renderTable(
                self._pictures.get(self._following), self._connection, self._detail,
                self._clocks.get(self._following) or NodeClock(), now, self._colour,
                header=header, missed=self._missed.get(self._following, 0),
            )
        else:
            lines = renderOverview(
                self._pictures, self._connection, self._detail, self._clocks, now,
                self._colour, header=header, missed=self._missed, started=self._started,
            )
        text = "\n".join(lines) + "\n"
        self._out.write(self.CLEAR + text if self._tty else text + "\n")
        self._out.flush()

    def close(self) -> None:
        pass


# ---- the connection -----------------------------------------------------


class FeedProtocol(WebSocketClientProtocol):
    def onOpen(self) -> None:
        self.factory.watcher._opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if not isBinary:
            self.factory.watcher._received(payload)

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.factory.watcher._closed(self, code, reason)


class Watcher:
    """
    Follows the feed at C{url} (every deployment, or only C{deployment}) and
    tells C{display} about every message, every gap in a deployment's
    C{seq}, and every change of the connection, until L{stop}ped or refused.
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        url: str,
        token: Optional[str],
        display: Any,
        backoff: Optional[Backoff] = None,
        deployment: Optional[str] = None,
    ) -> None:
        self._reactor = reactor
        self._url = feedURL(url, deployment)
        self._deployment = deployment
        # (epoch, seq) of the last message about the followed deployment: a
        # reconnection resumes after it (?since=&epoch=)
        self._resumeAt: Optional[tuple[str, int]] = None
        self._headers: Optional[dict[str, str]] = None
        self._gaps = SeqGaps()
        self._display = display
        self._backoff = backoff or Backoff()
        self._stopping = False
        self._protocol: Optional[FeedProtocol] = None
        self._closedNow: Optional[Deferred] = None
        self._waiting: Optional[Deferred] = None
        self._live = False
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._headers = headers
        self._factory = WebSocketClientFactory(self._url, headers=headers, reactor=reactor)
        self._factory.protocol = FeedProtocol
        self._factory.watcher = self
        # A hub that vanishes without closing (a cut network, a frozen
        # machine) is noticed by our own pings.
        self._factory.setProtocolOptions(
            openHandshakeTimeout=10, autoPingInterval=15, autoPingTimeout=10
        )
        self._factory.noisy = False

    def _endpoint(self):
        parts = urlsplit(self._url)
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        endpoint = HostnameEndpoint(self._reactor, parts.hostname, port, timeout=10)
        if secure:
            endpoint = wrapClientTLS(optionsForClientTLS(parts.hostname), endpoint)
        return endpoint

    async def run(self) -> None:
        """
        Watch until L{stop}.

        @raise Refused: the hub refused the feed.
        """
        self._display.connection("connecting")
        while not self._stopping:
            self._closedNow = Deferred()
            if self._resumeAt is not None:
                self._factory.setSessionParameters(self.nextURL(), headers=self._headers)
            try:
                await self._endpoint().connect(self._factory)
            except Exception as error:
                reason = str(error) or error.__class__.__name__
            else:
                reason = await self._closedNow
            if self._stopping:
                return
            # Autobahn reports a refused upgrade as "... upgrade failed [401]: ..."
            if "upgrade failed [4" in reason:
                self._display.connection("disconnected", reason)
                raise Refused(reason)
            delay = self._backoff.next()
            self._display.connection("reconnecting", f"{reason}; next try in {delay:.1f}s")
            self._waiting = Deferred()
            call = self._reactor.callLater(delay, self._waiting.callback, None)
            self._waiting.addErrback(lambda failure: call.cancel())
            try:
                await self._waiting
            except Exception:
                return  # stopped while waiting

    def nextURL(self) -> str:
        """
        The feed's address for the next connection: following one
        deployment, after a message about it, it resumes after that message
        (C{?since=SEQ&epoch=E}), so what was missed meanwhile comes first.
        """
        if self._resumeAt is None:
            return self._url
        epoch, seq = self._resumeAt
        return self._url + "&" + urlencode({"since": seq, "epoch": epoch})

    def _opened(self, protocol: FeedProtocol) -> None:
        self._protocol = protocol

    def _received(self, payload: bytes) -> None:
        try:
            message = json.loads(payload.decode("utf-8"))
        except ValueError:
            self.log.warn("not JSON, ignored: {payload!r}", payload=payload[:200])
            return
        if not isinstance(message, dict) or message.get("type") != "status_update":
            return
        if not self._live:
            self._live = True
            self._gaps.reset()
            self._display.connection("live")
        # The connection works: the next drop starts the backoff afresh.
        self._backoff.reset()
        seq, epoch = message.get("seq"), message.get("epoch")
        if (self._deployment is not None and message.get("deployment") == self._deployment
                and isinstance(seq, int) and isinstance(epoch, str) and epoch):
            self._resumeAt = (epoch, seq)
        missed = self._gaps.check(message)
        if missed:
            self._display.missed(message, missed)
        self._display.message(message)

    def _closed(self, protocol: FeedProtocol, code: Optional[int], reason: Optional[str]) -> None:
        self._protocol = None
        self._live = False
        closed, self._closedNow = self._closedNow, None
        if closed is not None:
            text = reason or f"closed with code {code}"
            closed.callback(text)

    def stop(self) -> Deferred:
        """
        Close the feed and stop retrying.  The Deferred fires
        once the connection is closed, or after two seconds at most.
        """
        self._stopping = True
        if self._waiting is not None and not self._waiting.called:
            self._waiting.cancel()
        done = Deferred()

        def fire(ignored: object = None) -> object:
            if not done.called:
                done.callback(None)
            return ignored

        if self._protocol is not None and self._closedNow is not None:
            self._closedNow.addBoth(fire)
            self._protocol.sendClose(1000, "statushub watch is done")
            self._reactor.callLater(2, fire)
        else:
            fire()
        return done


# ---- the command --------------------------------------------------------


def addArguments(parser: argparse.ArgumentParser) -> None:
    """
    Add C{watch}'s options to C{parser} (the C{watch} subcommand's parser).
    """
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"the hub's address (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("STATUSHUB_TOKEN"),
        help="the hub's bearer token (default: $STATUSHUB_TOKEN)",
    )
    parser.add_argument(
        "name",
        metavar="NAME",
        nargs="?",
        help="follow this deployment only (default: every deployment)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each status message as one JSON line instead of a table",
    )


def run(args: argparse.Namespace, reactor: Any = None, out: TextIO = None, err: TextIO = None) -> int:
    """
    Run C{statushub watch} with C{args} (from L{addArguments}) until Ctrl-C
    or SIGTERM (exit 0) or until the hub refuses the feed (exit 3).
    """
    if reactor is None:
        from twisted.internet import reactor
    out = out or sys.stdout
    err = err or sys.stderr
    tty = out.isatty() and not args.json
    if args.json:
        display: Any = JSONLines(out, err)
    else:
        colour = tty and "NO_COLOR" not in os.environ
        display = Table(out, reactor, tty, colour, deployment=getattr(args, "name", None))
    try:
        watcher = Watcher(reactor, args.url, args.token, display,
                          deployment=getattr(args, "name", None))
    except ValueError as error:
        err.write(f"statushub watch: {error}\n")
        return EXIT_USAGE

    outcome = {"code": EXIT_OK}

    def finished(result: Any) -> None:
        if hasattr(result, "check") and result.check(Refused):
            err.write(f"statushub watch: the hub refused the feed: {result.value}\n")
            outcome["code"] = EXIT_REFUSED
        elif hasattr(result, "check"):
            err.write(f"statushub watch: {result.getErrorMessage()}\n")
            outcome["code"] = 1
        if reactor.running:
            reactor.stop()

    # The "for" column keeps counting between messages on a terminal.
    ticker = LoopingCall(display.tick)
    ticker.clock = reactor

    def started() -> None:
        if tty:
            ticker.start(1.0, now=False).addErrback(lambda f: None)
        ensureDeferred(watcher.run()).addBoth(finished)

    def stopping() -> Deferred:
        if ticker.running:
            ticker.stop()
        return watcher.stop()

    reactor.callWhenRunning(started)
    # Ctrl-C or SIGTERM stops the reactor; close the feed politely on the way out.
    reactor.addSystemEventTrigger("before", "shutdown", stopping)
    reactor.run()
    display.close()
    return outcome["code"]


def main(argv: Optional[list[str]] = None) -> int:
    """
    C{python -m statushub.cli.watch}: the same as C{statushub watch}.
    """
    parser = argparse.ArgumentParser(
        prog="statushub watch",
        description="The status feed in a terminal: every deployment, or NAME only; "
        "a table that redraws in place, or one JSON line per message with --json.",
        epilog=STOPPING,
    )
    addArguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
