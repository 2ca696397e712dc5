"""Hook chains: kinds, dry runs, the exchange context, and in-process adapters' bounds."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from powerstrip.adapters.debug import DebugAdapter
from powerstrip.config.model import AdapterSpec
from powerstrip.hooks.chain import ChainRun, ChainStopped
from powerstrip.hooks.inprocess import AdapterLoadError, InProcessAdapter, import_adapter
from powerstrip.hooks.model import ClientRequest, Peer
from powerstrip.http.outcome import Side
from powerstrip.sdk import Adapter, Reject, Request

CREATE = "POST /*/containers/create"
REQUEST = ClientRequest("POST", "/containers/create", '{"Image": "a"}', (("X", "1"),), "u-9", False, Peer(uid=5))


def labeller(key: str) -> Adapter:
    adapter = Adapter(key)

    @adapter.pre(CREATE)
    def label(request: Request) -> None:
        request.json.setdefault("Labels", {})[key] = "1"

    return adapter


def chain_of(*entries: tuple[AdapterSpec, object]) -> tuple[ChainRun, tuple[AdapterSpec, ...]]:
    adapters = {spec.name: InProcessAdapter(spec, adapter) for spec, adapter in entries}
    return ChainRun(adapters), tuple(spec for spec, _ in entries)


def test_a_validating_adapter_cannot_change_the_request(caplog: pytest.LogCaptureFixture) -> None:
    run, specs = chain_of((AdapterSpec("m", "python:x:y"), labeller("m")),
                          (AdapterSpec("v", "python:x:y", kind="validating"), labeller("v")))
    forwarded = asyncio.run(run.pre(specs, REQUEST))
    assert json.loads(forwarded.body)["Labels"] == {"m": "1"}
    assert "adapter v is validating: the changes it returned are ignored (uid u-9)" in caplog.text
    assert [record.outcome for record in run.records] == ["ok", "ok"]


def test_a_dry_run_skips_adapters_that_cannot_promise_no_side_effects() -> None:
    class SideEffects:
        name = "net"

        async def pre_hook(self, request: ClientRequest) -> ClientRequest:
            raise AssertionError("must not be called in a dry run")

    spec_net, spec_sdk = AdapterSpec("net", "builtin:net"), AdapterSpec("sdk", "python:x:y")
    run = ChainRun({"net": SideEffects(), "sdk": InProcessAdapter(spec_sdk, labeller("sdk"))})  # type: ignore[dict-item]
    forwarded = asyncio.run(run.pre((spec_net, spec_sdk), ClientRequest("POST", "/containers/create", "{}", dry_run=True)))
    assert json.loads(forwarded.body) == {"Labels": {"sdk": "1"}}
    assert [(r.adapter, r.outcome) for r in run.records] == [("net", "skipped"), ("sdk", "ok")]


def test_the_context_survives_an_adapter_that_drops_it() -> None:
    class Forgetful:
        name = "v1-style"

        async def pre_hook(self, request: ClientRequest) -> ClientRequest:
            return ClientRequest(request.method, request.request, request.body)  # as a v1 reply is parsed

    run = ChainRun({"f": Forgetful()})  # type: ignore[dict-item]
    forwarded = asyncio.run(run.pre((AdapterSpec("f", "http://f/"),), REQUEST))
    assert forwarded == REQUEST


@pytest.mark.parametrize(("policy", "stops"), [("fail", True), ("ignore", False)])
def test_a_slow_in_process_adapter_times_out_under_its_policy(policy: str, stops: bool) -> None:
    slow = Adapter("slow")

    @slow.pre(CREATE)
    async def wait(request: Request) -> None:
        await asyncio.sleep(5)

    run, specs = chain_of((AdapterSpec("slow", "python:x:y", timeout=0.05, failure_policy=policy), slow))
    if stops:
        with pytest.raises(ChainStopped) as caught:
            asyncio.run(run.pre(specs, REQUEST))
        assert (caught.value.status, caught.value.message) == (504, "adapter slow: no answer within 0.05s")
    else:
        assert asyncio.run(run.pre(specs, REQUEST)) == REQUEST
        assert run.records[0].outcome == "ignored"


def test_an_in_process_handler_that_waits_is_resumed_with_what_it_waited_for() -> None:
    """The in-process call takes its first step at once (a plain handler ends there); one that waits goes on
    under the timeout, given each value it waits for, several times over."""
    waits = Adapter("waits")

    @waits.pre(CREATE)
    async def label(request: Request) -> None:
        future = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, future.set_result, "late")
        request.json["Labels"] = {"got": await future}
        await asyncio.sleep(0)  # a bare yield to the loop
        await asyncio.sleep(0.01)

    run, specs = chain_of((AdapterSpec("waits", "python:x:y", timeout=5), waits))
    forwarded = asyncio.run(run.pre(specs, REQUEST))
    assert json.loads(forwarded.body)["Labels"] == {"got": "late"} and run.records[0].outcome == "ok"


def test_an_in_process_handler_past_its_timeout_is_cancelled_inside_and_may_clean_up() -> None:
    cleaned: list[str] = []
    slow = Adapter("slow")

    @slow.pre(CREATE)
    async def wait(request: Request) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cleaned.append("cancelled")
            await asyncio.sleep(0)  # it may still wait a little while it cleans up
            raise

    run, specs = chain_of((AdapterSpec("slow", "python:x:y", timeout=0.05), slow))
    with pytest.raises(ChainStopped) as caught:
        asyncio.run(run.pre(specs, REQUEST))
    assert caught.value.status == 504 and cleaned == ["cancelled"]


def test_an_in_process_handler_that_raises_after_waiting_is_the_adapters_failure() -> None:
    broken = Adapter("broken")

    @broken.pre(CREATE)
    async def fail(request: Request) -> None:
        await asyncio.sleep(0.01)
        raise KeyError("x")

    run, specs = chain_of((AdapterSpec("broken", "python:x:y"), broken))
    with pytest.raises(ChainStopped) as caught:
        asyncio.run(run.pre(specs, REQUEST))
    assert caught.value.status == 502 and "KeyError" in caught.value.message
    assert caught.value.fault is Side.ADAPTER  # the audit's "fault": the adapter gave no usable answer


def test_a_refusal_stops_the_chain_as_the_clients_fault() -> None:
    strict = Adapter("strict")

    @strict.pre(CREATE)
    def refuse(request: Request) -> Reject:
        return Reject(403, "no")

    run, specs = chain_of((AdapterSpec("strict", "python:x:y"), strict))
    with pytest.raises(ChainStopped) as caught:
        asyncio.run(run.pre(specs, REQUEST))
    assert (caught.value.status, caught.value.message, caught.value.fault) == (403, "adapter strict: no", Side.CLIENT)


def _decoded_request(body: str) -> ClientRequest:
    """A request as the exchange builds it: the canonical text, and the value it was decoded into."""
    from powerstrip.canonical import judged
    from powerstrip.hooks.model import DecodedBody

    text, found = judged("POST", "/containers/create", body)
    assert text is not None and found is not None
    return ClientRequest("POST", "/containers/create", text, uid="u-3", decoded=DecodedBody(text, found.value))


def test_the_first_in_process_reader_gets_the_gateways_decoding_not_a_second_one(monkeypatch) -> None:
    import powerstrip.sdk.messages as messages

    seen: list[object] = []
    reader = Adapter("reader")

    @reader.pre(CREATE)
    def read(request: Request) -> None:
        seen.append(request.json["Image"])

    monkeypatch.setattr(messages, "canonicalize", lambda *args: pytest.fail("decoded a second time"))
    run, specs = chain_of((AdapterSpec("reader", "python:x:y"), reader))
    assert asyncio.run(run.pre(specs, _decoded_request('{"image": "a"}'))).body == '{"Image":"a"}'
    assert seen == ["a"]


def test_a_value_changed_in_place_by_a_validating_adapter_is_not_what_the_next_one_reads() -> None:
    """The decoded value is handed out once: a validating adapter's in-place change (ignored) must not reach the
    next adapter's view while the daemon is sent the unchanged text."""
    seen: list[object] = []
    meddler, reader = Adapter("meddler"), Adapter("reader")

    @meddler.pre(CREATE)
    def meddle(request: Request) -> None:
        request.json["Image"] = "evil"

    @reader.pre(CREATE)
    def read(request: Request) -> None:
        seen.append(request.json["Image"])

    run, specs = chain_of((AdapterSpec("meddler", "python:x:y", kind="validating"), meddler),
                          (AdapterSpec("reader", "python:x:y"), reader))
    forwarded = asyncio.run(run.pre(specs, _decoded_request('{"Image": "good"}')))
    assert seen == ["good"] and json.loads(forwarded.body)["Image"] == "good"


