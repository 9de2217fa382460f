"""
L{IContainerEngine} on the Docker SDK.

The SDK blocks, so every call runs in a thread pool of our own (sized so that
a deploy, a poll and a teardown can overlap without queueing behind one
another, small enough not to matter on a 2-core machine) with a socket
timeout, plus a reactor-side timeout as a backstop.  A call that waits for a
process to end (a stop or restart, up to its grace period) runs in a second
pool, so that polls never queue behind a grace period.  The event stream
reads in one more thread of its own so that it can never occupy either.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Callable, Optional, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig
from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from statushub.engine import (
    ContainerDetail,
    ContainerSpec,
    ContainerState,
    EngineError,
    EngineEvent,
    EngineUnreachable,
    ImageNotFound,
    LogLine,
    RecreateIncomplete,
)
from statushub.engine.dockerstreams import CONTAINER_LOGS, followLogs, followStats, readLogs
from statushub.interfaces import IContainerEngine, IEventStream, ILogStream, IStatsStream
from statushub.resources import LOG_FILE_SIZE, LOG_FILES

# every container's log: json-file (the default driver, and one the engine
# can read back), capped at LOG_FILES files of LOG_FILE_SIZE
LOG_DRIVER = "json-file"
LOG_OPTIONS = {"max-size": LOG_FILE_SIZE, "max-file": str(LOG_FILES)}

T = TypeVar("T")

# Docker 20.10 speaks 1.41 and every later engine still accepts it.  A fixed
# version also keeps the client from asking the engine at construction,
# which would block (and fail when the engine is down).
API_VERSION = "1.41"
POOL_THREADS = 4
# stops and restarts waiting out their grace at once (a teardown stops every
# node of a deployment together); threads that wait on a socket cost little
GRACE_THREADS = 16
PIDS_LIMIT = 256

# "Up 3 seconds (healthy)", "Up 1 second (health: starting)"
_HEALTH_IN_STATUS = re.compile(r"\((healthy|unhealthy|health: starting)\)")


def dockerHost(configured: str = "") -> str:
    """
    Where the engine is: the configured address, else C{DOCKER_HOST}, else the
    local socket (what the Docker CLI does).
    """
    return configured or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def healthFromListStatus(status: str) -> Optional[str]:
    """
    The health word inside the list API's human C{Status} text, if any.
    """
    match = _HEALTH_IN_STATUS.search(status or "")
    if match is None:
        return None
    word = match.group(1)
    return "starting" if word == "health: starting" else word


# the topology's restart words, as the single engine's policies
_RESTART_POLICY = {
    "none": {"Name": "no"},
    "on-failure": {"Name": "on-failure"},
    "any": {"Name": "always"},
}


# "Exited (137) 3 seconds ago"
_EXIT_IN_STATUS = re.compile(r"^Exited \((-?\d+)\)")


def exitCodeFromListStatus(status: str) -> Optional[int]:
    """
    The exit code inside the list API's human C{Status} text, if any.
    """
    match = _EXIT_IN_STATUS.match(status or "")
    return None if match is None else int(match.group(1))


def graceSeconds(timeout: float) -> int:
    """
    A grace period as the engine's API takes it: whole seconds, rounded up.
    """
    return max(0, math.ceil(timeout))


def labelFilter(labels: dict[str, Optional[str]]) -> list[str]:
    """
    The engine's C{label} filter for C{labels} (a value of L{None}: any
    value); the Swarm engine filters its services with it too.
    """
    return [key if value is None else f"{key}={value}" for key, value in labels.items()]


@implementer(IEventStream)
class DockerEventStream:
    """
    The engine's decoded event stream, as container events (the Swarm
    engine's stream reads service and node events on top of it).
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def next(self) -> Optional[EngineEvent]:
        for raw in self._stream:
            if raw.get("Type") != "container":
                continue
            actor = raw.get("Actor") or {}
            return EngineEvent(
                containerId=actor.get("ID") or raw.get("id", ""),
                action=raw.get("Action") or raw.get("status", ""),
                labels=dict(actor.get("Attributes") or {}),
                timeNano=int(raw.get("timeNano") or 0),
            )
        return None

    def close(self) -> None:
        try:
            self._stream.close()
        except Exception:
            # already closed or broken: either way nothing is left to end
            pass


