"""
The C{statushub} command: C{deploy FILE}, C{teardown}, C{status}, C{watch}.

C{deploy}, C{teardown} and C{status} are one HTTP request each (blocking is
fine in a command); C{watch} is a Twisted client in L{statushub.cli.watch},
imported only when asked for, so the other verbs start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
import urllib.error
import urllib.request
from typing import Any, Optional, TextIO

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT = 30.0

EXIT_OK = 0
EXIT_REFUSED = 1  # the hub answered with an error
EXIT_USAGE = 2  # bad arguments or a bad topology file
EXIT_UNREACHABLE = 3  # no answer from the hub


class CommandError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def loadTopology(path: str) -> Any:
    """
    Read a topology file: TOML when it ends in C{.toml}, else JSON.

    @raise CommandError: it cannot be read or parsed, or is not a valid
        topology (the error names the field).
    """
    from statushub.deploy.topology import TopologyError, validateTopology

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise CommandError(f"{path}: cannot read the file: {e.strerror}", EXIT_USAGE)
    try:
        if path.endswith(".toml"):
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        kind = "TOML" if path.endswith(".toml") else "JSON"
        raise CommandError(f"{path}: not valid {kind}: {e}", EXIT_USAGE)
    try:
        # checked here too so that a mistake is named before anything is sent
        validateTopology(data)
    except TopologyError as e:
        raise CommandError(f"{path}: {e}", EXIT_USAGE)
    return data


def request(url: str, method: str, path: str, token: Optional[str],
            body: Any = None) -> tuple[int, Any]:
    """
    One JSON request to the hub; return the status code and the parsed body.
    """
    data = None
    headers = {"Accept": "application/json"}
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    target = url.rstrip("/") + path
    req = urllib.request.Request(target, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
            code, payload = response.status, response.read()
    except urllib.error.HTTPError as e:
        code, payload = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CommandError(f"cannot reach the hub at {url}: {reason}", EXIT_UNREACHABLE)
    try:
        return code, json.loads(payload) if payload else {}
    except ValueError:
        raise CommandError(f"the hub at {url} answered {code} with something not JSON",
                           EXIT_REFUSED)


def formatPicture(picture: dict) -> str:
    """
    The picture as a few lines for a terminal.
    """
    lines = [f"deployment: {picture.get('deployment') or '-'}  "
             f"status: {picture.get('deployStatus')}  engine: {picture.get('engine', '?')}"]
    if picture.get("error"):
        lines.append(f"error: {picture['error']}")
    nodes = picture.get("nodeStatuses") or []
    if nodes:
        width = max(len(n["nodeId"]) for n in nodes)
        for node in nodes:
            health = f" ({node['health']})" if node.get("health") else ""
            lines.append(f"  {node['nodeId']:<{width}}  {node['containerId'][:12]}  "
                         f"{node['status']}{health}")
    return "\n".join(lines)


def _refused(code: int, body: Any) -> CommandError:
    error = body.get("error") if isinstance(body, dict) else None
    return CommandError(f"the hub refused ({code}): {error or body}", EXIT_REFUSED)


def deploy(args: argparse.Namespace, out: TextIO) -> int:
    topology = loadTopology(args.file)
    code, body = request(args.url, "POST", "/api/deployment", args.token, topology)
    if code != 202:
        raise _refused(code, body)
    out.write(f"deploying {topology['name']} ({len(topology['nodes'])} nodes); "
              "follow it with: statushub watch\n")
    return EXIT_OK


def teardown(args: argparse.Namespace, out: TextIO) -> int:
    code, body = request(args.url, "DELETE", "/api/deployment", args.token)
    if code == 200:
        out.write("nothing deployed\n")
    elif code == 202:
        out.write(f"tearing down {body.get('deployment') or 'the deployment'}\n")
    else:
        raise _refused(code, body)
    return EXIT_OK


def status(args: argparse.Namespace, out: TextIO) -> int:
    code, body = request(args.url, "GET", "/api/status", args.token)
    if code != 200:
        raise _refused(code, body)
    out.write(json.dumps(body) + "\n" if args.json else formatPicture(body) + "\n")
    return EXIT_OK


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"the hub's address (default {DEFAULT_URL})")
    parser.add_argument("--token", default=os.environ.get("STATUSHUB_TOKEN"),
                        help="the hub's bearer token (default: $STATUSHUB_TOKEN)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="statushub", description="Deploy topologies on a statushub hub and watch them."
    )
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verbs.add_parser("deploy", help="deploy the topology in FILE (JSON or TOML)")
    p.add_argument("file", metavar="FILE")
    _common(p)
    p.set_defaults(run=deploy)
    p = verbs.add_parser("teardown", help="tear the deployment down")
    _common(p)
    p.set_defaults(run=teardown)
    p = verbs.add_parser("status", help="print the current picture")
    p.add_argument("--json", action="store_true", help="print the JSON as the hub sends it")
    _common(p)
    p.set_defaults(run=status)
    # listed for --help only: main() hands "watch ..." to statushub.cli.watch,
    # which parses its own options and is imported only then
    verbs.add_parser("watch", help="a live view in the terminal (--help for options)")
    return top


def main(argv: Optional[list[str]] = None, out: TextIO = None, err: TextIO = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["watch"]:
        from statushub.cli import watch

        return watch.main(argv[1:])
    args = parser().parse_args(argv)
    try:
        return args.run(args, out)
    except CommandError as e:
        err.write(f"statushub {args.verb}: {e}\n")
        return e.code
