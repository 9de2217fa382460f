"""
C{statushub logs NAME NODE [--tail N] [--follow]} and C{statushub top [NAME]}:
why a node is in its state, from a terminal.

C{logs} prints a node's last lines (C{GET .../nodes/NODE/logs}), its
standard error to ours; with C{--follow} it follows C{/ws/logs} until the
node's container is gone (exit 0) or Ctrl-C.  C{top} is a live table of
CPU and memory per running node, from C{/ws/stats}.  Both reconnect by
themselves as C{watch} does (the feed client of L{statushub.cli.feed});
the log after a reconnection goes on where it was, nothing printed twice.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from typing import Any, Optional, TextIO

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import ReactorNotRunning

from statushub.cli.feed import Refused, Watcher

DEFAULT_URL = "http://127.0.0.1:8080"

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

STOPPING = (
    "Ctrl-C or SIGTERM (kill PID) ends it with status 0; a hub that refuses it "
    "(an unknown deployment or node, a wrong token), with status 3."
)


def insightURL(url: str, path: str, query: dict[str, Any]) -> str:
    """
    The address of the feed at C{path} (C{/ws/logs}) of the hub at C{url}
    (C{http://host:port}; C{https} gives C{wss}), with C{query}.

    @raise ValueError: C{url} is not an address of a hub.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise ValueError(f"--url must be http://HOST:PORT or https://HOST:PORT, not {url!r}")
    query = {k: v for k, v in query.items() if v is not None}
    return urllib.parse.urlunsplit(
        (scheme, parts.netloc, parts.path.rstrip("/") + path, urllib.parse.urlencode(query), "")
    )


class InsightFeed(Watcher):
    """
    L{Watcher}'s connection, backoff and refusals, for a feed of the
    insight room: every message goes to the display as it is.
    """

    def __init__(self, reactor: Any, url: str, token: Optional[str], display: Any,
                 path: str, query: dict[str, Any]) -> None:
        super().__init__(reactor, url, token, display)
        self._url = insightURL(url, path, query)
        self._factory.setSessionParameters(self._url, headers=self._headers)

    def _received(self, payload: bytes) -> None:
        try:
            message = json.loads(payload.decode("utf-8"))
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if not self._live:
            self._live = True
            self._display.connection("live")
        self._failures = 0
        self._display.message(message)


class LogPrinter:
    """
    A node's lines as they come: stdout's on C{out}, stderr's on C{err};
    a line already printed (a reconnection's tail repeats some) is not
    printed again.  C{ended} fires at C{log_end}.
    """

    def __init__(self, out: TextIO, err: TextIO, timestamps: bool) -> None:
        self._out = out
        self._err = err
        self._timestamps = timestamps
        self._last = ""
        self.ended: Deferred[None] = Deferred()

    def message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "log":
            self.lines([line for line in message.get("lines") or [] if line["time"] > self._last])
        elif kind == "log_gap":
            self._note(f"{message.get('dropped')} line(s) left out")
        elif kind == "log_end" and not self.ended.called:
            self.ended.callback(None)

    def lines(self, lines: list[dict[str, Any]]) -> None:
        for line in lines:
            stream = self._err if line.get("stream") == "stderr" else self._out
            prefix = f"{line['time']} " if self._timestamps else ""
            stream.write(f"{prefix}{line['text']}\n")
            self._last = max(self._last, line["time"])
        self._out.flush()
        self._err.flush()

    def _note(self, text: str) -> None:
        self._err.write(f"statushub logs: {text}\n")
        self._err.flush()

    def connection(self, state: str, detail: str = "") -> None:
        if state != "live":
            self._note(f"{state}{': ' + detail if detail else ''}")

    def missed(self, message: dict[str, Any], count: int) -> None:
        pass


def formatBytes(count: Optional[float]) -> str:
    if count is None:
        return "-"
    value, unit = float(count), 0
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.0f} {units[unit]}" if unit == 0 else f"{value:.1f} {units[unit]}"


def renderTop(messages: dict[str, dict[str, Any]], connection: str) -> list[str]:
    """
    The table of C{top}: a row per running node of every deployment shown.
    """
    rows = [("DEPLOYMENT", "NODE", "CPU", "MEMORY", "LIMIT", "MEM%")]
    for name in sorted(messages):
        for node in messages[name].get("nodes") or []:
            if node.get("unavailable"):
                rows.append((name, node["nodeId"], "-", "-", "-", "not available"))
                continue
            limit = node.get("memoryLimitBytes") or 0
            share = f"{100 * node['memoryBytes'] / limit:.0f}%" if limit else "-"
            rows.append((name, node["nodeId"], f"{node['cpu']:.1f}%",
                         formatBytes(node["memoryBytes"]), formatBytes(limit), share))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"resource use: {connection}"]
    if len(rows) == 1:
        # a node's first figures come a second or two after it is watched
        lines.append("no figures yet (running nodes only)")
        return lines
    for row in rows:
        lines.append("  ".join(
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) if i < 5 else cell
            for i, cell in enumerate(row)
        ).rstrip())
    return lines


