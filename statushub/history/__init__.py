"""
The durable history of one hub: every status message kept in SQLite
(L{store}, an L{statushub.interfaces.IHistory}), opened with the numbering
that continues from it across restarts (L{service}).  Its HTTP resource is
L{statushub.web.history}.
"""
