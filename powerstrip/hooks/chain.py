"""Running a chain of hooks in configuration order, applying each adapter's failure policy."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from powerstrip.canonical import BodyRefused, judged
from powerstrip.config.model import AdapterSpec
from powerstrip.hooks.model import Adapter, AdapterFailure, ClientRequest, DecodedBody, HookRejected, ServerResponse
from powerstrip.hooks.scope import ExchangeScope
from powerstrip.http.outcome import Side
from powerstrip.http.params import AmbiguousRequest, check_target

log = logging.getLogger("powerstrip.hooks")
T = TypeVar("T")

_METHOD = re.compile(r"[A-Z]{1,20}")
_TARGET = re.compile(r"/[\x21-\x7e]*")        # printable ASCII, no space: nothing can end the request line
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")  # no CR, LF or other controls: nothing can start a header


async def _bounded_call(spec: AdapterSpec, call: Awaitable[T]) -> T:
    """An adapter call whose every error is a decision or a failure: nothing else escapes the chain.

    HTTP and in-process adapters turn what they expect into ``AdapterFailure`` already; this catches what
    they did not (a ``RecursionError`` on a deeply nested reply, a bug), so the client still gets an answer.
    """
    try:
        return await call
    except (HookRejected, AdapterFailure):
        raise
    except Exception as exc:  # noqa: BLE001 - any error of an adapter is its failure, left to its policy
        log.exception("adapter %s raised an unexpected error", spec.name)
        raise AdapterFailure(f"unexpected error: {type(exc).__name__}: {str(exc)[:200]}") from None


def check_request(request: ClientRequest) -> None:
    """An adapter's request must be one the gateway can write as it is: ``AdapterFailure`` if not.

    Whatever the adapter kind (HTTP, in-process, SDK), a method, target or body that would break the
    request line, smuggle a header or not encode is refused here, before anything is written.
    """
    if not _METHOD.fullmatch(request.method):
        raise AdapterFailure(f"the method it returned ({request.method[:40]!r}) is not an upper-case HTTP method")
    if not _TARGET.fullmatch(request.request):
        raise AdapterFailure(f"the request target it returned ({request.request[:80]!r}) is not a path of printable "
                             "ASCII starting with /")
    _check_text(request.body)


def check_response(response: ServerResponse) -> None:
    """An adapter's response must be writable as it is (no response splitting, a real status, UTF-8 text)."""
    if isinstance(response.code, bool) or not isinstance(response.code, int) or not 100 <= response.code <= 599:
        raise AdapterFailure(f"the status it returned ({response.code!r}) is not an HTTP status code")
    if response.content_type is not None and not _HEADER_VALUE.fullmatch(response.content_type):
        raise AdapterFailure(f"the content type it returned ({response.content_type[:80]!r}) has control "
                             "characters (CR, LF, ...), which would split the response")
    _check_text(response.body)


def _check_text(body: str | None) -> None:
    if body is not None:
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:
            raise AdapterFailure("the body it returned is not valid Unicode text (a lone surrogate)") from None


class ChainStopped(Exception):
    """The chain ends the exchange: the client gets ``status`` with ``{"message": message}``. ``fault``: the client
    when an adapter refused its request, the adapter when it gave no usable answer."""

    def __init__(self, status: int, message: str, fault: Side) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fault = fault


def check_streamed(request: ClientRequest) -> None:
    """A request whose body goes to the daemon unread (every pre-hook judged its head): a pre-hook cannot give
    it a body, since none would be sent."""
    if request.body is not None:
        raise ChainStopped(502, "powerstrip: a pre-hook gave a body to a request whose body no hook reads",
                           Side.ADAPTER)


@dataclass(slots=True)
class HookRecord:
    """What one hook did, for the request's log line."""

    adapter: str
    phase: str
    outcome: str  # "ok", "rejected", "failed", "ignored", "skipped" (cannot run dry)
    seconds: float
    warnings: tuple[str, ...] = ()  # what it added to the exchange's scope, as the client reads them

    def __str__(self) -> str:
        return f"{self.phase}:{self.adapter}={self.outcome}({self.seconds * 1000:.1f}ms)"