def test_a_changed_body_is_decoded_once_more_and_its_value_handed_to_the_next_reader() -> None:
    run, specs = chain_of((AdapterSpec("m", "python:x:y"), labeller("m")), (AdapterSpec("n", "python:x:y"), labeller("n")))
    forwarded = asyncio.run(run.pre(specs, _decoded_request('{"Image": "a"}')))
    assert json.loads(forwarded.body)["Labels"] == {"m": "1", "n": "1"}
    assert forwarded.decoded is not None
    taken, value = forwarded.decoded.take(forwarded.body)
    assert taken and value["Labels"] == {"m": "1", "n": "1"}
    assert forwarded.decoded.take(forwarded.body) == (False, None)  # handed out once


def test_debug_adapters_show_what_the_adapter_between_them_changed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "powerstrip.debug")
    spec_in, spec_x, spec_out = AdapterSpec("in", "builtin:debug"), AdapterSpec("x", "python:x:y"), AdapterSpec("out", "builtin:debug")
    run = ChainRun({"in": DebugAdapter("in"), "x": InProcessAdapter(spec_x, labeller("x")), "out": DebugAdapter("out")})
    asyncio.run(run.pre((spec_in, spec_x, spec_out), REQUEST))
    first, second = [r.getMessage() for r in caplog.records if r.name == "powerstrip.debug"]
    assert first.startswith("in pre-hook uid=u-9: POST /containers/create") and '"Image": "a"' in first
    assert "out pre-hook uid=u-9: changed since the previous debug hook" in second
    assert '+  "Labels": {' in second and '+    "x": "1"' in second


