"""What a profile changes in its clients' requests and answers: labels, environment and image remaps on what
it creates (before the policy judges it, so the judged body is the one that runs), and redaction of
inspect answers."""

from __future__ import annotations

from typing import Any

from powerstrip.adapters.policy.model import Profile
from powerstrip.adapters.policy.powers import normalise_image


def mutate_create(profile: Profile, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` of a create (``path`` version-stripped) with the profile's labels, env and image remap."""
    if profile.labels and path in ("/containers/create", "/networks/create", "/volumes/create", "/services/create"):
        body = {**body, "Labels": {**(body.get("Labels") or {}), **dict(profile.labels)}}
    if path != "/containers/create":
        return body
    if profile.env:
        names = {name for name, _ in profile.env}
        kept = [item for item in body.get("Env") or [] if str(item).split("=", 1)[0] not in names]
        body = {**body, "Env": kept + [f"{name}={value}" for name, value in profile.env]}
    image = body.get("Image")
    if profile.image_remap and isinstance(image, str):
        body = {**body, "Image": remap_image(image, profile.image_remap)}
    return body


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
