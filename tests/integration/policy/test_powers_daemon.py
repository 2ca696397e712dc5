"""Every spelling of every host power, against the real dockerd.

For each spelling (tests/unit/policy/spellings.py) in five key layouts — canonical, keys in lower case, keys
folded as Go's EqualFold allows (ſ for s, the Kelvin sign for k), HostConfig fields at the top level of the
body (the legacy placement dockerd still reads), and each power's key repeated (null first) — the control sends
the body straight to dockerd and checks, by inspect, that dockerd grants the power; the same body through a
gateway whose profile lacks that power must get 403 and leave no container behind.
"""

from __future__ import annotations

import json

import docker
import pytest

from harness import rawhttp
from harness.image import tar_of
from tests.integration.policy.conftest import exists
from tests.unit.policy.spellings import SPELLINGS, Spelling

pytestmark = pytest.mark.docker

RULES = """\
    profiles:
      - name: tenant
        rules:
          - allow: "* /**"
        powers:
          root: false
          host_ports: ["1024-65535"]
"""
LAYOUTS = ("canonical", "lower-keys", "folded-keys", "legacy-top-level", "repeated-key")
_FOLDS = str.maketrans({"s": "\u017f", "S": "\u017f", "k": "\u212a", "K": "\u212a"})  # Go's EqualFold: ſ=s, K=k


def _lower_keys(value):
    if isinstance(value, dict):
        return {key.lower(): _lower_keys(item) if key not in ("Sysctls", "Options", "Config") else item
                for key, item in value.items()}
    if isinstance(value, list):
        return [_lower_keys(item) for item in value]
    return value


def _folded_keys(value):
    """Keys swapped in case, with ſ for s and the Kelvin sign for k: encoding/json still matches them."""
    if isinstance(value, dict):
        return {key.swapcase().translate(_FOLDS) if key not in ("Sysctls", "Options", "Config") else key:
                _folded_keys(item) if key not in ("Sysctls", "Options", "Config") else item for key, item in value.items()}
    if isinstance(value, list):
        return [_folded_keys(item) for item in value]
    return value


def body_text(spelling: Spelling, layout: str, victim: str) -> str:
    body = spelling.body("ps-busybox")
    if spelling.power != "root":
        body["User"] = "1000"  # the profile refuses root: the power under test is the only one asked for
    if layout == "lower-keys":
        body = _lower_keys(body)
    elif layout == "folded-keys":
        body = _folded_keys(body)
    elif layout == "legacy-top-level":
        body = {**{k: v for k, v in body.items() if k != "HostConfig"}, **body["HostConfig"]}
    elif layout == "repeated-key":  # each power first given as null, then for real: the last one counts
        host = ", ".join(f"{json.dumps(k)}: null, {json.dumps(k)}: {json.dumps(v)}" for k, v in body["HostConfig"].items())
        top = ", ".join(f"{json.dumps(k)}: null, {json.dumps(k)}: {json.dumps(v)}" if k == "User" and spelling.power == "root"
                        else f"{json.dumps(k)}: {json.dumps(v)}" for k, v in body.items() if k != "HostConfig")
        return f'{{{top}, "HostConfig": {{{host}}}}}'.replace("{victim}", victim)
    return json.dumps(body, ensure_ascii=False).replace("{victim}", victim)


def create(socket_path: str, name: str, body: str) -> rawhttp.Reply:
    return rawhttp.request(socket_path, "POST", f"/v1.41/containers/create?name={name}", body.encode(),
                           {"Content-Type": "application/json"})


