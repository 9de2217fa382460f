"""
Log events as JSON, one object a line (C{[logging] format = "json"}).

Each line is one L{twisted.logger} event:

    {"time": "2026-11-27T12:00:00.123Z", "level": "info",
     "namespace": "statushub", "text": "statushub serving on http://...",
     "host": "127.0.0.1", "port": 8080}

C{time} (UTC, ISO 8601), C{level}, C{namespace} and C{text} (the event's
message, formatted as the text log shows it, its fields escaped:
L{statushub.logtext}) come first, then C{system} when
Twisted names one, C{traceback} for a failure, and then the event's own
fields, as they were logged.  An own field whose name is already taken is
kept as C{field_<name>}.  Values JSON does not know are written as their
C{str()}.

twisted.logger's own C{jsonFileLogObserver} writes Twisted's internal form
of an event (the level as a class marker, the time as a float, every
C{log_*} key): made to be read back by Twisted, not by a log pipeline.  So
this module writes through the same L{FileLogObserver}, with a record made
for people and log shippers.

How it is switched on: twistd builds the service (C{makeService}) before it
starts logging, and then logs to the C{ILogObserver} component of its
application when there is one (unless C{twistd --logger} names another);
L{statushub.tap.HubService} sets that component.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import IO, Any, Mapping, Optional

from twisted.logger import FileLogObserver, ILogObserver, LogEvent
from twisted.python.logfile import LogFile

from statushub.logtext import formatEvent

# twisted.python.log's keys, which its bridge to twisted.logger repeats as
# log_* keys: written once, not twice
_LEGACY_KEYS = frozenset(
    {"message", "time", "system", "isError", "format", "failure", "why", "logLevel"}
)


def isoTime(seconds: float) -> str:
    """
    UTC, millisecond precision, with a C{Z}: C{2026-11-27T12:00:00.123Z}.
    """
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def eventAsRecord(event: LogEvent) -> dict[str, Any]:
    """
    The JSON object one event is written as (see the module's docstring).
    """
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": isoTime(event.get("log_time", 0.0)),
        "level": level.name if level is not None else "info",
        "namespace": event.get("log_namespace", ""),
        "text": formatEvent(event),
    }
    system = event.get("log_system")
    if system is not None:
        record["system"] = system
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    legacy = record["namespace"] == "log_legacy"
    for key, value in event.items():
        if key.startswith("log_") or (legacy and key in _LEGACY_KEYS):
            continue
        record[f"field_{key}" if key in record else key] = value
    return record


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def eventAsJSONLine(event: LogEvent) -> str:
    return json.dumps(eventAsRecord(event), default=_jsonable) + "\n"


def jsonLogObserver(outFile: IO[Any]) -> ILogObserver:
    """
    An observer that writes each event to C{outFile} as one JSON line.
    """
    return FileLogObserver(outFile, eventAsJSONLine)


def twistdLogFile(twistdOptions: Optional[Mapping[str, Any]]) -> IO[Any]:
    """
    Where twistd would write its text log, given its options: standard
    output in the foreground (C{-n}) without C{--logfile} or with
    C{--logfile -}, else the file C{--logfile} names (C{twistd.log} by
    default).  Without twistd (a test, a benchmark): standard output.
    """
    if twistdOptions is None:
        return sys.stdout
    logfile = twistdOptions.get("logfile")
    if logfile == "-" or (twistdOptions.get("nodaemon") and not logfile):
        return sys.stdout
    return LogFile.fromFullPath(logfile or "twistd.log")


def rotateOnSIGUSR1(logFile: LogFile) -> None:
    """
    Rotate C{logFile} on SIGUSR1, as twistd does its own log file (unless
    something else already handles that signal).  Call it once the
    process runs as the hub (not when a test builds the service).
    """
    import signal

    if signal.getsignal(signal.SIGUSR1):
        return

    def rotate(signum: int, frame: Any) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(logFile.rotate)

    signal.signal(signal.SIGUSR1, rotate)
