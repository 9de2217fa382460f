"""
How C{statushub watch} shows the feed: one JSON line per message
(L{JSONLines}), or a table per deployment that redraws in place on a
terminal (L{Table}).  A display is told C{message}, C{missed},
C{connection}, C{tick} (every second on a terminal) and C{close}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional, TextIO

from twisted.internet.interfaces import IReactorTime


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


def statusWord(node: dict[str, Any]) -> str:
    """
    A node's status as the table shows it: C{stopped} when an operator
    stopped it (on purpose: no crash), C{restarting} while an operator's
    restart or recreate has it down, else the feed's word.
    """
    status = node.get("status", "?")
    if status == "running":
        return status
    if node.get("stoppedBy"):
        return "stopped"
    if node.get("action") in ("restart", "recreate"):
        return "restarting"
    return status


def formatDuration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _moment(text: Any) -> Optional[float]:
    """
    An ISO 8601 time with its zone (the hub's C{since}) as POSIX seconds;
    L{None} for anything else.
    """
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if moment.tzinfo is None else moment.timestamp()


@dataclass
class NodeClock:
    """
    Since when each node has been in its state: its C{since} (when its
    status last changed, as the hub saw it), or, from a hub that does not
    say, since watch saw its status and health as they are.
    """

    since: dict[str, tuple[str, Optional[str], float]] = field(default_factory=dict)

    def update(self, nodes: list[dict[str, Any]], now: float) -> None:
        since = {}
        for node in nodes:
            key = (node.get("status"), node.get("health"))
            stated = _moment(node.get("since"))
            if stated is not None:
                since[node["nodeId"]] = (*key, stated)
                continue
            before = self.since.get(node["nodeId"])
            kept = before is not None and before[:2] == key
            since[node["nodeId"]] = before if kept else (*key, now)
        self.since = since

    def seconds(self, nodeId: str, now: float) -> Optional[float]:
        entry = self.since.get(nodeId)
        # a hub whose clock is ahead of ours: not a negative time
        return None if entry is None else max(0.0, now - entry[2])


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
                statusWord(node),
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
    # what operators did to a node: under way, stopped on purpose, failed
    for node in nodes:
        if node.get("action"):
            lines.append(f"  {node['nodeId']}: {node['action']} under way")
        elif node.get("stoppedBy") and node.get("status") != "running":
            lines.append(f"  {node['nodeId']}: stopped by the {node['stoppedBy']}")
        if node.get("actionError"):
            lines.append(f"  {node['nodeId']}: {node['actionError']}")
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
