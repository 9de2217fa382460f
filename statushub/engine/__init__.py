"""
The container engine: values exchanged with it, its errors, and (in
L{statushub.engine.docker}) the Docker implementation of
L{statushub.interfaces.IContainerEngine}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from statushub.resources import Resources

# Every container statushub creates carries these labels: they are how the
# hub finds its containers again after a restart, and how the tests clean up
# only what is theirs.
DEPLOYMENT_LABEL = "io.statushub.deployment"
NODE_LABEL = "io.statushub.node"
INDEX_LABEL = "io.statushub.index"
# every node id of the deployment, comma-separated, in topology order: a
# restarted hub learns from any one surviving container which nodes are gone
NODES_LABEL = "io.statushub.nodes"
# the node's own topology entry (JSON): a restarted hub can make the node's
# container again (recreate) exactly as the deploy made it
ENTRY_LABEL = "io.statushub.entry"
# the [deploy] owner of the hub that made it: a hub sees only its owner's
OWNER_LABEL = "io.statushub.owner"
DEFAULT_OWNER = "statushub"


# [deploy] stop_timeout's default, as Docker's own
DEFAULT_STOP_TIMEOUT = 10.0


def containerName(owner: str, deployment: str, node: str) -> str:
    """
    The name of the container of C{node} of C{deployment}, made by a hub of
    C{owner}: C{owner.deployment.node}.  Owners, deployments and nodes are
    named without dots, so two containers never share a name: not
    C{a-b}/C{c} and C{a}/C{b-c}, not two owners' deployments of one name.
    (Swarm names its services after this: L{statushub.engine.swarm.serviceName}.)
    """
    return f"{owner}.{deployment}.{node}"


class EngineError(Exception):
    """
    The engine could not be asked, or refused; the message says why.
    """


class EngineUnreachable(EngineError):
    """
    The engine did not answer: it is down, or not where we look for it.
    """


class ImageNotFound(EngineError):
    """
    The engine does not have the image a container asks for.
    """


class StatsUnavailable(EngineError):
    """
    The resource use of a container cannot be read from here: on a swarm,
    the engine of the host it runs on is not one the hub can reach.
    """


class RecreateIncomplete(EngineError):
    """
    Recreating a container failed after its old container was removed.

    @ivar containerId: what the node has now: the new container, created
        but not running, or C{""} when there is none.
    """

    def __init__(self, message: str, containerId: str = "") -> None:
        super().__init__(message)
        self.containerId = containerId


@dataclass(frozen=True)
class HealthCheckSpec:
    test: tuple[str, ...]
    interval: float = 1.0
    timeout: float = 1.0
    retries: int = 3
    startPeriod: float = 0.0


@dataclass(frozen=True)
class ContainerSpec:
    """
    What one node asks of the engine.  Deliberately small: nothing in here
    can reach the host (no mounts, no privileges, no host namespaces), and
    containers get no network.
    """

    name: str
    image: str
    command: Optional[tuple[str, ...]] = None
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    healthcheck: Optional[HealthCheckSpec] = None
    # when the engine restarts the container: "none", "on-failure" or "any"
    restart: str = "none"
    # Swarm placement constraints ("node.labels.x==y"); one engine has none
    constraints: tuple[str, ...] = ()
    # seconds a stopping process has after SIGTERM before SIGKILL: the
    # engine's own default for this container (a daemon that shuts down, a
    # Swarm task that is replaced); [deploy] stop_timeout
    stopTimeout: float = DEFAULT_STOP_TIMEOUT
    # its memory and CPU limits: every container has some
    resources: Resources = Resources()


# a node's restart word, as the Docker engine calls it
RESTART_POLICIES = ("none", "on-failure", "any")


@dataclass(frozen=True)
class ContainerState:
    """
    One container as the engine lists it.

    @ivar status: the engine's state word (C{running}, C{exited}, ...).
    @ivar health: C{starting}, C{healthy}, C{unhealthy}, or L{None} when the
        container has no health check.
    """

    containerId: str
    status: str
    health: Optional[str] = None
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # what only a cluster knows: the container the node runs in now (a Swarm
    # service's id is not a container's), the host it is on and how that
    # host is, why it failed; L{None} from a single engine
    container: Optional[str] = None
    host: Optional[str] = None
    hostStatus: Optional[str] = None
    error: Optional[str] = None
    # an exited container's exit code, when the list says it
    exitCode: Optional[int] = None
    # stopped on purpose and kept so, as the list shows it (a Swarm service
    # scaled to 0 replicas); one engine's list cannot tell
    keptStopped: bool = False


@dataclass(frozen=True)
class ContainerDetail:
    """
    What only a look at one container tells (L{IContainerEngine.inspectContainer}).

    @ivar healthOutput: the output of its last health check, if it has one.
    """

    containerId: str
    restartCount: int = 0
    exitCode: Optional[int] = None
    healthOutput: Optional[str] = None
    # the kernel's OOM killer ended it (the engine's State.OOMKilled)
    oomKilled: bool = False


@dataclass(frozen=True)
class EngineEvent:
    """
    One container event: C{action} is the engine's word (C{die}, C{start},
    C{pause}, C{health_status: healthy}, ...).
    """

    containerId: str
    action: str
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    timeNano: int = 0


#: a log line longer than this many characters is cut (PRODUCT.md)
MAX_LINE_CHARACTERS = 4096


@dataclass(frozen=True)
class LogLine:
    """
    One line a container printed.

    @ivar time: when the engine read it: RFC 3339 (ISO 8601) in UTC with
        nanoseconds, fixed width, so that times compare as strings.
    @ivar stream: C{stdout} or C{stderr}.
    @ivar text: the line without its newline, at most
        L{MAX_LINE_CHARACTERS} characters, invalid UTF-8 replaced.
    """

    time: str
    stream: str
    text: str

    def toJSON(self) -> dict[str, str]:
        return {"time": self.time, "stream": self.stream, "text": self.text}


@dataclass(frozen=True)
class ResourceSample:
    """
    A container's resource use at one moment.

    @ivar cpu: percent of one core since the previous sample (200.0: two
        cores busy).
    @ivar memoryBytes: memory in use, the page cache that could be dropped
        left out (what C{docker stats} shows).
    @ivar memoryLimitBytes: its memory limit (the host's memory when it
        has none).
    @ivar time: when the engine read it, RFC 3339.
    """

    cpu: float
    memoryBytes: int
    memoryLimitBytes: int
    time: str


@dataclass(frozen=True)
class NodeLocation:
    """
    Where one node of a deployment runs, as the engine's log and resource
    calls need it.

    @ivar containerId: what L{statushub.interfaces.IContainerEngine}'s
        C{readLogs}, C{followLogs} and C{resourceUse} take: the container's
        id on one engine, the service's on a swarm; C{""} when the node has
        none (its container was gone when the hub adopted it).
    @ivar status: the node's status in the feed (C{running}, C{exited}, ...).
    """

    nodeId: str
    containerId: str
    status: str
