"""
End to end: the real C{twistd statushub} process, as a user starts it, and
real clients on loopback.  Needs no Docker engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
import treq

from tests.fixtures.hubprocess import REPO
from tests.wsclient import connectFeed


@pytest_twisted.ensureDeferred
async def test_twistd_serves_feed_api_and_health(hub_process) -> None:
    hub = hub_process()
    client = await connectFeed(hub.wsUrl)
    snapshot = await client.waitFor(lambda m: True)
    assert snapshot["type"] == "status_update"
    assert "deployStatus" in snapshot and "nodeStatuses" in snapshot

    status = await treq.get(hub.url + "/api/status")
    assert status.code == 200
    current = await status.json()
    # the API and the feed tell the same story (the engine may have changed
    # it since the client connected)
    assert current["seq"] >= snapshot["seq"]
    assert (await client.waitFor(lambda m: m["seq"] == current["seq"])) == current

    health = await treq.get(hub.url + "/healthz")
    assert health.code == 200
    body = await health.json()
    assert body["status"] == "ok"
    assert body["clients"] == 1
    await client.close()


def test_ctrlCAsSoonAsItServesStopsTheHub(hub_process) -> None:
    """
    The port is bound before twistd installs its signal handlers; the hub
    says it serves only once they are in place, so a Ctrl-C sent on that line
    stops it (it once raised KeyboardInterrupt there and hung on its threads).
    """
    hub = hub_process()
    status = hub.interrupt()
    assert status is not None, "the hub was still running 15 s after Ctrl-C"
    assert any("Received SIGINT" in line for line in hub.log), hub.log[-5:]


@pytest_twisted.ensureDeferred
async def test_token_from_config_file(hub_process) -> None:
    hub = hub_process(config='[server]\ntoken = "letmein"\n')
    assert (await treq.get(hub.url + "/api/status")).code == 401
    with pytest.raises(ConnectionError):
        await connectFeed(hub.wsUrl)
    client = await connectFeed(hub.wsUrl, token="letmein")
    await client.waitFor(lambda m: m["type"] == "status_update")
    await client.close()


@pytest.mark.parametrize(
    "text, named",
    [
        ("[feed]\nping_interval = \"soon\"\n", "[feed] ping_interval"),
        ("[server]\nlisen = \"tcp:1\"\n", "'lisen'"),
        # a read-only token while anyone may change everything
        ("[server]\nviewer_token = \"v\"\n", "[server] token"),
    ],
)
def test_bad_config_stops_the_start_and_names_file_and_key(
    tmp_path: Path, text: str, named: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
         "-n", "--pidfile=", "statushub", "--config", str(path)],
        cwd=tmp_path,
        env={**{k: v for k, v in os.environ.items()
                if k not in ("STATUSHUB_TOKEN", "STATUSHUB_VIEWER_TOKEN")},
             "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert str(path) in result.stderr + result.stdout
    assert named in result.stderr + result.stdout


def test_installed_package_provides_the_plugin(tmp_path: Path) -> None:
    """
    What C{pip install .} puts in place is enough for C{twistd statushub}:
    the plugin under twisted/plugins and the static files.
    """
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(target), str(REPO)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    assert (target / "twisted" / "plugins" / "statushub_plugin.py").exists()
    assert not (target / "twisted" / "plugins" / "__init__.py").exists()
    assert (target / "statushub" / "static" / "index.html").exists()
    assert (target / "statushub" / "static_wamp" / "autobahn.min.js").exists()
    # run from elsewhere, with only the installed copy importable
    env = dict(os.environ, PYTHONPATH=str(target))
    result = subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
         "statushub", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "--poll-interval" in result.stdout
    located = subprocess.run(
        [sys.executable, "-c", "import statushub; print(statushub.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert located.stdout.startswith(str(target))
