"""
C{statushub watch}: the status feed in a terminal.

A table that redraws in place when stdout is a terminal: every deployment
(one block each), or with a NAME that one only; one JSON line per message
with C{--json}, for scripts.  Like the dashboard, it reconnects by
itself with backoff and takes the fresh snapshot when the hub comes back.
The feed client is L{statushub.cli.feed}, the displays
L{statushub.cli.displays}; this is the command.

The C{statushub} command hands C{watch ...} to L{main}; L{addArguments}
sets up its options and L{run} runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional, TextIO

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import LoopingCall

from statushub.cli.displays import JSONLines, Table
from statushub.cli.feed import Refused, Watcher

DEFAULT_URL = "http://127.0.0.1:8080"

# Exit codes of run().
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_REFUSED = 3

# What `statushub watch --help` says about ending it.  The reactor stops on
# SIGTERM, and on SIGINT unless the process started with SIGINT ignored: then,
# like other Unix programs run as a background job, it leaves it ignored.
STOPPING = (
    "Ctrl-C or SIGTERM (kill PID) ends it with status 0; a hub that refuses the "
    "token, with status 3. Started with SIGINT ignored, as a shell script starts "
    "a background job (statushub watch &), it keeps ignoring Ctrl-C, as Unix "
    "programs do: stop it with SIGTERM."
)


def addArguments(parser: argparse.ArgumentParser) -> None:
    """
    Add C{watch}'s options to C{parser} (the C{watch} subcommand's parser).
    """
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"the hub's address (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("STATUSHUB_TOKEN"),
        help="the hub's bearer token (default: $STATUSHUB_TOKEN)",
    )
    parser.add_argument(
        "name",
        metavar="NAME",
        nargs="?",
        help="follow this deployment only (default: every deployment)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each status message as one JSON line instead of a table",
    )


def run(args: argparse.Namespace, reactor: Any = None, out: TextIO = None, err: TextIO = None) -> int:
    """
    Run C{statushub watch} with C{args} (from L{addArguments}) until Ctrl-C
    or SIGTERM (exit 0) or until the hub refuses the feed (exit 3).
    """
    if reactor is None:
        from twisted.internet import reactor
    out = out or sys.stdout
    err = err or sys.stderr
    tty = out.isatty() and not args.json
    if args.json:
        display: Any = JSONLines(out, err)
    else:
        colour = tty and "NO_COLOR" not in os.environ
        display = Table(out, reactor, tty, colour, deployment=getattr(args, "name", None))
    try:
        watcher = Watcher(reactor, args.url, args.token, display,
                          deployment=getattr(args, "name", None))
    except ValueError as error:
        err.write(f"statushub watch: {error}\n")
        return EXIT_USAGE

    outcome = {"code": EXIT_OK}
    # set once the reactor is shutting down (Ctrl-C, SIGTERM, or a refusal
    # below): it must not be stopped again
    shutting = {"down": False}

    def finished(result: Any) -> None:
        if hasattr(result, "check") and result.check(Refused):
            err.write(f"statushub watch: the hub refused the feed: {result.value}\n")
            outcome["code"] = EXIT_REFUSED
        elif hasattr(result, "check"):
            err.write(f"statushub watch: {result.getErrorMessage()}\n")
            outcome["code"] = 1
        if not shutting["down"]:
            shutting["down"] = True
            reactor.stop()

    # The "for" column keeps counting between messages on a terminal.
    ticker = LoopingCall(display.tick)
    ticker.clock = reactor

    def started() -> None:
        if tty:
            ticker.start(1.0, now=False).addErrback(lambda f: None)
        ensureDeferred(watcher.run()).addBoth(finished)

    def stopping() -> Deferred:
        shutting["down"] = True
        if ticker.running:
            ticker.stop()
        return watcher.stop()

    reactor.callWhenRunning(started)
    # Ctrl-C or SIGTERM stops the reactor; close the feed politely on the way out.
    reactor.addSystemEventTrigger("before", "shutdown", stopping)
    reactor.run()
    display.close()
    return outcome["code"]


def main(argv: Optional[list[str]] = None) -> int:
    """
    C{python -m statushub.cli.watch}: the same as C{statushub watch}.
    """
    parser = argparse.ArgumentParser(
        prog="statushub watch",
        description="The status feed in a terminal: every deployment, or NAME only; "
        "a table that redraws in place, or one JSON line per message with --json.",
        epilog=STOPPING,
    )
    addArguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
