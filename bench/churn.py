"""
Clients coming and going on a hub that freezes its connections out of the
cyclic GC (issue 22): does anything accumulate?

    .venv/bin/python bench/churn.py [--clients 2000] [--group 500] [--cycles 20]

The hub is bench/server_hub.py (the real service tree, metrics and history
on).  Its clients are held in groups of C{--group}, one Node load generator
(bench/loadgen.js) each; each cycle closes the oldest group, opens a new
one, broadcasts once and reads the hub's RSS, the objects a full collection
would walk and those frozen.  With nothing leaking, all three stay level
however many clients have come and gone.  At the end, a thaw as the
freezer makes it (unfreeze, a full collection over everything, freeze
again) is timed, in wall and CPU time.  A table on stdout, and a JSON file
with --out.  Benchmarks are not tests: nothing here fails.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fanout import LoadGenerators, Server, log, raiseFileLimit  # noqa: E402


def waitClients(server: Server, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while server.stats()["clients"] != count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the hub did not reach {count} clients within {timeout} s")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--group", type=int, default=500,
                        help="clients replaced at once (one load generator each)")
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    if args.clients % args.group:
        parser.error("--clients must be a multiple of --group")
    raiseFileLimit()

    server = Server("hub", None)
    groups: collections.deque[LoadGenerators] = collections.deque()
    rows: list[dict[str, Any]] = []
    started = time.time()

    def add(index: int) -> None:
        loadgen = LoadGenerators(1, None)
        groups.append(loadgen)
        loadgen.connect(f"group{index}", server.url, args.group, 8, True)

    def measure(cycle: int, reconnects: int) -> None:
        stats = server.stats()
        _, tracked, frozen = server.command("OBJECTS")
        row = {"cycle": cycle, "reconnects": reconnects, "clients": stats["clients"],
               "rss_mb": stats["rss"] / 2**20, "tracked": int(tracked),
               "frozen": int(frozen), "load": os.getloadavg()[0]}
        rows.append(row)
        log(f"  {cycle:>5} {reconnects:>7} reconnects  {row['clients']:>6} clients"
            f"  rss {row['rss_mb']:6.1f} MB  walked {row['tracked']:>7}"
            f"  frozen {row['frozen']:>8}  load {row['load']:.1f}")

    try:
        for index in range(args.clients // args.group):
            add(index)
        waitClients(server, args.clients)
        time.sleep(1)
        measure(0, 0)
        for cycle in range(1, args.cycles + 1):
            groups.popleft().stop()
            waitClients(server, args.clients - args.group)
            add(args.clients // args.group + cycle)
            waitClients(server, args.clients)
            server.broadcast(cycle)
            time.sleep(0.3)
            measure(cycle, cycle * args.group)
        _, wall, cpu, objects = server.command("THAW")
        thaw = {"wall_ms": int(wall) / 1e6, "cpu_ms": int(cpu) / 1e6, "objects": int(objects)}
    finally:
        while groups:
            groups.popleft().stop()
        server.stop()

    first, last = rows[0], rows[-1]
    print(f"{args.clients} clients, {last['reconnects']} reconnects: RSS {first['rss_mb']:.1f} -> "
          f"{last['rss_mb']:.1f} MB, frozen objects {first['frozen']:,} -> {last['frozen']:,}, "
          f"objects a full collection walks at most {max(r['tracked'] for r in rows):,}")
    print(f"a thaw at {args.clients} clients: {thaw['objects']:,} objects, "
          f"{thaw['cpu_ms']:.1f} ms of CPU ({thaw['wall_ms']:.1f} ms wall)")
    if args.out:
        with open(args.out, "w") as out:
            json.dump({"argv": sys.argv, "started": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "rows": rows, "thaw": thaw},
                out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
