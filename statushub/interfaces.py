"""
The contracts between statushub's parts.

The polling side only knows L{IStatusSink}: the WebSocket hub is one sink, the
WAMP publisher another.  The deployment side only knows L{IContainerEngine}:
Docker is one engine, the unit tests' in-memory engine another.
"""

from zope.interface import Attribute, Interface


class IStatusSink(Interface):
    """
    Something that receives every status message the hub emits.
    """

    def broadcast(message: dict) -> None:
        """
        Deliver one status message (the JSON object of the feed, already
        carrying C{seq} and C{timestamp}) to whoever is behind this sink.

        Must not block and must not wait for any single receiver.  Callable
        from any thread: implementations hand calls made outside the
        reactor thread to it.
        """


class IStatusSource(Interface):
    """
    Holds the current picture of every deployment and tells sinks about
    changes.

    Every message names its deployment (C{"deployment"}: a name, or L{None}
    for the idle picture shown when there is none) and carries C{seq} (per
    deployment) and C{epoch}.
    """

    epoch = Attribute("The numbering C{seq} belongs to, a string.")

    def names() -> list:
        """
        The names of the current deployments, sorted.
        """

    def current(deployment=None) -> dict:
        """
        The last message about C{deployment}, or, when it is not a current
        deployment, an idle picture with that name (C{deployment=None}: the
        idle picture of no deployment).
        """

    def snapshot(deployment=None) -> list:
        """
        What a new client is shown at once: with C{deployment=None}, one
        message per current deployment in name order, or the idle picture
        of no deployment when there is none; with a name, C{[current(name)]}.
        """

    def addSink(sink: IStatusSink) -> None:
        """
        Send every future message to C{sink} as well.
        """

    def removeSink(sink: IStatusSink) -> None:
        """
        Stop sending messages to C{sink}.
        """


class IMessageNumbering(Interface):
    """
    Where every message's C{seq} and C{epoch} come from.
    """

    epoch = Attribute(
        "A string that changes only when numbering restarts: C{seq} with the "
        "same epoch never goes back."
    )

    def next(deployment) -> int:
        """
        The C{seq} of the next message about C{deployment} (a name, or
        L{None}), one more than the last.

        @raise statushub.numbering.NumberingClosed: the numbering has ended
            (the history it stands on closed, the hub is stopping): nothing
            more is numbered.
        """

    def last(deployment) -> int:
        """
        The C{seq} of the last message about C{deployment}; 0 if none yet.
        """


class IHealthCheck(Interface):
    """
    One named component whose health C{/healthz} reports.
    """

    name = Attribute("The key under which C{/healthz} reports this component.")

    def health() -> str:
        """
        A short word: C{"reachable"}, C{"unreachable"}, C{"joined"}, ...
        """


