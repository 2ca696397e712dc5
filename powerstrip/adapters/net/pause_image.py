"""The image of the network-only containers, made on the spot from the host's static busybox.

A network-only container only has to hold a network namespace open, but it needs an image that
is already on the daemon: hosts may have no registry access, and pulling on the create path would
be slow and fragile. Debian's busybox-static is one self-contained binary, so ``docker import``
of a one-file tar makes a ~2 MB image in well under a second, once per daemon.
``POWERSTRIP_NET_PAUSE_IMAGE`` names a local image to use instead (its default command must wait).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import tarfile
from pathlib import Path

from powerstrip.adapters.net.docker_api import DockerAPI, DockerError
from powerstrip.adapters.net.model import SetupError

IMAGE_ENV = "POWERSTRIP_NET_PAUSE_IMAGE"
# Bump the tag whenever the command changes, so daemons with an older image build the new one.
REPOSITORY, TAG = "powerstrip/pause", "1"
# Waits forever and exits at once on SIGTERM (PID 1 gets no default signal handlers).
COMMAND = ["/busybox", "sh", "-c", 'trap "exit 0" TERM INT; sleep 2147483647 & wait']


def configured_image() -> str | None:
    return os.environ.get(IMAGE_ENV) or None


async def ensure_pause_image(docker: DockerAPI) -> str:
    """The reference of the image to run network-only containers from, building it if missing."""
    image = configured_image() or f"{REPOSITORY}:{TAG}"
    try:
        await docker.call("GET", f"/images/{image}/json")
        return image
    except DockerError as exc:
        if exc.status != 404:
            raise
    if configured_image():
        raise SetupError(f"the network-only container image {image} ({IMAGE_ENV}) is not on the Docker host")
    await _build(docker)
    return image


async def _build(docker: DockerAPI) -> None:
    busybox = shutil.which("busybox")
    if busybox is None or not _is_static(Path(busybox)):
        raise SetupError(f"cannot build {REPOSITORY}:{TAG}: no static busybox on this host (install busybox-static, or set {IMAGE_ENV})")
    params = {"fromSrc": "-", "repo": REPOSITORY, "tag": TAG, "changes": "CMD " + json.dumps(COMMAND)}
    progress = await docker.call("POST", "/images/create", params=params, data=_rootfs(Path(busybox)), timeout=120)
    errors = [p["error"] for p in (progress if isinstance(progress, list) else [progress]) if p and "error" in p]
    if errors:
        raise SetupError(f"cannot build {REPOSITORY}:{TAG}: {errors[0]}")


def _is_static(path: Path) -> bool:
    """A 64-bit little-endian ELF without a PT_INTERP program header runs alone in an empty image."""
    data = path.read_bytes()
    if data[:6] != b"\x7fELF\x02\x01":
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def _rootfs(busybox: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(busybox, arcname="busybox")
    return buffer.getvalue()
