"""An SDK adapter that lets every request through unchanged: the tests of the judged relay hook everything with it."""

from powerstrip.sdk import Adapter, Request

adapter = Adapter("pass")


@adapter.pre("* /*")
def let_through(request: Request) -> None:
    """Nothing: the request goes back to the relay machine as it came (``Judged``)."""
