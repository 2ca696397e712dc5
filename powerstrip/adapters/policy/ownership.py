"""Ownership: what a profile with ``owner`` creates carries its owner label, its lists, events and prunes are
scoped to that label, and another owner's object named by id or name is answered as if it did not exist."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from powerstrip.adapters.net.docker_api import DockerAPI, DockerError
from powerstrip.adapters.policy.model import Policy, Profile
from powerstrip.adapters.policy.paths import LEGACY_START, SERVICE_SPEC
from powerstrip.adapters.policy.powers import service_networks
from powerstrip.sdk import Reject, Request

CREATES = ("/containers/create", "/networks/create", "/volumes/create", "/services/create", "/secrets/create",
           "/configs/create")
# images are shared (base images have no owner), so their list is not scoped; their prune is, so that a scoped
# client never removes images it did not label as its own
_SCOPED = ("/containers/json", "/networks", "/volumes", "/services", "/events", "/containers/prune",
           "/networks/prune", "/volumes/prune", "/images/prune", "/secrets", "/configs",
           "/tasks")  # a task list's label filter matches its service's labels (swarmkit's ServiceAnnotations)


def _config_labels(info: dict[str, Any]) -> Any:
    return (info.get("Config") or {}).get("Labels")


def _spec_labels(info: dict[str, Any]) -> Any:
    """A swarm object's labels (a service's, a secret's, a config's) are its spec's."""
    return (info.get("Spec") or {}).get("Labels")


