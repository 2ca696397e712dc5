"""Ownership: what a profile with ``owner`` creates carries its owner label, its lists, events and prunes are
scoped to that label, and another owner's object named by id or name is answered as if it did not exist."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

from powerstrip.adapters.net.docker_api import DockerAPI, DockerError
from powerstrip.adapters.policy.model import Policy, Profile
from powerstrip.sdk import Reject, Request

CREATES = ("/containers/create", "/networks/create", "/volumes/create", "/services/create")
# images are shared (base images have no owner), so their list is not scoped; their prune is, so that a scoped
# client never removes images it did not label as its own
_SCOPED = ("/containers/json", "/networks", "/volumes", "/services", "/events", "/containers/prune",
           "/networks/prune", "/volumes/prune", "/images/prune")


def _config_labels(info: dict[str, Any]) -> Any:
    return (info.get("Config") or {}).get("Labels")


@dataclass(frozen=True, slots=True)
class _Kind:
    """An object kind addressed by id or name in the path; ``missing`` is dockerd's own 404 message."""

    path: re.Pattern[str]
    inspect: str
    labels: Callable[[dict[str, Any]], Any]
    missing: str
    not_ids: tuple[str, ...] = ("create", "json", "prune")
    methods: tuple[str, ...] | None = None  # None: every method


_KINDS = (
    _Kind(re.compile(r"/containers/([^/]+)(?:/.*)?"), "/containers/{}/json", _config_labels, "No such container: {}"),
    _Kind(re.compile(r"/networks/([^/]+)(?:/.*)?"), "/networks/{}", lambda i: i.get("Labels"), "network {} not found"),
    _Kind(re.compile(r"/volumes/([^/]+)"), "/volumes/{}", lambda i: i.get("Labels"), "get {}: no such volume"),
    _Kind(re.compile(r"/services/([^/]+)(?:/.*)?"), "/services/{}", lambda i: (i.get("Spec") or {}).get("Labels"),
          "service {} not found"),
    # an exec instance belongs to its container's owner
    _Kind(re.compile(r"/exec/([^/]+)(?:/.*)?"), "/exec/{}/json", lambda i: i.get("ContainerID"),
          "No such exec instance: {}"),
    # images are shared (every client runs base images): only removing one needs it to be the profile's own
    _Kind(re.compile(r"/images/(.+)"), "/images/{}/json", _config_labels, "No such image: {}", methods=("DELETE",)),
)


async def check_owner(docker: DockerAPI, policy: Policy, profile: Profile, method: str, path: str) -> None:
    """Raise a 404 ``Reject`` when ``method path`` names an object of another owner (or of none)."""
    for kind in _KINDS:
        match = kind.path.fullmatch(path)
        if match is None or match[1] in kind.not_ids or (kind.methods is not None and method not in kind.methods):
            continue
        name = unquote(match[1])
        info = await _inspect(docker, kind.inspect.format(quote(name, safe="")), name)
        if info is None:
            return  # the daemon answers the 404 itself
        labels = kind.labels(info)
        if isinstance(labels, str):  # an exec: its container's labels
            container = await _inspect(docker, f"/containers/{quote(labels, safe='')}/json", name)
            labels = _config_labels(container or {})
        if (labels or {}).get(policy.owner_label) != profile.owner:
            raise Reject(404, kind.missing.format(name))
        return


async def _inspect(docker: DockerAPI, path: str, name: str) -> dict[str, Any] | None:
    try:
        info = await docker.call("GET", path)
    except DockerError as exc:
        if exc.status == 404:
            return None
        raise Reject(502, f"policy: cannot check the owner of {name!r}: {exc.message}") from None
    return info if isinstance(info, dict) else None


def referenced_containers(body: dict[str, Any]) -> list[str]:
    """The other containers a create names: their mounts (``VolumesFrom``), their namespaces (``container:``
    modes) and ``Links``: a scoped client may only name its own."""
    host = body.get("HostConfig") if isinstance(body.get("HostConfig"), dict) else {}
    found = [str(item).split(":", 1)[0] for item in host.get("VolumesFrom") or []]
    found += [str(host.get(field))[len("container:"):] for field in ("NetworkMode", "PidMode", "IpcMode", "Cgroup")
              if str(host.get(field) or "").startswith("container:")]
    found += [str(link).split(":", 1)[0].lstrip("/") for link in host.get("Links") or []]
    return [name for name in found if name]


