"""
The C{statushub} command: C{deploy FILE}, C{list}, C{status [NAME]},
C{teardown [NAME]}, C{watch [NAME]}, C{restart|stop|start|recreate NAME
NODE} (one node of a deployment), C{logs NAME NODE}, C{top [NAME]}.

C{deploy}, C{list}, C{teardown} and C{status} are an HTTP request or two
each (blocking is fine in a command); C{watch} is a Twisted client in L{statushub.cli.watch},
C{logs} and C{top} in L{statushub.cli.insight}, imported only when asked for, so the
other verbs start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
import urllib.error
import urllib.parse
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
    from statushub.resources import NO_MAXIMA
    from statushub.topology import TopologyError, validateTopology

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
        # (all but the hub's maxima of a node's resources, which it checks)
        validateTopology(data, NO_MAXIMA)
    except TopologyError as e:
        raise CommandError(f"{path}: {e}", EXIT_USAGE)
    return data


def origin(url: str) -> tuple[str, str, int]:
    """
    The origin of C{url}: scheme, host and port (the scheme's default
    filled in).
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"https": 443}.get(scheme, 80)


class SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """
    Follows a redirect that carries the token only to the origin the
    request was sent to: urllib's own would send C{Authorization} on to
    wherever the hub (or whoever answers in its place) points.
    """

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> Optional[urllib.request.Request]:
        if req.has_header("Authorization") and origin(newurl) != origin(req.full_url):
            fp.close()
            raise CommandError(
                f"the hub at {req.full_url} redirected ({code}) to {newurl}, another "
                "origin: not followed, so that the token is not sent there (if that is "
                "the hub, give it as --url)",
                EXIT_REFUSED,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(SameOriginRedirects)


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
        with _opener.open(req, timeout=TIMEOUT) as response:
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
            stopped = f" (stopped by the {node['stoppedBy']})" if node.get("stoppedBy") else ""
            action = f" [{node['action']} under way]" if node.get("action") else ""
            lines.append(f"  {node['nodeId']:<{width}}  {(node.get('containerId') or '-')[:12]}  "
                         f"{node['status']}{health}{stopped}{action}")
            if node.get("actionError"):
                lines.append(f"  {'':<{width}}  {node['actionError']}")
    return "\n".join(lines)


def countNodes(picture: dict) -> str:
    """
    A deployment's nodes counted by status, e.g. C{2 running, 1 exited},
    with the unhealthy and starting ones said apart.
    """
    nodes = picture.get("nodeStatuses") or []
    if not nodes:
        return "no nodes"
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.get("status", "?")] = counts.get(node.get("status", "?"), 0) + 1
    text = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    health: dict[str, int] = {}
    for node in nodes:
        if node.get("health") in ("unhealthy", "starting"):
            health[node["health"]] = health.get(node["health"], 0) + 1
    if health:
        text += " (" + ", ".join(f"{count} {word}" for word, count in sorted(health.items())) + ")"
    return text


def formatList(pictures: list[dict]) -> str:
    """
    One line per deployment: name, status, nodes by status.
    """
    if not pictures:
        return "no deployments"
    rows = [("DEPLOYMENT", "STATUS", "NODES")]
    for picture in pictures:
        rows.append((str(picture.get("deployment")), str(picture.get("deployStatus")),
                     countNodes(picture)))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}"
                     for row in rows)


def _refused(code: int, body: Any) -> CommandError:
    error = body.get("error") if isinstance(body, dict) else None
    return CommandError(f"the hub refused ({code}): {error or body}", EXIT_REFUSED)


def _deploymentPath(name: str) -> str:
    return "/api/deployments/" + urllib.parse.quote(name, safe="")


def deployments(args: argparse.Namespace) -> list[dict]:
    """
    Every current deployment's picture, in name order.
    """
    code, body = request(args.url, "GET", "/api/deployments", args.token)
    if code != 200 or not isinstance(body, dict) or not isinstance(body.get("deployments"), list):
        raise _refused(code, body)
    return sorted(body["deployments"], key=lambda picture: str(picture.get("deployment")))


def _nameOne(args: argparse.Namespace) -> CommandError:
    """
    The error for a verb without NAME while several deployments exist: it
    names them, so the user can pick one.
    """
    names = [str(picture.get("deployment")) for picture in deployments(args)]
    return CommandError(
        f"{len(names)} deployments exist ({', '.join(names)}): "
        f"name one, e.g. statushub {args.verb} {names[0] if names else 'NAME'}",
        EXIT_USAGE,
    )


def _unknown(args: argparse.Namespace, name: str) -> CommandError:
    names = [str(picture.get("deployment")) for picture in deployments(args)]
    current = ", ".join(names) if names else "none"
    return CommandError(f"no deployment named {name!r} (current: {current})", EXIT_REFUSED)


def deploy(args: argparse.Namespace, out: TextIO) -> int:
    topology = loadTopology(args.file)
    code, body = request(args.url, "POST", "/api/deployments", args.token, topology)
    if code != 202:
        raise _refused(code, body)
    out.write(f"deploying {topology['name']} ({len(topology['nodes'])} nodes); "
              f"follow it with: statushub watch {topology['name']}\n")
    return EXIT_OK


