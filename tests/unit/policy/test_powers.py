"""Body rules: every spelling of every power is refused by a profile without it, allowed by one with it."""

from __future__ import annotations

import json

import pytest

from powerstrip.adapters.policy.model import HostPorts, Powers
from powerstrip.adapters.policy.powers import (
    build,
    container_create,
    exec_create,
    is_root,
    normalise_image,
    service_spec,
    volume_create,
)
from tests.unit.policy.spellings import SPELLINGS

NONE = Powers(root=False)
# powers that every profile has unless its rules say otherwise: the profile that lacks them
WITHOUT = {"root": NONE, "host-port": Powers(host_ports=HostPorts(((1024, 65535),)))}

GRANTING = {
    "privileged": Powers(privileged=True), "join": Powers(join_containers=True),
    "cap-add": Powers(capabilities=frozenset({"SYS_ADMIN", "ALL"})),
    "devices": Powers(devices=True), "device-requests": Powers(device_requests=True),
    "bind": Powers(bind_sources=("/etc",)), "volumes-from": Powers(volumes_from=True),
    "unconfined": Powers(unconfined=True), "runtime": Powers(runtimes=("", "runc", "io.containerd.runc.v2")),
    "sysctl": Powers(sysctls=("net.ipv4.*",)), "root": Powers(root=True), "volume-mounts": Powers(volume_mounts=True),
    "log-driver": Powers(log_drivers=("", "json-file", "syslog")), "cgroup-parent": Powers(unconfined=True),
    "host-port": Powers(host_ports=HostPorts(((1, 65535),), ephemeral=True)),
    **{f"host-{ns}": Powers(host_namespaces=frozenset({ns})) for ns in ("network", "pid", "ipc", "uts", "userns", "cgroup")},
}


@pytest.mark.parametrize("spelling", SPELLINGS, ids=lambda s: s.id)
def test_every_spelling_is_refused_without_the_power(spelling):
    body = json.loads(json.dumps(spelling.body("ps-busybox")).replace("{victim}", "other"))
    assert container_create(body, {}, WITHOUT.get(spelling.power, Powers()))


@pytest.mark.parametrize("spelling", SPELLINGS, ids=lambda s: s.id)
def test_every_spelling_is_allowed_with_the_power(spelling):
    body = json.loads(json.dumps(spelling.body("ps-busybox")).replace("{victim}", "other"))
    assert container_create(body, {}, GRANTING[spelling.power]) == []


def test_capabilities_field_of_api_1_40_daemons():
    """19.03 daemons read HostConfig.Capabilities (the whole set); 20.10's schema has no such field."""
    assert container_create({"HostConfig": {"Capabilities": ["CAP_SYS_ADMIN"]}}, {}, Powers())


def test_bind_prefixes_are_whole_segments_and_cleaned():
    powers = Powers(bind_sources=("/srv/app",))
    ok = {"HostConfig": {"Binds": ["/srv/app:/a", "/srv/app/data:/b:ro", "named-volume:/c"]}}
    assert container_create(ok, {}, powers) == []
    for source in ("/srv/apple", "/srv/app/../../etc", "/srv", "/"):
        assert container_create({"HostConfig": {"Binds": [f"{source}:/x"]}}, {}, powers), source


def test_bind_through_a_symlink_is_judged_where_it_leads(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape").symlink_to("/etc")
    powers = Powers(bind_sources=(str(allowed),))
    assert container_create({"HostConfig": {"Binds": [f"{allowed}/escape:/x"]}}, {}, powers)


def test_required_drop_limits_and_no_new_privileges():
    powers = Powers(require_drop=frozenset({"NET_RAW"}), require_limits=frozenset({"memory", "cpu", "pids"}),
                    require_no_new_privileges=True)
    assert len(container_create({"HostConfig": {}}, {}, powers)) == 5
    good = {"HostConfig": {"CapDrop": ["cap_net_raw"], "Memory": 1 << 26, "NanoCpus": 10**9, "PidsLimit": 10,
                           "SecurityOpt": ["no-new-privileges:true"]}}
    assert container_create(good, {}, powers) == []
    all_dropped = {**good, "HostConfig": {**good["HostConfig"], "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"]}}
    assert container_create(all_dropped, {}, powers) == []
    assert container_create({"HostConfig": {**good["HostConfig"], "SecurityOpt": ["no-new-privileges=false"]}}, {},
                            powers)


