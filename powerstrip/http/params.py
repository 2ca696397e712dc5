"""Request parameters as dockerd's handlers read them, and the targets and parameters with no single reading.

dockerd reads a parameter with Go's ``r.FormValue``/``r.Form``: the query is everything after the first ``?``
(a request target has no fragment, so a ``#`` is part of it), split on ``&`` by ``url.ParseQuery``, which
*skips* a pair with an invalid %-escape or a ``;`` (Go 1.17 and later; older Go split on it) and keeps the
decoded bytes as they are. Python's ``urlsplit`` cuts a ``#...`` "fragment" off, ``parse_qs`` keeps a bad escape
as text and turns invalid UTF-8 into U+FFFD: a hook reading the target that way could judge other parameters than
the ones dockerd executes (``?x=1#&networkmode=host``, ``?filters=%zz&filters={}``). And Go's ``r.Form`` takes
parameters from the *body* too: ``ParseForm`` reads an ``application/x-www-form-urlencoded`` body before the
query (its values come first, so ``r.Form.Get`` returns them), and ``FormValue`` would read a
``multipart/form-data`` one when it is the first to parse the form (dockerd 20.10's build parses it another
way first, as tried here; the gateway does not depend on that order).

So a hooked request is refused (``AmbiguousRequest``, a 400) when its target is not a path (``x:/containers/create``
is one to dockerd), has a ``#``, or has in its query a raw byte outside printable ASCII, a ``;``, an invalid
%-escape or an escape that does not decode to UTF-8, and when it carries a form body: what remains reads the same
in Go, in Python and in an adapter's own URL parser, and ``query_params`` is that one reading (values in order;
dockerd's ``FormValue`` takes the first).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

# Go's url.ParseQuery skips a pair whose escapes are invalid: '%' not followed by two hex digits.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PRINTABLE = re.compile(r"[\x21-\x7e]*")
# A Content-Type field whose media type is one Go's net/http reads parameters from (ParseForm, FormValue).
_FORM_FIELD = re.compile(rb"\ncontent-type:[\t ]*(application/x-www-form-urlencoded|multipart/form-data)[\t ]*[;\r]",
                         re.IGNORECASE)


class AmbiguousRequest(ValueError):
    """The client sent a target or parameters that dockerd and a hook could read differently; the message says how."""


def check_target(target: str) -> None:
    """``AmbiguousRequest`` unless ``target`` is a path (origin-form) whose query reads one way.

    dockerd routes ``x:/containers/create`` and ``http://host/containers/create`` as ``/containers/create``
    (Go's ``url.ParseRequestURI`` takes a scheme and an authority): the gateway's own routes and rules read
    them that way too (``normalize_path``), but an adapter matching the target it is given would not.
    """
    if not target.startswith("/"):
        raise AmbiguousRequest("the request target is not a path starting with '/' (dockerd would read a scheme "
                               "or authority off it, a hook might not); send the path alone")
    if "%" in _raw_query(target):  # only an escape can decode to bytes that are not UTF-8
        query_params(target)


def query_params(target: str) -> dict[str, list[str]]:
    """The parameters of request ``target`` (path and query), as dockerd reads them.

    Keys map to their values in the order sent; a key without ``=`` has the value ``""``. Raises
    ``AmbiguousRequest`` for a target whose query Go and Python would read differently (see the module).
    """
    params: dict[str, list[str]] = {}
    for pair in _raw_query(target).split("&"):
        if pair:
            key, _, value = pair.partition("=")
            params.setdefault(_decoded(key), []).append(_decoded(value))
    return params


def _raw_query(target: str) -> str:
    """The query of ``target`` as sent, once it is known to read the same in Go and in Python."""
    if "#" in target:
        raise AmbiguousRequest("the request target has a '#', which Go reads as part of the path or query and "
                               "URL parsers as a fragment they drop; percent-encode it (%23)")
    query = target.partition("?")[2]
    if not query:
        return query
    if not _PRINTABLE.fullmatch(query):
        raise AmbiguousRequest("the query has a byte outside printable ASCII; percent-encode it")
    if ";" in query:
        raise AmbiguousRequest("the query has a ';', which Go (since 1.17) drops with its whole parameter and "
                               "older parsers read as a separator; percent-encode it (%3B)")
    if "%" in query and _BAD_ESCAPE.search(query) is not None:
        raise AmbiguousRequest("the query has a '%' that is not a %XX escape: dockerd would drop that parameter "
                               "and a hook would read it; write '%' as %25")
    return query


def _decoded(text: str) -> str:
    """One key or value: '+' is a space, %XX a byte, the bytes UTF-8 (Go keeps invalid bytes, Python would not)."""
    if "%" not in text and "+" not in text:
        return text
    try:
        return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise AmbiguousRequest("a query parameter's %-escapes do not decode to UTF-8 text") from None


def form_body_type(head: bytes) -> str | None:
    """The media type of a Content-Type field in request head ``head`` (CRLF line ends, as the parser keeps
    heads) from which Go would read request parameters, else None. Go's ``Header.Get`` takes the first such
    field and ``mime.ParseMediaType`` lowers and trims its type; every field is checked here."""
    found = _FORM_FIELD.search(head)
    return found[1].lower().decode("ascii") if found is not None else None


def check_parameters(target: str, head: bytes) -> None:
    """``AmbiguousRequest`` unless a request to ``target`` with request head ``head`` has parameters that read
    one way: its target (``check_target``), and no form body (Go would read parameters from it before the
    query's, that no hook sees)."""
    check_target(target)
    media_type = form_body_type(head)
    if media_type is not None:
        raise AmbiguousRequest(f"a {media_type} body is refused on a hooked endpoint: dockerd would read request "
                               "parameters from it (before the query's) that the hooks do not judge; send the "
                               "parameters in the query")
