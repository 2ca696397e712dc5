"""An SDK adapter the integration tests run in-process and over both HTTP protocols."""

from powerstrip.sdk import Adapter, Reject, Request, Response

adapter = Adapter("sample")


@adapter.pre("POST /*/containers/create")
def label_and_env(request: Request) -> None:
    request.json.setdefault("Labels", {})["checked"] = "yes"
    request.json["Env"] = [*(request.json.get("Env") or []), "SDK=1"]


@adapter.pre("POST /*/containers/create")
def refuse_privileged(request: Request) -> None:
    if (request.json.get("HostConfig") or {}).get("Privileged"):
        raise Reject(403, "privileged containers are not allowed here")


@adapter.post("GET /*/version")
def powered_by(request: Request, response: Response) -> None:
    response.json["PoweredBy"] = "powerstrip-sdk"
    request.warn("answered through the sample adapter")  # a Warning header in-process and over protocol 2
