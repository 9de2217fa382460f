"""
Unit tests of C{statushub watch}'s parts: the feed address, the backoff,
the table and the JSON lines.  The command against the real hub is in
tests/test_watch_hub.py.
"""

from __future__ import annotations

import argparse
import io
import json

import pytest
from twisted.internet.defer import ensureDeferred, fail
from twisted.internet.task import Clock

from statushub.cli.displays import JSONLines, NodeClock, Table, renderTable
from statushub.cli.feed import RECONNECT_POLICY, SeqGaps, Watcher, feedURL
from statushub.cli.watch import EXIT_USAGE, addArguments, main, run


def message(seq=1, deployStatus="deployed", nodes=None, **extra):
    picture = {
        "type": "status_update",
        "deployStatus": deployStatus,
        "nodeStatuses": nodes
        if nodes is not None
        else [
            {"nodeId": "web", "containerId": "0123456789abcdef" * 4, "status": "running", "health": "healthy"},
            {"nodeId": "db", "containerId": "fedcba9876543210" * 4, "status": "exited"},
        ],
        "deployment": "demo",
        "engine": "reachable",
        "error": None,
        "seq": seq,
        "timestamp": "2026-11-26T08:00:00.000Z",
    }
    picture.update(extra)
    return picture


@pytest.mark.parametrize(
    "url, feed",
    [
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/ws/status"),
        ("http://127.0.0.1:8080/", "ws://127.0.0.1:8080/ws/status"),
        ("https://hub.example:443/base", "wss://hub.example:443/base/ws/status"),
        ("ws://127.0.0.1:9/ws/status", "ws://127.0.0.1:9/ws/status"),
    ],
)
def test_feedURL(url, feed):
    assert feedURL(url) == feed


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "ftp://host/", "http://"])
def test_feedURLRefusesWhatIsNotAHub(url):
    with pytest.raises(ValueError, match="--url"):
        feedURL(url)


def test_reconnectPolicyIsTwistedsBackoffWithJitter():
    """
    Doubling from half a second up to ten, plus up to a second at random.
    """
    for attempt, base in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]):
        assert base <= RECONNECT_POLICY(attempt) <= base + 1.0


class Refusing:
    def connect(self, factory):
        return fail(ConnectionRefusedError("no hub here"))


def test_watcherRetriesByItsPolicyAndStartsAfreshOnceLive():
    """
    Each failed connection waits for the policy's next delay; a message
    received means the connection works, and the next drop starts again
    from the first delay.
    """
    clock = Clock()
    asked = []

    def policy(attempt):
        asked.append(attempt)
        return 1.0

    display = Recorder()
    watcher = Watcher(clock, "http://127.0.0.1:1", None, display, retryPolicy=policy)
    watcher._endpoint = Refusing
    running = ensureDeferred(watcher.run())
    clock.advance(1.0)
    clock.advance(1.0)
    assert asked == [0, 1, 2]
    watcher._received(json.dumps(message(1, deployment="a", epoch="e")).encode())
    clock.advance(1.0)
    assert asked == [0, 1, 2, 0]
    assert ("connection", "reconnecting") in display.events
    watcher.stop()
    assert running.called


def test_nodeClockKeepsTheTimeWhileNothingChanges():
    clock = NodeClock()
    clock.update([{"nodeId": "a", "status": "running", "health": "starting"}], now=100)
    clock.update([{"nodeId": "a", "status": "running", "health": "starting"}], now=105)
    assert clock.seconds("a", now=110) == 10
    clock.update([{"nodeId": "a", "status": "running", "health": "healthy"}], now=112)
    assert clock.seconds("a", now=113) == 1
    clock.update([], now=114)
    assert clock.seconds("a", now=115) is None


def test_renderTable():
    clock = NodeClock()
    picture = message()
    clock.update(picture["nodeStatuses"], now=0)
    lines = renderTable(picture, "live", "", clock, now=75)
    text = "\n".join(lines)
    assert lines[0] == "feed: live"
    assert "deployment: demo  status: deployed  engine: reachable" in text
    assert "\x1b[" not in text
    web = next(line for line in lines if line.startswith("web"))
    assert web.split() == ["web", "0123456789ab", "running", "healthy", "1m15s"]
    db = next(line for line in lines if line.startswith("db"))
    assert db.split() == ["db", "fedcba987654", "exited", "-", "1m15s"]


