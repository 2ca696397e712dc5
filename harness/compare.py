"""Compare what a client saw directly from dockerd with what it saw through the gateway.

Only what legitimately differs between two runs is normalised: names a test generated per side
(replaced by a placeholder), container/image/exec IDs, and whatever a test adds on purpose.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

import docker

from .cli import Result

HEX64 = re.compile(r"\b(sha256:)?[0-9a-f]{64}\b")
HEX12 = re.compile(r"\b[0-9a-f]{12}\b")


def normaliser(replace: dict[str, str] | None = None, ids: bool = True,
               extra: Iterable[tuple[str, str]] = ()) -> Callable[[str], str]:
    """A text normaliser: literal replacements (longest first), then IDs, then extra regex subs."""
    pairs = sorted((replace or {}).items(), key=lambda kv: -len(kv[0]))
    compiled = [(re.compile(p), r) for p, r in extra]

    def norm(text: str) -> str:
        for old, new in pairs:
            text = text.replace(old, new)
        if ids:
            text = HEX64.sub("<id64>", text)
            text = HEX12.sub("<id12>", text)
        for rx, rep in compiled:
            text = rx.sub(rep, text)
        return text

    return norm


def same_result(direct: Result, via: Result, norm_direct: Callable[[str], str] = lambda s: s,
                norm_via: Callable[[str], str] | None = None, compare_err: bool = True) -> None:
    """Assert equal exit codes and equal (normalised) stdout and stderr, with a readable message."""
    norm_via = norm_via or norm_direct
    d = (direct.rc, norm_direct(direct.out), norm_direct(direct.err) if compare_err else None)
    v = (via.rc, norm_via(via.out), norm_via(via.err) if compare_err else None)
    if d != v:
        raise AssertionError(
            "direct and through-gateway results differ\n"
            f"===== direct (normalised: rc={d[0]})\n--- stdout\n{d[1]}\n--- stderr\n{d[2]}\n"
            f"===== via gateway (normalised: rc={v[0]})\n--- stdout\n{v[1]}\n--- stderr\n{v[2]}\n"
            f"===== raw direct\n{direct}\n===== raw via gateway\n{via}")


class Sides:
    """The two ways of reaching the daemon, and per-side names for what a scenario creates.

    Everything a test creates is named ``pst-<uniq>-<side>-<what>``; ``norm(side)`` replaces the
    per-side prefix with ``<pfx>`` (and IDs with placeholders) so the two runs can be compared.
    """

    def __init__(self, direct: str, gateway: str, uniq: str) -> None:
        self.hosts = {"direct": direct, "gateway": gateway}
        self.uniq = uniq

    def items(self):
        return self.hosts.items()

    def prefix(self, side: str) -> str:
        return f"pst-{self.uniq}-{side}"

    def name(self, side: str, what: str = "c") -> str:
        return f"{self.prefix(side)}-{what}"

    def norm(self, side: str, replace: dict[str, str] | None = None, ids: bool = True, extra=()):
        return normaliser({self.prefix(side): "<pfx>", **(replace or {})}, ids=ids, extra=extra)


def remove_everything_named(url: str, marker: str) -> None:
    client = docker.DockerClient(base_url=url, timeout=60)
    try:
        for c in client.containers.list(all=True, filters={"name": marker}):
            try:
                c.remove(force=True, v=True)
            except docker.errors.APIError:
                pass
        for img in client.images.list():
            for tag in img.tags:
                if marker in tag:
                    try:
                        client.images.remove(tag, force=True)
                    except docker.errors.APIError:
                        pass
        for net in client.networks.list(names=None, filters={"name": marker}):
            try:
                net.remove()
            except docker.errors.APIError:
                pass
        for vol in client.volumes.list(filters={"name": marker}):
            try:
                vol.remove(force=True)
            except docker.errors.APIError:
                pass
    finally:
        client.close()
