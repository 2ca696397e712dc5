"""The cluster store over TLS with user/password authentication: a real etcd 3.4 started with
``--client-cert-auth`` and auth enabled (root and a ``powerstrip`` user whose role may use only
``/powerstrip/``), certificates made by the test with openssl, and the store and the CLI driven
against it — also with every wrong setting an operator can make, each refused with a message that
says what to fix."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

import pytest
import requests

from harness.certs import CertificateAuthority, Pair
from harness.etcd import EtcdServer, ServerTLS
from powerstrip.adapters.net.cluster import cluster_settings
from powerstrip.adapters.net.etcd_store import PREFIX, EtcdStore
from powerstrip.adapters.net.model import StoreUnavailable

REPO_ROOT = Path(__file__).resolve().parents[3]
TOKEN_TTL = 3  # etcd's --auth-token-ttl: how long an unused token stays valid


@dataclass(frozen=True, slots=True)
class Pki:
    ca: CertificateAuthority
    client: Pair
    other_ca: CertificateAuthority  # signed nothing the server trusts
    stranger: Pair


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca, other = CertificateAuthority(directory, "good"), CertificateAuthority(directory, "other")
    return Pki(ca, ca.issue("powerstrip", client=True), other, other.issue("stranger", client=True))


@pytest.fixture(scope="module")
def etcd(pki: Pki) -> Iterator[EtcdServer]:
    server_pair = pki.ca.issue("etcd", ips=("127.0.0.1",))
    tls = ServerTLS(str(server_pair.cert), str(server_pair.key), str(pki.ca.cert), str(pki.ca.cert),
                    (str(pki.client.cert), str(pki.client.key)))
    server = EtcdServer(tls=tls, extra_args=("--auth-token-ttl", str(TOKEN_TTL))).start()
    try:
        admin = requests.Session()
        admin.verify, admin.cert = str(pki.ca.cert), (str(pki.client.cert), str(pki.client.key))
        admin.trust_env = False  # else $REQUESTS_CA_BUNDLE replaces admin.verify
        server.enable_auth(admin, {"powerstrip": "s3cret", "nobody": "nothing"}, PREFIX)
        yield server
    finally:
        server.stop()


def security(pki: Pki, **override: object) -> dict[str, object]:
    options = {"cacert": str(pki.ca.cert), "cert": str(pki.client.cert), "key": str(pki.client.key),
               "user": "powerstrip:s3cret"}
    options.update(override)
    return options


def test_store_over_tls_with_a_user(etcd: EtcdServer, pki: Pki) -> None:
    settings = cluster_settings(etcd.url, advertise="198.18.0.2", **security(pki))
    assert settings.url == etcd.url and settings.url.startswith("etcds://")
    assert "s3cret" not in repr(settings)
    store = EtcdStore(settings.connect(), settings.advertise)
    network = store.create_network("secure", IPv4Network("10.20.0.0/24"))
    allocation = store.allocate("secure", "owner-1")
    assert str(allocation.address) == "10.20.0.2" and network.vni is not None
    lease = store.join(10)
    assert store.keep_alive(lease)
    assert [m.address for m in store.members()] == ["198.18.0.2"]
    # the converger's watch goes over the same TLS session with the same token
    events, cancel = store.etcd.watch(PREFIX)
    seen: queue.Queue[object] = queue.Queue()
    threading.Thread(target=lambda: seen.put(next(iter(events), None)), daemon=True).start()
    try:
        time.sleep(0.5)
        store.release("owner-1")
        assert seen.get(timeout=10) is not None, "no watch event"
    finally:
        cancel()
    store.delete_network("secure")


def test_an_expired_token_is_replaced(etcd: EtcdServer, pki: Pki) -> None:
    store = EtcdStore(cluster_settings(etcd.url, advertise="198.18.0.2", **security(pki)).connect(), "198.18.0.2")
    store.networks()
    token = store.etcd._clients[0].session.headers["Authorization"]
    time.sleep(TOKEN_TTL + 1.5)  # unused for longer than --auth-token-ttl: etcd forgets the token
    store.networks()
    assert store.etcd._clients[0].session.headers["Authorization"] != token


@pytest.mark.parametrize("override, message", [
    ({"cert": "STRANGER", "key": "STRANGER_KEY"}, "did not accept this client's certificate"),
    ({"cacert": "OTHER_CA"}, "certificate is not trusted (check --cluster-cacert)"),
    ({"cert": None, "key": None}, "requires a client certificate"),
    ({"user": "powerstrip:wrong"}, "authentication failed for user 'powerstrip': wrong user name or password"),
    ({"user": None}, "requires authentication: give --cluster-user NAME:PASSWORD"),
    ({"user": "nobody:nothing"}, "user 'nobody' may not use the keys under /powerstrip/"),
])
def test_wrong_settings_are_refused_clearly(etcd: EtcdServer, pki: Pki, override: dict[str, object],
                                            message: str) -> None:
    files = {"STRANGER": str(pki.stranger.cert), "STRANGER_KEY": str(pki.stranger.key), "OTHER_CA": str(pki.other_ca.cert)}
    options = security(pki, **{k: files.get(v, v) if isinstance(v, str) else v for k, v in override.items()})
    store = EtcdStore(cluster_settings(etcd.url, advertise="198.18.0.2", **options).connect(), "198.18.0.2")
    with pytest.raises(StoreUnavailable) as refused:
        store.networks()
    assert message in refused.value.message, refused.value.message
    assert refused.value.message.startswith(f"cluster store {etcd.url}: ")


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "powerstrip", *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT), **env), cwd=REPO_ROOT)


def test_cli_takes_the_options_and_their_environment(etcd: EtcdServer, pki: Pki, tmp_path: Path) -> None:
    env = {"POWERSTRIP_CLUSTER": etcd.url, "POWERSTRIP_CLUSTER_CACERT": str(pki.ca.cert),
           "POWERSTRIP_CLUSTER_CERT": str(pki.client.cert), "POWERSTRIP_CLUSTER_KEY": str(pki.client.key),
           "POWERSTRIP_CLUSTER_USER": "powerstrip", "POWERSTRIP_CLUSTER_PASSWORD": "s3cret",
           "POWERSTRIP_STATE_DIR": str(tmp_path), "POWERSTRIP_DOCKER_HOST": "unix:///nonexistent"}
    listed = cli("network", "list", "--advertise", "198.18.0.2", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "default" in listed.stdout  # the seed network, written through the secured store
    assert cli("cluster", "members", env=env).returncode == 0
    stranger = cli("network", "list", "--advertise", "198.18.0.2", "--cluster-cert", str(pki.stranger.cert),
                   "--cluster-key", str(pki.stranger.key), env=env)
    assert stranger.returncode == 1
    assert f"Error response from daemon: cluster store {etcd.url}: TLS: " in stranger.stderr, stderr_of(stranger)
    assert "did not accept this client's certificate" in stranger.stderr, stderr_of(stranger)
    plain = cli("cluster", "members", "--cluster", f"etcd://{etcd.endpoint}", "--cluster-cacert", str(pki.ca.cert),
                env=env)
    assert plain.returncode == 2 and "need an etcds:// cluster URL" in plain.stderr, plain.stderr
    no_tls = cli("cluster", "members", env={**env, "POWERSTRIP_CLUSTER": f"etcd://{etcd.endpoint}",
                                            "POWERSTRIP_CLUSTER_CACERT": "", "POWERSTRIP_CLUSTER_CERT": "",
                                            "POWERSTRIP_CLUSTER_KEY": ""})
    assert no_tls.returncode == 1 and "if it serves TLS, use etcds://" in no_tls.stderr, no_tls.stderr


def stderr_of(result: subprocess.CompletedProcess) -> str:
    return result.stderr[-2000:]


def test_etcds_against_a_plain_server_says_so(pki: Pki) -> None:
    with EtcdServer() as plain:
        store = EtcdStore(cluster_settings(f"etcds://{plain.endpoint}", advertise="198.18.0.2",
                                           cacert=str(pki.ca.cert)).connect(), "198.18.0.2")
        with pytest.raises(StoreUnavailable) as refused:
            store.networks()
        # the server answers a TLS hello with a close, a reset or a "wrong version" record, as it happens
        # (tests/unit/test_etcd_reset.py makes the reset on purpose)
        assert re.search(r"TLS: .*(does not speak TLS|does not serve TLS)", refused.value.message), refused.value.message
