"""Running a chain of hooks in configuration order, applying each adapter's failure policy."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

from powerstrip.config.model import AdapterSpec
from powerstrip.hooks.model import Adapter, AdapterFailure, ClientRequest, HookRejected, ServerResponse

log = logging.getLogger("powerstrip.hooks")


class ChainStopped(Exception):
    """The chain ends the exchange: the client gets ``status`` with ``{"message": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class HookRecord:
    """What one hook did, for the request's log line."""

    adapter: str
    phase: str
    outcome: str  # "ok", "rejected", "failed", "ignored", "skipped" (cannot run dry)
    seconds: float

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
            started = time.perf_counter()
            try:
                result = await adapter.pre_hook(request)
            except (HookRejected, AdapterFailure) as exc:
                self._handle(spec, "pre", exc, started)
                continue
            request = self._accept(spec, request, result)
            self.records.append(HookRecord(spec.name, "pre", "ok", time.perf_counter() - started))
        return request

    @staticmethod
    def _accept(spec: AdapterSpec, sent: ClientRequest, result: ClientRequest) -> ClientRequest:
        """The request the next hook gets: a validating adapter only decides, it cannot change it.

        The exchange's context (headers, uid, dry run, peer) is kept whatever the adapter returned.
        """
        if spec.kind == "validating":
            if (result.method, result.request, result.body) != (sent.method, sent.request, sent.body):
                log.warning("adapter %s is validating: the changes it returned are ignored (uid %s)", spec.name, sent.uid)
            return sent
        if (result.headers, result.uid, result.dry_run, result.peer) != (sent.headers, sent.uid, sent.dry_run, sent.peer):
            result = replace(result, headers=sent.headers, uid=sent.uid, dry_run=sent.dry_run, peer=sent.peer)
        return result

    async def post(
        self, specs: tuple[AdapterSpec, ...], request: ClientRequest, response: ServerResponse
    ) -> ServerResponse:
        for spec in specs:
            started = time.perf_counter()
            try:
                result = await self.adapters[spec.name].post_hook(request, response)
            except (HookRejected, AdapterFailure) as exc:
                self._handle(spec, "post", exc, started)
                continue
            if spec.kind == "validating" and result != response:
                log.warning("adapter %s is validating: the changes it returned are ignored (uid %s)", spec.name, request.uid)
            else:
                response = result
            self.records.append(HookRecord(spec.name, "post", "ok", time.perf_counter() - started))
        return response

    def _handle(self, spec: AdapterSpec, phase: str, exc: HookRejected | AdapterFailure, started: float) -> None:
        """Stop the chain, or (failure with policy ``ignore``) log and go on with the value unchanged."""
        seconds = time.perf_counter() - started
        if isinstance(exc, HookRejected):
            self.records.append(HookRecord(spec.name, phase, "rejected", seconds))
            raise ChainStopped(exc.status, f"adapter {spec.name}: {exc.message}")
        if spec.failure_policy == "ignore":
            self.records.append(HookRecord(spec.name, phase, "ignored", seconds))
            log.warning("adapter %s failed (%s hook, failure_policy ignore, going on): %s", spec.name, phase, exc.message)
            return
        self.records.append(HookRecord(spec.name, phase, "failed", seconds))
        log.error("adapter %s failed (%s hook): %s", spec.name, phase, exc.message)
        raise ChainStopped(exc.status, f"adapter {spec.name}: {exc.message}")
