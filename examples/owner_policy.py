"""Tutorial adapter (docs/adapters.md): label containers with their owner, refuse privileged ones."""

import pwd

from powerstrip.sdk import Adapter, Reject, Request

adapter = Adapter("owner-policy")


def user_name(uid: int | None) -> str:
    try:
        return pwd.getpwuid(uid).pw_name if uid is not None else "unknown"
    except KeyError:
        return str(uid)


@adapter.pre("POST /*/containers/create")
def label_owner(request: Request) -> None:
    labels = request.json.get("Labels") or {}
    labels["owner"] = user_name(request.peer.uid)
    request.json["Labels"] = labels


@adapter.pre("POST /*/containers/create")
def refuse_privileged(request: Request) -> None:
    if (request.json.get("HostConfig") or {}).get("Privileged"):
        raise Reject(403, "privileged containers are not allowed here")
