"""
The durable history: every status message kept in SQLite (L{store}), the
numbering that continues from it across restarts (L{numbering}), and the
HTTP resource that reads it (L{api}).
"""
