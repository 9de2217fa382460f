"""
A container's log and resource use read from the Docker engine, for
L{statushub.engine.docker.DockerEngine} and the Swarm engine: the requests
(blocking: the engines make them in their call pool) and the open streams
(L{ILogStream}, L{IStatsStream}: read in a thread of their own, closable
from any other).
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Any, Iterator, Optional

import requests.exceptions
import urllib3.exceptions
from docker.types.daemon import CancellableStream
from zope.interface import implementer

from statushub.engine import LogLine, ResourceSample
from statushub.engine.logs import LineAssembler, SampleReader, assemble
from statushub.interfaces import ILogStream, IStatsStream

#: a container's log; a swarm's service has its own (C{/services/{0}/logs})
CONTAINER_LOGS = "/containers/{0}/logs"
SERVICE_LOGS = "/services/{0}/logs"

# what reading a stream raises once it is closed under it, or broken
_STREAM_ENDED = (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError,
                 ValueError, AttributeError)


def logFrames(response: Any) -> Iterator[tuple[int, bytes]]:
    """
    The C{(stream, payload)} frames of a log response (the engine's
    multiplexed stream: an 8-byte header, then the payload), as docker-py's
    C{logs()} reads them, but keeping which stream each came from.  Blocks.
    """
    while True:
        header = response.raw.read(8)
        if len(header) < 8:
            return
        streamId, length = struct.unpack(">BxxxL", header)
        if not length:
            continue
        payload = response.raw.read(length)
        if not payload:
            return
        yield streamId, payload


@implementer(ILogStream)
class _LogStream:
    """
    Lines from an open log response; L{close} shuts its socket, so a read
    blocked in another thread returns.
    """

    def __init__(self, response: Any) -> None:
        self._frames = logFrames(response)
        self._closer = CancellableStream(self._frames, response)
        self._assembler = LineAssembler()
        self._ready: deque[LogLine] = deque()
        self._ended = False

    def next(self) -> Optional[LogLine]:
        while not self._ready:
            if self._ended:
                return None
            try:
                streamId, payload = next(self._frames)
            except (StopIteration, *_STREAM_ENDED):
                self._ended = True
                self._ready.extend(self._assembler.flush())
                continue
            self._ready.extend(self._assembler.feed(streamId, payload))
        return self._ready.popleft()

    def close(self) -> None:
        self._ended = True
        try:
            self._closer.close()
        except Exception:
            pass  # already closed or broken: nothing left to end


@implementer(IStatsStream)
class _StatsStream:
    """
    Samples from an open stats response (one decoded reading a second); ends
    once the engine says the container is not running.
    """

    def __init__(self, readings: Iterator[dict], response: Any) -> None:
        self._stream = CancellableStream(readings, response)
        self._reader = SampleReader()

    def next(self) -> Optional[ResourceSample]:
        while True:
            try:
                raw = next(self._stream)
            except (StopIteration, *_STREAM_ENDED):
                return None
            running, sample = self._reader.read(raw)
            if not running:
                self.close()
                return None
            if sample is not None:
                return sample

    def close(self) -> None:
        try:
            self._stream.close()
        except Exception:
            pass


def openLogs(client: Any, path: str, containerId: str, params: dict[str, Any]) -> Any:
    """
    The open response of C{GET path} (a container's or a service's log)
    with C{params}: the request of docker-py's C{logs(stream=True,
    follow=True, timestamps=True)}, whose frames are read here rather than
    by docker-py, which drops the stream (stdout or stderr) each line came
    from.  Blocks.
    """
    query = {"stdout": 1, "stderr": 1, "timestamps": 1, **params}
    response = client._get(client._url(path, containerId), params=query, stream=True)
    client._raise_for_status(response)
    if params.get("follow"):
        # a quiet node may print nothing for longer than any time-out
        client._disable_socket_timeout(client._get_raw_response_socket(response))
    return response


def readLogs(client: Any, path: str, containerId: str, tail: int) -> list[LogLine]:
    """
    The last C{tail} lines, oldest first.  Blocks.
    """
    response = openLogs(client, path, containerId, {"tail": tail, "follow": 0})
    try:
        return assemble(logFrames(response))
    finally:
        response.close()


def followLogs(client: Any, path: str, containerId: str) -> ILogStream:
    """
    A stream of the lines printed from now on.  Blocks until it is open.
    """
    return _LogStream(openLogs(client, path, containerId, {"tail": 0, "follow": 1}))


def followStats(client: Any, containerId: str) -> IStatsStream:
    """
    docker-py's C{stats(stream=True, decode=True)}, with the response kept
    so that the stream can be closed from another thread.  Blocks until it
    is open.
    """
    response = client._get(
        client._url("/containers/{0}/stats", containerId), params={"stream": True}, stream=True
    )
    client._raise_for_status(response)
    client._disable_socket_timeout(client._get_raw_response_socket(response))
    return _StatsStream(client._stream_helper(response, decode=True), response)
