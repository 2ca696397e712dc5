"""An in-process SDK adapter that fails in the ways the hook path must survive (test_hook_failures.py).

The create request's ``?misbehave=`` query picks the failure; dockerd ignores the parameter.
"""

from powerstrip.sdk import Adapter, Reject, Request, Response

adapter = Adapter("misbehaving")


def _recurse(depth: int) -> int:
    return _recurse(depth + 1) + 1


@adapter.pre("POST /*/containers/create")
def misbehave(request: Request) -> None:
    mode = (request.query.get("misbehave") or [""])[0]
    if mode == "recursion":
        _recurse(0)
    elif mode == "crlf-target":
        request.target = "/v1.41/containers/create HTTP/1.1\r\nX-Smuggled: 1\r\n\r\nGET /x"
    elif mode == "surrogate-body":
        request.body = '{"Image": "\ud800"}'
    elif mode == "ambiguous-body":
        request.body = '{"Image": "ps-busybox", "HostConfig": {"Privileged": false, "privileged": true}}'
    elif mode == "crlf-message":
        raise Reject(403, "refused\r\n2026-12-01 00:00:00,000 INFO powerstrip.access: GET /forged -> 200")
    elif mode == "bad-method":
        request.method = "GE T"


@adapter.post("GET /*/version")
def split_response(request: Request, response: Response) -> None:
    if "misbehave=content-type" in request.target:
        response.content_type = "application/json\r\nSet-Cookie: forged=1"
