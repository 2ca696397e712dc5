"""What the cluster store needs done when no host is there to do it: a lost host's addresses, a
network delete cut short.

Every host's converger runs ``look_after`` on each pass; the store's transactions make each step
happen once, whichever host gets there first.

- A host with allocations and no membership lease is **lost**: the first host to notice records when
  (``lost/ADDRESS``). The tunnels drop it as soon as its lease expires (the converger programs only
  members); its addresses stay allocated for ``grace`` seconds, so a host that reboots or loses the
  store for a while gets everything back as it was. After that its addresses are freed, in
  transactions that hold only while it still has no lease. A host that returns later re-adopts its
  surviving containers' addresses if they are still free, and gets new ones if not
  (``Attachments.reconcile``).
- A network marked for deletion longer than ``DELETE_STALE`` seconds ago lost its deleter between the
  two steps (mark, then delete): the delete is finished, or rolled back if addresses are in use.

Times are wall-clock, compared across hosts: keep the hosts' clocks in step (NTP); a skew of a few
seconds against a grace of minutes does not matter.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from powerstrip.adapters.net.etcd_store import EtcdStore
from powerstrip.adapters.net.model import Allocation

log = logging.getLogger(__name__)

LOST_HOST_GRACE = 300.0  # seconds: a reboot or a store outage of a few minutes costs no address
DELETE_STALE = 30.0


@dataclass(slots=True)
class Outcome:
    """What a pass changed: freed allocations (their implicit networks may now be empty), finished deletes."""

    reclaimed: list[Allocation] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def look_after(store: EtcdStore, members: set[str], allocations: list[Allocation], grace: float) -> Outcome:
    outcome = Outcome()
    now = time.time()
    holding = {a.host for a in allocations if a.host is not None}
    lost = store.lost()
    for host in sorted(holding - members - {store.host}):
        since = lost.get(host)
        if since is None:
            if store.note_lost(host, now):
                log.warning("net: host %s has no lease: its addresses are reclaimed in %.0f s unless it comes back",
                            host, grace)
        elif now - since >= grace:
            freed = store.reclaim(host)
            if freed:
                log.warning("net: reclaimed %d address(es) of host %s, lost for %.0f s: %s", len(freed), host,
                            now - since, ", ".join(f"{a.network}/{a.address}" for a in freed))
            outcome.reclaimed += freed
    for host in set(lost) - holding - members:
        store.forget_lost(host)  # nothing (left) to reclaim
    for name in store.interrupted_deletes(DELETE_STALE):
        done = store.finish_interrupted_delete(name, DELETE_STALE)
        if done is not None:
            log.warning("net: network %s was left half-deleted (its deleter stopped): delete %s", name, done)
            if done == "finished":
                outcome.deleted.append(name)
    return outcome