def test_no_spelling_of_a_power_gets_through(policy_gateway, dockerd, daemon, uniq):
    gw = policy_gateway(RULES)
    victim = f"pol-victim-{uniq}"
    daemon.api.create_container("ps-busybox", ["sleep", "60"], name=victim)
    made, checked = [victim], []
    refusals = {400: 0, 403: 0}
    try:
        for index, spelling in enumerate(SPELLINGS):
            for layout in LAYOUTS:
                if layout == "legacy-top-level" and not spelling.host:
                    continue
                body = body_text(spelling, layout, victim)
                control, probe = f"pol-c-{uniq}-{index}-{layout}", f"pol-p-{uniq}-{index}-{layout}"
                direct = create(dockerd.socket_path, control, body)
                assert direct.status == 201, (spelling.id, layout, direct.body)
                made.append(control)
                assert spelling.granted(daemon.api.inspect_container(control)), \
                    f"control: dockerd did not grant {spelling.id} ({layout}): {body}"
                through = create(gw.socket_path, probe, body)
                if through.status == 201:
                    made.append(probe)
                # refused by the policy (403), or by the gateway as a body it will not guess at (400)
                assert through.status in (400, 403), (spelling.id, layout, through.status, through.body)
                message = through.json()["message"]
                assert "policy (profile 'tenant')" in message or message.startswith("powerstrip:"), message
                refusals[through.status] += 1
                assert not exists(daemon, probe), (spelling.id, layout)
                checked.append(f"{spelling.id}/{layout}")
    finally:
        for name in made:
            daemon.api.remove_container(name, force=True)
    print(f"{len(checked)} spellings refused ({refusals}), each granted by dockerd directly")
    assert len(checked) >= 200


def test_a_body_within_the_profile_is_created(policy_gateway, daemon, uniq):
    gw = policy_gateway(RULES)
    name = f"pol-ok-{uniq}"
    body = json.dumps({"Image": "ps-busybox", "Cmd": ["true"], "User": "1000:1000",
                       "HostConfig": {"CapDrop": ["ALL"], "Memory": 16 << 20, "Binds": [f"vol-{uniq}:/data"],
                                      "PortBindings": {"80/tcp": [{"HostPort": "18080"}]}}})
    reply = create(gw.socket_path, name, body)
    try:
        assert reply.status == 201, reply.body
    finally:
        daemon.api.remove_container(name, force=True, v=True)
        daemon.api.remove_volume(f"vol-{uniq}", force=True)


def test_exec_legacy_start_volume_network(policy_gateway, dockerd, daemon, uniq):
    """The same powers where they appear outside a create: exec, the API < 1.24 start body, volumes, networks."""
    gw = policy_gateway(RULES)
    name = f"pol-run-{uniq}"
    daemon.api.create_container("ps-busybox", ["sleep", "60"], name=name, user="1000")
    daemon.api.start(name)
    try:
        for body in ({"Cmd": ["id"], "Privileged": True}, {"Cmd": ["id"], "User": "0"}, {"Cmd": ["id"], "User": "root"},
                     {"cmd": ["id"], "privileged": True}):
            reply = rawhttp.request(gw.socket_path, "POST", f"/v1.41/containers/{name}/exec",
                                    json.dumps(body).encode(), {"Content-Type": "application/json"})
            assert reply.status == 403, (body, reply.body)
        ok = rawhttp.request(gw.socket_path, "POST", f"/v1.41/containers/{name}/exec",
                             json.dumps({"Cmd": ["id"], "User": "1000"}).encode(), {"Content-Type": "application/json"})
        assert ok.status == 201, ok.body
        # the old start body carries a HostConfig, and dockerd 20.10 still applies it (the control shows it)
        legacy = f"pol-legacy-{uniq}"
        daemon.api.create_container("ps-busybox", ["true"], name=legacy, user="1000")
        reply = rawhttp.request(gw.socket_path, "POST", f"/v1.23/containers/{legacy}/start",
                                json.dumps({"Privileged": True}).encode(), {"Content-Type": "application/json"})
        assert reply.status == 403, reply.body
        assert daemon.api.inspect_container(legacy)["HostConfig"]["Privileged"] is False
        control = rawhttp.request(dockerd.socket_path, "POST", f"/v1.23/containers/{legacy}/start",
                                  json.dumps({"Privileged": True}).encode(), {"Content-Type": "application/json"})
        assert control.status == 204, control.body
        assert daemon.api.inspect_container(legacy)["HostConfig"]["Privileged"] is True
        daemon.api.remove_container(legacy, force=True)
        # a local volume that binds a host directory
        volume = {"Name": f"pol-vol-{uniq}", "Driver": "local", "DriverOpts": {"type": "none", "o": "bind", "device": "/etc"}}
        reply = rawhttp.request(gw.socket_path, "POST", "/v1.41/volumes/create", json.dumps(volume).encode(),
                                {"Content-Type": "application/json"})
        assert reply.status == 403, reply.body
        assert f"pol-vol-{uniq}" not in [v.name for v in daemon.volumes.list()]
        # macvlan/ipvlan networks: refused by the policy before the daemon sees them. (No control here: this
        # machine's kernel cannot make those links, so dockerd answers "operation not supported" itself.)
        for driver in ("macvlan", "ipvlan"):
            network = json.dumps({"Name": f"pol-{driver}-{uniq}", "Driver": driver}).encode()
            reply = rawhttp.request(gw.socket_path, "POST", "/v1.41/networks/create", network,
                                    {"Content-Type": "application/json"})
            assert reply.status == 403 and f"network driver '{driver}' is not allowed" in reply.json()["message"]
            assert not daemon.networks.list(names=[f"pol-{driver}-{uniq}"])
    finally:
        daemon.api.remove_container(name, force=True)