def test_import_adapter_explains_what_is_wrong(tmp_path) -> None:
    (tmp_path / "my_hooks_mod.py").write_text("from powerstrip.sdk import Adapter\nadapter = Adapter('a')\nnumber = 3\n")
    assert import_adapter("my_hooks_mod:adapter", [tmp_path]).name == "a"
    with pytest.raises(AdapterLoadError, match="has no attribute 'missing'"):
        import_adapter("my_hooks_mod:missing", [tmp_path])
    with pytest.raises(AdapterLoadError, match="is a int, not an adapter"):
        import_adapter("my_hooks_mod:number", [tmp_path])
    with pytest.raises(AdapterLoadError, match="cannot import 'no_such_module_here'"):
        import_adapter("no_such_module_here:adapter", [tmp_path])


@pytest.mark.parametrize("target", ["/containers/json?x=1#&all=1", "/build?networkmode=%zz&networkmode=host",
                                    "/build?a=1;b=2"])
def test_a_target_an_adapter_returns_must_read_one_way(target: str) -> None:
    """The parameters the next hook and the daemon read must agree (powerstrip/http/params.py): an adapter that
    makes an ambiguous target has failed, as one that makes an ambiguous body."""
    rewriter = Adapter("rewriter")

    @rewriter.pre("* /*")
    def rewrite(request: Request) -> None:
        request.target = target

    run, specs = chain_of((AdapterSpec("r", "python:x:y"), rewriter))
    with pytest.raises(ChainStopped) as stopped:
        asyncio.run(run.pre(specs, REQUEST))
    assert stopped.value.status == 502 and "the request it returned cannot be forwarded" in stopped.value.message
