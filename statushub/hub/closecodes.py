"""
The close codes the hub sends.  RFC 6455 leaves 4000-4999 to applications;
the reason text that goes with each says the rest.
"""

TOO_SLOW = 4000
"""The client left more unsent data than the hub allows."""

BAD_MESSAGE = 4001
"""The client sent something the hub does not understand."""