class IContainerEngine(Interface):
    """
    The container engine a deployment runs on, as the deployment side needs it.

    Every method returns a L{twisted.internet.defer.Deferred} and never blocks
    the reactor; a failure is an L{statushub.engine.EngineError} (or its
    subclass L{statushub.engine.ImageNotFound}).
    """

    def ping():
        """
        Fire with L{None} when the engine answers.
        """

    def createContainer(spec):
        """
        Create (not start) one container from a
        L{statushub.engine.ContainerSpec}; fire with its id.
        """

    def startContainer(containerId: str, restart=None):
        """
        Start a created or stopped container (one that runs already is not
        an error); on a Swarm, scale its service back to one replica if it
        was stopped, and wait until its task runs.

        @param restart: the node's restart word (C{"none"}, C{"on-failure"},
            C{"any"}): made the container's restart policy again first,
            undoing what L{stopContainer} did; L{None} leaves it as it is.
        """

    def stopContainer(containerId: str, timeout: float):
        """
        Stop a container and keep it stopped: no restart policy of the
        engine brings it back, not even when the engine itself restarts
        (one engine: its restart policy becomes C{"no"} before the stop; a
        Swarm: its service is scaled to 0 replicas).  SIGTERM (or the
        image's stop signal), SIGKILL after C{timeout} seconds (a Swarm
        service's grace is the one it was created with).  Fire when it has
        stopped; one that is not running is not an error.
        """

    def restartContainer(containerId: str, timeout: float):
        """
        Stop (grace C{timeout}) and start a container again: the same
        container with a new start time.  On a Swarm, force a new task of
        its service (a new container, maybe on another host) and wait until
        it runs.
        """

    def recreateContainer(containerId: str, spec, timeout: float):
        """
        Replace a container with a new one made from C{spec} (a
        L{statushub.engine.ContainerSpec}), made exactly as
        L{createContainer} and L{startContainer} make one; fire with the
        new id once it runs.  One engine: remove the old one (grace
        C{timeout}), create, start.  A Swarm: force a new task of the
        service (its id stays), or create the service anew if it is gone.

        @raise statushub.engine.RecreateIncomplete: the old container is
            gone but no new one runs; its C{containerId} says what there is.
        """

    def removeContainer(containerId: str, timeout: float = 0):
        """
        Remove a container, running or not: stopped first with a grace of
        C{timeout} seconds (0: killed at once); a container that is already
        gone is not an error.
        """

    def listContainers(labels: dict):
        """
        Fire with a list of L{statushub.engine.ContainerState} for every
        container (running or not) carrying all of C{labels} (a value of
        L{None} matches any value).  One engine call, however many
        containers there are.
        """

    def inspectContainer(containerId: str):
        """
        Fire with a L{statushub.engine.ContainerDetail} of one container:
        asked only when an event says that container changed.
        """

    def events(labels: dict, actions: tuple = ()):
        """
        Open the engine's event stream for containers carrying all of
        C{labels} and, when C{actions} is not empty, only for those actions
        (C{"health_status"} covers C{"health_status: healthy"} and the like);
        fire with an L{statushub.engine.IEventStream}.
        """

    def readLogs(containerId: str, tail: int):
        """
        Fire with the last C{tail} lines the container printed (a list of
        L{statushub.engine.LogLine}, oldest first), running or not.
        C{containerId} is a node's L{statushub.engine.NodeLocation}
        C{containerId}: on a swarm, a service's id.
        """

    def followLogs(containerId: str):
        """
        Open a stream of the lines the container prints from now on; fire
        with an L{ILogStream}.  The stream ends when the container stops
        (on a swarm: when the service is removed).
        """

    def followStats(containerId: str):
        """
        Open a stream of the container's resource use, about one sample a
        second; fire with an L{IStatsStream}.  The stream ends when the
        container stops.  Fails with
        L{statushub.engine.StatsUnavailable} when its use cannot be read
        from here (on a swarm, a host whose engine the hub cannot reach).
        """


class IEventStream(Interface):
    """
    An open event stream.  Reading blocks: call L{next} from a thread of its
    own, never from the reactor thread.
    """

    def next():
        """
        Block until the next L{statushub.engine.EngineEvent}; return L{None}
        when the stream has ended (closed, or the connection broke).
        """

    def close() -> None:
        """
        End the stream; a thread blocked in L{next} returns.  Callable from
        any thread.
        """


class ILogStream(Interface):
    """
    An open log stream of one container.  Reading blocks: call L{next} from
    a thread of its own, never from the reactor thread.
    """

    def next():
        """
        Block until the next L{statushub.engine.LogLine}; return L{None}
        when the stream has ended (the container stopped, the stream was
        closed, or the connection broke).
        """

    def close() -> None:
        """
        End the stream; a thread blocked in L{next} returns.  Callable from
        any thread.
        """


class IStatsStream(Interface):
    """
    An open stream of one container's resource use.  Reading blocks, as
    L{ILogStream}'s does.
    """

    def next():
        """
        Block until the next L{statushub.engine.ResourceSample}; return
        L{None} when the stream has ended.
        """

    def close() -> None:
        """
        End the stream; a thread blocked in L{next} returns.  Callable from
        any thread.
        """


