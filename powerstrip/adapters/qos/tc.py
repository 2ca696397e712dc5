"""Shapers on one network device, through netlink (pyroute2): an HTB root, a class and a u32 filter each.

The root qdisc has handle ``5053:`` ("PS"), so powerstrip knows its own and never touches a root
qdisc someone else made. Its default class is 0: packets no filter classifies go to HTB's direct
queue, unshaped. ``program`` reads what the device holds (classes, rates, bursts, filter keys),
compares it with what is wanted and rebuilds the tree only when they differ: running it again
and again (the converger does) changes nothing and costs a netlink dump.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl.tcmsg.common import calc_xmittime

from powerstrip.adapters.qos.plan import Shaper

MAJOR = 0x5053
ROOT = MAJOR << 16
TC_H_ROOT = 0xFFFFFFFF
ETH_P_IP = 0x0800

_NLA_HEADER = 4
_SEL = struct.Struct("=BBBxHHhhI")  # struct tc_u32_sel without its keys
_KEY_WORDS = struct.Struct(">II")  # struct tc_u32_key: mask and value in network order,
_KEY_OFFSETS = struct.Struct("=ii")  # then off and offmask in host order
_KEY_SIZE = _KEY_WORDS.size + _KEY_OFFSETS.size
# (minor, rate in bytes/s, buffer in ticks) for classes; (prio, classid, {(offset, value, mask)}) for filters
_Class = tuple[int, int, int]
_Filter = tuple[int, int, frozenset[tuple[int, int, int]]]


class ForeignQdisc(Exception):
    """The device has a root qdisc powerstrip did not make: it is left alone."""


@dataclass(frozen=True, slots=True)
class Tree:
    """What a device holds, reduced to what ``program`` compares."""

    ours: bool
    foreign: str | None
    classes: frozenset[_Class]
    filters: frozenset[_Filter]


def wanted(shapers: tuple[Shaper, ...]) -> Tree:
    classes = frozenset((s.minor, s.rate // 8, calc_xmittime(s.rate // 8, s.burst)) for s in shapers)
    filters = frozenset((s.minor, ROOT | s.minor, _key_bytes(s.keys)) for s in shapers)
    return Tree(bool(shapers), None, classes, filters)


def read(ipr: IPRoute, index: int) -> Tree:
    root = next((q for q in ipr.get_qdiscs(index) if q["parent"] == TC_H_ROOT), None)
    kind = root.get("TCA_KIND") if root is not None else None
    if root is None or root["handle"] >> 16 == 0:  # the kernel's default (noqueue, pfifo_fast): nobody's
        return Tree(False, None, frozenset(), frozenset())
    if kind != "htb" or root["handle"] != ROOT:
        return Tree(False, f"{kind} {root['handle'] >> 16:x}:", frozenset(), frozenset())
    classes = set()
    for c in ipr.get_classes(index):
        parms = c.get_nested("TCA_OPTIONS", "TCA_HTB_PARMS") or {}
        rate = c.get_nested("TCA_OPTIONS", "TCA_HTB_RATE64") or parms.get("rate", 0)
        classes.add((c["handle"] & 0xFFFF, rate, parms.get("buffer", 0)))
    filters = set()
    for f in ipr.get_filters(index, parent=ROOT):
        classid = f.get_nested("TCA_OPTIONS", "TCA_U32_CLASSID")
        if classid is None:
            continue  # the hash table a u32 filter priority starts with
        sel = f.get_nested("TCA_OPTIONS", "TCA_U32_SEL")
        keys = frozenset(b for off, val, mask in _sel_keys(sel) for b in _bytes(off, val, mask)) if sel else frozenset()
        filters.add((f["info"] >> 16, classid, keys))
    return Tree(True, None, frozenset(classes), frozenset(filters))


def program(ipr: IPRoute, index: int, shapers: tuple[Shaper, ...]) -> bool:
    """Make device ``index`` hold exactly ``shapers``; returns whether anything changed."""
    want, have = wanted(shapers), read(ipr, index)
    if (want.ours, want.classes, want.filters) == (have.ours, have.classes, have.filters):
        return False
    if have.foreign is not None:
        raise ForeignQdisc(f"the device has a root qdisc powerstrip did not make ({have.foreign}): not touched")
    if have.ours:
        ipr.tc("del", index=index, handle=ROOT, parent=TC_H_ROOT)
    if not shapers:
        return True
    ipr.tc("add", "htb", index, handle=ROOT, parent=TC_H_ROOT, default=0)
    for s in shapers:
        rate = s.rate // 8
        ipr.tc("add-class", "htb", index, handle=ROOT | s.minor, parent=ROOT, rate=rate, ceil=rate,
               burst=s.burst, cburst=s.burst, quantum=s.quantum)
        ipr.tc("add-filter", "u32", index, parent=ROOT, prio=s.minor, protocol=ETH_P_IP,
               target=ROOT | s.minor, keys=list(s.keys))
    return True


def remove(ipr: IPRoute, index: int) -> bool:
    """Remove powerstrip's tree (and with it every class and filter) from the device, if it has one."""
    return program(ipr, index, ())


def _sel_keys(sel: Any) -> list[tuple[int, int, int]]:
    """(offset, value, mask) of a dumped ``tc_u32_sel``'s keys, read from the attribute's bytes.

    pyroute2 (0.9.7) decodes the keys 4 bytes too early (it skips 16 bytes after the attribute's
    start, where the 4-byte header and the 16-byte selector come first), so they are read here.
    """
    start = sel.offset + _NLA_HEADER + _SEL.size
    found = []
    for i in range(sel["nkeys"]):
        at = start + i * _KEY_SIZE
        mask, value = _KEY_WORDS.unpack_from(sel.data, at)
        offset, _offmask = _KEY_OFFSETS.unpack_from(sel.data, at + _KEY_WORDS.size)
        found.append((offset, value, mask))
    return found


def _key_bytes(keys: tuple[str, ...]) -> frozenset[tuple[int, int, int]]:
    """``"VALUE/MASK+OFFSET"`` words → the (offset, value byte, mask byte) they constrain."""
    found = set()
    for key in keys:
        word, _, offset = key.partition("+")
        value, _, mask = word.partition("/")
        found |= set(_bytes(int(offset), int(value, 16), int(mask, 16)))
    return frozenset(found)


def _bytes(offset: int, value: int, mask: int) -> list[tuple[int, int, int]]:
    values, masks = struct.pack(">I", value & 0xFFFFFFFF), struct.pack(">I", mask & 0xFFFFFFFF)
    return [(offset + i, v & m, m) for i, (v, m) in enumerate(zip(values, masks)) if m]
