"""
Configuration: defaults, the file, the command line, and the errors that
stop a start.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from twisted.python.usage import UsageError

from statushub import config, resources
from statushub.tap import Options

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "statushub.toml"
    path.write_text(text)
    return str(path)


def test_shipped_config_is_valid_and_loopback_only() -> None:
    loaded = config.load(str(REPO / "etc" / "statushub.toml"))
    assert "interface=127.0.0.1" in loaded["server"]["listen"]
    assert loaded["server"]["token"] == ""
    assert loaded["server"]["viewer_token"] == ""
    assert loaded["server"]["allowed_hosts"] == []


def test_defaults_fill_missing_keys(tmp_path: Path) -> None:
    loaded = config.load(write(tmp_path, "[feed]\nping_interval = 3\n"))
    assert loaded["feed"]["ping_interval"] == 3.0
    assert isinstance(loaded["feed"]["ping_interval"], float)
    assert loaded["feed"]["ping_timeout"] == 10.0
    assert loaded["feed"]["max_send_buffer"] == 1024 * 1024
    assert loaded["deploy"]["max_deployments"] == 20


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[feed]\nping_intervall = 3\n", "[feed] unknown key 'ping_intervall'"),
        ("[fed]\nping_interval = 3\n", "unknown section [fed]"),
        ('[feed]\nping_interval = "3"\n', "[feed] ping_interval: expected a number"),
        ("[feed]\nping_interval = true\n", "[feed] ping_interval: expected a number"),
        ("[feed]\nmax_send_buffer = 1.5\n", "[feed] max_send_buffer: expected an integer"),
        ("[feed]\nping_timeout = 0\n", "[feed] ping_timeout: must be greater than 0"),
        ("[server]\nallowed_origins = [1]\n", "[server] allowed_origins: must be a list"),
        ('[server]\nallowed_hosts = ["http://hub.example"]\n',
         "[server] allowed_hosts: 'http://hub.example' is not a host name"),
        ('[server]\nallowed_hosts = ["hub.example/x"]\n', "is not a host name"),
        ("[server]\nallowed_hosts = \"hub.example\"\n", "[server] allowed_hosts: expected a list"),
        ("[server]\nviewer_token = 1\n", "[server] viewer_token: expected a string"),
        ("[deploy]\nmax_deployments = 0\n", "[deploy] max_deployments: must be greater than 0"),
        ("[deploy]\nmax_deployments = 2.5\n", "[deploy] max_deployments: expected an integer"),
        ("feed = 3\n", "[feed] must be a table"),
        ("[feed]\nmax_clients = 0\n", "[feed] max_clients: must be greater than 0"),
        ('[cluster]\nredis = "127.0.0.1:6379"\n', "[cluster] redis: must be redis://HOST:PORT/DB"),
        ('[cluster]\nredis = "redis://:6379/0"\n', "[cluster] redis: names no host"),
        ('[cluster]\nredis = "redis://h:port/0"\n', "[cluster] redis: not a Redis URL"),
        ('[cluster]\nredis = "redis://h:6379/zero"\n', "[cluster] redis: the database must be a number"),
        ("[cluster]\nlease = 0.5\n", "[cluster] lease: must be at least 1 second"),
        ('[cluster]\nlease = "5s"\n', "[cluster] lease: expected a number"),
        ('[server]\nlisten = "tcp:http"\n', "[server] listen: endpoint description"),
        ('[server]\nallow_anonymous_remote = "yes"\n',
         "[server] allow_anonymous_remote: expected true or false"),
        ('[engine]\nkind = "kubernetes"\n', "[engine] kind: 'kubernetes' is not docker or swarm"),
        ("[feed\n", "not valid TOML"),
        ('[deploy]\ndefault_memory = "lots"\n', "[deploy] default_memory: 'lots' is not a size"),
        ('[deploy]\nmax_memory = "1m"\n', "[deploy] max_memory: must be at least 6m"),
        ("[deploy]\nmax_memory = 1.5\n", "[deploy] max_memory: expected a string or an integer"),
        ("[deploy]\ndefault_cpus = 0\n", "[deploy] default_cpus: must be a number of CPUs"),
        ("[deploy]\nmax_cpus = nan\n", "[deploy] max_cpus: must be a number of CPUs"),
        ('[deploy]\nowner = "Ops!"\n', "[deploy] owner: 'Ops!' is not a name"),
        ('[deploy]\nowner = "ops\\n"\n', "[deploy] owner: 'ops\\n' is not a name"),
        ('[deploy]\nowner = ""\n', "[deploy] owner: '' is not a name"),
        ("[logs]\nmax_lines_per_second = 0\n",
         "[logs] max_lines_per_second: must be greater than 0"),
        ('[logs]\nviewer = "no"\n', "[logs] viewer: expected true or false"),
        ("[logs]\nmax_streams = 1.5\n", "[logs] max_streams: expected an integer"),
        ("[engine]\nhosts = { worker = 2376 }\n", "[engine] hosts: 'worker': expected an engine address"),
        ('[engine]\nhosts = "worker"\n', "[engine] hosts: expected"),
    ],
)
def test_invalid_file_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as e:
        config.load(path)
    assert path in str(e.value)
    assert expected in str(e.value)


def test_resources(tmp_path: Path) -> None:
    """
    A node's defaults and maxima, read as sizes; defaults above the maxima
    are a config error naming both keys.
    """
    assert config.resourcePolicy(config.defaults()) == resources.ResourcePolicy(
        resources.Resources(512 * resources.MIB, 1.0), 4 * resources.GIB, 2.0
    )
    loaded = config.load(write(
        tmp_path, '[deploy]\ndefault_memory = 67108864\ndefault_cpus = 1\nmax_memory = "1g"\n'
    ))
    assert config.resourcePolicy(loaded) == resources.ResourcePolicy(
        resources.Resources(64 * resources.MIB, 1.0), resources.GIB, 2.0
    )
    for text, keys in [
        ('[deploy]\nmax_memory = "256m"\n', "default_memory (512m) is above max_memory (256m)"),
        ("[deploy]\ndefault_cpus = 3\n", "default_cpus (3) is above max_cpus (2)"),
    ]:
        path = write(tmp_path, text)
        with pytest.raises(UsageError, match=r"\[deploy\] " + re.escape(keys)):
            Options().parseOptions(["--config", path])


def test_unreadable_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(config.ConfigError, match="nope.toml: cannot read the file"):
        config.load(missing)


def test_command_line_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nlisten = "tcp:9000"\n[polling]\ninterval = 5\n')
    options = Options()
    options.parseOptions(
        ["--config", path, "--listen", "tcp:0:interface=127.0.0.1", "--poll-interval", "0.5"]
    )
    assert options.config["server"]["listen"] == "tcp:0:interface=127.0.0.1"
    assert options.config["polling"]["interval"] == 0.5


def test_options_report_config_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "[feed]\nbogus = 1\n")
    with pytest.raises(UsageError, match="bogus"):
        Options().parseOptions(["--config", path])


def test_command_line_values_are_validated() -> None:
    with pytest.raises(UsageError, match="must be greater than 0"):
        Options().parseOptions(["--poll-interval", "-1"])


def test_no_config_file_means_defaults() -> None:
    options = Options()
    options.parseOptions([])
    assert options.config["server"]["listen"] == "tcp:8080:interface=127.0.0.1"


def test_new_keys_default_to_safe_values() -> None:
    loaded = config.defaults()
    assert loaded["feed"]["max_clients"] == 10_000
    assert loaded["server"]["allow_anonymous_remote"] is False


@pytest.mark.parametrize(
    "listen", ["tcp:0:interface=0.0.0.0", "tcp:8080", "tcp6:8080:interface=\\:\\:"]
)
def test_protected_mode_refuses_other_hosts_without_a_token(
    listen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATUSHUB_TOKEN", raising=False)
    with pytest.raises(UsageError) as e:
        Options().parseOptions(["--listen", listen])
    message = str(e.value)
    assert "[server] token" in message
    assert "[server] allow_anonymous_remote = true" in message
    assert listen in message


@pytest.mark.parametrize(
    "text",
    ['[server]\ntoken = "s3cret-s3cret-s3cret"\n', "[server]\nallow_anonymous_remote = true\n"],
)
def test_protected_mode_lets_a_token_or_the_opt_out_through(
    tmp_path: Path, text: str
) -> None:
    options = Options()
    options.parseOptions(["--config", write(tmp_path, text), "--listen", "tcp:0"])
    assert options.config["server"]["listen"] == "tcp:0"


def test_protected_mode_takes_the_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STATUSHUB_TOKEN", "s3cret-s3cret-s3cret")
    Options().parseOptions(["--listen", "tcp:0:interface=0.0.0.0"])


def test_protected_mode_reads_the_listen_address_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATUSHUB_TOKEN", raising=False)
    path = write(tmp_path, '[server]\nlisten = "tcp:8080:interface=0.0.0.0"\n')
    with pytest.raises(UsageError, match="protected mode"):
        Options().parseOptions(["--config", path])
    # the command line's loopback address wins over the file's
    Options().parseOptions(["--config", path, "--listen", "tcp:0:interface=127.0.0.1"])


@pytest.mark.parametrize(
    "server, env",
    [
        ('token = "fifteen-chars15"', {}),
        ("", {"STATUSHUB_TOKEN": "short"}),
        ('token = "operator-token-of-20"\nviewer_token = "view"', {}),
    ],
)
def test_a_short_token_beyond_loopback_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: str, env: dict
) -> None:
    for variable in ("STATUSHUB_TOKEN", "STATUSHUB_VIEWER_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    path = write(tmp_path, f"[server]\n{server}\n")
    with pytest.raises(UsageError) as e:
        Options().parseOptions(["--config", path, "--listen", "tcp:0:interface=0.0.0.0"])
    message = str(e.value)
    assert "at least 16 characters" in message
    assert "secrets.token_urlsafe" in message
    # on loopback the same tokens are fine
    Options().parseOptions(["--config", path, "--listen", "tcp:0:interface=127.0.0.1"])


def test_a_token_of_16_characters_serves_other_hosts(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\ntoken = "sixteen-chars-16"\n')
    Options().parseOptions(["--config", path, "--listen", "tcp:0:interface=0.0.0.0"])


@pytest.mark.parametrize("listen", ["tcp:0:interface=127.0.0.1", "tcp:0:interface=0.0.0.0"])
def test_any_host_without_a_token_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listen: str
) -> None:
    monkeypatch.delenv("STATUSHUB_TOKEN", raising=False)
    path = write(
        tmp_path, '[server]\nallowed_hosts = ["*"]\nallow_anonymous_remote = true\n'
    )
    with pytest.raises(UsageError) as e:
        Options().parseOptions(["--config", path, "--listen", listen])
    message = str(e.value)
    assert 'allowed_hosts = ["*"]' in message
    assert "DNS rebinding" in message
    assert "[server] token" in message
    # with a token, any host may be named
    monkeypatch.setenv("STATUSHUB_TOKEN", "a-token-of-sixteen")
    Options().parseOptions(["--config", path, "--listen", listen])


def test_engine_address(tmp_path: Path) -> None:
    """
    C{[engine] url} names the engine (a swarm manager's); the older
    C{[docker] host} still works, and the two may not disagree.
    """
    assert config.engineAddress(config.defaults()) == ""
    old = config.load(write(tmp_path, '[docker]\nhost = "unix:///a.sock"\n'))
    assert config.engineAddress(old) == "unix:///a.sock"
    new = config.load(write(tmp_path, '[engine]\nkind = "swarm"\nurl = "unix:///m.sock"\n'))
    config.checkTogether(new)
    assert (new["engine"]["kind"], config.engineAddress(new)) == ("swarm", "unix:///m.sock")
    both = config.load(write(
        tmp_path, '[engine]\nurl = "unix:///m.sock"\n[docker]\nhost = "unix:///a.sock"\n'
    ))
    with pytest.raises(config.ConfigError, match=r"\[engine\] url .* and \[docker\] host .* different"):
        config.checkTogether(both)


def test_cluster_defaults_to_one_hub(tmp_path: Path) -> None:
    assert config.defaults()["cluster"] == {"redis": "", "lease": 5.0}
    loaded = config.load(write(tmp_path, '[cluster]\nredis = "redis://127.0.0.1:6379/0"\nlease = 2\n'))
    assert loaded["cluster"] == {"redis": "redis://127.0.0.1:6379/0", "lease": 2.0}
