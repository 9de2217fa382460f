"""
Why the hub must not start: settings that would each hand the hub to
whoever can reach it.  Checked once the file, the environment and the
command line have all had their say (L{statushub.tap.Options}); each
refusal says how to fix it.
"""

from __future__ import annotations

from typing import Optional

from statushub import config as configuration
from statushub import listen


def startRefusal(config: configuration.Config) -> Optional[str]:
    """
    The first reason the hub must not start with C{config}, or L{None}.
    """
    for check in (protectedModeRefusal, shortTokenRefusal, anyHostRefusal):
        refusal = check(config)
        if refusal is not None:
            return refusal
    return None


def protectedModeRefusal(config: configuration.Config) -> Optional[str]:
    """
    Why the hub must not start, or L{None}: serving on an address other
    hosts can reach, with no operator token, would let anyone who can reach
    it deploy containers (Redis's protected mode is the model).
    """
    server = config["server"]
    if server["token"] or server["allow_anonymous_remote"]:
        return None
    if listen.isLoopbackOnly(server["listen"]):
        return None
    return (
        f"protected mode: [server] listen = '{server['listen']}' can be reached from "
        "other hosts, and no operator token is set, so anyone who can reach it could "
        "deploy containers on the Docker engine. Set [server] token (or the "
        "environment variable STATUSHUB_TOKEN), or listen on loopback only "
        "(interface=127.0.0.1), or, to serve without a token anyway, set "
        "[server] allow_anonymous_remote = true."
    )


#: the shortest token accepted on an address other hosts can reach
MIN_TOKEN_LENGTH = 16

_MAKE_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"


def shortTokenRefusal(config: configuration.Config) -> Optional[str]:
    """
    Why the hub must not start, or L{None}: on an address other hosts can
    reach, a short token can be guessed (even at 20 guesses a minute).
    """
    server = config["server"]
    if listen.isLoopbackOnly(server["listen"]):
        return None
    for key, variable in (("token", "STATUSHUB_TOKEN"), ("viewer_token", "STATUSHUB_VIEWER_TOKEN")):
        token = server[key]
        if token and len(token) < MIN_TOKEN_LENGTH:
            return (
                f"[server] {key} (or {variable}) is {len(token)} characters long: "
                f"[server] listen = '{server['listen']}' can be reached from other "
                f"hosts, where a token needs at least {MIN_TOKEN_LENGTH} characters. "
                f"Make one with: {_MAKE_TOKEN}"
            )
    return None


def anyHostRefusal(config: configuration.Config) -> Optional[str]:
    """
    Why the hub must not start, or L{None}: answering to any host name
    without a token lets a page on any site reach the hub through DNS
    rebinding (its name made to resolve to the hub's address), loopback
    or not.
    """
    server = config["server"]
    if "*" not in server["allowed_hosts"] or server["token"]:
        return None
    return (
        "[server] allowed_hosts = [\"*\"] turns the Host check off, and no operator "
        "token is set, so a web page on any site could deploy containers through "
        "the browser of anyone who can reach the hub (DNS rebinding). List the "
        "names the hub is reached by instead (allowed_hosts = [\"hub.example.com\"]), "
        "or set [server] token (or the environment variable STATUSHUB_TOKEN)."
    )
