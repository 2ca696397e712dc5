"""The built-in ``qos`` adapter: keeps policies applied on this host, and ``SP_QOS_RATE`` at create time.

Pre-hook ``POST /containers/create``: a body with ``SP_QOS_RATE`` in ``Env`` is refused (400/409)
when the rate is invalid, when the container joins no powerstrip network (``SOCKETPLANE_CIDR`` or
``SP_NETWORK``), or when a policy already has the container's name. Post-hook: once the daemon
created it, a policy named after the container limits what it sends (``ip-src`` its address); the
policy goes with the container. Runs after ``net`` (which gives the address) in the chain.
"""

from __future__ import annotations

import asyncio
import logging
import re
from ipaddress import IPv4Network
from typing import Any

from powerstrip.adapters import BuiltinContext
from powerstrip.adapters.messages import json_or_none, target_parts
from powerstrip.adapters.net.cluster import ClusterSettings
from powerstrip.adapters.net.create_body import CIDR_VAR, NETWORK_VAR
from powerstrip.adapters.net.model import Conflict, InvalidInput, NetError
from powerstrip.adapters.qos.converger import QosConverger
from powerstrip.adapters.qos.policy import Match, Policy, check_conflicts, parse_rate, valid_name
from powerstrip.adapters.qos.service import Qos, add_policy, open_qos
from powerstrip.hooks.model import ClientRequest, HookRejected, ServerResponse

log = logging.getLogger(__name__)

RATE_VAR = "SP_QOS_RATE"
_CREATE = re.compile(r"(?:/v[0-9.]+)?/containers/create")
_JOINED = "container:"


def create_adapter(context: BuiltinContext) -> QosAdapter:
    cluster = context.setting(ClusterSettings)  # policies in etcd with the networks, else in state_dir
    adapter = QosAdapter(context.name, open_qos(context.docker_url, context.state_dir, cluster))
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return adapter  # no loop yet: the converger starts with the first hook
    adapter.start()
    return adapter


class QosAdapter:
    def __init__(self, name: str, qos: Qos) -> None:
        self.name = name
        self.qos = qos
        self.converger = QosConverger(qos.engine)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start converging (idempotent); needs a running event loop."""
        if self._task is None:
            self._task = asyncio.ensure_future(self.converger.run())

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        self.start()
        path, query = target_parts(request)
        body = json_or_none(request.body)
        if request.method != "POST" or not _CREATE.fullmatch(path) or not isinstance(body, dict):
            return request
        env = _env(body)
        if RATE_VAR not in env:
            return request
        try:
            parse_rate(env[RATE_VAR], RATE_VAR)
            if CIDR_VAR not in env and NETWORK_VAR not in env:
                raise InvalidInput(f"{RATE_VAR} limits a container on a powerstrip network: "
                                   f"set {CIDR_VAR} or {NETWORK_VAR} too")
            name = query.get("name", [None])[0]
            policies = await asyncio.to_thread(self.qos.policies.policies)
            if name and any(p.name == name for p in policies):
                raise Conflict(f"{RATE_VAR}: a QoS policy named {name} exists already (powerstrip qos delete {name})")
            mode = (body.get("HostConfig") or {}).get("NetworkMode") or ""
            if mode.startswith(_JOINED):  # after net's pre-hook: the address is known, check for contradictions
                wanted = await self._policy(mode.removeprefix(_JOINED), name or "this-container", env[RATE_VAR])
                check_conflicts(wanted, policies)
        except NetError as exc:
            raise HookRejected(exc.status, exc.message) from None
        return request

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        self.start()
        path, query = target_parts(request)
        body = json_or_none(request.body)
        if request.method != "POST" or not _CREATE.fullmatch(path) or not isinstance(body, dict):
            return response
        mode = (body.get("HostConfig") or {}).get("NetworkMode") or ""
        created = json_or_none(response.body) if 200 <= response.code < 300 else None
        if not mode.startswith(_JOINED) or not isinstance(created, dict) or not created.get("Id"):
            return response
        rate = _env(body).get(RATE_VAR)
        # The container exists whatever happens here: a failure is logged, never made the client's error.
        try:
            if rate is not None:
                name = query.get("name", [None])[0]
                await self._limit(mode.removeprefix(_JOINED), name if name and valid_name(name) else created["Id"][:12], rate)
        except NetError as exc:
            log.warning("qos: %s for %s: %s", RATE_VAR, created["Id"][:12], exc.message)
        self.converger.poke()  # a new container: policies for its address apply now
        return response

    async def _limit(self, owner: str, name: str, rate: str) -> None:
        policy = await add_policy(self.qos, await self._policy(owner, name, rate))
        log.info("qos: policy %s: %s egress limited to %s", policy.name, policy.match.ip_src, rate)

    async def _policy(self, owner: str, name: str, rate: str) -> Policy:
        """The policy ``SP_QOS_RATE`` asks for: what the network-only container ``owner``'s address sends."""
        allocation = next((a for a in await asyncio.to_thread(self.qos.networks.store.allocations) if a.owner == owner), None)
        if allocation is None:
            raise InvalidInput(f"{RATE_VAR}: the container is on no powerstrip network")
        match = Match(ip_src=IPv4Network(allocation.address), network=allocation.network)
        return Policy(name, match, parse_rate(rate, RATE_VAR), owner=owner)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.qos.networks.docker.close()


def _env(body: dict[str, Any]) -> dict[str, str]:
    found = {}
    for item in body.get("Env") or []:
        key, sep, value = item.partition("=") if isinstance(item, str) else ("", "", "")
        if sep:
            found[key] = value
    return found