class INodeLocator(Interface):
    """
    Where each node of the current deployments runs: what the logs and the
    resource use of a node are read through (PRODUCT.md "Why a node is in
    its state").  The deployment side knows; the insight room asks.
    """

    def deployments() -> list:
        """
        The names of the current deployments, sorted.
        """

    def locate(deployment: str) -> list:
        """
        Every node of C{deployment}, in topology order, as a list of
        L{statushub.engine.NodeLocation}.

        @raise statushub.errors.UnknownDeployment: no current deployment
            has that name.
        """


class IHistory(Interface):
    """
    Every status message kept, and read back: what the feed's resume, the
    history API and the numbering across restarts stand on.  SQLite for one
    hub (L{statushub.history}), Redis for several (PRODUCT.md "Several hubs
    as one").

    Reads return L{statushub.historypage.Page}; a read that cannot be done
    fails with L{statushub.historypage.HistoryUnavailable}.
    """

    name = Attribute("C{\"history\"}: the key C{/healthz} reports it under.")

    def append(message: dict) -> None:
        """
        Keep one stamped status message (it carries C{deployment}, C{seq},
        C{epoch}, C{timestamp}).  Returns at once, from the reactor thread:
        the writing happens elsewhere, in the order of the calls, and a
        L{page} asked for after this call sees the message.
        """

    def page(deployment, since: int = 0, limit: int = 1000, after=None):
        """
        Fire with a L{statushub.historypage.Page}: up to C{limit} kept
        messages of C{deployment} (a name, or L{None} for the picture of no
        deployment) with a C{seq} above C{since} and, when C{after} (POSIX
        seconds) is given, stamped after that moment; oldest first.
        """

    def health() -> str:
        """
        C{"ok"}, C{"off"}, or a short reason it cannot keep or read
        (naming no file, path or error text: C{/healthz} is open).
        """


class ILeadership(Interface):
    """
    Whether this hub may act on the engine and number messages now.  One hub
    alone always may; of several hubs on one Redis, only the holder of the
    lease (PRODUCT.md "Several hubs as one").
    """

    isLeader = Attribute("True while this hub holds leadership.")

    term = Attribute(
        "An integer that grows with every new leadership (the fencing token a "
        "leader's writes are checked against); 0 before the first."
    )

    def addObserver(observer) -> None:
        """
        Call C{observer(isLeader: bool)} on every change of L{isLeader}, in
        the reactor thread.
        """

    def removeObserver(observer) -> None:
        """
        Stop telling C{observer}.
        """


class IDeploymentControl(Interface):
    """
    What the API acts through to change deployments.  One hub: the
    deployment manager itself; a follower of several hubs: the request is
    handed to the leader, and its answer comes back (PRODUCT.md "Several
    hubs as one").

    Every method returns a L{twisted.internet.defer.Deferred} that fires
    with the deployment's picture (a feed message) once the change is
    accepted (not when it has ended: the feed tells that), or fails with a
    L{statushub.errors.RequestError} (its C{code} is the HTTP status).
    """

    def deploy(topology):
        """
        Start deploying a validated topology (a
        L{statushub.topology.Topology}).
        """

    def teardown(name: str):
        """
        Start tearing the deployment C{name} down.
        """

    def act(name: str, node: str, action: str):
        """
        Start C{action} (one of L{statushub.names.NODE_ACTIONS}: restart,
        stop, start, recreate) on the node C{node} of the deployment
        C{name}.  Unlike the other methods, fire with a pair of plain values
        C{(started, picture)}: C{started} is false when there was nothing to
        do (a stop of a node an operator stopped, a start of one that runs).
        Fail with C{UnknownDeployment}, C{UnknownNode} (404) or a
        C{DeploymentConflict} (409: the deployment is not deployed, another
        action on the node is under way, ...).
        """