def test_renderTableNodeActions():
    """
    A node an operator stopped shows "stopped", not a crash (and no red);
    one an operator's restart has down shows "restarting"; what is under
    way and what failed are said below the table.
    """
    nodes = [
        {"nodeId": "web", "containerId": "a" * 64, "status": "exited", "exitCode": 143,
         "stoppedBy": "operator"},
        {"nodeId": "db", "containerId": "b" * 64, "status": "exited", "action": "restart"},
        {"nodeId": "api", "containerId": "", "status": "missing",
         "actionError": "recreate failed: no such image"},
    ]
    lines = renderTable(message(nodes=nodes), "live", "", NodeClock(), now=0, colour=True)
    assert next(line for line in lines if line.startswith("web")).split()[2] == "stopped"
    assert "\x1b[33mrestarting\x1b[0m" in next(line for line in lines if line.startswith("db"))
    assert not any("31mstopped" in line for line in lines)
    assert lines[-3:] == [
        "  web: stopped by the operator",
        "  db: restart under way",
        "  api: recreate failed: no such image",
    ]


def test_renderTableOnASwarm():
    """
    Nodes that name their host get a HOST column, with a host that is not
    ready saying how it is.
    """
    nodes = [
        {"nodeId": "web", "containerId": "a" * 64, "status": "running",
         "host": "manager", "hostStatus": "ready"},
        {"nodeId": "db", "containerId": "b" * 64, "status": "unknown",
         "host": "worker", "hostStatus": "down"},
    ]
    lines = renderTable(message(nodes=nodes), "live", "", NodeClock(), now=0)
    assert next(line for line in lines if line.startswith("NODE")).split()[-1] == "HOST"
    assert next(line for line in lines if line.startswith("web")).split()[-1] == "manager"
    assert next(line for line in lines if line.startswith("db")).split()[-2:] == ["worker", "(down)"]


def test_renderTableColoursWordsButKeepsThem():
    clock = NodeClock()
    lines = renderTable(message(), "reconnecting", "refused", clock, now=0, colour=True)
    assert lines[0] == "feed: \x1b[33mreconnecting\x1b[0m  (refused)"
    assert any("\x1b[31mexited\x1b[0m" in line for line in lines)


def test_renderTableShowsErrorAndNoNodes():
    lines = renderTable(
        message(deployStatus="failed", nodes=[], error="image not found"),
        "live", "", NodeClock(), now=0, header=False,
    )
    assert lines[0].startswith("last update: 2026-11-26T08:00:00.000Z  seq 1")
    assert "error: image not found" in lines
    assert lines[-1] == "no nodes"


def test_renderTableBeforeAnyMessage():
    assert renderTable(None, "connecting", "", NodeClock(), now=0) == [
        "feed: connecting",
        "waiting for the first status message",
    ]


