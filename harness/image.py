"""The test image: a root filesystem of Debian's static busybox, brought in with ``docker import``.

There is no image registry to pull from, so the tests build ``ps-busybox:latest`` themselves and tag
it ``ubuntu:latest`` as well (the seed scenario in DESIGN.md runs ``ubuntu``).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import time

from .util import HarnessError, apt_install

IMAGE = "ps-busybox:latest"
ALIASES = ("ubuntu:latest",)

# Applets that must exist; every other applet busybox knows is linked too.
REQUIRED_APPLETS = ("sh", "ip", "ifconfig", "ping", "nc", "sleep", "cat", "echo", "ls", "sha256sum",
                    "md5sum", "head", "dd", "wc", "hostname", "env", "true", "false", "seq", "yes")


def busybox_path() -> str:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(candidate) and _is_static(candidate):
            return candidate
    apt_install(["busybox-static"])
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(candidate) and _is_static(candidate):
            return candidate
    raise HarnessError("no static busybox after apt-get install busybox-static")


def _is_static(path: str) -> bool:
    # A dynamically linked ELF has a PT_INTERP program header naming the loader.
    with open(path, "rb") as f:
        data = f.read(1 << 20)
    return b"/lib64/ld-linux" not in data and b"/lib/ld-linux" not in data and b"ld-musl" not in data


def _applets(busybox: str) -> list[str]:
    out = subprocess.run([busybox, "--list"], capture_output=True, text=True, timeout=30).stdout.split()
    names = sorted(set(out) | set(REQUIRED_APPLETS))
    return [n for n in names if n and "/" not in n and n != "busybox"]


def tar_of(files: dict[str, bytes]) -> bytes:
    """A tar archive of regular files (a build context, an import, a copy), in the given order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def rootfs_tar(busybox: str | None = None) -> bytes:
    """An uncompressed tar of the root filesystem."""
    busybox = busybox or busybox_path()
    buf = io.BytesIO()
    now = int(time.time())

    def add_dir(tf: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE
        ti.mode = mode
        ti.mtime = now
        tf.addfile(ti)

    def add_file(tf: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mode = mode
        ti.mtime = now
        tf.addfile(ti, io.BytesIO(data))

    def add_link(tf: tarfile.TarFile, name: str, target: str) -> None:
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.SYMTYPE
        ti.linkname = target
        ti.mtime = now
        tf.addfile(ti)

    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for d in ("bin", "dev", "etc", "proc", "sys", "root", "usr", "usr/bin", "sbin", "var", "data"):
            add_dir(tf, d)
        add_dir(tf, "tmp", 0o1777)
        with open(busybox, "rb") as f:
            add_file(tf, "bin/busybox", f.read(), 0o755)
        for applet in _applets(busybox):
            add_link(tf, f"bin/{applet}", "busybox")
        add_link(tf, "usr/bin/env", "/bin/busybox")
        add_file(tf, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        add_file(tf, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        add_file(tf, "etc/hello.txt", b"hello from the powerstrip test image\n")
    return buf.getvalue()


def build_test_image(docker_host: str, docker_bin: str = "/usr/bin/docker", timeout: float = 120.0) -> str:
    """``docker import`` the busybox rootfs as ps-busybox:latest (and ubuntu:latest). Returns the image id."""
    if not os.path.exists(docker_bin):
        docker_bin = shutil.which("docker") or docker_bin
    env = dict(os.environ, DOCKER_HOST=docker_host)
    env.pop("DOCKER_CONTEXT", None)
    r = subprocess.run(
        [docker_bin, "import", "--change", 'CMD ["/bin/sh"]', "-", IMAGE],
        input=rootfs_tar(), capture_output=True, env=env, timeout=timeout,
    )
    if r.returncode != 0:
        raise HarnessError(f"docker import failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    image_id = r.stdout.decode().strip()
    for alias in ALIASES:
        r = subprocess.run([docker_bin, "tag", IMAGE, alias], capture_output=True, env=env, timeout=timeout)
        if r.returncode != 0:
            raise HarnessError(f"docker tag {alias} failed: {r.stderr.decode(errors='replace')}")
    return image_id
