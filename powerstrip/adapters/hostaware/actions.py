"""Carrying out a rule's action, and undoing it when the rule clears.

- ``refuse-create`` needs nothing done here: while the rule acts, the adapter's create pre-hook
  answers 503 (``adapter.HostAwareAdapter``).
- ``qos:<policy JSON>`` stores a QoS policy for this host's containers and applies it
  (``qos_action.QosAction``), deleted on clear.
- ``isolate:<network>`` drops the network's traffic on this host: iptables DROP rules on its
  bridge (in FORWARD, both directions, and INPUT, so neither its containers nor the host reach
  each other), tagged with a comment naming the rule, deleted on clear. The network is a Docker
  network of that name, or powerstrip's virtual network of that name (Docker's ``ps-NAME``).
  powerstrip must run in the Docker host's network namespace (as it normally does).
- ``webhook:<url>`` POSTs the message as JSON in a task of its own, with a bounded timeout and a
  bounded number in flight: a webhook that hangs delays nothing.

``apply``/``undo`` return what to add to the messages (a failure is a WARN, never an exception).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import shutil
import time
from collections.abc import Awaitable, Callable

import aiohttp

from powerstrip.adapters.hostaware.model import ActionKind, Level, Message, Rule
from powerstrip.adapters.hostaware.qos_action import QosAction
from powerstrip.adapters.net.docker_api import DockerAPI, DockerError

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 3.0
WEBHOOKS_IN_FLIGHT = 16
IPTABLES_TIMEOUT = 10.0
COMMENT = "powerstrip-hostaware:"

Runner = Callable[[list[str]], Awaitable[tuple[int, str]]]


async def run_command(argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` with a bound; (exit status, its stdout when it succeeded, else its stderr)."""
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), IPTABLES_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"{argv[0]} timed out after {IPTABLES_TIMEOUT:g}s"
    status = proc.returncode or 0
    return status, (out if status == 0 else err).decode(errors="replace").strip()


def isolation_rules(bridge: str, rule: str) -> list[list[str]]:
    """The iptables rules (chain and match, no verb) that cut ``bridge`` off, tagged with ``rule``."""
    tag = ["-m", "comment", "--comment", COMMENT + rule, "-j", "DROP"]
    return [["FORWARD", "-i", bridge, *tag], ["FORWARD", "-o", bridge, *tag], ["INPUT", "-i", bridge, *tag]]