def _requestOne(args: argparse.Namespace, method: str, onlyPath: str) -> tuple[int, Any]:
    """
    C{method} on the deployment C{args.name} names, else on the only one
    (C{onlyPath}); several without a name, or an unknown name, is an error
    that lists the deployments.
    """
    if args.name is None:
        code, body = request(args.url, method, onlyPath, args.token)
        if code == 409:
            raise _nameOne(args)
    else:
        code, body = request(args.url, method, _deploymentPath(args.name), args.token)
        if code == 404:
            raise _unknown(args, args.name)
    return code, body


def teardown(args: argparse.Namespace, out: TextIO) -> int:
    code, body = _requestOne(args, "DELETE", "/api/deployment")
    if code == 200 and args.name is None:
        out.write("nothing deployed\n")
    elif code in (200, 202):
        name = (body.get("deployment") if isinstance(body, dict) else None) or args.name
        out.write(f"tearing down {name or 'the deployment'}\n")
    else:
        raise _refused(code, body)
    return EXIT_OK


# what each node action is doing, for the line that says it was accepted
_DOING = {"restart": "restarting", "stop": "stopping", "start": "starting",
          "recreate": "recreating"}
# and what a node already was when there was nothing to do (200)
_ALREADY = {"stop": "stopped", "start": "running"}


def nodeAction(args: argparse.Namespace, out: TextIO) -> int:
    """
    C{restart|stop|start|recreate NAME NODE}: exit 0 once the hub has
    accepted it (or there was nothing to do); the feed tells how it ends.
    """
    path = (f"{_deploymentPath(args.name)}/nodes/{urllib.parse.quote(args.node, safe='')}"
            f"/{args.verb}")
    code, body = request(args.url, "POST", path, args.token, {})
    if code == 202:
        out.write(f"{_DOING[args.verb]} node {args.node} of {args.name}; "
                  f"follow it with: statushub watch {args.name}\n")
    elif code == 200:
        out.write(f"node {args.node} of {args.name} is already {_ALREADY[args.verb]}\n")
    else:
        raise _refused(code, body)
    return EXIT_OK


def status(args: argparse.Namespace, out: TextIO) -> int:
    code, body = _requestOne(args, "GET", "/api/status")
    if code != 200:
        raise _refused(code, body)
    out.write(json.dumps(body) + "\n" if args.json else formatPicture(body) + "\n")
    return EXIT_OK


def listDeployments(args: argparse.Namespace, out: TextIO) -> int:
    pictures = deployments(args)
    if args.json:
        out.write(json.dumps({"deployments": pictures}) + "\n")
    else:
        out.write(formatList(pictures) + "\n")
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
    p = verbs.add_parser("list", help="every deployment: name, status, nodes by status")
    p.add_argument("--json", action="store_true", help="print the JSON as the hub sends it")
    _common(p)
    p.set_defaults(run=listDeployments)
    p = verbs.add_parser("teardown", help="tear a deployment down (NAME needed when several exist)")
    p.add_argument("name", metavar="NAME", nargs="?",
                   help="the deployment (default: the only one there is)")
    _common(p)
    p.set_defaults(run=teardown)
    p = verbs.add_parser("status", help="print a deployment's picture (NAME needed when several exist)")
    p.add_argument("name", metavar="NAME", nargs="?",
                   help="the deployment (default: the only one there is)")
    p.add_argument("--json", action="store_true", help="print the JSON as the hub sends it")
    _common(p)
    p.set_defaults(run=status)
    for verb, what in (
        ("restart", "stop a node's container (with the grace [deploy] stop_timeout) and start it again"),
        ("stop", "stop a node and keep it stopped (no restart policy brings it back)"),
        ("start", "start a node that is stopped"),
        ("recreate", "remove a node's container and make a new one from its topology entry"),
    ):
        p = verbs.add_parser(verb, help=what)
        p.add_argument("name", metavar="NAME", help="the deployment")
        p.add_argument("node", metavar="NODE", help="the node's id")
        _common(p)
        p.set_defaults(run=nodeAction)
    # listed for --help only: main() hands "watch ..." to statushub.cli.watch,
    # which parses its own options and is imported only then
    verbs.add_parser("watch", help="a live view in the terminal, of one deployment or all "
                                   "(--help for options)")
    # the same for these two: statushub.cli.insight
    verbs.add_parser("logs", help="a node's last lines; --follow for every new one "
                                  "(--help for options)")
    verbs.add_parser("top", help="CPU and memory of every running node, live (--help for options)")
    return top


def main(argv: Optional[list[str]] = None, out: TextIO = None, err: TextIO = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["watch"]:
        from statushub.cli import watch

        return watch.main(argv[1:])
    if argv[:1] in (["logs"], ["top"]):
        from statushub.cli import insight

        return insight.main(argv[0], argv[1:], out, err)
    args = parser().parse_args(argv)
    try:
        return args.run(args, out)
    except CommandError as e:
        err.write(f"statushub {args.verb}: {e}\n")
        return e.code
