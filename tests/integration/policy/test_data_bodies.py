"""Bodies that are data for the daemon (files copied in, build contexts, image tarballs) pass the policy unread.

The policy judges those endpoints by their head (``reads_body``), so the gateway streams their bodies: binary
bytes and sizes over ``--max-body-size`` reach the daemon as the client sent them (before, a hooked route
buffered them for the hook and refused anything not UTF-8 with 400, anything larger with 413). An owner-scoped
profile is used because it sends every request through the hook (no path-only shortcut); the daemon's
resulting state is the oracle.
"""

from __future__ import annotations

import hashlib
import io
import os
import time

import docker
import pytest

from harness import rawhttp
from harness.cli import run_docker
from harness.image import busybox_path, tar_of
from tests.integration.policy.conftest import OWNER_TEAM_A

pytestmark = pytest.mark.docker

RULES = OWNER_TEAM_A
LIMIT = 64 * 1024  # the gateway's --max-body-size: every body below is larger


def _context(extra: bytes, dockerfile: str = "FROM ps-busybox\nCOPY blob /blob\n") -> io.BytesIO:
    return io.BytesIO(tar_of({"Dockerfile": dockerfile.encode(), "blob": extra}))


def test_binary_files_copied_into_a_container_arrive_whole(policy_gateway, daemon, uniq, tmp_path):
    gw = policy_gateway(RULES, extra_args=["--max-body-size", str(LIMIT)])
    name = f"pol-cp-{uniq}"
    binary = busybox_path()
    try:
        assert run_docker(gw.url, "create", "--name", name, "ps-busybox", "true").rc == 0
        copied = run_docker(gw.url, "cp", binary, f"{name}:/copied")
        assert copied.rc == 0, copied.err
        run_docker(gw.url, "cp", f"{name}:/copied", str(tmp_path / "back"))
        with open(binary, "rb") as original:
            assert (tmp_path / "back").read_bytes() == original.read()  # through the gateway both ways
        assert os.path.getsize(binary) > LIMIT
    finally:
        daemon.api.remove_container(name, force=True)


def test_a_build_context_with_binary_bytes_over_the_limit_is_built_and_owned(policy_gateway, daemon, uniq):
    gw = policy_gateway(RULES, extra_args=["--max-body-size", str(LIMIT)])
    client = docker.DockerClient(base_url=gw.url)
    tag = f"pol-build-{uniq}"
    blob = bytes(range(256)) * 1024  # 256 KiB, not UTF-8
    try:
        image, _ = client.images.build(fileobj=_context(blob), custom_context=True, tag=tag, rm=True)
        assert image.labels.get("powerstrip.owner") == "team-a"  # the hook still ran: it stamped the owner
        copied = daemon.containers.run(tag, ["md5sum", "/blob"], remove=True).split()[0].decode()
        assert copied == hashlib.md5(blob).hexdigest()
        # a refused build is answered without its context being read (the connection then closes)
        started = time.monotonic()
        with pytest.raises(docker.errors.APIError) as refused:
            client.images.build(fileobj=_context(b"x" * (8 << 20)), custom_context=True, network_mode="host")
        assert refused.value.status_code == 403 and time.monotonic() - started < 10
    finally:
        client.close()
        try:
            daemon.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass


def test_an_image_tarball_loads(policy_gateway, daemon, uniq):
    """A profile with an owner loads only with ``image_loads`` (the archive's tags are not read); with it, an
    archive over the body limit loads, streamed."""
    tag = f"pol-load-{uniq}:latest"
    daemon.images.get("ps-busybox").tag(tag)
    saved = b"".join(daemon.images.get(tag).save(named=True))
    daemon.images.remove(tag)
    try:
        plain = policy_gateway(RULES)
        reply = rawhttp.request(plain.socket_path, "POST", "/v1.41/images/load?quiet=1", saved,
                                {"Content-Type": "application/x-tar"}, timeout=60)
        assert reply.status == 403 and "(image_loads)" in reply.json()["message"], reply.body
        assert tag not in {t for image in daemon.images.list() for t in image.tags}
        gw = policy_gateway(RULES + "        powers: {image_loads: true}\n", extra_args=["--max-body-size", str(LIMIT)])
        reply = rawhttp.request(gw.socket_path, "POST", "/v1.41/images/load?quiet=1", saved,
                                {"Content-Type": "application/x-tar"}, timeout=60)
        assert reply.status == 200, reply.body
        assert tag in {t for image in daemon.images.list() for t in image.tags}
    finally:
        try:
            daemon.images.remove(tag)
        except docker.errors.ImageNotFound:
            pass
