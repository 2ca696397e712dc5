"""The relay machine driven with events, its commands asserted: no sockets, no dockerd (Playbook style).

Each test plays one conversation: client and daemon bytes, EOFs, timers; a ``Recorder`` stands in for
the driver and keeps every command in order, so a test states exactly what the gateway does.
"""

from __future__ import annotations

import json

import pytest

from powerstrip.http.head import RequestHead, parse_request_head
from powerstrip.http.machine import MAX_PIPELINED, ConnectionMachine, Judged, Phase, Refusal, Timeouts, Timer
from powerstrip.http.outcome import Outcome, Side

PING = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"
TIMEOUTS = Timeouts(idle=120.0, head=10.0, body=60.0, linger=2.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """The driver's side of the machine: records commands; the daemon connection opens at once unless told."""

    def __init__(self, connected: bool = True, hooked: bool = False) -> None:
        self.commands: list[tuple] = []
        self.connected = connected
        self.hooked = hooked
        self.outcomes: list[tuple[RequestHead | None, Outcome]] = []

    def send_client(self, data: bytes) -> None:
        self.commands.append(("client", data))

    def send_daemon(self, data: bytes) -> None:
        self.commands.append(("daemon", data))

    def open_daemon(self) -> bool:
        if self.connected:
            return True
        self.commands.append(("connect",))
        return False

    def close_daemon(self) -> None:
        self.commands.append(("close daemon",))

    def half_close_daemon(self) -> None:
        self.commands.append(("half-close daemon",))

    def half_close_client(self) -> None:
        self.commands.append(("half-close client",))

    def close_client(self) -> None:
        self.commands.append(("close client",))

    def pause_client(self, paused: bool) -> None:
        self.commands.append(("pause client", paused))

    def dispatch(self, head: RequestHead) -> bool | Refusal:
        self.commands.append(("dispatch", head.method, head.target))
        return self.hooked

    def finished(self, head: RequestHead | None, outcome: Outcome) -> None:
        self.outcomes.append((head, outcome))
        self.commands.append(("finished", outcome.status, outcome.keep_alive))

    def refused(self, raw: bytes, outcome: Outcome) -> None:
        self.outcomes.append((None, outcome))
        self.commands.append(("refused", raw, outcome.status))

    def take(self) -> list[tuple]:
        taken, self.commands = self.commands, []
        return taken


def machine(**recorder) -> tuple[ConnectionMachine, Recorder, Clock]:
    rec, clock = Recorder(**recorder), Clock()
    return ConnectionMachine(rec, TIMEOUTS, clock), rec, clock


def error_body(data: bytes) -> dict:
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def sent_to_client(rec: Recorder) -> bytes:
    return b"".join(c[1] for c in rec.commands if c[0] == "client")


# ---- keep-alive --------------------------------------------------------------------------------

def test_two_requests_on_one_kept_alive_connection_reuse_the_daemon_connection():
    m, rec, _ = machine()
    for _ in range(2):
        m.client_data(PING)
        m.daemon_data(OK)
        assert rec.take() == [("dispatch", "GET", "/_ping"), ("daemon", PING), ("client", OK), ("finished", 200, True)]
        assert m.phase is Phase.IDLE and m.timer is Timer.IDLE


def test_a_repeated_response_head_is_read_as_the_first_was_whatever_follows_it():
    """The second exchange takes the connection's remembered head: the framing it gives must hold for
    a body cut short, a body in its own read, and bytes past the body."""
    m, rec, _ = machine()
    m.client_data(PING)
    m.daemon_data(OK)
    rec.take()
    head = OK[:-2]
    m.client_data(PING)
    m.daemon_data(head)  # the body in a later read
    m.daemon_data(b"OK")
    assert rec.take()[1:] == [("daemon", PING), ("client", head), ("client", b"OK"), ("finished", 200, True)]
    m.client_data(PING)
    m.daemon_data(OK + b"junk")  # past the body: out of step, neither connection can go on
    assert rec.take()[1:] == [("daemon", PING), ("client", OK), ("close daemon",), ("finished", 200, False),
                              ("close client",)]


def test_a_head_request_is_not_framed_by_the_head_a_get_had():
    m, rec, _ = machine()
    get_head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    m.client_data(PING)
    m.daemon_data(get_head + b"hello")
    rec.take()
    m.client_data(b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
    m.daemon_data(get_head)  # the same bytes, but an answer to HEAD has no body
    assert rec.take()[-2:] == [("client", get_head), ("finished", 200, True)]
    assert m.phase is Phase.IDLE


def test_connection_close_from_the_client_closes_after_the_response():
    m, rec, _ = machine()
    m.client_data(b"GET /_ping HTTP/1.1\r\nConnection: close\r\n\r\n")
    m.daemon_data(OK)
    assert rec.take()[-2:] == [("finished", 200, False), ("close client",)]
    assert m.phase is Phase.CLOSED


def test_connection_close_from_the_daemon_drops_the_daemon_connection_and_the_clients():
    m, rec, _ = machine()
    m.client_data(PING)
    m.daemon_data(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert rec.take()[-3:] == [("close daemon",), ("finished", 200, False), ("close client",)]


def test_the_first_request_opens_the_daemon_connection_and_sends_once_it_is_up():
    m, rec, _ = machine(connected=False)
    m.client_data(PING)
    assert rec.take() == [("dispatch", "GET", "/_ping"), ("connect",)]
    m.daemon_connected()
    assert rec.take() == [("daemon", PING)]


def test_a_daemon_that_cannot_be_reached_is_a_502_naming_the_daemon():
    m, rec, _ = machine(connected=False)
    m.client_data(PING)
    m.daemon_failed("powerstrip cannot connect to the Docker daemon")
    sent = sent_to_client(rec)
    assert sent.startswith(b"HTTP/1.1 502 ")
    assert rec.outcomes[-1][1].fault is Side.DAEMON
    assert m.phase is Phase.CLOSED


# ---- request bodies, pipelining, half-close ------------------------------------------------------

def test_a_body_is_streamed_as_it_arrives_and_the_next_request_waits_in_the_buffer():
    m, rec, _ = machine()
    head = b"POST /containers/create HTTP/1.1\r\nContent-Length: 4\r\n\r\n"
    m.client_data(head + b"ab")
    m.client_data(b"cd" + PING)
    # the body bytes that came with the head go out with it, in one write; the rest as it arrives
    assert rec.take() == [("dispatch", "POST", "/containers/create"), ("daemon", head + b"ab"), ("daemon", b"cd")]
    m.daemon_data(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    assert rec.take()[-3:] == [("finished", 201, True), ("dispatch", "GET", "/_ping"), ("daemon", PING)]


def test_pipelined_requests_then_a_half_close_are_all_answered_and_the_eof_passed_on_after_the_last():
    m, rec, _ = machine()
    m.client_data(PING + PING)
    m.client_eof()
    assert ("half-close daemon",) not in rec.commands  # one more request to send first
    m.daemon_data(OK)
    assert rec.take()[-3:] == [("dispatch", "GET", "/_ping"), ("daemon", PING), ("half-close daemon",)]
    m.daemon_data(OK)
    assert rec.take() == [("client", OK), ("close daemon",), ("finished", 200, False), ("close client",)]


def test_a_half_close_while_waiting_is_passed_to_the_daemon_which_still_answers():
    m, rec, _ = machine()
    m.client_data(PING)
    m.client_eof()
    assert rec.take()[-1] == ("half-close daemon",)
    m.daemon_data(OK)
    assert rec.take()[:1] == [("client", OK)]


def test_a_head_and_the_body_that_came_with_it_go_to_the_daemon_in_one_write():
    m, rec, _ = machine()
    create = b"POST /containers/create HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
    m.client_data(create)
    assert rec.take() == [("dispatch", "POST", "/containers/create"), ("daemon", create)]
    m.daemon_data(OK)
    assert rec.take() == [("client", OK), ("finished", 200, True)]


def test_a_pipelined_body_request_then_the_clients_eof_goes_out_whole_before_the_eof_is_passed_on():
    m, rec, _ = machine()
    create = b"POST /containers/create HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
    m.client_data(PING + create)
    m.client_eof()
    rec.take()
    m.daemon_data(OK)
    assert rec.take()[-3:] == [("dispatch", "POST", "/containers/create"), ("daemon", create),
                               ("half-close daemon",)]


def test_a_body_request_while_the_daemon_connection_opens_waits_and_goes_out_in_one_write():
    m, rec, _ = machine(connected=False)
    create = b"POST /containers/create HTTP/1.1\r\nContent-Length: 4\r\n\r\nab"
    m.client_data(create)
    m.client_data(b"cd")
    assert rec.take() == [("dispatch", "POST", "/containers/create"), ("connect",)]
    m.daemon_connected()
    assert rec.take() == [("daemon", create + b"cd")]


def test_a_malformed_chunk_in_the_heads_own_read_is_a_400_and_nothing_reaches_the_daemon():
    m, rec, _ = machine()
    m.client_data(b"POST /build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    commands = rec.take()
    assert not [c for c in commands if c[0] == "daemon"]
    assert sent_to_client_of(commands).startswith(b"HTTP/1.1 400 ")
    assert m.phase is Phase.CLOSED


def test_a_client_that_closes_inside_the_body_is_answered_400_and_the_daemon_connection_dropped():
    m, rec, _ = machine()
    m.client_data(b"POST /build HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
    rec.take()
    m.client_eof()
    commands = rec.take()
    assert commands[0] == ("close daemon",)
    assert commands[1][1].startswith(b"HTTP/1.1 400 ")
    assert commands[-1] == ("close client",)
    assert rec.outcomes[-1][1].fault is Side.CLIENT


def test_a_malformed_chunk_size_from_the_client_is_a_400_and_nothing_more_reaches_the_daemon():
    m, rec, _ = machine()
    head = b"POST /build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    m.client_data(head + b"3\r\nabc\r\n")
    assert rec.commands[-1] == ("daemon", head + b"3\r\nabc\r\n")
    m.client_data(b"zz\r\n")
    commands = rec.take()
    assert [c for c in commands if c[0] == "daemon"][-1] == ("daemon", head + b"3\r\nabc\r\n")
    assert ("close daemon",) in commands
    assert sent_to_client_of(commands).startswith(b"HTTP/1.1 400 ")
    assert "chunk size" in rec.outcomes[-1][1].note
    assert m.phase is Phase.CLOSED


def sent_to_client_of(commands: list[tuple]) -> bytes:
    return b"".join(c[1] for c in commands if c[0] == "client")


def test_a_body_that_stops_arriving_gets_408():
    m, rec, clock = machine()
    m.client_data(b"POST /build HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
    assert m.timer is Timer.BODY and m.deadline == clock.now + 60
    rec.take()
    m.timer_fired()
    assert sent_to_client(rec).startswith(b"HTTP/1.1 408 ")
    assert m.phase is Phase.CLOSED


def test_a_body_held_back_by_a_slow_daemon_is_not_timed_out():
    m, _, _ = machine()
    m.client_data(b"POST /build HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
    m.daemon_flow(paused=True)
    assert m.deadline == 0.0
    m.daemon_flow(paused=False)
    assert m.deadline > 0


def test_too_many_pipelined_bytes_pause_the_client_until_the_exchange_ends():
    m, rec, _ = machine()
    m.client_data(PING)
    m.client_data(b"x" * (MAX_PIPELINED + 1))
    assert rec.take()[-1] == ("pause client", True)
    m.daemon_data(OK)
    assert ("pause client", False) in rec.take()


# ---- request heads ------------------------------------------------------------------------------

def test_a_bare_lf_head_is_answered_and_forwarded_with_crlf():
    m, rec, _ = machine()
    m.client_data(b"GET /_ping HTTP/1.1\nHost: docker\n\n")
    assert rec.take() == [("dispatch", "GET", "/_ping"), ("daemon", b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")]


def test_a_bare_lf_response_head_is_passed_on_with_crlf_also_when_its_body_came_with_it():
    m, rec, _ = machine()
    m.client_data(PING)
    rec.take()
    m.daemon_data(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nOK")
    assert rec.take()[0] == ("client", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")


def test_a_remembered_head_is_relayed_like_a_fresh_one():
    m, rec, _ = machine()
    for _ in range(3):  # the second and third heads come from the parse memo
        m.client_data(PING)
        m.daemon_data(OK)
        assert rec.take()[:3] == [("dispatch", "GET", "/_ping"), ("daemon", PING), ("client", OK)]


def test_a_malformed_head_is_a_400_with_a_message_and_the_connection_closes():
    m, rec, _ = machine()
    m.client_data(b"GET /_ping HTTP/1.1\r\nBad Header\r\n\r\n")
    commands = rec.take()
    assert commands[0][1].startswith(b"HTTP/1.1 400 ")
    assert "malformed" in error_body(commands[0][1])["message"]
    # logged and audited from what arrived, like any other request
    assert commands[1:] == [("refused", b"GET /_ping HTTP/1.1\r\nBad Header\r\n\r\n", 400), ("close client",)]


def test_an_unfinished_head_gets_408_at_the_head_timeout_not_the_idle_timeout():
    m, rec, clock = machine()
    m.client_data(b"GET /_ping HTTP/1.1\r\nHost:")
    assert m.timer is Timer.HEAD and m.deadline == clock.now + 10
    m.timer_fired()
    assert sent_to_client(rec).startswith(b"HTTP/1.1 408 ")


def test_a_head_over_64_kib_is_431():
    m, rec, _ = machine()
    m.client_data(b"GET / HTTP/1.1\r\nX: " + b"a" * (64 * 1024))
    assert sent_to_client(rec).startswith(b"HTTP/1.1 431 ")


def test_an_idle_connection_is_closed_silently_at_the_idle_timeout():
    m, rec, clock = machine()
    assert m.timer is Timer.IDLE and m.deadline == clock.now + 120
    m.timer_fired()
    assert rec.take() == [("close client",)]


# ---- responses ----------------------------------------------------------------------------------

def test_100_continue_is_passed_on_before_the_final_response():
    m, rec, _ = machine()
    m.client_data(b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    rec.take()
    m.daemon_data(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert rec.take() == [("client", b"HTTP/1.1 100 Continue\r\n\r\n")]
    m.client_data(b"ab")
    m.daemon_data(OK)
    assert rec.take() == [("daemon", b"ab"), ("client", OK), ("finished", 200, True)]


def test_a_chunked_response_is_relayed_as_it_comes_and_ends_at_its_last_chunk():
    m, rec, _ = machine()
    m.client_data(b"GET /events HTTP/1.1\r\n\r\n")
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    m.daemon_data(head + b"3\r\nabc\r\n")
    assert m.streaming
    m.daemon_data(b"0\r\n\r\n")
    assert rec.take()[-3:] == [("client", head + b"3\r\nabc\r\n"), ("client", b"0\r\n\r\n"), ("finished", 200, True)]


def test_a_malformed_response_head_is_a_502_naming_the_daemon_not_a_400():
    m, rec, _ = machine()
    m.client_data(PING)
    rec.take()
    m.daemon_data(b"HTTP/1.1 2x0 OK\r\n\r\n")
    commands = rec.take()
    assert commands[0] == ("close daemon",)
    assert commands[1][1].startswith(b"HTTP/1.1 502 ")
    assert rec.outcomes[-1][1].fault is Side.DAEMON


def test_a_malformed_chunk_from_the_daemon_mid_response_closes_and_writes_no_error_into_the_response():
    m, rec, _ = machine()
    m.client_data(b"GET /logs HTTP/1.1\r\n\r\n")
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    m.daemon_data(head + b"3\r\nabc\r\n")
    rec.take()
    m.daemon_data(b"zz\r\n")
    commands = rec.take()
    assert not any(c[0] == "client" for c in commands)
    assert ("close daemon",) in commands and commands[-1] == ("close client",)
    outcome = rec.outcomes[-1][1]
    assert (outcome.status, outcome.fault) == (200, Side.DAEMON)


def test_the_daemon_closing_before_answering_is_a_502():
    m, rec, _ = machine()
    m.client_data(b"POST /containers/1/start HTTP/1.1\r\nHost: docker\r\n\r\n")  # not safe to send twice
    m.daemon_eof()
    assert sent_to_client(rec).startswith(b"HTTP/1.1 502 ")


def test_a_safe_request_whose_kept_alive_connection_closes_unanswered_goes_again_on_a_new_one():
    m, rec, _ = machine()  # the daemon connection is already open (kept alive)
    m.client_data(PING)
    rec.take()
    rec.connected = False
    m.daemon_eof()  # the daemon had closed it as the request went out
    assert rec.take() == [("close daemon",), ("connect",)]
    m.daemon_connected()
    assert rec.take() == [("daemon", PING)]
    m.daemon_data(OK)
    assert rec.take()[0] == ("client", OK)
    # only once: a new connection that closes unanswered too is the daemon's failure
    rec.connected = True
    m.client_data(PING)
    m.daemon_eof()
    rec.take()
    m.daemon_connected()
    m.daemon_eof()
    assert sent_to_client(rec).startswith(b"HTTP/1.1 502 ")


def test_a_request_the_daemon_began_to_answer_is_never_sent_twice():
    m, rec, _ = machine()
    m.client_data(PING)
    m.daemon_data(b"HTTP/1.1 200 OK\r\nContent-")
    rec.take()
    m.daemon_eof()
    assert sent_to_client(rec).startswith(b"HTTP/1.1 502 ")


def test_the_daemon_closing_inside_a_body_cuts_the_client_connection():
    m, rec, _ = machine()
    m.client_data(PING)
    m.daemon_data(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    rec.take()
    m.daemon_eof()
    assert rec.take()[-1] == ("close client",)


def test_a_response_before_the_whole_request_body_spends_both_connections():
    m, rec, _ = machine()
    m.client_data(b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    m.daemon_data(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    assert rec.take()[-3:] == [("close daemon",), ("finished", 400, False), ("close client",)]


# ---- upgrades, hijack, splice --------------------------------------------------------------------

def test_101_splices_both_ways_and_passes_each_half_close_on():
    m, rec, clock = machine()
    m.client_data(b"POST /exec/1/start HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nstdin")
    m.daemon_data(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nout")
    commands = rec.take()
    assert commands[-2:] == [("client", b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nout"),
                             ("daemon", b"stdin")]
    assert m.phase is Phase.SPLICED
    m.client_eof()
    assert rec.take() == [("half-close daemon",)]
    m.daemon_data(b"more output")
    m.daemon_eof()
    assert rec.take() == [("client", b"more output"), ("half-close client",), ("finished", 101, False),
                          ("close client",)]


def test_when_the_daemon_ends_a_splice_first_client_input_gets_the_linger_time():
    m, rec, clock = machine()
    m.client_data(b"POST /containers/1/attach?stream=1 HTTP/1.1\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n")
    m.daemon_data(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    m.daemon_eof()
    assert m.timer is Timer.LINGER and m.deadline == clock.now + 2
    rec.take()
    m.timer_fired()
    assert rec.take() == [("finished", 101, False), ("close client",)]


def test_hijack_without_upgrade_a_read_until_close_response_is_spliced():
    m, rec, _ = machine()
    m.client_data(b"POST /containers/1/attach?stream=1&stdout=1 HTTP/1.1\r\n\r\n")
    m.daemon_data(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nhello")
    assert m.phase is Phase.SPLICED
    m.client_data(b"stdin")
    assert rec.take()[-2:] == [("client", b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream"
                                b"\r\n\r\nhello"), ("daemon", b"stdin")]


# ---- client leaves, hooked hand-off, stop --------------------------------------------------------

def test_a_client_that_leaves_mid_response_drops_the_daemon_connection_and_is_logged_as_gone():
    m, rec, _ = machine()
    m.client_data(b"GET /events HTTP/1.1\r\n\r\n")
    m.daemon_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    rec.take()
    m.client_lost()
    assert rec.take() == [("finished", 200, False), ("close daemon",)]
    assert rec.outcomes[-1][1].note == "the client went away"
    m.daemon_data(b"3\r\nabc\r\n")  # late bytes are dropped, nothing is written to a closed client
    assert rec.take() == []


def test_a_hooked_exchange_is_dispatched_and_the_connection_handed_back_with_what_followed():
    m, rec, _ = machine(hooked=True)
    m.client_data(b"POST /containers/create HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}" + PING)
    assert m.phase is Phase.HOOKED
    assert m.take_buffered() == b"{}" + PING
    rec.hooked = False
    m.hooked_done(keep_alive=True, leftover=PING, daemon_open=True)
    assert rec.take()[-2:] == [("dispatch", "GET", "/_ping"), ("daemon", PING)]


CREATE = b"POST /containers/create HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
JUDGED_CREATE = b"POST /containers/create?name=web HTTP/1.1\r\nContent-Length: 7\r\n\r\n"


def _judged(keep_alive: bool = True) -> Judged:
    return Judged(parse_request_head(JUDGED_CREATE), b'{"a":1}', keep_alive, Outcome(uid="u-1", hooks=["pre:x=ok"]))


def test_a_judged_request_is_forwarded_whole_in_one_write_and_its_answer_relayed_with_the_hooks_records():
    m, rec, _ = machine(hooked=True)
    m.client_data(CREATE + PING)
    assert m.take_buffered() == b"{}" + PING
    rec.hooked = False
    rec.take()
    m.hooked_forward(_judged(), leftover=PING, daemon_open=True)
    assert rec.take() == [("daemon", JUDGED_CREATE + b'{"a":1}')]
    m.daemon_data(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
    assert rec.take() == [("client", b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"), ("finished", 201, True),
                          ("dispatch", "GET", "/_ping"), ("daemon", PING)]
    head, outcome = rec.outcomes[0]
    assert head is not None and head.target == "/containers/create?name=web"
    assert (outcome.uid, outcome.hooks) == ("u-1", ["pre:x=ok"])


def test_a_judged_request_waits_for_a_new_daemon_connection_and_an_unreachable_daemon_is_a_502_with_the_records():
    m, rec, _ = machine(hooked=True, connected=False)
    m.client_data(CREATE)
    rec.take()
    m.hooked_forward(_judged(), leftover=b"", daemon_open=False)
    assert rec.take() == [("connect",)]
    m.daemon_failed("cannot connect")
    assert rec.take()[-2:] == [("finished", 502, False), ("close client",)]
    assert rec.outcomes[0][1].uid == "u-1" and rec.outcomes[0][1].fault is Side.DAEMON


def test_a_judged_request_keeps_the_clients_own_connection_choice():
    m, rec, _ = machine(hooked=True)
    m.client_data(CREATE)
    m.hooked_forward(_judged(keep_alive=False), leftover=b"", daemon_open=True)
    m.daemon_data(OK)
    assert rec.take()[-2:] == [("finished", 200, False), ("close client",)]


def test_a_judged_request_whose_client_left_while_the_hooks_ran_is_not_forwarded():
    m, rec, _ = machine(hooked=True)
    m.client_data(CREATE)
    m.client_lost()
    rec.take()
    m.hooked_forward(_judged(), leftover=b"", daemon_open=True)
    assert rec.take() == [("finished", 0, False)]
    assert rec.outcomes[0][1].note == "the client went away"


def test_stop_closes_an_idle_connection_at_once_and_a_busy_one_after_its_exchange():
    idle, idle_rec, _ = machine()
    idle.stop()
    assert idle_rec.take() == [("close client",)]
    busy, rec, _ = machine()
    busy.client_data(PING)
    busy.stop()
    assert busy.phase is Phase.WAIT_RESPONSE
    busy.daemon_data(OK)
    assert rec.take()[-2:] == [("finished", 200, False), ("close client",)]


@pytest.mark.parametrize("split", [1, 5, 17, 30])
def test_heads_split_anywhere_are_read_the_same(split):
    m, rec, _ = machine()
    m.client_data(PING[:split])
    m.client_data(PING[split:])
    m.daemon_data(OK[:split])
    m.daemon_data(OK[split:])
    assert sent_to_client(rec) == OK
    assert rec.commands[-1] == ("finished", 200, True)


# ---- refusals from the head alone (a path rule) ---------------------------------------------------

def test_a_refused_request_is_answered_at_once_and_the_next_one_on_the_connection_is_relayed():
    m, rec, _ = machine(hooked=Refusal(403, "adapter policy: denied by rule 2"))
    m.client_data(PING + PING)  # two pipelined requests; the driver refuses both
    commands = rec.take()
    answers = [c for c in commands if c[0] == "client"]
    assert len(answers) == 2 and all(a[1].startswith(b"HTTP/1.1 403 Forbidden\r\n") for a in answers)
    assert error_body(answers[0][1]) == {"message": "adapter policy: denied by rule 2"}
    assert b"Connection: close" not in answers[0][1]
    assert not [c for c in commands if c[0] in ("daemon", "connect")]  # nothing forwarded
    assert [o.status for _, o in rec.outcomes] == [403, 403] and rec.outcomes[0][1].keep_alive
    assert m.phase is Phase.IDLE
    rec.hooked = False
    m.client_data(PING)
    assert ("daemon", PING) in rec.take()


def test_a_refusal_to_a_client_that_asked_for_close_closes_after_the_answer():
    m, rec, _ = machine(hooked=Refusal(403, "no"))
    m.client_data(b"GET /_ping HTTP/1.1\r\nConnection: close\r\n\r\n")
    commands = rec.take()
    assert commands[1][1].startswith(b"HTTP/1.1 403 ") and b"Connection: close" in commands[1][1]
    assert commands[-1] == ("close client",) and m.phase is Phase.CLOSED


def test_an_earlier_connections_eof_does_not_end_a_later_splice():
    m, rec, _ = machine()
    m.client_data(PING)
    m.daemon_data(OK)
    m.daemon_eof()  # the daemon closes the idle kept-alive connection
    rec.connected = False
    m.client_data(b"POST /containers/1/attach?stream=1&stdin=1 HTTP/1.1\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n")
    m.daemon_connected()
    m.daemon_data(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    rec.take()
    m.client_eof()  # stdin ends: the output must still flow
    assert rec.take() == [("half-close daemon",)]
    assert m.phase is Phase.SPLICED
    m.daemon_data(b"output")
    assert rec.take() == [("client", b"output")]
