"""
Why a node is in its state: its log, followed live, and its resource use,
read from the engine only while someone watches (PRODUCT.md "Why a node is
in its state").

    pumps.py    every open engine stream read in a thread of a bounded pool
    logs.py     one engine log stream per followed node, shared by all its
                followers: batches, the per-node line rate, the tail
    stats.py    resource streams of the watched deployments' running nodes,
                one sample a second to each watcher
    window.py   a follower's share of Twisted's flow control
    feeds.py    the WebSocket feeds /ws/logs and /ws/stats
    service.py  all of it as one service, closed with the hub

A sibling room: it meets the deployments through
L{statushub.interfaces.INodeLocator} and the engine through
L{statushub.interfaces.IContainerEngine}, and imports neither C{deploy} nor
the web layer.
"""
