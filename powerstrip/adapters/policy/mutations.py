"""What a profile changes in its clients' requests and answers: labels, environment and image remaps on what
it creates (before the policy judges it, so the judged body is the one that runs), and redaction of
inspect answers."""

from __future__ import annotations

from typing import Any

from powerstrip.adapters.policy.model import Profile
from powerstrip.adapters.policy.paths import LEGACY_START
from powerstrip.adapters.policy.powers import normalise_image, split_option


def mutate_create(profile: Profile, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` of a create (``path`` version-stripped) with the profile's labels, env and image remap, and for
    a profile that may not run as root, ``no-new-privileges`` on the container (a legacy start body too)."""
    if profile.labels and path in ("/containers/create", "/networks/create", "/volumes/create", "/services/create"):
        body = {**body, "Labels": {**(body.get("Labels") or {}), **dict(profile.labels)}}
    confine = not profile.powers.root and not profile.powers.unrestricted
    if confine and LEGACY_START.fullmatch(path) and body:
        return no_new_privileges(body)  # API < 1.24: the start body is the HostConfig dockerd applies
    if path != "/containers/create":
        return body
    if confine:
        host = body.get("HostConfig")
        body = {**body, "HostConfig": no_new_privileges(host if isinstance(host, dict) else {})}
    if profile.env:
        names = {name for name, _ in profile.env}
        kept = [item for item in body.get("Env") or [] if str(item).split("=", 1)[0] not in names]
        body = {**body, "Env": kept + [f"{name}={value}" for name, value in profile.env]}
    image = body.get("Image")
    if profile.image_remap and isinstance(image, str):
        body = {**body, "Image": remap_image(image, profile.image_remap)}
    return body


def no_new_privileges(host: dict[str, Any]) -> dict[str, Any]:
    """``host`` (a HostConfig) with ``no-new-privileges`` last in its SecurityOpt, the client's own settings of it
    dropped (dockerd applies the last). ``root: false`` judges the user a container starts as; without this, a
    setuid-root file (copied in with ``docker cp``, or in the image) would still make a process uid 0."""
    options = host.get("SecurityOpt")
    kept = [option for option in options if split_option(str(option))[0] != "no-new-privileges"] \
        if isinstance(options, list) else []
    return {**host, "SecurityOpt": [*kept, "no-new-privileges"]}


def remap_image(image: str, remap: tuple[tuple[str, str], ...]) -> str:
    """The first prefix of ``remap`` that the normalised reference starts with is replaced
    (``docker.io/library/`` → ``mirror.local/library/``); no match leaves the image as written."""
    full = normalise_image(image)
    for prefix, replacement in remap:
        if full.startswith(prefix):
            return replacement + full[len(prefix):]
    return image


def redacted(info: Any, profile: Profile) -> Any:
    """A container inspect without what the profile must not see."""
    if not isinstance(info, dict):
        return info
    info = dict(info)
    if profile.redact.env and isinstance(info.get("Config"), dict):
        config = dict(info["Config"])
        config["Env"] = [f"{str(item).split('=', 1)[0]}=<redacted>" for item in config.get("Env") or []]
        info["Config"] = config
    if profile.redact.mounts:
        info["Mounts"] = [{**mount, "Source": "<redacted>"} if isinstance(mount, dict) else mount
                          for mount in info.get("Mounts") or []]
        if isinstance(info.get("HostConfig"), dict):
            host = dict(info["HostConfig"])
            host["Binds"] = ["<redacted>:" + str(bind).split(":", 1)[-1] for bind in host.get("Binds") or []]
            info["HostConfig"] = host
    return info
