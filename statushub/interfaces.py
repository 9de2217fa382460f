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
