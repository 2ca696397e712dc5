"""Finding where a chunked body ends while keeping its bytes as they are.

httptools (llhttp) decodes chunked bodies, but it cannot tell how many of the bytes fed to it
belonged to the message, and a byte-faithful relay needs exactly that: forward the chunks as the
peer framed them, stop at the last byte of the body, leave what follows (the next message, or
hijacked stream bytes) in place. This scanner does that and also yields the decoded payload, so
the same code serves the relay (raw bytes) and the hooks (de-framed body).
"""

from __future__ import annotations

import re

from powerstrip.http.head import MalformedMessage

MAX_LINE = 4096
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,15}")
_SIZE_LINE = re.compile(rb"([0-9a-fA-F]{1,15})\r\n")  # the plain form: no extension, no blanks

# The scanner's states: plain ints, not an enum, because they are tested for every chunk of every
# relayed stream (an enum member lookup costs three times a global's).
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedScanner:
    """Incremental chunked-body scanner.

    ``feed(data)`` returns ``(consumed, payload)``: how many bytes of ``data`` belong to the body
    (all of them unless the body ended inside ``data``) and the decoded payload pieces among them
    (none with ``collect=False``: a relay that forwards the raw bytes need not copy them out).
    """

    __slots__ = ("_state", "_remaining", "_line", "done", "valid")

    def __init__(self) -> None:
        self._state = _SIZE
        self._remaining = 0
        self._line = bytearray()
        self.done = False
        self.valid = 0  # after a MalformedMessage: how many bytes of that feed were good (a relay sends them)

    @property
    def data_remaining(self) -> int:
        """Chunk-data bytes still expected; 0 when the next thing is a line (size, CRLF, trailer)."""
        return self._remaining if self._state is _DATA else 0

    def feed(self, data: bytes, collect: bool = True) -> tuple[int, list[bytes]]:
        payload: list[bytes] = []
        pos = 0
        self.valid = 0
        end = len(data)
        while pos < end and self._state is not _DONE:
            if self._state is _SIZE and not self._line:
                # the usual chunk, wholly in this feed: its size line, data and CRLF checked in one step
                match = _SIZE_LINE.match(data, pos)
                if match is not None:
                    start = match.end()
                    stop = start + int(match[1], 16)
                    if stop > start and data.startswith(b"\r\n", stop):
                        self.valid = pos
                        if collect:
                            payload.append(data[start:stop])
                        pos = stop + 2
                        continue
            if self._state is _DATA:
                take = min(self._remaining, end - pos)
                if collect:
                    payload.append(data[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _DATA_END
                continue
            newline = data.find(b"\n", pos)
            if newline >= 0 and not self._line:  # the usual case: the whole line is in this feed
                self.valid = pos
                if newline + 1 - pos > MAX_LINE:
                    raise MalformedMessage("chunked body: line too long")
                self._end_of_line(data[pos : newline + 1])
                pos = newline + 1
                continue
            stop = end if newline < 0 else newline + 1
            if not self._line:
                self.valid = pos
            self._line += data[pos:stop]
            pos = stop
            if len(self._line) > MAX_LINE:
                raise MalformedMessage("chunked body: line too long")
            if newline >= 0:
                self._end_of_line(bytes(self._line))
                self._line.clear()
        return pos, payload

    def _end_of_line(self, line: bytes) -> None:
        if not line.endswith(b"\r\n"):
            raise MalformedMessage("chunked body: line not terminated by CRLF")
        content = line[:-2]
        if self._state is _SIZE:
            size_text = content.split(b";", 1)[0].strip()
            if _CHUNK_SIZE.fullmatch(size_text) is None:
                raise MalformedMessage("chunked body: invalid chunk size")
            self._remaining = int(size_text, 16)
            self._state = _DATA if self._remaining else _TRAILER
        elif self._state is _DATA_END:
            if content:
                raise MalformedMessage("chunked body: chunk data longer than its size")
            self._state = _SIZE
        elif not content:  # the blank line after the (optional) trailer fields
            self._state = _DONE
            self.done = True

