import pytest

from powerstrip.adapters.net.create_body import Wanted, split, wanted
from powerstrip.adapters.net.model import InvalidInput


def test_without_the_variables_nothing_is_wanted() -> None:
    assert wanted({"Env": ["A=1", "SOCKETPLANE_CIDRX=1"]}) is None
    assert wanted({"Env": None}) is None
    assert wanted({}) is None


def test_variables_select_a_network() -> None:
    assert wanted({"Env": ["SOCKETPLANE_CIDR=10.0.6.1/24"]}) == Wanted(None, "10.0.6.1/24")
    assert wanted({"Env": ["SP_NETWORK=web"]}) == Wanted("web", None)
    assert wanted({"Env": ["SP_NETWORK=web", "SOCKETPLANE_CIDR=10.0.7.0/24"]}) == Wanted("web", "10.0.7.0/24")
    assert wanted({"Env": ["SP_NETWORK="]}) == Wanted(None, None)  # the default network


def docker_cli_body() -> dict:
    return {
        "Hostname": "",
        "Env": ["SOCKETPLANE_CIDR=10.0.6.1/24"],
        "Cmd": ["/bin/sh"],
        "Image": "ubuntu",
        "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {
            "NetworkMode": "default",
            "PortBindings": {"80/tcp": [{"HostPort": "8080"}]},
            "Dns": [],
            "Memory": 0,
        },
        "NetworkingConfig": {"EndpointsConfig": {"default": {}}},
    }


def test_split_joins_the_network_only_container_and_moves_network_settings() -> None:
    body = docker_cli_body()
    result = split(body, "ps-net-1", "powerstrip-test1")
    assert result.body["HostConfig"] == {"NetworkMode": "container:ps-net-1", "Memory": 0}
    assert "ExposedPorts" not in result.body and "Hostname" not in result.body
    assert result.body["Cmd"] == ["/bin/sh"] and result.body["NetworkingConfig"] == body["NetworkingConfig"]
    assert result.config == {"ExposedPorts": {"80/tcp": {}}, "Hostname": "powerstrip-test1"}
    assert result.host_config == {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}
    assert body["HostConfig"]["NetworkMode"] == "default"  # the input is not changed


def test_split_keeps_an_explicit_hostname_and_skips_names_that_are_not_hostnames() -> None:
    assert split({"Hostname": "h1"}, "n", "x").config == {"Hostname": "h1"}
    assert split({}, "n", "under_score").config == {}
    assert split({}, "n", None).config == {}


@pytest.mark.parametrize(
    "host_config, message",
    [({"NetworkMode": "host"}, "--network host"), ({"Links": ["a:b"]}, "--link")],
)
def test_split_refuses_what_cannot_share_a_namespace(host_config: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        split({"HostConfig": host_config}, "n", None)
