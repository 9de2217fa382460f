"""
JSON logs: the record each event becomes (in memory), and a real hub run
with C{[logging] format = "json"} whose every line is one JSON object.
"""

from __future__ import annotations

import io
import json
import re
import sys
from typing import Any

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.application.service import Application
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.logger import ILogObserver, LogLevel, Logger, LogPublisher
from twisted.python import log as legacyLog
from twisted.python.failure import Failure
from twisted.python.logfile import LogFile
from twisted.scripts.twistd import ServerOptions

from statushub.jsonlog import jsonLogObserver, twistdLogFile
from statushub.tap import Options, makeService
from tests.hubapi import delete, post, topology
from tests.waiting import waitUntil
from tests.wsclient import connectFeed

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def logged(emit) -> list[dict[str, Any]]:
    """
    What the JSON observer writes for the events C{emit(log)} logs.
    """
    out = io.StringIO()
    publisher = LogPublisher(jsonLogObserver(out))
    emit(Logger(namespace="statushub.test", observer=publisher))
    lines = out.getvalue().splitlines()
    return [json.loads(line) for line in lines]


def test_one_line_per_event_with_time_level_namespace_text_and_fields() -> None:
    [record] = logged(lambda log: log.info(
        "dropping slow feed client {peer}: more than {limit} bytes unsent",
        peer="tcp4:127.0.0.1:5555", limit=1024,
    ))
    assert ISO.match(record["time"])
    assert record["level"] == "info"
    assert record["namespace"] == "statushub.test"
    assert record["text"] == (
        "dropping slow feed client tcp4:127.0.0.1:5555: more than 1024 bytes unsent"
    )
    assert record["peer"] == "tcp4:127.0.0.1:5555"
    assert record["limit"] == 1024
    assert not any(key.startswith("log_") for key in record)


def test_levels_failures_and_values_json_does_not_know() -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    def emit(log: Logger) -> None:
        log.warn("odd values {thing}", thing=Thing(), raw=b"\xffbytes", items={1})
        try:
            1 / 0
        except ZeroDivisionError:
            log.failure("poll failed", Failure(), attempt=3)

    warn, failure = logged(emit)
    assert warn["level"] == "warn"
    assert warn["thing"] == "a thing" and warn["text"] == "odd values a thing"
    assert warn["raw"] == "\ufffdbytes"
    assert warn["items"] == "{1}"
    assert failure["level"] == "critical"
    assert failure["text"] == "poll failed"
    assert "ZeroDivisionError" in failure["traceback"]
    assert failure["attempt"] == 3


def test_a_field_named_like_ours_is_kept_apart() -> None:
    [record] = logged(lambda log: log.info("at {time}", time="noon", text=7))
    assert ISO.match(record["time"])
    assert record["field_time"] == "noon" and record["field_text"] == 7
    assert record["text"] == "at noon"


def test_legacy_log_messages_are_written_once() -> None:
    out = io.StringIO()
    observer = jsonLogObserver(out)
    legacyObserver = legacyLog.LogPublisher()
    legacyObserver.addObserver(lambda event: observer(_asNew(event)))
    legacyLog.callWithContext(
        {"system": "HTTPChannel,0"}, legacyObserver.msg, "Site starting on", 8080
    )
    [record] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert record["text"] == "Site starting on 8080"
    assert record["system"] == "HTTPChannel,0"
    assert record["namespace"] == "log_legacy"
    assert set(record) == {"time", "level", "namespace", "text", "system"}


def _asNew(event: dict) -> dict:
    from twisted.logger._legacy import publishToNewObserver

    converted: list[dict] = []
    publishToNewObserver(converted.append, dict(event), legacyLog.textFromEventDict)
    return converted[0]


def test_where_the_log_goes(tmp_path) -> None:
    assert twistdLogFile(None) is sys.stdout
    assert twistdLogFile({"nodaemon": True, "logfile": None}) is sys.stdout
    assert twistdLogFile({"nodaemon": True, "logfile": "-"}) is sys.stdout
    named = twistdLogFile({"nodaemon": True, "logfile": str(tmp_path / "hub.log")})
    assert isinstance(named, LogFile) and named.path == str(tmp_path / "hub.log")
    named.close()


@pytest.mark.parametrize("fromConfig", [True, False], ids=["config", "command-line"])
def test_json_format_becomes_the_applications_log_observer(tmp_path, fromConfig) -> None:
    """
    twistd logs to its application's ILogObserver when there is one; the
    hub's root service sets it when it is given its parent, writing where
    twistd would (here its --logfile).
    """
    args = ["--listen", "tcp:0:interface=127.0.0.1"]
    if fromConfig:
        path = tmp_path / "hub.toml"
        path.write_text('[logging]\nformat = "json"\n')
        args += ["--config", str(path)]
    else:
        args += ["--log-format", "json"]
    logPath = tmp_path / "twistd.log"
    twistdOptions = ServerOptions()
    twistdOptions.parseOptions(["-n", "--logfile", str(logPath), "statushub", *args])
    application = Application("statushub")
    makeService(twistdOptions.subOptions, reactor).setServiceParent(application)
    observer = application.getComponent(ILogObserver)
    assert observer is not None
    observer({"log_format": "hello {who}", "who": "json", "log_level": LogLevel.info,
              "log_namespace": "t", "log_time": 0.0})
    assert json.loads(logPath.read_text())["text"] == "hello json"


