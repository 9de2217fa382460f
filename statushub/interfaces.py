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
    Holds the current picture of the deployment and tells sinks about changes.
    """

    def current() -> dict:
        """
        The last message emitted (or the initial idle picture): what a new
        client is shown at once.
        """

    def addSink(sink: IStatusSink) -> None:
        """
        Send every future message to C{sink} as well.
        """

    def removeSink(sink: IStatusSink) -> None:
        """
        Stop sending messages to C{sink}.
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

    def startContainer(containerId: str):
        """
        Start a created container.
        """

    def removeContainer(containerId: str):
        """
        Remove a container, running or not (force); a container that is
        already gone is not an error.
        """

    def listContainers(labels: dict):
        """
        Fire with a list of L{statushub.engine.ContainerState} for every
        container (running or not) carrying all of C{labels} (a value of
        L{None} matches any value).  One engine call, however many
        containers there are.
        """

    def events(labels: dict, actions: tuple = ()):
        """
        Open the engine's event stream for containers carrying all of
        C{labels} and, when C{actions} is not empty, only for those actions
        (C{"health_status"} covers C{"health_status: healthy"} and the like);
        fire with an L{statushub.engine.IEventStream}.
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
