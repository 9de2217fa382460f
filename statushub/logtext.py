"""
Log text that cannot take over a terminal or forge a line.

Log events carry text from outside: deployment names, node ids and field
names from a topology, the engine's error texts, paths, header values.  A
raw C{\\r\\x1b[2K} in one of them, printed by C{tail -f}, would erase the
line it is on (the audit line of the very request that sent it).  So every
field of an event is escaped as it is put into the event's text: control
characters (C0, DEL, C1), line and paragraph separators and the invisible
and bidirectional formatting characters become C{\\n}, C{\\x1b}, C{\\u202e}.
The event's format string is the code's and is left alone; a traceback keeps
its line breaks (each of its lines is indented by the text format) and loses
every other control character.

Both log formats go through here: the text log (L{textLogObserver}, which
writes what twistd's own text log writes, escaped) and the JSON log's
C{text} (L{statushub.jsonlog}).  A leaf module.
"""

from __future__ import annotations

import re
from string import Formatter
from typing import IO, Any, Iterator, Mapping, Optional

from twisted.logger import (
    FileLogObserver,
    LogEvent,
    formatEvent as twistedFormatEvent,
    formatEventAsClassicLogText,
    formatTime,
    timeFormatRFC3339,
)

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
# the same, less the line break and the tab, which a traceback and the text
# format's indentation of a traceback's lines are made of
_UNSAFE_IN_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: "re.Match[str]") -> str:
    character = match.group()
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """
    C{text} with every character that could act on a terminal, or start a
    new line, written as an escape (C{\\x1b}, C{\\n}, C{\\u202e}).
    """
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escaped, text)


def escapeKeepingLines(text: str) -> str:
    """
    As L{escape}, but line breaks and tabs stay (for a traceback).
    """
    if _UNSAFE_IN_LINES.search(text) is None:
        return text
    return _UNSAFE_IN_LINES.sub(_escaped, text)


class _EscapingFormatter(Formatter):
    """
    C{str.format}, with every replacement field escaped once it is
    formatted (after C{!r} and the format spec).
    """

    def format_field(self, value: Any, format_spec: str) -> str:
        return escape(super().format_field(value, format_spec))


class _Fields(Mapping[str, Any]):
    """
    An event's fields as twisted.logger's format strings see them: a field
    named C{name()} is called.
    """

    def __init__(self, event: LogEvent) -> None:
        self._event = event

    def __getitem__(self, key: str) -> Any:
        if key.endswith("()"):
            return self._event[key[:-2]]()
        return self._event[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._event)

    def __len__(self) -> int:
        return len(self._event)


_formatter = _EscapingFormatter()


def formatEvent(event: LogEvent) -> str:
    """
    An event's text, as L{twisted.logger.formatEvent} makes it, with every
    field escaped (see the module's docstring).  An event of the older
    C{twisted.python.log} keeps the line breaks of its text, which may be a
    traceback.
    """
    logFormat = event.get("log_format")
    if event.get("log_namespace") == "log_legacy" and logFormat == "{log_text}":
        return escapeKeepingLines(str(event.get("log_text", "")))
    if isinstance(logFormat, bytes):
        logFormat = logFormat.decode("utf-8", "replace")
    if "log_flattened" in event or not isinstance(logFormat, str):
        # nothing of ours to format field by field: escape the result
        return escape(twistedFormatEvent(event))
    try:
        return _formatter.vformat(logFormat, (), _Fields(event))
    except BaseException:
        # Twisted says why the event could not be formatted, naming its fields
        return escape(twistedFormatEvent(event))


def formatEventAsText(
    event: LogEvent, timeFormat: Optional[str] = timeFormatRFC3339
) -> Optional[str]:
    """
    One event as twistd's text log writes it (C{TIME [SYSTEM] TEXT}, then a
    traceback, each of its lines indented), with its fields escaped and no
    control character but the line breaks between a traceback's lines.
    """
    escaped = dict(event)
    escaped.pop("log_flattened", None)
    escaped["log_format"] = "{log_escapedText}"
    escaped["log_escapedText"] = formatEvent(event)
    text = formatEventAsClassicLogText(escaped, formatTime=lambda t: formatTime(t, timeFormat))
    return None if text is None else escapeKeepingLines(text)


def textLogObserver(outFile: IO[Any]) -> FileLogObserver:
    """
    An observer that writes each event to C{outFile} as twistd's text log
    does (L{formatEventAsText}).
    """
    return FileLogObserver(outFile, formatEventAsText)