def test_text_format_is_twistds_text_escaped(tmp_path) -> None:
    """
    The text log is written as twistd writes it, where it would, with the
    events' fields escaped; with --syslog it is twistd's own.
    """
    logPath = tmp_path / "twistd.log"
    twistdOptions = ServerOptions()
    twistdOptions.parseOptions(
        ["-n", "--logfile", str(logPath), "statushub", "--listen", "tcp:0:interface=127.0.0.1"])
    application = Application("statushub")
    makeService(twistdOptions.subOptions, reactor).setServiceParent(application)
    observer = application.getComponent(ILogObserver)
    observer({"log_format": "hello {who}", "who": "te\r\x1b[2Kxt", "log_level": LogLevel.info,
              "log_namespace": "t", "log_time": 0.0})
    # the time is the local zone's, as twistd's
    assert re.fullmatch(r"1970-01-0\dT\S+ \[t#info\] hello te\\r\\x1b\[2Kxt\n", logPath.read_text())

    twistdOptions = ServerOptions()
    twistdOptions.parseOptions(["--syslog", "statushub", "--listen", "tcp:0:interface=127.0.0.1"])
    application = Application("statushub")
    makeService(twistdOptions.subOptions, reactor).setServiceParent(application)
    assert application.getComponent(ILogObserver) is None


def test_unknown_format_is_refused_by_name() -> None:
    from twisted.python import usage

    with pytest.raises(usage.UsageError, match=r"\[logging\] format.*'xml'"):
        Options().parseOptions(["--log-format", "xml"])


class SilentClientProtocol(WebSocketClientProtocol):
    """
    Completes the handshake, then reads nothing: it never answers a ping.
    """

    def onOpen(self) -> None:
        self.transport.pauseProducing()
        self.factory.opened.callback(self)


@pytest.mark.docker
@pytest_twisted.ensureDeferred
async def test_every_line_of_a_hub_run_is_json(hub_process, docker) -> None:
    hub = hub_process(
        config=(
            '[logging]\nformat = "json"\n'
            "[feed]\nping_interval = 0.5\nping_timeout = 1\n"
            "[polling]\ninterval = 0.5\n"
        ),
        env={"DOCKER_HOST": docker.host},
    )
    client = await connectFeed(hub.wsUrl)
    silent = None
    try:
        code, _ = await post(hub, topology(nodes=1))
        assert code == 202
        await client.waitFor(lambda m: m["deployStatus"] == "deployed", timeout=30)

        factory = WebSocketClientFactory(hub.wsUrl)
        factory.protocol = SilentClientProtocol
        factory.opened = Deferred()
        await TCP4ClientEndpoint(reactor, "127.0.0.1", hub.port).connect(factory)
        silent = await factory.opened
        # (waitForLine would block the reactor, and with it our client's pongs)
        await waitUntil(lambda: any("no answer to ping" in line for line in hub.log),
                        timeout=30, what="the silent client to be dropped")

        code, _ = await delete(hub)
        assert code == 202
        await client.waitFor(lambda m: m["deployStatus"] == "idle" and m["seq"] > 1,
                             timeout=30)
    finally:
        await client.close()
        if silent is not None:
            silent.transport.abortConnection()
    hub.stop()

    records = []
    for number, line in enumerate(hub.log, 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"line {number} of the hub's output is not JSON: {line!r}")
    for record in records:
        assert ISO.match(record["time"]), record
        assert record["level"] in {level.name for level in LogLevel.iterconstants()}
        assert isinstance(record["namespace"], str) and isinstance(record["text"], str)

    def find(pattern: str) -> dict:
        return next(r for r in records if re.search(pattern, r["text"]))

    serving = find("statushub serving on")
    assert serving["host"] == "127.0.0.1" and serving["port"] == hub.port
    deploy = find(r"^audit: deploy of 'itest'")
    assert deploy["namespace"] == "statushub.audit"
    assert (deploy["action"], deploy["deployment"], deploy["role"], deploy["code"]) == (
        "deploy", "itest", "anonymous", 202)
    assert deploy["peer"].startswith("127.0.0.1") and deploy["method"] == "POST"
    assert find(r"^audit: teardown of")["outcome"] == deploy["outcome"]
    dropped = find("no answer to ping")
    assert dropped["timeout"] == 1 and "127.0.0.1" in dropped["peer"]
    assert dropped["namespace"] == "statushub.hub.factory.StatusHubFactory"
    # started by twistd, and stopped
    find("twistd .* starting up")
    assert records[-1]["text"] == "Server Shut Down."
