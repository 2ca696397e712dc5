"""The batched access log: the same line format as logging, written once per batch, and never lost at stop."""

from __future__ import annotations

import asyncio
import io
import logging
import re

from powerstrip.proxy.access_log import FLUSH_DELAY, AccessLog

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO powerstrip\.access: GET /_ping -> 200 0\.4ms$")


class CountingStream(io.StringIO):
    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_of_a_burst_go_out_in_one_write_after_the_delay() -> None:
    stream = CountingStream()
    access = AccessLog(stream)

    async def burst() -> None:
        for _ in range(100):
            access.exchange("GET", "/_ping", 200, 0.0004)
        assert stream.getvalue() == ""
        await asyncio.sleep(FLUSH_DELAY * 3)

    asyncio.run(burst())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 100 and all(LINE.match(line) for line in lines)
    assert stream.writes == 1


def test_without_a_loop_a_line_is_written_at_once_and_flush_is_idempotent() -> None:
    stream = io.StringIO()
    access = AccessLog(stream)
    access.exchange("GET", "/_ping", 200, 0.0004)
    assert LINE.match(stream.getvalue().strip())
    access.flush()
    assert len(stream.getvalue().splitlines()) == 1


def test_the_access_logger_level_turns_it_off() -> None:
    logger = logging.getLogger("powerstrip.access")
    before = logger.level
    try:
        logger.setLevel(logging.WARNING)
        assert not AccessLog().enabled
        logger.setLevel(logging.INFO)
        assert AccessLog().enabled
    finally:
        logger.setLevel(before)


def test_control_characters_are_escaped_so_lines_cannot_be_forged() -> None:
    import io

    from powerstrip.proxy.access_log import AccessLog

    stream = io.StringIO()
    access = AccessLog(stream)
    access.exchange("POST", "/x\x1b[2J", 403, 0.001, " (adapter p: no\r\nINFO powerstrip.access: GET /forged -> 200 \\x0a)")
    access.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "no\\x0d\\x0aINFO" in lines[0] and "\\x1b[2J" in lines[0] and "\\\\x0a" in lines[0]


def test_other_log_records_are_escaped_too() -> None:
    import logging

    from powerstrip.logtext import FORMAT, EscapingFormatter

    record = logging.LogRecord("powerstrip.hooks", logging.WARNING, __file__, 1, "adapter %s warns: %s",
                               ("p", "a\nb\u2028c"), None)
    assert EscapingFormatter(FORMAT).format(record).endswith("adapter p warns: a\\x0ab\\u2028c")


def test_log_records_go_out_in_batches_and_errors_at_once_in_order() -> None:
    from powerstrip.logtext import FLUSH_DELAY as LOG_DELAY
    from powerstrip.logtext import BatchedStderr

    stream = CountingStream()
    sink = BatchedStderr(stream)

    async def burst() -> None:
        for n in range(50):
            sink.write(f"warning {n}\n")
        assert stream.getvalue() == ""  # one timer armed, nothing written yet
        sink.write("error\n", now=True)  # an error takes what waits before it along, in order
        assert stream.writes == 1 and stream.getvalue().splitlines()[-1] == "error"
        sink.write("later\n")
        await asyncio.sleep(LOG_DELAY * 3)

    asyncio.run(burst())
    lines = stream.getvalue().splitlines()
    assert lines == [f"warning {n}" for n in range(50)] + ["error", "later"] and stream.writes == 2
    sink.write("no loop: at once\n")
    assert stream.getvalue().endswith("no loop: at once\n")


def test_the_logging_handler_writes_through_the_batched_sink() -> None:
    from powerstrip import logtext

    stream = io.StringIO()
    saved = logtext.STDERR._stream
    logtext.STDERR._stream = stream
    try:
        handler = logtext.BatchedHandler()
        handler.setFormatter(logtext.EscapingFormatter("%(levelname)s %(message)s"))
        logger = logging.getLogger("powerstrip.test-batched")
        logger.addHandler(handler)
        logger.propagate = False
        logger.warning("denied\nforged")  # no loop here: written at once, escaped
        assert stream.getvalue() == "WARNING denied\\x0aforged\n"
    finally:
        logtext.STDERR._stream = saved
        logger.removeHandler(handler)


def test_a_batch_armed_on_a_loop_that_closed_is_armed_again_on_the_next() -> None:
    from powerstrip.logtext import FLUSH_DELAY as LOG_DELAY
    from powerstrip.logtext import BatchedStderr

    stream = io.StringIO()
    sink = BatchedStderr(stream)

    async def first() -> None:
        sink.write("one\n")  # its timer dies with this loop

    async def second() -> None:
        sink.write("two\n")
        await asyncio.sleep(LOG_DELAY * 3)

    asyncio.run(first())
    asyncio.run(second())
    assert stream.getvalue() == "one\ntwo\n"