class Flushes(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushedAt: list[int] = []

    def flush(self):
        self.flushedAt.append(len(self.getvalue()))


def test_jsonLinesOneFlushedLinePerMessage():
    out, err = Flushes(), io.StringIO()
    display = JSONLines(out, err)
    display.connection("live")
    display.message(message(1))
    display.message(message(2))
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [message(1), message(2)]
    # each line flushed as it was written, for a script reading a pipe
    assert out.flushedAt == [len(lines[0]) + 1, len(out.getvalue())]
    assert err.getvalue() == "statushub watch: live\n"


def test_tableRedrawsInPlaceOnATerminal():
    out, clock = io.StringIO(), Clock()
    table = Table(out, clock, tty=True, colour=False)
    table.message(message(1))
    clock.advance(3)
    table.tick()
    frames = out.getvalue().split(Table.CLEAR)
    assert frames[0] == ""
    assert len(frames) == 3
    assert "0s" in frames[1].splitlines()[-1] and "3s" in frames[2].splitlines()[-1]


def test_tableAppendsOffATerminal():
    out = io.StringIO()
    table = Table(out, Clock(), tty=False, colour=False)
    table.connection("live")
    table.message(message(1))
    table.tick()
    table.message(message(2))
    text = out.getvalue()
    assert Table.CLEAR not in text
    assert text.startswith("feed: live\n")
    assert text.count("last update:") == 2


def test_arguments():
    parser = argparse.ArgumentParser()
    addArguments(parser)
    args = parser.parse_args([])
    assert (args.url, args.json) == ("http://127.0.0.1:8080", False)
    args = parser.parse_args(["--url", "http://127.0.0.1:9", "--token", "t", "--json"])
    assert (args.url, args.token, args.json) == ("http://127.0.0.1:9", "t", True)


def test_helpSaysHowToStopIt(capsys):
    """
    C{--help} says how to end it, also when Ctrl-C cannot (SIGINT ignored).
    """
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Ctrl-C or SIGTERM (kill PID) ends it with status 0" in text
    assert "SIGINT ignored" in text and "stop it with SIGTERM" in text


def test_runRefusesABadURL():
    err = io.StringIO()
    args = argparse.Namespace(url="localhost:8080", token=None, json=True)
    assert run(args, reactor=Clock(), out=io.StringIO(), err=err) == EXIT_USAGE
    assert "--url must be" in err.getvalue()


# ---- several deployments -------------------------------------------------


def test_feedURLOfOneDeployment():
    assert feedURL("http://127.0.0.1:8080", "lab-1") == "ws://127.0.0.1:8080/ws/status?deployment=lab-1"
    assert feedURL("ws://127.0.0.1:9/ws/status?token=t", "a") == "ws://127.0.0.1:9/ws/status?token=t&deployment=a"


def test_seqGapsPerDeploymentAndEpoch():
    gaps = SeqGaps()
    assert gaps.check(message(5, deployment="a", epoch="e")) == 0
    assert gaps.check(message(9, deployment="b", epoch="e")) == 0  # another counter
    assert gaps.check(message(6, deployment="a", epoch="e")) == 0
    assert gaps.check(message(10, deployment="b", epoch="e")) == 0
    assert gaps.check(message(9, deployment="a", epoch="e")) == 2
    assert gaps.check(message(9, deployment="a", epoch="e")) == 0  # a repeat
    assert gaps.check(message(3, deployment="a", epoch="e")) == 0  # older
    assert gaps.check(message(11, deployment="a", epoch="e")) == 1  # still counted from 9
    # numbering restarted: no gap to tell
    assert gaps.check(message(1, deployment="a", epoch="f")) == 0
    assert gaps.check(message(2, deployment="a", epoch="f")) == 0
    gaps.reset()
    assert gaps.check(message(20, deployment="a", epoch="f")) == 0


class Recorder:
    def __init__(self):
        self.events = []

    def connection(self, state, detail=""):
        self.events.append(("connection", state))

    def missed(self, message, count):
        self.events.append(("missed", message["deployment"], count))

    def message(self, message):
        self.events.append(("message", message["deployment"], message["seq"]))


def test_watcherTellsGapsPerDeployment():
    """
    The watcher tells the display of a gap in one deployment's seq, not of
    the interleaving of several deployments' messages; a new connection
    starts counting afresh.
    """
    display = Recorder()
    watcher = Watcher(Clock(), "http://127.0.0.1:1", None, display)
    for name, seq in [("a", 1), ("b", 7), ("a", 2), ("b", 9)]:
        watcher._received(json.dumps(message(seq, deployment=name, epoch="e")).encode())
    assert display.events == [
        ("connection", "live"),
        ("message", "a", 1), ("message", "b", 7), ("message", "a", 2),
        ("missed", "b", 1), ("message", "b", 9),
    ]
    watcher._closed(None, 1006, "gone")
    display.events.clear()
    watcher._received(json.dumps(message(20, deployment="a", epoch="e")).encode())
    assert display.events == [("connection", "live"), ("message", "a", 20)]


def test_jsonLinesNoteAGapOnStderr():
    out, err = io.StringIO(), io.StringIO()
    display = JSONLines(out, err)
    display.missed(message(9, deployment="b"), 2)
    assert err.getvalue() == "statushub watch: missed: 2 message(s) about b before seq 9\n"
    assert out.getvalue() == ""


def overviewText(table_out):
    return table_out.getvalue().split(Table.CLEAR)[-1]


def test_tableOfEveryDeployment():
    """
    Unfiltered, a block per deployment in name order; a deployment whose
    teardown ended (idle, no nodes) drops out; with none left, it says so.
    """
    out, clock = io.StringIO(), Clock()
    table = Table(out, clock, tty=True, colour=False)
    table.connection("live")
    table.message(message(1, deployment="zeta"))
    table.message(message(1, deployment="alpha", deployStatus="deploying", nodes=[]))
    text = overviewText(out)
    assert text.index("deployment: alpha  status: deploying") < text.index("deployment: zeta  status: deployed")
    assert text.splitlines()[0] == "feed: live"
    table.message(message(2, deployment="zeta", deployStatus="idle", nodes=[]))
    text = overviewText(out)
    assert "zeta" not in text and "deployment: alpha" in text
    table.message(message(2, deployment="alpha", deployStatus="idle", nodes=[]))
    assert overviewText(out).splitlines()[1:] == ["no deployments"]


def test_tableOfAHubWithNoDeployment():
    out = io.StringIO()
    table = Table(out, Clock(), tty=True, colour=False)
    table.message(message(0, deployment=None, deployStatus="idle", nodes=[]))
    assert "deployment: none  status: idle" in overviewText(out)
    table.message(message(1, deployment="a", deployStatus="deploying", nodes=[]))
    text = overviewText(out)
    assert "deployment: none" not in text and "deployment: a  status: deploying" in text


def test_tableTakesEachConnectionsSnapshotAfresh():
    """
    A deployment torn down while the feed was away is not in the new
    connection's snapshot: it is no longer shown.
    """
    out = io.StringIO()
    table = Table(out, Clock(), tty=True, colour=False)
    table.connection("live")
    table.message(message(4, deployment="a", epoch="e"))
    table.message(message(8, deployment="b", epoch="e"))
    table.connection("reconnecting", "gone")
    table.connection("live")
    table.message(message(9, deployment="b", epoch="e"))
    text = overviewText(out)
    assert "deployment: b" in text and "deployment: a" not in text


def test_tableIgnoresAnOlderPictureAndShowsMissed():
    out = io.StringIO()
    table = Table(out, Clock(), tty=True, colour=False)
    table.message(message(5, deployment="a", epoch="e", deployStatus="deployed"))
    table.message(message(4, deployment="a", epoch="e", deployStatus="deploying"))
    assert "status: deployed" in overviewText(out)
    table.missed(message(8, deployment="a", epoch="e"), 2)
    table.message(message(8, deployment="a", epoch="e", deployStatus="failed"))
    text = overviewText(out)
    assert "status: failed" in text
    assert "missed: 2 update(s) on the feed; this is the latest picture" in text


def test_tableOfOneDeploymentKeepsItsIdlePicture():
    """
    Following one deployment, its final idle picture is shown, not dropped.
    """
    out = io.StringIO()
    table = Table(out, Clock(), tty=True, colour=False, deployment="a")
    table.message(message(1, deployment="a"))
    table.message(message(2, deployment="a", deployStatus="idle", nodes=[]))
    text = overviewText(out)
    assert "deployment: a  status: idle" in text and "no nodes" in text


def test_argumentsName():
    parser = argparse.ArgumentParser()
    addArguments(parser)
    assert parser.parse_args([]).name is None
    assert parser.parse_args(["lab", "--json"]).name == "lab"


def test_watcherOfOneDeploymentResumes():
    """
    Following one deployment, the next connection asks for what came after
    the last message about it; following every deployment, it does not.
    """
    watcher = Watcher(Clock(), "http://127.0.0.1:1", None, Recorder(), deployment="a")
    assert watcher.nextURL() == "ws://127.0.0.1:1/ws/status?deployment=a"
    watcher._received(json.dumps(message(7, deployment="a", epoch="e1")).encode())
    watcher._received(json.dumps(message(8, deployment="a", epoch="e1")).encode())
    assert watcher.nextURL() == "ws://127.0.0.1:1/ws/status?deployment=a&since=8&epoch=e1"
    everything = Watcher(Clock(), "http://127.0.0.1:1", None, Recorder())
    everything._received(json.dumps(message(8, deployment="a", epoch="e1")).encode())
    assert everything.nextURL() == "ws://127.0.0.1:1/ws/status"
