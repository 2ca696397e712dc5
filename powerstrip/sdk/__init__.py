"""The adapter SDK: write an adapter in a few lines of Python.

    from powerstrip.sdk import Adapter, Reject, Request

    adapter = Adapter("policy")

    @adapter.pre("POST /*/containers/create")
    def no_privileged(request: Request) -> None:
        if (request.json.get("HostConfig") or {}).get("Privileged"):
            raise Reject(403, "privileged containers are not allowed here")

Run it in-process (adapters.yml: ``policy: python:mymodule:adapter``) or as an HTTP service
(``powerstrip adapter run mymodule:adapter``); test it with ``powerstrip.sdk.testing``. See docs/adapters.md.
"""

from powerstrip.sdk.adapter import Adapter
from powerstrip.sdk.messages import Request, Response
from powerstrip.sdk.reject import Reject

__all__ = ["Adapter", "Reject", "Request", "Response"]
