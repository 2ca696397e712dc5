"""The hook the hooked candidates run: an SDK adapter that passes every request on unchanged.

The same object runs in-process (``python:bench.noop:adapter``) and as an HTTP service
(``powerstrip adapter run bench.noop:adapter``), so the figures differ only by how it is called.
"""

from powerstrip.sdk import Adapter, Request

from bench.endpoints import HOOKED_ENDPOINTS

adapter = Adapter("bench-noop")


@adapter.pre(*HOOKED_ENDPOINTS)
def _pass(request: Request) -> None:
    """Change nothing: what is measured is the cost of the hook machinery itself."""