@pytest.mark.parametrize(("user", "root"), [("0", True), ("00", True), ("+0", True), ("-0", True), ("0:0", True),
                                            ("root", True), ("root:1000", True), ("1000", False), ("1000:0", False),
                                            ("nobody", None), ("", None), (" 0", None)])
def test_root_spellings(user, root):
    assert is_root(user) is root


def test_user_names_and_image_default_are_refused_when_root_is():
    assert container_create({"User": "nobody"}, {}, NONE)
    assert container_create({}, {}, NONE)
    assert container_create({"User": "1000:1000"}, {}, NONE) == []


def test_images():
    powers = Powers(images=("docker.io/library/busybox:*", "registry.local/team/*"))
    assert normalise_image("busybox") == "docker.io/library/busybox:latest"
    assert normalise_image("team/app@sha256:ab") == "docker.io/team/app@sha256:ab"
    for ok in ("busybox", "busybox:1.36", "docker.io/library/busybox", "registry.local/team/app:1"):
        assert container_create({"Image": ok}, {}, powers) == [], ok
    for bad in ("ubuntu", "evil/busybox", "registry.local/other/app", "sha256:" + "a" * 64, "abcdef123456"):
        assert container_create({"Image": bad}, {}, powers), bad


def test_exec_service_build_volume():
    assert exec_create({"Privileged": True, "Cmd": ["sh"]}, {}, Powers())
    assert exec_create({"User": "0"}, {}, NONE) and exec_create({"User": "root"}, {}, NONE)
    assert exec_create({"Cmd": ["sh"]}, {}, NONE) == []
    service = {"TaskTemplate": {"ContainerSpec": {"Image": "busybox", "CapabilityAdd": ["CAP_SYS_ADMIN"],
                                                  "Mounts": [{"Type": "bind", "Source": "/", "Target": "/h"}],
                                                  "Privileges": {"Seccomp": {"Mode": "unconfined"}}},
                                "Networks": [{"Target": "host"}]}}
    assert len(service_spec(service, {}, Powers())) == 4
    assert build({}, {"networkmode": ["host"]}, Powers()) and build({}, {"networkmode": ["default"]}, Powers()) == []
    # dockerd builds with the first value, a hook that reads the last would see the second: every one is judged
    assert build({}, {"networkmode": ["host", "default"]}, Powers()) and build({}, {"networkmode": ["default", "HOST"]},
                                                                                Powers())
    assert volume_create({"Driver": "local", "DriverOpts": {"type": "none", "o": "bind", "device": "/"}}, {}, Powers())
    assert volume_create({"DriverOpts": {"o": "BIND", "device": "/etc"}}, {}, Powers())
    assert volume_create({"Driver": "local"}, {}, Powers()) == []


@pytest.mark.parametrize(("options", "refused"), [
    ({}, False),
    ({"size": "10m"}, False),
    ({"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"}, False),
    ({"type": "tmpfs", "device": "/etc", "o": "bind"}, True),          # mount's flags make it a bind of /etc
    ({"type": "overlay", "device": "overlay", "o": "lowerdir=/etc,upperdir=/tmp/u,workdir=/tmp/w"}, True),
    ({"type": "ext4", "device": "/dev/sda1"}, True),
    ({"type": "proc", "device": "proc"}, True),
    ({"type": "devtmpfs", "device": "devtmpfs"}, True),
    ({"type": "binfmt_misc", "device": "binfmt_misc"}, True),
    ({"type": "nfs", "device": ":/export", "o": "addr=10.0.0.1"}, True),
    ({"type": "TMPFS", "device": "tmpfs"}, True),                       # mount(2) knows no such type: not a tmpfs
])
def test_local_volume_options_that_mount_the_host_need_volume_mounts(options, refused):
    body = {"Driver": "local", "DriverOpts": options}
    assert bool(volume_create(body, {}, Powers())) is refused
    create = {"Image": "x", "HostConfig": {"Mounts": [{"Type": "volume", "Target": "/v", "VolumeOptions": {
        "DriverConfig": {"Name": "local", "Options": options}}}]}}
    assert bool(container_create(create, {}, Powers())) is refused
    granted = Powers(volume_mounts=True)
    assert bool(volume_create(body, {}, granted)) is ("bind" in options.get("o", ""))  # binds: bind_sources still
    assert volume_create({"Driver": "other-plugin", "DriverOpts": options}, {}, Powers()) == []


