"""``Warning`` response headers (RFC 7234 section 5.5, warn-code 299 "Miscellaneous Persistent Warning"), the
way Kubernetes admission hands its webhooks' warnings to clients: one header per warning,
``Warning: 299 powerstrip "<text>"``.

The text comes from adapters, so it is made safe to put in a head: control characters (CR, LF, NUL, DEL,
the C1 range, U+2028/2029) are written as visible ``\\xNN`` escapes and a backslash doubled, exactly as the
gateway's log lines do (``logtext.escape``), then the result is a quoted-string (``"`` and ``\\`` escaped
with a backslash). Nothing an adapter writes can end the header or start another. Other characters are
sent as UTF-8 (the obs-text bytes a header value may carry).
"""

from __future__ import annotations

from collections.abc import Sequence

from powerstrip.logtext import escape

WARN_CODE = b"299"
WARN_AGENT = b"powerstrip"


def warning_value(text: str) -> bytes:
    """``299 powerstrip "text"``, escaped as the module says."""
    quoted = escape(text).replace("\\", "\\\\").replace('"', '\\"')
    return b"%s %s \"%s\"" % (WARN_CODE, WARN_AGENT, quoted.encode("utf-8", "backslashreplace"))


def warning_lines(warnings: Sequence[str], dropped: int = 0) -> bytes:
    """The header lines (each ending in CRLF) for ``warnings``, and one saying how many were not kept."""
    texts = list(warnings)
    if dropped:
        texts.append(f"{dropped} more warning(s) not kept: at most {len(warnings)} for one request")
    return b"".join(b"Warning: " + warning_value(text) + b"\r\n" for text in texts)


def with_warnings(message: bytes, lines: bytes) -> bytes:
    """``message`` (a response head, with or without its body) with header ``lines`` right after its status
    line; every other byte as it was, so a relayed head stays byte for byte the daemon's."""
    if not lines:
        return message
    end = message.find(b"\n") + 1
    if end <= 0:
        raise ValueError("not an HTTP message: no status line")
    return message[:end] + lines + message[end:]