@implementer(IContainerEngine)
class DockerEngine:
    """
    A Docker engine at C{host} (see L{dockerHost}).

    Constructing it neither connects nor starts threads; the pool starts
    with the first call.  Call L{stop} when done: it ends the thread pool.
    """

    def __init__(
        self,
        reactor: Any,
        host: str = "",
        timeout: float = 10.0,
        threads: int = POOL_THREADS,
    ) -> None:
        self._reactor = reactor
        self.host = dockerHost(host)
        self.timeout = timeout
        self._pool = ThreadPool(minthreads=0, maxthreads=threads, name="statushub-docker")
        self._gracePool = ThreadPool(
            minthreads=0, maxthreads=GRACE_THREADS, name="statushub-docker-stop"
        )
        self._stopped = False
        self._client = docker.APIClient(
            base_url=self.host, version=API_VERSION, timeout=timeout
        )

    def stop(self) -> None:
        self._stopped = True
        for pool in (self._pool, self._gracePool):
            if pool.started:
                pool.stop()
        self._client.close()

    def _call(self, what: str, function: Callable[..., T], *args: Any, **kw: Any) -> "Deferred[T]":
        return self._callIn(self._pool, 0, what, function, *args, **kw)

    def _callWaiting(
        self, grace: int, what: str, function: Callable[..., T], *args: Any, **kw: Any
    ) -> "Deferred[T]":
        """
        L{_call} for a call that may wait C{grace} seconds for a process to
        end: in the grace pool, with the backstop that much later.
        """
        return self._callIn(self._gracePool, grace, what, function, *args, **kw)

    def _callIn(
        self, pool: ThreadPool, grace: int, what: str,
        function: Callable[..., T], *args: Any, **kw: Any,
    ) -> "Deferred[T]":
        def guarded() -> T:
            try:
                return function(*args, **kw)
            except docker.errors.ImageNotFound as e:
                raise ImageNotFound(f"{what}: no such image: {e.explanation}") from e
            except docker.errors.APIError as e:
                explanation = e.explanation or str(e)
                if e.status_code == 404 and "image" in str(explanation).lower():
                    raise ImageNotFound(f"{what}: {explanation}") from e
                raise EngineError(f"{what}: {explanation}") from e
            except (requests.exceptions.RequestException, OSError) as e:
                raise EngineUnreachable(
                    f"{what}: cannot reach the engine at {self.host}: {e}"
                ) from e
            except docker.errors.DockerException as e:
                raise EngineError(f"{what}: {e}") from e

        if self._stopped:
            return fail(EngineError(f"{what}: the engine client is stopped"))
        if not pool.started:
            # started on first use, not at construction: twistd may fork
            # (daemonize) between building the service and running it
            pool.start()
        d = deferToThreadPool(self._reactor, pool, guarded)
        # the socket timeout should fire first; this is the backstop for a
        # call that hangs anywhere else
        d.addTimeout(self.timeout + grace + 5, self._reactor, onTimeoutCancel=self._timedOut(what))
        return d

    def _timedOut(self, what: str) -> Callable[[Any, float], Any]:
        def raiseEngineError(result: Any, timeout: float) -> Any:
            raise EngineUnreachable(f"{what}: the engine did not answer within {timeout} s")

        return raiseEngineError

    def ping(self) -> "Deferred[None]":
        return self._call("ping", lambda: (self._client.ping(), None)[1])

    def createContainer(self, spec: ContainerSpec) -> "Deferred[str]":
        if spec.constraints:
            # placement means nothing on one engine: refuse rather than
            # quietly run the node somewhere it was not meant to be
            return fail(EngineError(
                f"create container {spec.name!r}: placement constraints "
                f"({', '.join(spec.constraints)}) need a swarm ([engine] kind = \"swarm\")"
            ))

        def create() -> str:
            healthcheck = None
            if spec.healthcheck is not None:
                check = spec.healthcheck
                healthcheck = {
                    "test": list(check.test),
                    "interval": int(check.interval * 1e9),
                    "timeout": int(check.timeout * 1e9),
                    "retries": check.retries,
                    "start_period": int(check.startPeriod * 1e9),
                }
            created = self._client.create_container(
                image=spec.image,
                command=list(spec.command) if spec.command is not None else None,
                name=spec.name,
                environment=dict(spec.env),
                labels=dict(spec.labels),
                healthcheck=healthcheck,
                # no network at all: a node talks to nothing, the host least
                network_disabled=True,
                # the grace a daemon that shuts down gives it too
                stop_timeout=graceSeconds(spec.stopTimeout),
                host_config=self._client.create_host_config(
                    network_mode="none",
                    # and nothing gained inside: no setuid escalation, no fork bomb
                    security_opt=["no-new-privileges"],
                    pids_limit=PIDS_LIMIT,
                    restart_policy=_RESTART_POLICY[spec.restart],
                    # and no more of the host than it was given: memory with
                    # swap equal to it, so the limit is what it can use (not
                    # twice as much in swap), CPU time, log files
                    mem_limit=spec.resources.memory,
                    memswap_limit=spec.resources.memory,
                    nano_cpus=spec.resources.nanoCpus,
                    log_config=LogConfig(type=LOG_DRIVER, config=LOG_OPTIONS),
                ),
            )
            return created["Id"]

        return self._call(f"create container {spec.name!r}", create)

    def startContainer(self, containerId: str, restart: Optional[str] = None) -> "Deferred[None]":
        def start() -> None:
            if restart is not None:
                self._client.update_container(
                    containerId, restart_policy=_RESTART_POLICY[restart]
                )
            self._client.start(containerId)

        return self._call(f"start container {containerId[:12]}", start)

    def stopContainer(self, containerId: str, timeout: float) -> "Deferred[None]":
        grace = graceSeconds(timeout)

        def stop() -> None:
            # a manual stop keeps Docker's restart policy from acting only
            # until the daemon restarts ("always", and "on-failure" after a
            # SIGKILL, would start it then): no policy while stopped on purpose
            self._client.update_container(containerId, restart_policy=_RESTART_POLICY["none"])
            self._client.stop(containerId, timeout=grace)

        return self._callWaiting(grace, f"stop container {containerId[:12]}", stop)

    def restartContainer(self, containerId: str, timeout: float) -> "Deferred[None]":
        grace = graceSeconds(timeout)
        return self._callWaiting(
            grace, f"restart container {containerId[:12]}",
            self._client.restart, containerId, timeout=grace,
        )

    def recreateContainer(
        self, containerId: str, spec: ContainerSpec, timeout: float
    ) -> "Deferred[str]":
        return ensureDeferred(self._recreate(containerId, spec, timeout))

    async def _recreate(self, containerId: str, spec: ContainerSpec, timeout: float) -> str:
        # the same calls a deploy makes, after the old one is gone (its
        # name is the new one's)
        if containerId:
            await self.removeContainer(containerId, timeout)
        try:
            newId = await self.createContainer(spec)
        except EngineError as e:
            raise RecreateIncomplete(
                f"{e} (the old container is removed; no new one was created)"
            ) from e
        try:
            await self.startContainer(newId)
        except EngineError as e:
            raise RecreateIncomplete(
                f"{e} (the old container is removed; the new one {newId[:12]} is created, "
                "not running)", newId,
            ) from e
        return newId

    def removeContainer(self, containerId: str, timeout: float = 0) -> "Deferred[None]":
        grace = graceSeconds(timeout)

        def remove() -> None:
            try:
                if grace:
                    # SIGTERM first, as docker stop does; remove kills at once
                    self._client.stop(containerId, timeout=grace)
                self._client.remove_container(containerId, force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as e:
                # removal already under way: it will be gone
                if e.status_code == 409 and "already in progress" in str(e.explanation):
                    return
                raise

        return self._callWaiting(grace, f"remove container {containerId[:12]}", remove)

    def listContainers(self, labels: dict[str, Optional[str]]) -> "Deferred[list[ContainerState]]":
        def listing() -> list[ContainerState]:
            # the low-level list: one request, no inspect per container
            rows = self._client.containers(all=True, filters={"label": labelFilter(labels)})
            return [
                ContainerState(
                    containerId=row["Id"],
                    status=row.get("State", "unknown"),
                    health=healthFromListStatus(row.get("Status", "")),
                    labels=dict(row.get("Labels") or {}),
                    exitCode=exitCodeFromListStatus(row.get("Status", "")),
                )
                for row in rows
            ]

        return self._call("list containers", listing)

    def inspectContainer(self, containerId: str) -> "Deferred[ContainerDetail]":
        def inspect() -> ContainerDetail:
            found = self._client.inspect_container(containerId)
            state = found.get("State") or {}
            checks = (state.get("Health") or {}).get("Log") or []
            return ContainerDetail(
                containerId=containerId,
                restartCount=int(found.get("RestartCount") or 0),
                exitCode=state.get("ExitCode"),
                healthOutput=checks[-1].get("Output") if checks else None,
                oomKilled=bool(state.get("OOMKilled")),
            )

        return self._call(f"inspect container {containerId[:12]}", inspect)

    def events(
        self, labels: dict[str, Optional[str]], actions: tuple[str, ...] = ()
    ) -> "Deferred[IEventStream]":
        filters: dict[str, list[str]] = {"type": ["container"], "label": labelFilter(labels)}
        if actions:
            filters["event"] = list(actions)

        def openStream() -> IEventStream:
            stream = self._client.events(filters=filters, decode=True)
            return DockerEventStream(stream)

        return self._call("open the event stream", openStream)

    # -- logs and resource use -------------------------------------------
    #
    # Opening a stream is a call like any other (in the pool, with its
    # time-out); reading it is not: the stream is handed over open, and its
    # reader blocks in a thread of its own (statushub.insight).

    _logsPath = CONTAINER_LOGS

    def readLogs(self, containerId: str, tail: int) -> "Deferred[list[LogLine]]":
        return self._call(
            f"read the log of {containerId[:12]}",
            readLogs, self._client, self._logsPath, containerId, tail,
        )

    def followLogs(self, containerId: str) -> "Deferred[ILogStream]":
        return self._call(
            f"follow the log of {containerId[:12]}",
            followLogs, self._client, self._logsPath, containerId,
        )

    def followStats(self, containerId: str) -> "Deferred[IStatsStream]":
        return self._call(
            f"follow the resource use of {containerId[:12]}", followStats, self._client, containerId
        )
