"""
The fan-out benchmark with another revision's hub beside this one's: did a
change make the hub slower?

    .venv/bin/python bench/baseline.py main [fanout.py options]

The revision (any git revision; default C{main}) is extracted with
C{git archive} into a temporary directory and runs as the server
C{hub-base}: its own bench/server_hub.py, its own statushub package
(C{PYTHONPATH}), its own etc/statushub.toml, in this checkout's virtual
environment.  Unless C{--servers} says otherwise the servers are C{hub},
C{hub-base} and C{node-ws}, and each repetition starts them (and connects
their clients) in a rotated order, since the first server's clients are
measured a little slower than the others'.  Figures as in fanout.py; the
ratios hub/hub-base are printed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fanout  # noqa: E402


def extract(revision: str, into: str) -> None:
    archive = subprocess.run(
        ["git", "-C", fanout.ROOT, "archive", revision], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)


def addBaseline(root: str) -> None:
    """
    Make C{hub-base} a server fanout.py knows: the other tree's hub.
    """
    fanout.SERVERS["hub-base"] = os.path.join(root, "bench", "server_hub.py")
    start = fanout.Server.__init__

    def init(self: Any, name: str, cpus: Any, extra: tuple = (), script: Any = None,
             env: Any = None) -> None:
        if name == "hub-base":
            env = dict(os.environ, PYTHONPATH=root)
            extra = ("--config", os.path.join(root, "etc", "statushub.toml"), *extra)
        start(self, name, cpus, extra, script, env)
        if name == "hub-base":
            self.url = f"ws://127.0.0.1:{self.wsPort}/ws/status"

    fanout.Server.__init__ = init


def main() -> int:
    revision = "main"
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        revision = sys.argv.pop(1)
    options = sys.argv[1:]
    servers = ["hub", "hub-base", "node-ws"]
    if "--servers" in options:
        at = options.index("--servers")
        servers = options[at + 1].split(",")
        del options[at:at + 2]
    repeat = 3
    if "--repeat" in options:
        at = options.index("--repeat")
        repeat = int(options[at + 1])
        del options[at:at + 2]
    out = os.path.join(HERE, "results", "baseline.json")
    if "--out" in options:
        at = options.index("--out")
        out = options[at + 1]
        del options[at:at + 2]

    root = tempfile.mkdtemp(prefix="statushub-base-")
    runs = []
    try:
        extract(revision, root)
        addBaseline(root)
        for index in range(repeat):
            order = servers[index % len(servers):] + servers[:index % len(servers)]
            partial = f"{out}.{index}"
            sys.argv = ["fanout.py", *options, "--repeat", "1", "--idle-rounds", "0",
                        "--servers", ",".join(order), "--out", partial]
            fanout.log(f"baseline {revision}: repetition {index + 1}/{repeat}, order {order}")
            if fanout.main() != 0:
                return 1
            with open(partial) as f:
                runs.append(json.load(f))
            os.remove(partial)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    ratios: dict[str, list[float]] = {"latency_p50_ms": [], "cpu_us_per_client_p50": []}
    for run in runs:
        for size, figures in run["fanout"].items():
            median = figures["median"]["figures"]
            for key in ratios:
                ratios[key].append(median["hub"][key] / median["hub-base"][key])
    summary = {key: fanout.percentile(values, 0.5) for key, values in ratios.items()}
    print(f"\nhub / hub-base ({revision}), median over {repeat} repetitions: last-client p50 "
          f"{summary['latency_p50_ms']:.2f}x, CPU per client "
          f"{summary['cpu_us_per_client_p50']:.2f}x")
    with open(out, "w") as f:
        json.dump({"revision": revision, "ratios": ratios, "median": summary, "runs": runs},
                  f, indent=1)
    fanout.log(f"results in {os.path.relpath(out, fanout.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
