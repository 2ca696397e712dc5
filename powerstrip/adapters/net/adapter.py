"""The built-in ``net`` adapter: Socketplane-style virtual networks chosen by environment variables.

Pre-hooks: ``POST /containers/create`` (join a network when ``SOCKETPLANE_CIDR`` or ``SP_NETWORK``
is in ``Env``) and ``POST /containers/{id}/start|restart`` (its network-only container must run).
Post-hooks: ``POST /containers/create`` (bind the address to the new container, or undo on
failure) and ``DELETE /containers/{id}`` (free the address at once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

from powerstrip.adapters import BuiltinContext
from powerstrip.adapters.messages import json_or_none, target_parts
from powerstrip.adapters.net import create_body
from powerstrip.adapters.net.attachments import Attachments, new_owner
from powerstrip.adapters.net.cluster import ClusterSettings
from powerstrip.adapters.net.converger import Converger
from powerstrip.adapters.net.docker_api import DockerError
from powerstrip.adapters.net.etcd_store import EtcdStore
from powerstrip.adapters.net.model import NetError
from powerstrip.adapters.net.names import NameService
from powerstrip.adapters.net.networks import VirtualNetworks, open_networks
from powerstrip.adapters.net.overlay import Overlay
from powerstrip.adapters.net.watcher import Watcher
from powerstrip.hooks.model import AdapterFailure, ClientRequest, HookRejected, ServerResponse

log = logging.getLogger(__name__)

_VERSION = r"(?:/v[0-9.]+)?"
_CREATE = re.compile(_VERSION + r"/containers/create")
_START = re.compile(_VERSION + r"/containers/([^/]+)/(?:start|restart)")
_CONTAINER = re.compile(_VERSION + r"/containers/([^/]+)")
_JOINED = "container:ps-net-"


def create_adapter(context: BuiltinContext) -> NetAdapter:
    cluster = context.setting(ClusterSettings)  # None: networks on this host only
    networks = open_networks(context.docker_url, context.state_dir, cluster)
    converger = None
    if cluster is not None:
        store = networks.store
        assert isinstance(store, EtcdStore)
        names = NameService(list(cluster.dns_upstreams) or None)
        converger = Converger(networks, store, Overlay(cluster.advertise, cluster.mtu),
                              lost_host_grace=cluster.lost_host_grace, names=names)
        networks.on_bridge = lambda _network: converger.sync()
        networks.resolvers = names.servers_for
    adapter = NetAdapter(context.name, networks, converger)
    if converger is not None:
        converger.on_join = adapter.attachments.reconcile  # addresses reclaimed while away are taken back
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return adapter  # no loop yet: the watcher starts with the first hook
    adapter.start()
    return adapter


class NetAdapter:
    def __init__(self, name: str, networks: VirtualNetworks, converger: Converger | None = None) -> None:
        self.name = name
        self.networks = networks
        self.attachments = Attachments(networks, networks.docker)
        self.converger = converger
        self._watcher: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start following the daemon (and the cluster) (idempotent); needs a running event loop."""
        if self._watcher is None:
            tasks = [Watcher(self.attachments, self.networks.docker).run()]
            if self.converger is not None:
                tasks.append(self.converger.run())
            self._watcher = asyncio.ensure_future(asyncio.gather(*tasks))

    async def pre_hook(self, request: ClientRequest) -> ClientRequest:
        self.start()
        path, query = target_parts(request)
        try:
            if request.method == "POST" and _CREATE.fullmatch(path):
                return await self._before_create(request, query)
            if request.method == "POST" and (match := _START.fullmatch(path)):
                await self.attachments.ensure_running(match[1])
        except NetError as exc:
            raise HookRejected(exc.status, exc.message) from None
        except DockerError as exc:
            raise AdapterFailure(f"net: Docker daemon: {exc.message}") from None
        return request

    async def post_hook(self, request: ClientRequest, response: ServerResponse) -> ServerResponse:
        self.start()
        path, query = target_parts(request)
        # The container exists (or is gone) whatever happens here: never turn its answer into an
        # error; what cannot be recorded now is repaired by the watcher's reconcile.
        try:
            if request.method == "POST" and _CREATE.fullmatch(path):
                await self._after_create(request, response, query)
            elif request.method == "DELETE" and (match := _CONTAINER.fullmatch(path)) and response.code < 300:
                await self.attachments.detach_removed(match[1])
        except (NetError, DockerError) as exc:
            log.warning("net: %s %s: %s (the watcher will reconcile)", request.method, path, exc)
        return response

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        await self.networks.docker.close()

    async def _before_create(self, request: ClientRequest, query: dict[str, list[str]]) -> ClientRequest:
        body = json_or_none(request.body)
        wanted = create_body.wanted(body) if isinstance(body, dict) else None
        if wanted is None:
            return request  # not ours: forwarded byte for byte
        name = query.get("name", [None])[0]
        owner = new_owner()
        split = create_body.split(body, owner, name)  # refuses bad input before anything exists
        await self.attachments.attach(owner, wanted, split.config, split.host_config, name)
        return ClientRequest(request.method, request.request, json.dumps(split.body))

    async def _after_create(self, request: ClientRequest, response: ServerResponse, query: dict[str, list[str]]) -> None:
        body = json_or_none(request.body)
        mode = ((body.get("HostConfig") or {}).get("NetworkMode") or "") if isinstance(body, dict) else ""
        if not mode.startswith(_JOINED):
            return
        owner = mode.removeprefix("container:")
        pending = [a for a in await asyncio.to_thread(self.networks.store.allocations) if a.owner == owner and a.container is None]
        if not pending:
            return  # a container the user joined to an existing network-only container himself
        created = json_or_none(response.body) if 200 <= response.code < 300 else None
        if isinstance(created, dict) and created.get("Id"):
            await self.attachments.bind(owner, created["Id"], query.get("name", [None])[0])
        else:
            await self.attachments.detach(owner)
