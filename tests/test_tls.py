"""
TLS: C{--listen ssl:PORT:privateKey=...:certKey=...} serves the API, the
page and the feed as C{https://} and C{wss://}.  A throwaway self-signed
certificate for 127.0.0.1, a real hub, real clients that verify it.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import queue
import subprocess
import sys
import threading
from importlib.metadata import requires
from pathlib import Path

import pytest
import pytest_twisted
import treq
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from packaging.requirements import Requirement
from twisted.internet import reactor
from twisted.internet.endpoints import quoteStringArgument
from twisted.internet.ssl import Certificate
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS

from tests.fixtures.hubprocess import REPO
from tests.wsclient import connectFeed

STATUSHUB = str(Path(sys.executable).parent / "statushub")


def throwawayCertificate(directory: Path) -> tuple[Path, Path]:
    """
    A self-signed certificate for 127.0.0.1, valid for a day; returns the
    key's file and the certificate's.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "statushub test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    keyPath = directory / "key.pem"
    certPath = directory / "cert.pem"
    keyPath.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certPath.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return keyPath, certPath


@pytest.fixture
def tlsHub(tmp_path: Path, hub_process):
    keyPath, certPath = throwawayCertificate(tmp_path)
    hub = hub_process(
        listen="ssl:{port}:interface=127.0.0.1"
        f":privateKey={quoteStringArgument(str(keyPath))}"
        f":certKey={quoteStringArgument(str(certPath))}",
    )
    return hub, Certificate.loadPEM(certPath.read_bytes()), certPath


def trusting(certificate: Certificate) -> Agent:
    return Agent(reactor, contextFactory=BrowserLikePolicyForHTTPS(trustRoot=certificate))


@pytest_twisted.ensureDeferred
async def test_the_api_the_page_and_the_feed_over_tls(tlsHub) -> None:
    hub, certificate, certPath = tlsHub
    assert hub.url.startswith("https://127.0.0.1:")
    assert hub.wsUrl.startswith("wss://127.0.0.1:")
    agent = trusting(certificate)

    status = await treq.get(hub.url + "/api/status", agent=agent)
    assert status.code == 200
    picture = await status.json()
    assert picture["type"] == "status_update"

    page = await treq.get(hub.url + "/", agent=agent)
    assert page.code == 200
    assert b"<html" in (await page.content()).lower()

    client = await connectFeed(hub.wsUrl, trustRoot=certificate)
    snapshot = await client.waitFor(lambda m: m["type"] == "status_update")
    assert snapshot["seq"] >= picture["seq"] - 1
    client.send(b'{"type": "get_status"}')
    await client.waitFor(lambda m: m is not snapshot and m["type"] == "status_update")
    await client.close()


@pytest_twisted.ensureDeferred
async def test_a_client_that_does_not_trust_the_certificate_gets_nothing(tlsHub) -> None:
    """
    The connection really is TLS, verified: without the certificate as a
    trust root the handshake fails, and plain HTTP gets no answer.
    """
    hub, certificate, certPath = tlsHub
    with pytest.raises(Exception) as failure:
        await treq.get(hub.url + "/api/status")
    assert "certificate verify failed" in repr(failure.value)
    with pytest.raises(Exception):
        await treq.get(f"http://127.0.0.1:{hub.port}/api/status", timeout=10)


def test_the_command_line_over_tls(tlsHub) -> None:
    """
    C{statushub status} and C{statushub watch} with an C{https://} address,
    trusting the certificate through C{SSL_CERT_FILE}.
    """
    hub, certificate, certPath = tlsHub
    env = dict(os.environ, SSL_CERT_FILE=str(certPath), PYTHONPATH=str(REPO))
    env.pop("STATUSHUB_TOKEN", None)
    status = subprocess.run(
        [STATUSHUB, "status", "--url", hub.url], env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    watch = subprocess.Popen(
        [STATUSHUB, "watch", "--json", "--url", hub.url], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: lines.put(watch.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=30)
    finally:
        watch.kill()
        watch.wait()
    assert line, watch.stderr.read()
    assert json.loads(line)["type"] == "status_update"


def test_a_plain_install_brings_what_tls_needs() -> None:
    """
    C{pip install .} installs Twisted with its C{tls} extra (pyOpenSSL,
    service_identity): without it C{--listen ssl:...} stops with "No module
    named 'OpenSSL'".
    """
    twisted = [Requirement(r) for r in requires("statushub") if r.startswith("twisted")]
    assert any("tls" in r.extras and r.marker is None for r in twisted), twisted