def test_plugins_need_their_own_power():
    from powerstrip.adapters.policy.powers import checker_for

    for path in ("/plugins/pull", "/plugins/create", "/plugins/vieux/sshfs:latest/set", "/plugins/x/upgrade"):
        check = checker_for("POST", path)
        assert check is not None and not check.reads_body, path
        assert check.check({}, {}, Powers()) and check.check({}, {}, Powers(plugins=True)) == []
    assert checker_for("POST", "/plugins/x/enable") is None and checker_for("GET", "/plugins/privileges") is None


def test_legacy_start_body_and_update():
    from powerstrip.adapters.policy.powers import checker_for

    start = checker_for("POST", "/containers/abc/start").check
    assert start({"Privileged": True}, {}, Powers()) and start({}, {}, Powers()) == []
    update = checker_for("POST", "/containers/abc/update").check
    assert update({"Devices": [{"PathOnHost": "/dev/sda"}]}, {}, Powers())
    assert update({"Memory": 1 << 20}, {}, Powers(require_limits=frozenset({"cpu"}))) == []


def test_mutations_labels_env_and_image_remap():
    from powerstrip.adapters.policy.model import ClientMatch, Profile
    from powerstrip.adapters.policy.mutations import mutate_create, remap_image

    remap = (("docker.io/library/", "mirror.local/library/"), ("ghcr.io/", "mirror.local/ghcr/"))
    assert remap_image("busybox", remap) == "mirror.local/library/busybox:latest"
    assert remap_image("ghcr.io/x/y:1", remap) == "mirror.local/ghcr/x/y:1"
    assert remap_image("quay.io/x/y", remap) == "quay.io/x/y"
    profile = Profile("p", ClientMatch(), (), labels=(("tier", "web"),), env=(("HTTP_PROXY", "http://proxy:3128"),),
                      image_remap=remap)
    body = mutate_create(profile, "/containers/create", {"Image": "busybox", "Env": ["HTTP_PROXY=evil", "A=1"],
                                                         "Labels": {"x": "y"}})
    assert body == {"Image": "mirror.local/library/busybox:latest", "Env": ["A=1", "HTTP_PROXY=http://proxy:3128"],
                    "Labels": {"x": "y", "tier": "web"}}
    assert mutate_create(profile, "/volumes/create", {"Name": "v"}) == {"Name": "v", "Labels": {"tier": "web"}}


def test_network_drivers_and_method_case():
    from powerstrip.adapters.policy.powers import checker_for, network_create

    assert network_create({"Name": "n"}, {}, Powers()) == []
    assert network_create({"Name": "n", "Driver": "macvlan", "Options": {"parent": "eth0"}}, {}, Powers())
    assert network_create({"Driver": "macvlan"}, {}, Powers(network_drivers=("bridge", "macvlan"))) == []
    assert checker_for("post", "/containers/create") is checker_for("POST", "/containers/create")


def test_referenced_containers():
    from powerstrip.adapters.policy.ownership import referenced_containers

    body = {"HostConfig": {"VolumesFrom": ["a:ro", "b"], "NetworkMode": "container:c", "PidMode": "host",
                           "IpcMode": "container:d", "Links": ["/e:alias"]}}
    assert referenced_containers(body) == ["a", "b", "c", "d", "e"]
    assert referenced_containers({"HostConfig": None}) == []


