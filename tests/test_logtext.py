"""
Log text from outside cannot act on a terminal: every field escaped, in the
text log and the JSON log's text, in memory and in a real hub's log.
"""

from __future__ import annotations

import io
import json
import re
import socket

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel, Logger, LogPublisher
from twisted.python import log as legacyLog
from twisted.python.failure import Failure

from statushub.jsonlog import jsonLogObserver
from statushub.logtext import escape, formatEvent, textLogObserver

# a raw control character of any kind, what a terminal would act on
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]")


@pytest.mark.parametrize("text, shown", [
    ("plain, é ü 日本", "plain, é ü 日本"),
    ("\r\x1b[2Kforged", "\\r\\x1b[2Kforged"),
    ("line\nnext\ttab", "line\\nnext\\ttab"),
    ("\x00\x07\x7f\x85\x9b", "\\x00\\x07\\x7f\\x85\\x9b"),
    ("abc\u202edef\u2028", "abc\\u202edef\\u2028"),
    ("\ud800", "\\ud800"),
])
def test_escape(text: str, shown: str) -> None:
    assert escape(text) == shown


def written(emit, observer) -> str:
    out = io.StringIO()
    emit(Logger(namespace="statushub.test", observer=LogPublisher(observer(out))))
    return out.getvalue()


def test_fieldsAreEscapedNotTheFormat() -> None:
    """
    Every field, whatever its type and conversion, is escaped once formatted;
    the format string is the code's.
    """
    class Error(Exception):
        pass

    text = written(
        lambda log: log.info(
            "deploy of {name!r}: {reason}; {error}; {count:>3}; {call()}",
            name="x\x1b[2K", reason="nodes[0].\r\x1b[2K: unknown field",
            error=Error("engine said \x1b]0;title\x07"), count=7, call=lambda: "\x1b[1m",
        ),
        textLogObserver,
    )
    assert text.count("\n") == 1 and RAW_CONTROL.search(text) is None
    assert text.endswith(
        "deploy of 'x\\x1b[2K': nodes[0].\\r\\x1b[2K: unknown field; "
        "engine said \\x1b]0;title\\x07;   7; \\x1b[1m\n"
    )


def test_tracebacksKeepTheirLines() -> None:
    """
    A failure's traceback stays readable, one indented line each, without
    the control characters of its exception's text.
    """
    try:
        raise ValueError("bad \x1b[2K value")
    except ValueError:
        failure = Failure()
    text = written(lambda log: log.failure("it broke on {what}", failure, what="\r"),
                   textLogObserver)
    lines = text.splitlines()
    assert "it broke on \\r" in lines[0]
    assert all(line.startswith("\t") for line in lines[1:])
    assert any("ValueError: bad \\x1b[2K value" in line for line in lines)
    assert RAW_CONTROL.search(text) is None


def test_legacyTextKeepsItsLines() -> None:
    """
    An event of twisted.python.log (its text may be a traceback) keeps its
    line breaks and loses every other control character.
    """
    from twisted.logger._legacy import publishToNewObserver

    converted: list[dict] = []
    publishToNewObserver(converted.append, {"message": ("a\x1b\nb",), "isError": 0, "time": 0.0},
                         legacyLog.textFromEventDict)
    assert formatEvent(converted[0]) == "a\\x1b\nb"


def test_unformattableEventsAreEscapedToo() -> None:
    assert RAW_CONTROL.search(formatEvent({"log_format": "{missing}", "x": "\x1b"})) is None
    assert formatEvent({"log_format": b"bytes \xff {x}", "x": "\x1b"}) == "bytes \ufffd \\x1b"


def test_jsonTextIsEscapedTheFieldsKept() -> None:
    """
    The JSON log's text is the escaped text; the fields keep their value
    (JSON escapes them itself).
    """
    [line] = written(lambda log: log.warn("node {node} gone", node="\x1b[2K"),
                     jsonLogObserver).splitlines()
    assert "\x1b" not in line
    record = json.loads(line)
    assert record["text"] == "node \\x1b[2K gone"
    assert record["node"] == "\x1b[2K"
    assert record["level"] == LogLevel.warn.name


def rawRequest(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest_twisted.ensureDeferred
async def test_aRealHubsLogHasNoRawControlCharacters(hub_process, tmp_path) -> None:
    """
    A topology whose node key is C{\\r\\x1b[2K}, and a cross-site request
    whose Origin carries an escape sequence: both are refused, both audit
    lines are in the hub's text log, escaped, and no line of the log holds
    a raw control character.
    """
    hub = hub_process(env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    body = json.dumps({"name": "demo", "nodes": [
        {"id": "web", "image": "statushub/busybox", "\r\x1b[2K": 1}]}).encode()
    answer = await deferToThread(rawRequest, hub.port, (
        b"POST /api/deployments HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body)
    assert answer.startswith(b"HTTP/1.1 400 ")
    hub.waitForLine(
        re.compile(r"audit: deploy of 'demo'.*refused \(400\).*nodes\[0\]\.\\r\\x1b\[2K"))

    answer = await deferToThread(rawRequest, hub.port, (
        b"POST /api/deployments HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Origin: http://evil\x1b[2K.example\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)) + body)
    assert answer.startswith(b"HTTP/1.1 403 ")
    hub.waitForLine(re.compile(r"audit: deploy of .*refused \(403\).*evil\\x1b\[2K\.example"))
    raw = [line for line in hub.log if RAW_CONTROL.search(line)]
    assert raw == []
