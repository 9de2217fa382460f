"""
The close codes the hub sends.  RFC 6455 leaves 4000-4999 to applications;
the reason text that goes with each says the rest.
"""

TOO_SLOW = 4000
"""The client left more unsent data than the hub allows."""

BAD_MESSAGE = 4001
"""The client sent something the hub does not understand."""

#: The close code the hub sends (or Autobahn sends for it) -> why the client
#: is dropped, as the metrics count it.  A message too large (1009), a
#: protocol error (1002), unacceptable data (1003) or invalid UTF-8 (1007)
#: are all bad messages from the client.
DROP_REASONS = {
    TOO_SLOW: "slow",
    BAD_MESSAGE: "bad_message",
    1002: "bad_message",
    1003: "bad_message",
    1007: "bad_message",
    1009: "bad_message",
}