def test_referenced_networks():
    from powerstrip.adapters.policy.ownership import referenced_networks

    body = {"HostConfig": {"NetworkMode": "team-net"}, "NetworkingConfig": {"EndpointsConfig": {"other": {}, "bridge": {}}}}
    assert referenced_networks(body) == ["team-net", "other"]
    assert referenced_networks({"HostConfig": {"NetworkMode": "container:x"}}) == []
    assert referenced_networks({"HostConfig": {"NetworkMode": "host"}}) == []


def test_volume_mounts_and_plugins_are_written_like_the_other_powers():
    from powerstrip.adapters.policy.loader import parse_policy

    policy = parse_policy("profiles:\n  - name: admin\n    rules: [{allow: '* /**'}]\n"
                          "    powers: {volume_mounts: true, plugins: true}\n", "policy.yml")
    assert policy.profiles[0].powers.volume_mounts and policy.profiles[0].powers.plugins
    assert not Powers().volume_mounts and not Powers().plugins


def test_log_drivers_that_send_from_the_host_need_listing():
    def create(driver: str) -> dict:
        return {"Image": "x", "HostConfig": {"LogConfig": {"Type": driver}}}

    for driver in ("syslog", "gelf", "fluentd", "splunk", "awslogs"):
        assert container_create(create(driver), {}, Powers()), driver
    for driver in ("", "json-file", "local", "none"):
        assert container_create(create(driver), {}, Powers()) == [], driver
    service = {"TaskTemplate": {"ContainerSpec": {"Image": "x"}, "LogDriver": {"Name": "gelf"}}}
    assert service_spec(service, {}, Powers()) and service_spec(service, {}, Powers(log_drivers=("", "gelf"))) == []


def test_a_build_or_import_the_daemon_fetches_needs_the_host_network():
    from powerstrip.adapters.policy.powers import checker_for

    host = Powers(host_namespaces=frozenset({"network"}))
    for query in ({"remote": ["http://127.0.0.1:8080/context.tar"]}, {"remote": ["https://github.com/a/b.git"]},
                  {"cgroupparent": ["/"]}):
        assert build({}, query, Powers()), query
    assert build({}, {"remote": ["client-session"]}, Powers()) == []
    assert build({}, {"remote": ["http://x/c.tar"]}, host) == []
    imports = checker_for("POST", "/images/create")
    assert imports is not None and not imports.reads_body
    assert imports.check({}, {"fromSrc": ["http://127.0.0.1/image.tar"]}, Powers())
    assert imports.check({}, {"fromSrc": ["-"]}, Powers()) == imports.check({}, {"fromImage": ["busybox"]}, Powers()) == []


def test_a_service_on_the_host_network_in_either_list_is_refused():
    for body in ({"TaskTemplate": {"Networks": [{"Target": "host"}]}}, {"Networks": [{"Target": "HOST"}]}):
        assert service_spec(body, {}, Powers()), body
        assert service_spec(body, {}, Powers(host_namespaces=frozenset({"network"}))) == []


def test_naming_the_bridge_needs_the_host_network():
    from powerstrip.adapters.policy.powers import network_create

    body = {"Name": "n", "Options": {"com.docker.network.bridge.name": "br0"}}
    assert network_create(body, {}, Powers())
    assert network_create(body, {}, Powers(host_namespaces=frozenset({"network"}))) == []
    assert network_create({"Name": "n", "Options": {"com.docker.network.driver.mtu": "1400"}}, {}, Powers()) == []


def test_swarm_control_and_its_tokens_need_the_swarm_power():
    from powerstrip.adapters.policy.powers import checker_for

    for method, path in (("POST", "/swarm/init"), ("POST", "/swarm/join"), ("POST", "/swarm/leave"),
                         ("POST", "/swarm/update"), ("POST", "/swarm/unlock"), ("GET", "/swarm"),
                         ("GET", "/swarm/unlockkey"), ("POST", "/nodes/abc/update"), ("DELETE", "/nodes/abc")):
        check = checker_for(method, path)
        assert check is not None and check.check({}, {}, Powers()), (method, path)
        assert check.check({}, {}, Powers(swarm=True)) == []
    assert checker_for("GET", "/nodes") is None and checker_for("GET", "/info") is None


