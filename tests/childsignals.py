"""
The signal dispositions a child process the tests start begins with.

A non-interactive shell starts a background job with SIGINT and SIGQUIT
ignored (so does a CI runner that starts the suite that way), and an ignored
signal stays ignored across C{exec}: a child that a test stops with Ctrl-C
would never see it.  So a test that signals a child starts it with
L{defaultStopSignals}, and one that wants the background-job case on
purpose starts it with L{asBackgroundJob}.

Both are C{preexec_fn}s for L{subprocess.Popen}: they run in the child,
between C{fork} and C{exec}, and touch nothing but its signal dispositions.
"""

from __future__ import annotations

import signal


def defaultStopSignals() -> None:
    """
    Restore SIGINT and SIGTERM, the signals the tests stop children with, to
    their default disposition, whatever the test runner was started with.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def asBackgroundJob() -> None:
    """
    Start the child as a non-interactive shell starts C{command &}: SIGINT
    and SIGQUIT ignored.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