def _task_labels(info: dict[str, Any]) -> Any:
    return ((info.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels")


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
    _Kind(re.compile(r"/services/([^/]+)(?:/.*)?"), "/services/{}", _spec_labels, "service {} not found"),
    _Kind(re.compile(r"/secrets/([^/]+)(?:/.*)?"), "/secrets/{}", _spec_labels, "secret {} not found"),
    _Kind(re.compile(r"/configs/([^/]+)(?:/.*)?"), "/configs/{}", _spec_labels, "config {} not found"),
    # a task belongs to its service's owner: its spec is the service's, ContainerSpec labels stamped (stamp_owner)
    _Kind(re.compile(r"/tasks/([^/]+)(?:/.*)?"), "/tasks/{}", _task_labels, "task {} not found"),
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
        name = match[1]  # policy_path decoded the path once, as dockerd's router does: decoding again would
        # judge another name than the one dockerd reads ('b%2541net' is dockerd's 'b%41net', not 'bAnet')
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


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _host(body: dict[str, Any], start: bool) -> dict[str, Any]:
    """The HostConfig of a create body, or the body itself for a legacy start (API < 1.24 takes a HostConfig
    as the start body, and dockerd 20.10 applies it: links, modes, mounts)."""
    return body if start else _dict(body.get("HostConfig"))


def _endpoints(body: dict[str, Any], start: bool) -> dict[str, Any]:
    return {} if start else _dict(_dict(body.get("NetworkingConfig")).get("EndpointsConfig"))


def _link_names(links: Any) -> list[str]:
    return [str(link).split(":", 1)[0].lstrip("/") for link in _list(links)]


def referenced_containers(body: dict[str, Any], start: bool = False) -> list[str]:
    """The other containers a create (or, ``start``, a legacy start's HostConfig body) names: their mounts
    (``VolumesFrom``), their namespaces (``container:`` modes) and ``Links`` (also an endpoint's): a scoped
    client may only name its own."""
    host = _host(body, start)
    found = [str(item).split(":", 1)[0] for item in _list(host.get("VolumesFrom"))]
    found += [str(host.get(field))[len("container:"):] for field in ("NetworkMode", "PidMode", "IpcMode", "Cgroup")
              if str(host.get(field) or "").startswith("container:")]
    found += _link_names(host.get("Links"))
    for endpoint in _endpoints(body, start).values():
        found += _link_names(_dict(endpoint).get("Links"))
    return list(dict.fromkeys(name for name in found if name))  # each judged once


_DAEMON_NETWORKS = ("", "default", "bridge", "host", "none")  # no owner; host/none are judged as powers


def referenced_networks(body: dict[str, Any], start: bool = False) -> list[str]:
    """The user-defined networks a create (or, ``start``, a legacy start's HostConfig body) attaches to:
    ``NetworkMode`` and the ``NetworkingConfig`` endpoints, by name and by ``NetworkID`` (dockerd's
    getNetworkID prefers an endpoint's NetworkID to its name: every one is judged)."""
    host = _host(body, start)
    mode = str(host.get("NetworkMode") or "")
    names = [mode] if not mode.startswith("container:") else []
    for name, endpoint in _endpoints(body, start).items():
        names += [str(name), str(_dict(endpoint).get("NetworkID") or "")]
    return list(dict.fromkeys(name for name in names if name not in _DAEMON_NETWORKS))


def referenced_volumes(host: dict[str, Any]) -> list[str]:
    """The named volumes a HostConfig (or a service's ContainerSpec, with ``Mounts`` alone) mounts: a ``Binds``
    entry whose source is not a path (``vol:/x``; Linux dockerd takes a source that is not absolute for a
    volume name, and a lone ``/x`` is an anonymous volume), and ``Mounts`` of type volume with a ``Source``."""
    found = []
    for bind in _list(host.get("Binds")):
        parts = str(bind).split(":")
        if len(parts) >= 2 and not parts[0].startswith("/"):
            found.append(parts[0])
    for mount in _list(host.get("Mounts")):
        mount = _dict(mount)
        if str(mount.get("Type") or "").lower() == "volume":  # lowered as the powers check does
            found.append(str(mount.get("Source") or ""))
    return list(dict.fromkeys(name for name in found if name))


_CONNECT = re.compile(r"/networks/[^/]+/(?:dis)?connect")
_REFERENCE_INSPECT: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "container": ("/containers/{}/json", _config_labels),
    "network": ("/networks/{}", lambda i: i.get("Labels")),
    "volume": ("/volumes/{}", lambda i: i.get("Labels")),
    "secret": ("/secrets/{}", _spec_labels),
    "config": ("/configs/{}", _spec_labels),
}


def references(path: str, body: dict[str, Any], query: Mapping[str, list[str]] | None = None) -> list[tuple[str, str]]:
    """The (kind, name) pairs of the other objects a request body (or a build's query) names, each to be the
    profile's own."""
    if path == "/build":  # its RUN containers join the network (or the container's namespace) it names
        found = []
        for mode in (query or {}).get("networkmode") or ():
            found += [("container", name) for name in referenced_containers({"NetworkMode": mode}, start=True)]
            found += [("network", name) for name in referenced_networks({"NetworkMode": mode}, start=True)
                      if name.lower() != "host"]
        return found
    if path == "/containers/create" or LEGACY_START.fullmatch(path):
        start = path != "/containers/create"
        return ([("container", name) for name in referenced_containers(body, start)]
                + [("network", name) for name in referenced_networks(body, start)]
                + [("volume", name) for name in referenced_volumes(_host(body, start))])
    if _CONNECT.fullmatch(path):
        wanted = [("container", body["Container"])] if isinstance(body.get("Container"), str) else []
        endpoint = _dict(body.get("EndpointConfig"))
        wanted += [("container", name) for name in _link_names(endpoint.get("Links")) if name]
        if endpoint.get("NetworkID"):  # preferred to the path's network by dockerd's getNetworkID
            wanted.append(("network", str(endpoint["NetworkID"])))
        return wanted
    if SERVICE_SPEC.fullmatch(path):
        spec = _dict(_dict(body.get("TaskTemplate")).get("ContainerSpec"))
        wanted = [("volume", name) for name in referenced_volumes({"Mounts": spec.get("Mounts")})]
        wanted += [("network", target) for _, target in service_networks(body)
                   if target.lower() not in (*_DAEMON_NETWORKS, "ingress")]
        for kind, field in (("secret", "Secrets"), ("config", "Configs")):  # swarmkit resolves the ID
            prefix = kind.capitalize()
            wanted += [(kind, str(_dict(item).get(f"{prefix}ID") or _dict(item).get(f"{prefix}Name") or ""))
                       for item in _list(spec.get(field))]
        return [(kind, name) for kind, name in wanted if name]
    return []


async def check_references(docker: DockerAPI, policy: Policy, profile: Profile, path: str,
                           body: dict[str, Any], query: Mapping[str, list[str]] | None = None) -> None:
    """A create, a legacy start's HostConfig body, a network connect or a service may name only the profile's
    own containers, networks and volumes; one that is another owner's or does not exist is refused alike (403:
    a 404 would send the docker CLI off to pull the image, and the two answers must not tell which names
    exist). A named volume that does not exist would be created by dockerd without the owner label, so it is
    refused too: the profile creates it first (``docker volume create``)."""
    for kind, name in references(path, body, query):
        inspect, labels_of = _REFERENCE_INSPECT[kind]
        info = await _inspect(docker, inspect.format(quote(name, safe="")), name)
        if ((labels_of(info) if info else None) or {}).get(policy.owner_label) != profile.owner:
            hint = " (create a volume with this profile before mounting it)" if kind == "volume" else ""
            raise Reject(403, f"policy (profile {profile.name!r}): {kind} {name!r} named in the request is not one "
                              f"of this profile's{hint}")


async def check_query_owner(docker: DockerAPI, policy: Policy, profile: Profile, method: str, path: str,
                            query: Mapping[str, list[str]]) -> None:
    """The objects a query names: ``POST /commit?container=x`` commits container ``x`` (another owner's is
    answered dockerd's 404, as by path), and a tag being moved — ``POST /images/{name}/tag?repo=&tag=``,
    ``POST /commit?repo=&tag=``, ``POST /build?t=`` — must not name an existing image that is not the
    profile's (403), or another owner's image would be replaced under its name. dockerd reads the first
    value of ``container``, ``repo`` and ``tag`` (every ``t``): every value is judged. An import names its image
    as a tag move does; a pull may not move a tag off another owner's image (pulled images have no owner); a load's
    tags are inside its archive, so a load needs ``image_loads``."""
    if method == "POST" and path == "/images/load" and not profile.powers.image_loads:
        raise Reject(403, f"policy (profile {profile.name!r}): loading images is not allowed for a profile with an "
                          "owner: the tags are inside the archive, which the policy does not read, so a load could "
                          "move another owner's tag (image_loads)")
    if method != "POST" or not (path in ("/commit", "/build", "/images/create") or _TAG.fullmatch(path)):
        return
    if path == "/commit":
        for name in query.get("container") or ():
            if not name:
                continue
            info = await _inspect(docker, f"/containers/{quote(name, safe='')}/json", name)
            if info is not None and (_config_labels(info) or {}).get(policy.owner_label) != profile.owner:
                raise Reject(404, f"No such container: {name}")
    for reference in moved_tags(path, query):
        labels = await _image_labels(docker, reference)
        if labels is not None and labels.get(policy.owner_label) != profile.owner:
            raise Reject(403, f"policy (profile {profile.name!r}): the tag {reference!r} names an image that is not "
                              "one of this profile's: moving it is not allowed")
    if path != "/images/create" or not _pulls(query):
        return
    pulled = pulled_tags(query)
    if pulled is None:
        raise Reject(403, f"policy (profile {profile.name!r}): a pull without a tag pulls every tag of the repository "
                          "and may move them off other owners' images: name the tag")
    for reference in pulled:
        labels = await _image_labels(docker, reference)
        if labels is not None and labels.get(policy.owner_label) not in (None, profile.owner):
            raise Reject(403, f"policy (profile {profile.name!r}): the tag {reference!r} names an image of another "
                              "owner: a pull would move it")


async def _image_labels(docker: DockerAPI, reference: str) -> dict[str, Any] | None:
    """The labels of the image ``reference`` names (empty for one without), None when it names none."""
    info = await _inspect(docker, f"/images/{quote(reference, safe='')}/json", reference)
    return None if info is None else _dict(_config_labels(info))


_TAG = re.compile(r"/images/.+/tag")


def moved_tags(path: str, query: Mapping[str, list[str]]) -> list[str]:
    """The image references a request (re)points at an image whose content the client chose, as dockerd's TagImage
    forms them: ``repo`` with ``tag`` replacing its own tag, or ``repo`` as given (``:latest`` when it has neither
    tag nor digest). An import (``POST /images/create`` without ``fromImage``) names its image so too."""
    if path == "/build":
        return [_reference(name, "") for name in query.get("t") or () if name]
    if path == "/commit" or _TAG.fullmatch(path) or (path == "/images/create" and not _pulls(query)):
        return [_reference(repo, tag) for repo in query.get("repo") or () if repo
                for tag in query.get("tag") or [""]]
    return []


def _pulls(query: Mapping[str, list[str]]) -> bool:
    """``POST /images/create`` pulls when its first ``fromImage`` is not empty (dockerd's ``r.Form.Get``), else imports."""
    return bool((query.get("fromImage") or [""])[0])


def pulled_tags(query: Mapping[str, list[str]]) -> list[str] | None:
    """The tags a pull points at what it pulls (every ``fromImage`` and ``tag`` value judged): ``fromImage`` with
    ``tag`` replacing its own tag; none for a digest (content-addressed, it moves nothing); None when it has
    neither tag nor digest, which pulls every tag of the repository."""
    found: list[str] = []
    for image in (value for value in query.get("fromImage") or () if value):
        last = image.partition("@")[0].rpartition("/")[2]
        for tag in query.get("tag") or [""]:
            if ":" in tag:  # a digest: a tag cannot hold a colon
                continue
            if tag:
                found.append(_reference(image, tag))
            elif "@" in image:
                continue
            elif ":" in last:
                found.append(image)
            else:
                return None
    return found


def _reference(repo: str, tag: str) -> str:
    name, at, digest = repo.partition("@")
    head, slash, last = name.rpartition("/")
    bare = head + slash + last.split(":", 1)[0]
    if tag:
        return f"{bare}:{tag}"
    return repo if at or ":" in last else f"{repo}:latest"


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


_RELABELLED = re.compile(r"/(?:services|secrets|configs)/[^/]+/update")  # an update sends the whole spec, labels too


def stamped(path: str) -> bool:
    """Whether a POST to ``path`` (version-stripped) makes an object or sets its labels: its body is stamped."""
    return path in CREATES or _RELABELLED.fullmatch(path) is not None


def stamp_owner(policy: Policy, profile: Profile, body: dict[str, Any]) -> dict[str, Any]:
    """The body with the owner label (the client's own label of that name cannot fake an owner). A service's
    task containers carry its ContainerSpec's labels: they are stamped too, or a service could plant containers
    in another owner's lists."""
    if profile.owner is None:
        return body
    owned = {**body, "Labels": {**(body.get("Labels") or {}), policy.owner_label: profile.owner}}
    template = body.get("TaskTemplate")
    if isinstance(template, dict) and isinstance(template.get("ContainerSpec"), dict):
        spec = template["ContainerSpec"]
        spec = {**spec, "Labels": {**_dict(spec.get("Labels")), policy.owner_label: profile.owner}}
        owned["TaskTemplate"] = {**template, "ContainerSpec": spec}
    return owned


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