def test_a_profile_that_may_not_run_as_root_gets_no_new_privileges():
    from powerstrip.adapters.policy.model import ClientMatch, Profile
    from powerstrip.adapters.policy.mutations import mutate_create

    confined = Profile("t", ClientMatch(), (), powers=Powers(root=False))
    body = {"Image": "x", "User": "1000", "HostConfig": {"SecurityOpt": ["no-new-privileges=false", "label=x"]}}
    assert mutate_create(confined, "/containers/create", body)["HostConfig"]["SecurityOpt"] == \
        ["label=x", "no-new-privileges"]
    assert mutate_create(confined, "/containers/create", {"Image": "x"})["HostConfig"] == \
        {"SecurityOpt": ["no-new-privileges"]}
    assert mutate_create(confined, "/containers/abc/start", {"Privileged": False})["SecurityOpt"] == ["no-new-privileges"]
    assert mutate_create(confined, "/containers/abc/start", {}) == {}  # no start body: the create's HostConfig
    assert mutate_create(Profile("r", ClientMatch(), ()), "/containers/create", {"Image": "x"}) == {"Image": "x"}


def test_a_service_naming_the_host_network_by_id_is_refused():
    """The body cannot tell an ID from a name: the adapter asks the daemon (a stand-in here) what each is."""
    import asyncio

    from powerstrip.adapters.net.docker_api import DockerError
    from powerstrip.adapters.policy.service_networks import check_service_networks
    from powerstrip.sdk import Reject

    class Daemon:
        networks = {"4f3c2b": {"Name": "host", "Driver": "host"}, "web": {"Name": "web", "Driver": "overlay"}}

        async def call(self, method: str, path: str):
            try:
                return self.networks[path.rsplit("/", 1)[1]]
            except KeyError:
                raise DockerError(404, "network not found") from None

    for body in ({"TaskTemplate": {"Networks": [{"Target": "web"}, {"Target": "4f3c2b"}]}},
                 {"Networks": [{"Target": "4f3c2b"}]}):
        with pytest.raises(Reject, match="the host network's ID"):
            asyncio.run(check_service_networks(Daemon(), body))  # type: ignore[arg-type]
    asyncio.run(check_service_networks(Daemon(), {"TaskTemplate": {"Networks": [{"Target": "web"},  # type: ignore[arg-type]
                                                                             {"Target": "missing"}]}}))


def test_host_ports_are_written_as_ports_ranges_and_ephemeral():
    from powerstrip.adapters.policy.loader import PolicyError, parse_policy

    def powers(value: str) -> Powers:
        text = f"profiles:\n  - name: web\n    rules: [{{allow: '* /**'}}]\n    powers: {{host_ports: {value}}}\n"
        return parse_policy(text, "policy.yml").profiles[0].powers

    assert powers("[8080, '8000-8999', ephemeral]").host_ports == HostPorts(((8080, 8080), (8000, 8999)), True)
    assert powers("[]").host_ports == HostPorts()
    assert Powers().host_ports is None  # any, unless the rules say otherwise
    for bad in ("[0]", "[65536]", "['90-80']", "['80-']", "[http]"):
        with pytest.raises(PolicyError, match="host_ports: .* is not a port"):
            powers(bad)


