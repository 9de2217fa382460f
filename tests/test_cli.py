"""
The C{statushub} command's own logic: topology files, errors, output.
"""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path


from statushub.cli import EXIT_UNREACHABLE, EXIT_USAGE, formatPicture, loadTopology, main

ETC = Path(__file__).resolve().parents[1] / "etc"


def test_sampleTopologies() -> None:
    """
    The JSON and TOML samples are valid and say the same thing.
    """
    assert loadTopology(str(ETC / "demo-topology.json")) == loadTopology(
        str(ETC / "demo-topology.toml")
    )


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_badFileNamesTheField(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"name": "x", "nodes": [{"id": "a", "image": "i",
                                                         "network_mode": "host"}]}))
    code, out, err = run("deploy", str(path), "--url", "http://127.0.0.1:1")
    assert code == EXIT_USAGE
    assert "nodes[0].network_mode" in err


def test_notTOML(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("name = ")
    code, out, err = run("deploy", str(path))
    assert code == EXIT_USAGE and "not valid TOML" in err


def test_missingFile(tmp_path: Path) -> None:
    code, out, err = run("deploy", str(tmp_path / "nothing.json"))
    assert code == EXIT_USAGE and "cannot read" in err


def test_hubUnreachable() -> None:
    # a port nobody listens on: bind one, close it
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    code, out, err = run("status", "--url", f"http://127.0.0.1:{port}")
    assert code == EXIT_UNREACHABLE
    assert "cannot reach the hub" in err


def test_formatPicture() -> None:
    text = formatPicture({
        "deployStatus": "deployed", "deployment": "demo", "engine": "reachable",
        "nodeStatuses": [
            {"nodeId": "web", "containerId": "a" * 64, "status": "running", "health": "healthy"},
            {"nodeId": "worker", "containerId": "b" * 64, "status": "exited"},
        ],
    })
    assert "demo" in text and "deployed" in text
    assert "web     aaaaaaaaaaaa  running (healthy)" in text
    assert "worker  bbbbbbbbbbbb  exited" in text


def test_watchIsLazy() -> None:
    """
    Only C{watch} loads the Twisted client.
    """
    import subprocess
    import sys

    probe = (
        "import sys; from statushub.cli import main, parser; parser();"
        "print('statushub.cli.watch' in sys.modules, 'twisted.internet.reactor' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["False", "False"]