def test_build_with_the_host_network_is_refused(policy_gateway, daemon, uniq):
    import io

    import docker

    gw = policy_gateway(RULES)
    context = io.BytesIO(tar_of({"Dockerfile": b"FROM ps-busybox\nRUN true\n"}))
    client = docker.DockerClient(base_url=gw.url)
    try:
        for network in ("host", "HOST"):
            context.seek(0)
            with pytest.raises(docker.errors.APIError) as refused:
                client.images.build(fileobj=context, custom_context=True, network_mode=network, tag=f"pol-b-{uniq}")
            assert refused.value.status_code == 403
        context.seek(0)
        image, _ = client.images.build(fileobj=context, custom_context=True, tag=f"pol-b-{uniq}")  # a tar body passes
        assert image.tags
    finally:
        client.close()
        try:
            daemon.images.remove(f"pol-b-{uniq}", force=True)
        except docker.errors.ImageNotFound:
            pass


def test_a_local_volume_cannot_mount_the_host(policy_gateway, daemon, uniq, tmp_path):
    """dockerd's local driver mounts whatever type and device it is given, with its own privileges: directly, an
    overlay whose lower directory is a host directory shows that directory's files in a container. Through the
    gateway the same volume (and a kernel file system, a host device) is refused for want of ``volume_mounts``."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "flag").write_text("host secret\n")
    for part in ("upper", "work"):
        (tmp_path / part).mkdir()
    overlay = {"type": "overlay", "device": "overlay",
               "o": f"lowerdir={secret},upperdir={tmp_path / 'upper'},workdir={tmp_path / 'work'}"}
    control = f"pol-vctl-{uniq}"
    try:
        daemon.volumes.create(name=control, driver="local", driver_opts=overlay)
        seen = daemon.containers.run("ps-busybox", ["cat", "/host/flag"], volumes={control: {"bind": "/host"}},
                                     remove=True, user="1000")
        assert seen == b"host secret\n"  # the control: dockerd mounted the host directory for the container
        gw = policy_gateway(RULES)
        for options in (overlay, {"type": "proc", "device": "proc"}, {"type": "ext4", "device": "/dev/sda1"}):
            volume = {"Name": f"pol-vm-{uniq}", "Driver": "local", "DriverOpts": options}
            reply = rawhttp.request(gw.socket_path, "POST", "/v1.41/volumes/create", json.dumps(volume).encode(),
                                    {"Content-Type": "application/json"})
            assert reply.status == 403 and "(volume_mounts)" in reply.json()["message"], (options, reply.body)
            assert f"pol-vm-{uniq}" not in [v.name for v in daemon.volumes.list()]
        tmpfs = {"Name": f"pol-vt-{uniq}", "Driver": "local", "DriverOpts": {"type": "tmpfs", "device": "tmpfs"}}
        reply = rawhttp.request(gw.socket_path, "POST", "/v1.41/volumes/create", json.dumps(tmpfs).encode(),
                                {"Content-Type": "application/json"})
        assert reply.status == 201, reply.body  # a private tmpfs is nothing of the host's
    finally:
        for name in (control, f"pol-vt-{uniq}"):
            try:
                daemon.volumes.get(name).remove(force=True)
            except Exception:  # noqa: BLE001 - not made
                pass


def test_installing_a_plugin_needs_the_plugins_power(policy_gateway, daemon, uniq, tmp_path):
    """A plugin runs with the privileges its config declares: directly, dockerd installs one asking for
    CAP_SYS_ADMIN and the host network; through the gateway the same create is refused."""
    import io
    import tarfile

    from harness.image import rootfs_tar

    plugin_dir = tmp_path / "plugin"
    (plugin_dir / "rootfs").mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(rootfs_tar())) as tar:
        tar.extractall(plugin_dir / "rootfs")
    (plugin_dir / "config.json").write_text(json.dumps({
        "description": "powerstrip test", "documentation": "-", "entrypoint": ["/bin/sleep", "60"],
        "interface": {"types": ["docker.volumedriver/1.0"], "socket": "test.sock"},
        "network": {"type": "host"}, "linux": {"capabilities": ["CAP_SYS_ADMIN"]}}))
    control, probe = f"pol-plugin-ctl-{uniq}:latest", f"pol-plugin-{uniq}:latest"
    try:
        daemon.api.create_plugin(control, str(plugin_dir))
        config = daemon.api.inspect_plugin(control)["Config"]
        assert config["Linux"]["Capabilities"] == ["CAP_SYS_ADMIN"] and config["Network"]["Type"] == "host"
        gw = policy_gateway(RULES)
        client = docker.APIClient(base_url=gw.url)
        with pytest.raises(docker.errors.APIError) as refused:
            client.create_plugin(probe, str(plugin_dir))
        assert refused.value.status_code == 403 and "(plugins)" in str(refused.value)
        assert probe not in [p["Name"] for p in daemon.api.plugins()]
        client.close()
    finally:
        for name in (control, probe):
            try:
                daemon.api.remove_plugin(name, force=True)
            except docker.errors.APIError:
                pass


def test_a_network_subnet_outside_the_allowed_ones_is_refused(policy_gateway, dockerd, daemon, uniq):
    """A subnet given in IPAM becomes a host route to the new bridge: dockerd takes any (the control shows one
    inside a private range the host might route elsewhere); the profile's network_subnets decide through the
    gateway."""
    gw = policy_gateway(RULES.replace('host_ports: ["1024-65535"]', 'network_subnets: ["172.28.0.0/14"]'))

    def create(socket_path: str, name: str, subnet: str, gateway: str) -> rawhttp.Reply:
        body = {"Name": name, "IPAM": {"Config": [{"Subnet": subnet, "Gateway": gateway}]}}
        return rawhttp.request(socket_path, "POST", "/v1.41/networks/create", json.dumps(body).encode(),
                               {"Content-Type": "application/json"})

    control, refused, allowed = f"pol-net-c-{uniq}", f"pol-net-r-{uniq}", f"pol-net-a-{uniq}"
    try:
        reply = create(dockerd.socket_path, control, "10.199.0.0/24", "10.199.0.1")
        assert reply.status == 201, reply.body
        assert daemon.networks.get(control).attrs["IPAM"]["Config"][0]["Subnet"] == "10.199.0.0/24"
        daemon.networks.get(control).remove()
        reply = create(gw.socket_path, refused, "10.199.0.0/24", "10.199.0.1")
        assert reply.status == 403 and "IPAM Subnet 10.199.0.0/24 is outside" in reply.json()["message"]
        assert not daemon.networks.list(names=[refused])
        reply = create(gw.socket_path, allowed, "172.29.5.0/24", "172.29.5.1")
        assert reply.status == 201, reply.body
    finally:
        for name in (control, refused, allowed):
            for network in daemon.networks.list(names=[name]):
                network.remove()