@dataclass(slots=True)
class ChainRun:
    """Runs the hooks of one exchange and remembers what each did."""

    adapters: dict[str, Adapter]
    records: list[HookRecord] = field(default_factory=list)

    async def pre(self, specs: tuple[AdapterSpec, ...], request: ClientRequest) -> ClientRequest:
        for spec in specs:
            adapter = self.adapters[spec.name]
            if request.dry_run and not getattr(adapter, "supports_dry_run", False):
                self.records.append(HookRecord(spec.name, "pre", "skipped", 0.0))
                continue
            started, warned = time.perf_counter(), _Warned(request)
            try:
                result = await _bounded_call(spec, adapter.pre_hook(request))
                if spec.kind != "validating":
                    result = self._judged(result, request)
            except (HookRejected, AdapterFailure) as exc:
                self._handle(spec, "pre", exc, started, warned.new(spec))
                continue
            request = self._accept(spec, request, result)
            self.records.append(HookRecord(spec.name, "pre", "ok", time.perf_counter() - started, warned.new(spec)))
        return request

    @staticmethod
    def _judged(result: ClientRequest, sent: ClientRequest) -> ClientRequest:
        """A changed request in its canonical form, so the next hook and the daemon see one meaning.

        A body the adapter made that dockerd would read ambiguously (or not at all) is the adapter's failure.
        """
        if (result.method, result.request, result.body) == (sent.method, sent.request, sent.body):
            return result
        check_request(result)
        try:
            check_target(result.request)
            body, found = judged(result.method, result.request, result.body)
        except (AmbiguousRequest, BodyRefused) as exc:
            raise AdapterFailure(f"the request it returned cannot be forwarded: {exc}") from None
        if found is None:
            return result if body == result.body else replace(result, body=body, decoded=None)
        body = result.body if body == result.body else body  # the same text: its object, which ``decoded`` names
        return replace(result, body=body, decoded=DecodedBody(body, found.value))

    @staticmethod
    def _accept(spec: AdapterSpec, sent: ClientRequest, result: ClientRequest) -> ClientRequest:
        """The request the next hook gets: a validating adapter only decides, it cannot change it.

        The exchange's context (headers, uid, dry run, peer) is kept whatever the adapter returned.
        """
        if spec.kind == "validating":
            if (result.method, result.request, result.body) != (sent.method, sent.request, sent.body):
                log.warning("adapter %s is validating: the changes it returned are ignored (uid %s)", spec.name, sent.uid)
            return sent
        if (result.headers, result.uid, result.dry_run, result.peer) != (sent.headers, sent.uid, sent.dry_run, sent.peer) \
                or result.scope is not sent.scope:
            result = replace(result, headers=sent.headers, uid=sent.uid, dry_run=sent.dry_run, peer=sent.peer,
                             scope=sent.scope)
        return result

    async def post(
        self, specs: tuple[AdapterSpec, ...], request: ClientRequest, response: ServerResponse
    ) -> ServerResponse:
        for spec in specs:
            started, warned = time.perf_counter(), _Warned(request)
            try:
                result = await _bounded_call(spec, self.adapters[spec.name].post_hook(request, response))
                if result != response:
                    check_response(result)
            except (HookRejected, AdapterFailure) as exc:
                self._handle(spec, "post", exc, started, warned.new(spec))
                continue
            if spec.kind == "validating" and result != response:
                log.warning("adapter %s is validating: the changes it returned are ignored (uid %s)", spec.name, request.uid)
            else:
                response = result
            self.records.append(HookRecord(spec.name, "post", "ok", time.perf_counter() - started, warned.new(spec)))
        return response

    def _handle(self, spec: AdapterSpec, phase: str, exc: HookRejected | AdapterFailure, started: float,
                warnings: tuple[str, ...]) -> None:
        """Stop the chain, or (failure with policy ``ignore``) log and go on with the value unchanged.
        An adapter's warnings stay whatever it decided: a client refused is still told what was wrong."""
        seconds = time.perf_counter() - started
        if isinstance(exc, HookRejected):
            self.records.append(HookRecord(spec.name, phase, "rejected", seconds, warnings))
            raise ChainStopped(exc.status, f"adapter {spec.name}: {exc.message}", Side.CLIENT)
        if spec.failure_policy == "ignore":
            self.records.append(HookRecord(spec.name, phase, "ignored", seconds, warnings))
            log.warning("adapter %s failed (%s hook, failure_policy ignore, going on): %s", spec.name, phase, exc.message)
            return
        self.records.append(HookRecord(spec.name, phase, "failed", seconds, warnings))
        log.error("adapter %s failed (%s hook): %s", spec.name, phase, exc.message)
        raise ChainStopped(exc.status, f"adapter {spec.name}: {exc.message}", Side.ADAPTER)


class _Warned:
    """The warnings one adapter call adds to the exchange's scope: named after the adapter (as its refusals
    are, ``adapter NAME: ...``) and logged, once the call is over."""

    __slots__ = ("_scope", "_uid", "_kept", "_dropped")

    def __init__(self, request: ClientRequest) -> None:
        self._scope: ExchangeScope = request.scope
        self._uid = request.uid
        self._kept, self._dropped = len(self._scope.warnings), self._scope.dropped

    def new(self, spec: AdapterSpec) -> tuple[str, ...]:
        scope = self._scope
        if len(scope.warnings) == self._kept and scope.dropped == self._dropped:
            return ()
        for index in range(self._kept, len(scope.warnings)):
            log.warning("adapter %s warns (uid %s): %s", spec.name, self._uid, scope.warnings[index])
            scope.warnings[index] = f"adapter {spec.name}: {scope.warnings[index]}"
        if scope.dropped > self._dropped:
            log.warning("adapter %s: %d more warning(s) not kept (at most %d an exchange; uid %s)", spec.name,
                        scope.dropped - self._dropped, len(scope.warnings), self._uid)
        return tuple(scope.warnings[self._kept:])
