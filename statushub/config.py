"""
Configuration: a TOML file under C{etc/}, validated against L{SCHEMA}.

Every key has a type and a default, so a missing file section means the
defaults and an unknown key or a wrong type is an error that names the file,
the section and the key.  Command-line options override the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any, Mapping

from statushub import resources
from statushub import settingchecks as checks
from statushub.names import checkWampPrefix


class ConfigError(Exception):
    """
    The configuration cannot be used; the message says where and why.
    """


@dataclass(frozen=True)
class Setting:
    """
    One key: its accepted types, its default, and an optional check that
    returns an error text or L{None}.
    """

    types: tuple[type, ...]
    default: Any
    help: str
    check: Any = None


NUMBER = (int, float)

SCHEMA: dict[str, dict[str, Setting]] = {
    "server": {
        "listen": Setting(
            (str,),
            "tcp:8080:interface=127.0.0.1",
            "Twisted endpoint description to serve HTTP and WebSocket on",
            checks.endpoint,
        ),
        "token": Setting(
            (str,),
            "",
            "the operator's bearer token, required by the API and the feed "
            "(or env STATUSHUB_TOKEN); empty: no token",
        ),
        "viewer_token": Setting(
            (str,),
            "",
            "a read-only bearer token: the API's GETs and the feeds, no changes "
            "(or env STATUSHUB_VIEWER_TOKEN); needs a token; empty: none",
        ),
        "allowed_hosts": Setting(
            (list,),
            [],
            "host names the hub answers to besides IP addresses and localhost; "
            "'*' turns the Host check off",
            checks.hostNames,
        ),
        "allowed_origins": Setting(
            (list,),
            [],
            "browser origins allowed besides the hub's own, to open the feed and to "
            "send changes; '*' allows any",
            checks.stringList,
        ),
        "allow_anonymous_remote": Setting(
            (bool,),
            False,
            "serve on an address other than loopback without an operator token "
            "(protected mode refuses to start otherwise)",
        ),
        "max_body": Setting(
            (int,),
            256 * 1024,
            "largest request body, in bytes: a larger declared Content-Length gets "
            "413 before the body is read; a chunked body is read up to it, then 413",
            checks.positive,
        ),
        "request_timeout": Setting(
            NUMBER,
            30.0,
            "seconds a connection has to send a whole request (headers and body), "
            "however slowly it trickles in; also how long an idle keep-alive "
            "connection is kept",
            checks.positive,
        ),
        "max_pending": Setting(
            (int,),
            1000,
            "connections waiting for their request at most; beyond, the oldest is closed",
            checks.positive,
        ),
    },
    "feed": {
        "ping_interval": Setting(NUMBER, 20.0, "seconds between server pings", checks.positive),
        "ping_timeout": Setting(
            NUMBER, 10.0, "seconds a client has to answer a ping", checks.positive
        ),
        "max_send_buffer": Setting(
            (int,),
            1024 * 1024,
            "bytes a client may leave unread before it is dropped",
            checks.positive,
        ),
        "max_message_size": Setting(
            (int,), 4096, "largest message a client may send, in bytes", checks.positive
        ),
        "max_clients": Setting(
            (int,),
            10_000,
            "feed clients at most; an upgrade beyond gets 503",
            checks.positive,
        ),
    },
    "deploy": {
        "max_deployments": Setting(
            (int,), 20, "how many deployments may exist at once", checks.positive
        ),
        "stop_timeout": Setting(
            NUMBER,
            10.0,
            "seconds a node's process has to end after SIGTERM before it is killed "
            "(a node's stop or restart, a recreate, a teardown)",
            checks.notNegative,
        ),
        "default_memory": Setting(
            (str, int),
            resources.DEFAULT_MEMORY,
            "memory (swap included) of a node that sets none: bytes, or a number "
            "with k, m or g (binary)",
            checks.memory,
        ),
        "default_cpus": Setting(
            NUMBER, resources.DEFAULT_CPUS, "CPUs (cores' time) of a node that sets none", checks.cpus
        ),
        "max_memory": Setting(
            (str, int),
            resources.MAX_MEMORY,
            "the most memory a node may ask for; a topology above gets 400",
            checks.memory,
        ),
        "max_cpus": Setting(
            NUMBER, resources.MAX_CPUS, "the most CPUs a node may ask for; above: 400", checks.cpus
        ),
        "owner": Setting(
            (str,),
            "statushub",
            "the name this hub labels its containers with; it sees only its owner's",
            checks.name,
        ),
    },
    "logs": {
        "viewer": Setting((bool,), True, "the viewer token may read nodes' logs and "
                          "resource use (false: the operator's only)"),
        "max_lines_per_second": Setting((int,), 1000, "lines a second of one node its "
                                        "followers get; the rest are counted (log_gap)",
                                        checks.positive),
        "max_streams": Setting((int,), 200, "engine streams (logs and resource use) open "
                               "at once, a thread each; one more is refused", checks.positive),
    },
    "polling": {
        "interval": Setting(NUMBER, 2.0, "seconds between health polls", checks.positive),
    },
    "engine": {
        "kind": Setting(
            (str,),
            "docker",
            "docker (one engine) or swarm (services on a Docker Swarm, through a manager)",
            checks.engineKind,
        ),
        "url": Setting(
            (str,),
            "",
            "the engine's address (a swarm manager's for kind = swarm); empty: "
            "[docker] host, else DOCKER_HOST, else the local socket",
        ),
        "hosts": Setting((dict,), {}, "swarm only: by host name, the engine address of a "
                         "host whose nodes' resource use the hub reads", checks.engineAddresses),
    },
    "docker": {
        "host": Setting(
            (str,),
            "",
            "Docker engine address (unix:///path or tcp://127.0.0.1:port); "
            "empty: DOCKER_HOST, else the local socket",
        ),
        "timeout": Setting(
            NUMBER, 10.0, "seconds any one engine call may take", checks.positive
        ),
    },
    "events": {
        "enabled": Setting(
            (bool,),
            True,
            "follow the engine's event stream so changes show before the next poll",
        ),
    },
    "metrics": {
        "enabled": Setting(
            (bool,),
            True,
            "count and serve Prometheus metrics at /metrics (behind the token)",
        ),
    },
    "history": {
        "enabled": Setting(
            (bool,),
            True,
            "keep every status message in SQLite: history API, feed resume, seq "
            "that continues across restarts",
        ),
        "path": Setting(
            (str,),
            "var/statushub.db",
            "the SQLite database (relative: to the directory the hub starts in); "
            "a new file means a new epoch",
            checks.nonEmpty,
        ),
        "keep_days": Setting(NUMBER, 7.0, "days a message is kept", checks.positive),
        "max_messages": Setting(
            (int,), 100_000, "messages kept at most (the oldest go first)", checks.positive
        ),
    },
    "cluster": {
        "redis": Setting(
            (str,),
            "",
            "redis://HOST:PORT/DB: every hub with the same redis and [deploy] owner is "
            "one hub (history and numbering in Redis, one leader acts); empty: this hub "
            "alone, its history in SQLite",
            checks.redisURL,
        ),
        "lease": Setting(
            NUMBER,
            5.0,
            "seconds the leader's lease lasts; another hub takes over within this + 2 s "
            "of the leader's death",
            checks.lease,
        ),
    },
    "logging": {
        "format": Setting(
            (str,),
            "text",
            "log lines as twistd writes them (text) or one JSON object a line (json)",
            checks.logFormat,
        ),
    },
    "wamp": {
        "url": Setting(
            (str,),
            "",
            "WebSocket URL of the WAMP router (ws://127.0.0.1:8081/ws); empty: WAMP off",
            checks.wampURL,
        ),
        "client_url": Setting(
            (str,),
            "",
            "router URL for clients, which /examples/wamp.html uses; empty: url",
            checks.wampURL,
        ),
        "realm": Setting((str,), "statushub", "WAMP realm to join", checks.nonEmpty),
        "prefix": Setting(
            (str,),
            "io.statushub",
            "URI prefix: publish on <prefix>.status, register <prefix>.get_status",
            checkWampPrefix,
        ),
        "authid": Setting(
            (str,), "statushub", "authid for WAMP-ticket authentication", checks.nonEmpty
        ),
        "ticket": Setting(
            (str,),
            "",
            "WAMP-ticket secret (or env STATUSHUB_WAMP_TICKET); empty: join anonymously",
        ),
    },
}


def checkTogether(config: "Config") -> None:
    """
    Checks that need more than one key, once the file, the environment and
    the command line have all had their say.

    @raise ConfigError: the keys do not fit together.
    """
    server = config["server"]
    if server["viewer_token"] and not server["token"]:
        raise ConfigError(
            f"{config.source}: [server] viewer_token (or STATUSHUB_VIEWER_TOKEN) is set "
            "but [server] token (or STATUSHUB_TOKEN) is not: a read-only token is "
            "pointless while anyone may change everything; set [server] token (the "
            "operator's) too, or leave viewer_token empty"
        )
    if server["viewer_token"] and server["viewer_token"] == server["token"]:
        raise ConfigError(
            f"{config.source}: [server] viewer_token is the same as [server] token: "
            "the viewer would be the operator; give them different tokens"
        )
    if config["cluster"]["redis"] and not config["history"]["enabled"]:
        raise ConfigError(
            f"{config.source}: [cluster] redis is set but [history] enabled = false: "
            "several hubs as one keep their history in Redis (numbering, resume on any "
            "hub and catching up stand on it); leave [history] enabled on"
        )
    try:
        resourcePolicy(config).check()
    except resources.ResourceError as e:
        raise ConfigError(f"{config.source}: [deploy] {e}") from None
    url, host = config["engine"]["url"], config["docker"]["host"]
    if url and host and url != host:
        raise ConfigError(
            f"{config.source}: [engine] url ({url}) and [docker] host ({host}) name "
            "different engines: [docker] host is the older name of [engine] url; "
            "keep only [engine] url"
        )


def engineAddress(config: "Config") -> str:
    """
    Where the engine is, as configured: C{[engine] url}, else the older
    C{[docker] host}; empty means C{DOCKER_HOST}, else the local socket.
    """
    return config["engine"]["url"] or config["docker"]["host"]


def resourcePolicy(config: "Config") -> resources.ResourcePolicy:
    """
    A node's memory and CPUs as C{[deploy]} sets them: the defaults and the
    maxima.
    """
    deploy = config["deploy"]
    return resources.ResourcePolicy(
        default=resources.Resources(
            memory=resources.parseMemory(deploy["default_memory"]),
            cpus=deploy["default_cpus"],
        ),
        maxMemory=resources.parseMemory(deploy["max_memory"]),
        maxCpus=deploy["max_cpus"],
    )


class Config:
    """
    A validated configuration: C{config["feed"]["ping_interval"]}.
    """

    def __init__(self, values: Mapping[str, Mapping[str, Any]], source: str) -> None:
        self._values = {section: dict(keys) for section, keys in values.items()}
        self.source = source

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self._values[section]

    def override(self, section: str, key: str, value: Any) -> None:
        """
        Set one key, validated as if it came from the file (the command line
        uses this).
        """
        self._values[section][key] = _validate(
            SCHEMA, section, key, value, f"{self.source} (overridden)"
        )


def _validate(
    schema: Mapping[str, Mapping[str, Setting]],
    section: str,
    key: str,
    value: Any,
    source: str,
) -> Any:
    setting = schema[section][key]
    where = f"{source}: [{section}] {key}"
    # bool is an int to Python, but never a number to a user
    if isinstance(value, bool) and bool not in setting.types:
        raise ConfigError(f"{where}: expected {_typeNames(setting)}, got a boolean")
    if not isinstance(value, setting.types):
        raise ConfigError(f"{where}: expected {_typeNames(setting)}, got {value!r}")
    if setting.check is not None:
        problem = setting.check(value)
        if problem:
            raise ConfigError(f"{where}: {problem}")
    if float in setting.types and isinstance(value, int):
        value = float(value)
    return value


def _typeNames(setting: Setting) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list",
             bool: "true or false"}
    if setting.types == NUMBER:
        return "a number"
    return " or ".join(names.get(t, t.__name__) for t in setting.types)


def defaults(schema: Mapping[str, Mapping[str, Setting]] = SCHEMA) -> Config:
    return Config(
        {
            section: {key: setting.default for key, setting in keys.items()}
            for section, keys in schema.items()
        },
        "defaults",
    )


def parse(
    data: Mapping[str, Any],
    source: str,
    schema: Mapping[str, Mapping[str, Setting]] = SCHEMA,
) -> Config:
    """
    Validate already-parsed TOML data.
    """
    config = defaults(schema)
    config.source = source
    for section, keys in data.items():
        if section not in schema:
            known = ", ".join(sorted(schema))
            raise ConfigError(f"{source}: unknown section [{section}] (known: {known})")
        if not isinstance(keys, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in keys.items():
            if key not in schema[section]:
                known = ", ".join(sorted(schema[section]))
                raise ConfigError(
                    f"{source}: [{section}] unknown key {key!r} (known: {known})"
                )
            config[section][key] = _validate(schema, section, key, value, source)
    return config


def load(path: str, schema: Mapping[str, Mapping[str, Setting]] = SCHEMA) -> Config:
    """
    Read and validate a TOML file.

    @raise ConfigError: the file cannot be read, is not TOML, or does not fit
        the schema.
    """
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the file: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    return parse(data, path, schema)
