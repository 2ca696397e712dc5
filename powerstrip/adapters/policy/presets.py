"""Rules for the clients people put behind a socket proxy, from the requests each really makes.

A profile's ``presets: [traefik]`` appends these rules after its own (so its own ``deny`` rules come
first). Presets grant paths only: what a create may ask of the host stays the profile's ``powers``.
"""

from __future__ import annotations

from powerstrip.adapters.policy.model import Rule
from powerstrip.adapters.policy.paths import compile_glob

# what every Docker client does first: negotiate the API version (HEAD /_ping since Traefik 2.11.31/3.6.1)
_HANDSHAKE = ("GET,HEAD /_ping", "GET /version")

_READ_CONTAINERS = ("GET /containers/json", "GET /containers/*/json")

_PRESETS: dict[str, tuple[str, ...]] = {
    # docker and swarm providers: list and inspect containers, follow events; services/tasks/networks in swarm mode
    "traefik": (*_HANDSHAKE, *_READ_CONTAINERS, "GET /events", "GET /info", "GET /services", "GET /tasks",
                "GET /networks", "GET /networks/*"),
    # dashboards: lists, inspect, one-shot stats
    "homepage": (*_HANDSHAKE, *_READ_CONTAINERS, "GET /containers/*/stats", "GET /info", "GET /services",
                 "GET /tasks"),
    # log viewer: lists, inspect, logs and stats streams, events
    "dozzle": (*_HANDSHAKE, *_READ_CONTAINERS, "GET /containers/*/logs", "GET /containers/*/stats", "GET /events",
               "GET /info"),
    # updater: inspect, pull, then stop, rename, re-create, start and clean up
    "watchtower": (*_HANDSHAKE, *_READ_CONTAINERS, "GET /images/**", "POST /images/create",
                   "DELETE /images/**", "POST /containers/create", "POST /containers/*/start",
                   "POST /containers/*/stop", "POST /containers/*/kill", "POST /containers/*/rename",
                   "POST /containers/*/wait", "DELETE /containers/*", "POST /networks/*/connect",
                   "POST /networks/*/disconnect", "GET /networks", "GET /info"),
    # CI jobs (docker CLI / GitLab runner style): images, build, run, exec, logs, attach, networks and volumes
    "ci-runner": (*_HANDSHAKE, "GET /info", "GET,POST,DELETE /containers/**", "HEAD /containers/*/archive",
                  "PUT /containers/*/archive", "GET,POST,DELETE /images/**", "POST /build", "POST /build/prune",
                  "POST /session", "GET,POST /exec/**", "GET,POST,DELETE /networks/**", "GET,POST,DELETE /volumes/**",
                  "GET /events", "GET /system/df", "GET /distribution/*/json"),
    # a full management UI: every endpoint (its powers are still the profile's)
    "portainer": ("* /**",),
}

PRESETS: dict[str, list[Rule]] = {
    name: [Rule("allow", (compile_glob(pattern),), None, None, 0, f"preset {name}") for pattern in patterns]
    for name, patterns in _PRESETS.items()
}
