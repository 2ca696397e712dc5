"""Where dockerd reads the fields of a container-create body that sit outside their struct.

moby's ``ContainerConfigWrapper`` (runconfig/config_unix.go, 20.10) embeds ``*container.Config`` and a
deprecated ``*container.HostConfig`` next to the ``HostConfig`` field, so HostConfig fields may also be sent
at the top level. ``getHostConfig`` then decides which are used:

- no top-level HostConfig field: the ``HostConfig`` object (or none);
- top-level fields and no (or a null) ``HostConfig``: the top-level fields *are* the host config;
- both: the ``HostConfig`` object, with Memory, MemorySwap, CpuShares, CpusetCpus and VolumeDriver taken
  from the top level where the object leaves them zero;
- then the top-level ``Cpuset`` fills an empty ``CpusetCpus``, and an empty ``NetworkMode`` becomes ``default``.

``place`` applies exactly that, so the canonical body has one ``HostConfig`` holding what the daemon will
use, and the top-level copies (which the daemon would ignore or has moved) are gone.
"""

from __future__ import annotations

from typing import Any

from powerstrip.canonical.decode import MISSING, StructValue, struct_value
from powerstrip.canonical.schema import Struct

COPIED_FROM_TOP_LEVEL = ("Memory", "MemorySwap", "CpuShares", "CpusetCpus", "VolumeDriver")


def place(value: StructValue, wrapper: Struct) -> StructValue:
    """The decoded wrapper with its host config where the daemon reads it."""
    promoted = wrapper.promoted_from("HostConfig")
    out = struct_value()
    top_level = struct_value()
    for name, item in value.items():
        if name in promoted:
            top_level[name] = item
        elif name != "Cpuset":
            out[name] = item
    # the embedded pointer is allocated as soon as one of its keys is read, even with a null value
    has_top_level = not promoted.isdisjoint(value.spelling)
    inner: Any = value.get("HostConfig", MISSING)
    if not has_top_level:
        host = inner
    elif inner is MISSING:
        host = top_level
    else:
        host = inner.copy()
        for name in COPIED_FROM_TOP_LEVEL:
            if top_level.get(name) and not host.get(name):
                host[name] = top_level[name]
    if host is not MISSING:
        cpuset = value.get("Cpuset")
        if cpuset and not host.get("CpusetCpus"):
            host["CpusetCpus"] = cpuset
        if not host.get("NetworkMode"):
            host["NetworkMode"] = "default"
        out["HostConfig"] = host
    else:
        out.pop("HostConfig", None)
    return out