class TopTable:
    """
    C{top}'s display: the table redrawn in place on a terminal, printed
    anew each second otherwise; with C{json}, one JSON line per message.
    """

    CLEAR = "\x1b[H\x1b[2J"

    def __init__(self, out: TextIO, err: TextIO, tty: bool, asJSON: bool) -> None:
        self._out = out
        self._err = err
        self._tty = tty
        self._json = asJSON
        self._messages: dict[str, dict[str, Any]] = {}
        self._connection = "connecting"

    def message(self, message: dict[str, Any]) -> None:
        if message.get("type") != "stats":
            return
        if self._json:
            self._out.write(json.dumps(message, separators=(",", ":")) + "\n")
            self._out.flush()
            return
        self._messages[str(message.get("deployment"))] = message
        self._draw()

    def connection(self, state: str, detail: str = "") -> None:
        self._connection = state + (f" ({detail})" if detail else "")
        if state != "live":
            self._messages = {}  # what is shown comes again when it is back
        if self._json or not self._tty:
            self._err.write(f"statushub top: {self._connection}\n")
            self._err.flush()
        else:
            self._draw()

    def missed(self, message: dict[str, Any], count: int) -> None:
        pass

    def _draw(self) -> None:
        text = "\n".join(renderTop(self._messages, self._connection)) + "\n"
        self._out.write(self.CLEAR + text if self._tty else text + "\n")
        self._out.flush()


def _stopReactor(reactor: Any) -> None:
    try:
        reactor.stop()
    except ReactorNotRunning:
        pass  # stopping already (Ctrl-C, SIGTERM)


def _runFeed(feed: InsightFeed, reactor: Any, ended: Optional[Deferred], err: TextIO,
             verb: str) -> int:
    outcome = {"code": EXIT_OK}

    def finished(result: Any) -> None:
        if hasattr(result, "check") and result.check(Refused):
            err.write(f"statushub {verb}: the hub refused: {result.value}\n")
            outcome["code"] = EXIT_UNREACHABLE
        elif hasattr(result, "check"):
            err.write(f"statushub {verb}: {result.getErrorMessage()}\n")
            outcome["code"] = 1
        _stopReactor(reactor)

    def started() -> None:
        ensureDeferred(feed.run()).addBoth(finished)
        if ended is not None:
            ended.addCallback(lambda _: feed.stop()).addBoth(lambda _: _stopReactor(reactor))

    reactor.callWhenRunning(started)
    reactor.addSystemEventTrigger("before", "shutdown", feed.stop)
    reactor.run()
    return outcome["code"]


def logs(args: argparse.Namespace, out: TextIO, err: TextIO, reactor: Any = None) -> int:
    """
    C{statushub logs}: the last lines, or (C{--follow}) every line from now
    on too.
    """
    printer = LogPrinter(out, err, args.timestamps)
    if not args.follow:
        from statushub.cli import CommandError, _refused, request

        path = (f"/api/deployments/{urllib.parse.quote(args.name, safe='')}/nodes/"
                f"{urllib.parse.quote(args.node, safe='')}/logs?tail={args.tail}")
        try:
            code, body = request(args.url, "GET", path, args.token)
            if code != 200:
                raise _refused(code, body)
        except CommandError as e:
            err.write(f"statushub logs: {e}\n")
            return e.code
        printer.lines(body.get("lines") or [])
        return EXIT_OK
    if reactor is None:
        from twisted.internet import reactor
    try:
        feed = InsightFeed(reactor, args.url, args.token, printer, "/ws/logs",
                           {"deployment": args.name, "node": args.node, "tail": args.tail})
    except ValueError as e:
        err.write(f"statushub logs: {e}\n")
        return EXIT_USAGE
    return _runFeed(feed, reactor, printer.ended, err, "logs")


def top(args: argparse.Namespace, out: TextIO, err: TextIO, reactor: Any = None) -> int:
    """
    C{statushub top}: CPU and memory per running node, live.
    """
    if reactor is None:
        from twisted.internet import reactor
    display = TopTable(out, err, out.isatty() and not args.json, args.json)
    try:
        feed = InsightFeed(reactor, args.url, args.token, display, "/ws/stats",
                           {"deployment": args.name})
    except ValueError as e:
        err.write(f"statushub top: {e}\n")
        return EXIT_USAGE
    return _runFeed(feed, reactor, None, err, "top")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"the hub's address (default {DEFAULT_URL})")
    parser.add_argument("--token", default=os.environ.get("STATUSHUB_TOKEN"),
                        help="the hub's bearer token (default: $STATUSHUB_TOKEN)")


def _tail(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to 10000")
    return int(text)


def main(verb: str, argv: list[str], out: TextIO = None, err: TextIO = None) -> int:
    """
    C{statushub logs ...} or C{statushub top ...}.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if verb == "logs":
        parser = argparse.ArgumentParser(
            prog="statushub logs", epilog=STOPPING,
            description="A node's last lines (its stderr to ours); with --follow, "
                        "every line it prints from then on, until its container is gone.")
        parser.add_argument("name", metavar="NAME", help="the deployment")
        parser.add_argument("node", metavar="NODE", help="the node")
        parser.add_argument("--tail", type=_tail, default=100,
                            help="how many of the last lines (default 100, at most 10000)")
        parser.add_argument("--follow", "-f", action="store_true",
                            help="keep printing the lines it prints")
        parser.add_argument("--timestamps", "-t", action="store_true",
                            help="each line after the time the engine read it")
        _common(parser)
        return logs(parser.parse_args(argv), out, err)
    parser = argparse.ArgumentParser(
        prog="statushub top", epilog=STOPPING,
        description="CPU (percent of one core) and memory of every running node, live: "
                    "of every deployment, or NAME only.")
    parser.add_argument("name", metavar="NAME", nargs="?", help="one deployment only")
    parser.add_argument("--json", action="store_true",
                        help="one JSON line per stats message instead of a table")
    _common(parser)
    return top(parser.parse_args(argv), out, err)