def test_a_host_port_range_is_allowed_only_when_every_port_of_it_is():
    ports = HostPorts(((8000, 8099), (8100, 8199), (9000, 9000)))
    assert ports.covers(8050, 8150) and ports.covers(9000, 9000) and ports.covers(8000, 8199)
    assert not ports.covers(8150, 8250) and not ports.covers(7999, 8000) and not ports.covers(8999, 9000)

    def create(text: str) -> dict:
        return {"Image": "x", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": text}], "53/udp": None}}}

    limited = Powers(host_ports=ports)
    assert container_create(create("8080"), {}, limited) == []
    assert container_create(create("08080/udp"), {}, limited) == []
    assert "host port 8150-8250 (for 80/tcp) is not allowed (host ports: 8000-8099, 8100-8199, 9000)" in \
        container_create(create("8150-8250"), {}, limited)
    assert container_create(create("x80"), {}, limited) == \
        ["host port 'x80' (for 80/tcp) cannot be read as dockerd reads it"]
    assert container_create(create(""), {}, limited)  # the daemon picks: not listed as ephemeral
    assert container_create(create(""), {}, Powers(host_ports=HostPorts(ports.ranges, ephemeral=True))) == []
    assert container_create(create("80"), {}, Powers()) == []  # no host_ports: any


def test_a_services_published_ports_are_judged_like_a_containers():
    def service(*ports: dict) -> dict:
        return {"TaskTemplate": {"ContainerSpec": {"Image": "x"}}, "EndpointSpec": {"Ports": list(ports)}}

    limited = Powers(host_ports=HostPorts(((8000, 8999),)))
    assert service_spec(service({"TargetPort": 80, "PublishedPort": 8080}), {}, limited) == []
    assert service_spec(service({"TargetPort": 80, "PublishedPort": 80, "PublishMode": "host"}), {}, limited) == \
        ["published port 80 is not allowed (host ports: 8000-8999)"]
    assert service_spec(service({"TargetPort": 80}), {}, limited)  # the swarm picks (30000-32767)
    assert service_spec(service({"TargetPort": 80}), {}, Powers(host_ports=HostPorts(ephemeral=True))) == []


def test_a_networks_ipam_addresses_must_lie_in_the_allowed_networks():
    from powerstrip.adapters.policy.loader import PolicyError, parse_policy
    from powerstrip.adapters.policy.powers import network_create

    text = ("profiles:\n  - name: t\n    rules: [{allow: '* /**'}]\n"
            "    powers: {network_subnets: [172.16.0.0/12, 'fd00::/8']}\n")
    powers = parse_policy(text, "policy.yml").profiles[0].powers
    assert [str(n) for n in powers.network_subnets] == ["172.16.0.0/12", "fd00::/8"]
    with pytest.raises(PolicyError, match="network_subnets: '10.0.0.300/8' is not a network"):
        parse_policy(text.replace("172.16.0.0/12", "10.0.0.300/8"), "policy.yml")

    def network(**config: object) -> dict:
        return {"Name": "n", "IPAM": {"Driver": "default", "Config": [config]}}

    assert network_create({"Name": "n"}, {}, powers) == []  # the daemon picks a pool clear of the host's routes
    assert network_create(network(Subnet="172.20.0.0/16", IPRange="172.20.1.0/24", Gateway="172.20.0.1",
                                  AuxiliaryAddresses={"a": "172.20.0.2"}), {}, powers) == []
    assert network_create(network(Subnet="fd12::/64"), {}, powers) == []
    assert network_create(network(Subnet="192.168.1.0/25"), {}, powers) == \
        ["IPAM Subnet 192.168.1.0/25 is outside the networks allowed (172.16.0.0/12, fd00::/8): the host would route "
         "it to the new bridge"]
    for config in ({"Subnet": "172.0.0.0/8"}, {"Subnet": "172.20.0.1/8"}, {"Gateway": "10.0.0.1"},
                   {"IPRange": "10.1.0.0/24"}, {"AuxiliaryAddresses": {"x": "10.0.0.9"}},
                   {"Subnet": "::ffff:10.0.0.0/104"}, {"Gateway": "::ffff:10.0.0.1"}, {"Subnet": "::/0"},
                   {"Subnet": "10.0.0.0/8 "}, {"Subnet": "10.1.0.0/016"}):
        assert network_create(network(**config), {}, powers), config
    assert network_create(network(Subnet="10.0.0.0/8"), {}, Powers()) == []  # no network_subnets: anywhere