_DAEMON_NETWORKS = ("", "default", "bridge", "host", "none")  # no owner; host/none are judged as powers


def referenced_networks(body: dict[str, Any]) -> list[str]:
    """The user-defined networks a create attaches to: ``NetworkMode`` and ``NetworkingConfig`` endpoints."""
    host = body.get("HostConfig") if isinstance(body.get("HostConfig"), dict) else {}
    mode = str(host.get("NetworkMode") or "")
    networking = body.get("NetworkingConfig") if isinstance(body.get("NetworkingConfig"), dict) else {}
    names = [mode] if not mode.startswith("container:") else []
    names += [str(name) for name in (networking.get("EndpointsConfig") or {})]
    return [name for name in names if name not in _DAEMON_NETWORKS]


async def check_references(docker: DockerAPI, policy: Policy, profile: Profile, path: str,
                           body: dict[str, Any]) -> None:
    """A create, or a network connect, may name only the profile's own containers and networks; one that is
    another owner's or does not exist is refused alike (403: a 404 would send the docker CLI off to pull the
    image, and the two answers must not tell which names exist)."""
    if path == "/containers/create":
        wanted = [("container", name) for name in referenced_containers(body)]
        wanted += [("network", name) for name in referenced_networks(body)]
    elif re.fullmatch(r"/networks/[^/]+/(?:dis)?connect", path) and isinstance(body.get("Container"), str):
        wanted = [("container", body["Container"])]
    else:
        return
    for kind, name in wanted:
        inspect = f"/containers/{quote(name, safe='')}/json" if kind == "container" else f"/networks/{quote(name, safe='')}"
        info = await _inspect(docker, inspect, name)
        labels = (_config_labels(info) if kind == "container" else info.get("Labels")) if info else None
        if (labels or {}).get(policy.owner_label) != profile.owner:
            raise Reject(403, f"policy (profile {profile.name!r}): {kind} {name!r} named in the request is not one "
                              "of this profile's")


def stamp_build(policy: Policy, profile: Profile, request: Request) -> None:
    """``POST /build``: the owner label into the image's labels (the ``labels`` query, a JSON object)."""
    query = request.query
    try:
        labels = json.loads((query.get("labels") or ["{}"])[0] or "{}")  # dockerd reads the first
    except ValueError:
        raise Reject(400, "policy: the labels parameter is not JSON") from None
    if not isinstance(labels, dict):
        raise Reject(400, "policy: the labels parameter is not a JSON object")
    query["labels"] = [json.dumps({**labels, policy.owner_label: profile.owner}, separators=(",", ":"))]
    _set_query(request, query)


def stamp_owner(policy: Policy, profile: Profile, body: dict[str, Any]) -> dict[str, Any]:
    """The body with the owner label (the client's own label of that name cannot fake an owner)."""
    if profile.owner is None:
        return body
    return {**body, "Labels": {**(body.get("Labels") or {}), policy.owner_label: profile.owner}}


def scope_lists(policy: Policy, profile: Profile, request: Request, path: str) -> None:
    """Lists, events and prunes see only the profile's own objects: an owner label filter is added to the query
    (Docker ANDs label filters, so the client's own filters still apply within its objects)."""
    if profile.owner is None or path not in _SCOPED:
        return
    query = request.query
    try:
        filters = json.loads((query.get("filters") or ["{}"])[0] or "{}")  # dockerd reads the first
    except ValueError:
        raise Reject(400, "policy: the filters parameter is not JSON") from None
    if not isinstance(filters, dict):
        raise Reject(400, "policy: the filters parameter is not a JSON object")
    existing = filters.get("label") or []
    if isinstance(existing, dict):  # the old {"k=v": true} form
        existing = [key for key, on in existing.items() if on]
    filters["label"] = [*existing, f"{policy.owner_label}={profile.owner}"]
    query["filters"] = [json.dumps(filters, separators=(",", ":"))]
    _set_query(request, query)


def _set_query(request: Request, query: dict[str, list[str]]) -> None:
    request.target = request.target.partition("?")[0] + "?" + urlencode(
        [(key, value) for key, values in query.items() for value in values])