class Actions:
    def __init__(self, docker: DockerAPI, host: str, qos: QosAction, runner: Runner = run_command) -> None:
        self.docker = docker
        self.host = host
        self.qos = qos
        self.runner = runner
        self._isolated: dict[str, str] = {}  # rule name → bridge
        self._webhooks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.late: list[Message] = []  # what a webhook's failure said after the fact; the monitor records it

    async def sweep(self) -> None:
        """Remove isolation rules and QoS policies left by a powerstrip that was killed: at start nothing
        acts yet, and a rule that still holds acts again after its ``times`` polls."""
        await self.qos.sweep()
        if shutil.which("iptables") is None:
            return
        for chain in ("FORWARD", "INPUT"):
            status, listing = await self.runner(["iptables", "-w", "5", "-S", chain])
            if status != 0:
                continue
            for line in listing.splitlines():
                words = shlex.split(line)
                if words[:1] == ["-A"] and any(w.startswith(COMMENT) for w in words):
                    await self.runner(["iptables", "-w", "5", "-D", *words[1:]])
                    log.info("hostaware: removed a stale isolation rule: %s", line)

    async def apply(self, rule: Rule, message: Message) -> list[Message]:
        kind = rule.action.kind
        if kind is ActionKind.QOS:
            return await self.qos.apply(rule)
        if kind is ActionKind.ISOLATE:
            return await self._isolate(rule)
        if kind is ActionKind.WEBHOOK:
            return self._webhook(rule, message)
        return []

    async def undo(self, rule: Rule, message: Message) -> list[Message]:
        kind = rule.action.kind
        if kind is ActionKind.QOS:
            return await self.qos.undo(rule)
        if kind is ActionKind.ISOLATE:
            return await self._unisolate(rule)
        if kind is ActionKind.WEBHOOK:
            return self._webhook(rule, message)
        return []

    async def close(self) -> None:
        """Undo the isolations (a stopped powerstrip must not leave a network cut off) and the QoS policies
        (nobody watches their rules any more), and end the webhooks."""
        for name, bridge in list(self._isolated.items()):
            await self._delete_rules(bridge, name)
        self._isolated.clear()
        await self.qos.close()
        for task in self._webhooks:
            task.cancel()
        await asyncio.gather(*self._webhooks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def _warn(self, rule: Rule, text: str) -> list[Message]:
        log.warning("hostaware: rule %s: %s", rule.name, text)
        return [Message(time.time(), Level.WARN, self.host, text, rule.name, rule.metric, None, str(rule.action))]

    async def _bridge(self, network: str) -> str:
        last: DockerError | None = None
        for name in (network, f"ps-{network}"):
            try:
                found = await self.docker.call("GET", f"/networks/{name}")
            except DockerError as exc:
                last = exc
                continue
            if found.get("Driver") != "bridge":
                raise DockerError(400, f"network {network} is a {found.get('Driver')} network, not a bridge")
            return (found.get("Options") or {}).get("com.docker.network.bridge.name") or f"br-{found['Id'][:12]}"
        assert last is not None
        raise last

    async def _isolate(self, rule: Rule) -> list[Message]:
        if shutil.which("iptables") is None:
            return self._warn(rule, "cannot isolate: iptables is not installed")
        try:
            bridge = await self._bridge(rule.action.argument)
        except DockerError as exc:
            return self._warn(rule, f"cannot isolate {rule.action.argument}: {exc.message}")
        for spec in isolation_rules(bridge, rule.name):
            if (await self.runner(["iptables", "-w", "5", "-C", *spec]))[0] == 0:
                continue  # already there (e.g. left by a powerstrip that was killed)
            status, err = await self.runner(["iptables", "-w", "5", "-I", spec[0], "1", *spec[1:]])
            if status != 0:
                await self._delete_rules(bridge, rule.name)
                return self._warn(rule, f"cannot isolate {rule.action.argument} (bridge {bridge}): {err}")
        self._isolated[rule.name] = bridge
        log.info("hostaware: rule %s: network %s (bridge %s) isolated", rule.name, rule.action.argument, bridge)
        return []

    async def _unisolate(self, rule: Rule) -> list[Message]:
        bridge = self._isolated.pop(rule.name, None)
        if bridge is None:
            try:
                bridge = await self._bridge(rule.action.argument)
            except DockerError:
                return []  # never isolated (it failed and said so), and the network is gone
        failed = await self._delete_rules(bridge, rule.name)
        return self._warn(rule, f"cannot undo the isolation of {rule.action.argument}: {failed}") if failed else []

    async def _delete_rules(self, bridge: str, rule: str) -> str:
        """Delete every copy of the rule's iptables rules; the last error, if one stayed."""
        failed = ""
        for spec in isolation_rules(bridge, rule):
            for _ in range(16):  # bounded: each -D removes one copy
                if (await self.runner(["iptables", "-w", "5", "-C", *spec]))[0] != 0:
                    break
                status, err = await self.runner(["iptables", "-w", "5", "-D", *spec])
                if status != 0:
                    failed = err
                    break
        return failed

    def _webhook(self, rule: Rule, message: Message) -> list[Message]:
        if len(self._webhooks) >= WEBHOOKS_IN_FLIGHT:
            return self._warn(rule, f"webhook {rule.action.argument} not called: {WEBHOOKS_IN_FLIGHT} calls "
                                    "still in flight")
        task = asyncio.get_running_loop().create_task(self._post(rule, message))
        self._webhooks.add(task)
        task.add_done_callback(self._webhooks.discard)
        return []

    async def _post(self, rule: Rule, message: Message) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT))
        body = json.dumps({"host": message.host, "level": message.level.value, "time": message.time,
                           "rule": rule.document(), "metric": message.metric, "value": message.value,
                           "text": message.text})
        try:
            async with self._session.post(rule.action.argument, data=body,
                                          headers={"Content-Type": "application/json"}) as answer:
                if answer.status >= 300:
                    self.late += self._warn(rule, f"webhook {rule.action.argument} answered {answer.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.late += self._warn(rule, f"webhook {rule.action.argument} failed: {exc or type(exc).__name__}")
