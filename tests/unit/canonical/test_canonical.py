"""The canonical view of request bodies: Go's encoding/json rules, moby's placement, what is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from powerstrip.canonical import Ambiguous, Undecodable, canonicalize, judged_body, split_version
from powerstrip.canonical.decode import MAX_DEPTH
from powerstrip.canonical.schema import api_version, engine_schema, fold

CREATE = "/v1.41/containers/create"


def create(body: str, path: str = CREATE) -> dict:
    found = canonicalize("POST", path, body)
    assert found is not None
    assert json.loads(found.text) == found.value  # the text is the object, serialised
    return found.value


def host(body: str, path: str = CREATE) -> dict:
    return create(body, path).get("HostConfig", {})


# --- field names: exact, folded as Go folds, escaped ---------------------------------------------------

@pytest.mark.parametrize("key", ["Privileged", "privileged", "PRIVILEGED", "pRiViLeGeD", "\\u0050rivileged",
                                 "Privileged".replace("e", "\\u0065")])
def test_every_spelling_of_a_field_is_that_field(key: str) -> None:
    assert host(f'{{"Image": "x", "HostConfig": {{"{key}": true}}}}')["Privileged"] is True


def test_kelvin_sign_and_long_s_fold_onto_k_and_s_as_in_go() -> None:
    assert fold("\u212a") == "k" and fold("\u017f") == "s"
    body = '{"Image": "x", "HostConfig": {"\u017fecurityOpt": ["seccomp=unconfined"], "CapAdd": ["SYS_ADMIN"]}}'
    assert host(body)["SecurityOpt"] == ["seccomp=unconfined"]
    labels = create('{"Image": "x", "Labels": {"\u212aey": "v"}}')["Labels"]
    assert labels == {"\u212aey": "v"}  # map keys are exact


def test_other_unicode_does_not_fold_onto_a_field() -> None:
    value = create('{"Image": "x", "HostConfig": {"Prıvileged": true}}')  # dotless i
    assert "Privileged" not in value["HostConfig"] and value["HostConfig"]["Prıvileged"] is True


def test_map_keys_are_kept_exactly() -> None:
    value = create('{"Image": "x", "Labels": {"a": "1", "A": "2"}, "HostConfig": {"Sysctls": {"Net.x": "1"}}}')
    assert value["Labels"] == {"a": "1", "A": "2"}
    assert value["HostConfig"]["Sysctls"] == {"Net.x": "1"}


# --- repeated keys ------------------------------------------------------------------------------------

def test_a_repeated_field_takes_the_last_value() -> None:
    assert host('{"Image": "x", "HostConfig": {"Privileged": true, "Privileged": false}}')["Privileged"] is False


def test_a_repeated_struct_keeps_the_fields_of_the_first() -> None:
    hc = host('{"Image": "x", "HostConfig": {"Privileged": true}, "HostConfig": {"Memory": 8388608}}')
    assert hc["Privileged"] is True and hc["Memory"] == 8388608


def test_null_has_no_effect_on_a_value_and_resets_a_pointer() -> None:
    hc = host('{"Image": "x", "HostConfig": {"Privileged": true, "Privileged": null, "PidsLimit": 5, '
              '"PidsLimit": null}}')
    assert hc["Privileged"] is True and "PidsLimit" not in hc
    assert host('{"Image": "x", "HostConfig": {"Privileged": true}, "HostConfig": null, "Privileged": true}')[
        "Privileged"] is True


def test_a_repeated_map_key_takes_the_last_value_whole() -> None:
    value = create('{"Image": "x", "Labels": {"a": "1"}, "Labels": {"b": "2", "b": "3"}}')
    assert value["Labels"] == {"a": "1", "b": "3"}  # the map is reused, as Go reuses it


def test_two_spellings_with_different_values_are_refused() -> None:
    with pytest.raises(Ambiguous, match="HostConfig.Privileged"):
        canonicalize("POST", CREATE, '{"Image": "x", "HostConfig": {"Privileged": false, "privileged": true}}')
    with pytest.raises(Ambiguous):
        canonicalize("POST", CREATE, '{"Image": "x", "HostConfig": {"privileged": true}, '
                                     '"HostConfig": {"PRIVILEGED": false}}')


def test_a_struct_read_with_exact_names_still_knows_its_spellings_when_it_is_given_again() -> None:
    """The first object takes the fast path (every key a field's exact name, its spellings derived only when
    asked): a second object spelling a field otherwise is still refused, a null included."""
    for first in ('{"Privileged": false}', '{"Privileged": null}'):
        with pytest.raises(Ambiguous, match="HostConfig.Privileged"):
            canonicalize("POST", CREATE, f'{{"Image": "x", "HostConfig": {first}, "HostConfig": {{"privileged": true}}}}')
    assert host('{"Image": "x", "HostConfig": {"Privileged": true}, "HostConfig": {"Privileged": false}}')[
        "Privileged"] is False


def test_exact_names_before_an_unknown_or_folded_key_are_read_the_same() -> None:
    hc = host('{"Image": "x", "HostConfig": {"Memory": 8388608, "Binds": ["/a:/a"], "privileged": true, '
              '"FutureField": {"k": 1}}}')
    assert hc["Memory"] == 8388608 and hc["Binds"] == ["/a:/a"] and hc["Privileged"] is True
    assert hc["FutureField"] == {"k": 1}
    with pytest.raises(Undecodable, match="HostConfig.Memory"):
        canonicalize("POST", CREATE, '{"Image": "x", "HostConfig": {"Memory": "lots", "futurefield": 1}}')


def test_two_spellings_with_the_same_value_are_one_field() -> None:
    assert host('{"Image": "x", "HostConfig": {"Privileged": true, "privileged": true}}') == {
        "Privileged": True, "NetworkMode": "default"}


def test_an_array_given_twice_is_refused() -> None:
    with pytest.raises(Ambiguous, match="Binds"):
        canonicalize("POST", CREATE, '{"Image": "x", "HostConfig": {"Binds": ["/a:/a"], "Binds": ["/b:/b"]}}')


def test_unknown_fields_are_kept_but_cannot_disagree() -> None:
    assert create('{"Image": "x", "FutureField": {"a": 1}}')["FutureField"] == {"a": 1}
    with pytest.raises(Ambiguous):
        canonicalize("POST", CREATE, '{"Image": "x", "FutureField": 1, "futurefield": 2}')
    with pytest.raises(Ambiguous):
        canonicalize("POST", CREATE, '{"Image": "x", "FutureField": 1, "FutureField": 2}')


# --- legacy placement of the create body (runconfig.ContainerConfigWrapper) ------------------------------

def test_top_level_host_config_fields_are_the_host_config_when_there_is_none() -> None:
    assert host('{"Image": "x", "Privileged": true, "Binds": ["/:/host"]}') == {
        "Privileged": True, "Binds": ["/:/host"], "NetworkMode": "default"}
    assert host('{"Image": "x", "HostConfig": null, "PidMode": "host"}')["PidMode"] == "host"


def test_top_level_fields_are_ignored_beside_a_host_config_except_five() -> None:
    hc = host('{"Image": "x", "HostConfig": {}, "Privileged": true, "Memory": 8388608, "CpuShares": 2, '
              '"Cpuset": "0"}')
    assert "Privileged" not in hc
    assert (hc["Memory"], hc["CpuShares"], hc["CpusetCpus"]) == (8388608, 2, "0")
    assert host('{"Image": "x", "HostConfig": {"Memory": 1}, "Memory": 8388608}')["Memory"] == 1


def test_a_top_level_key_with_null_still_makes_a_host_config() -> None:
    # Go allocates the embedded *HostConfig when it reads one of its keys, whatever the value
    assert host('{"Image": "x", "Privileged": null}') == {"NetworkMode": "default"}


def test_no_host_config_at_all() -> None:
    assert "HostConfig" not in create('{"Image": "x"}')


def test_start_with_a_host_config_body_only_below_api_1_24() -> None:
    found = canonicalize("POST", "/v1.23/containers/web/start", '{"privileged": true}')
    assert found is not None and found.value == {"Privileged": True}
    assert canonicalize("POST", "/v1.41/containers/web/start", '{"privileged": true}').value == {"privileged": True}


# --- what dockerd refuses or reads otherwise, refused ---------------------------------------------------

@pytest.mark.parametrize("body, why", [
    ('{"Image": "x"} {"HostConfig": {"Privileged": true}}', "data after"),
    ('{"Image": "x", "StopTimeout": NaN}', "NaN"),
    ('{"Image": "x", "StopTimeout": Infinity}', "Infinity"),
    ('\ufeff{"Image": "x"}', "byte order mark"),
    ('{"Image": "\\ud800"}', "surrogate"),
    ('{"Image": "x", "HostConfig": {"Memory": 1.5}}', "not an integer"),
    ('{"Image": "x", "HostConfig": {"Memory": 1e3}}', "not an integer"),
    ('{"Image": "x", "HostConfig": {"BlkioWeight": 70000}}', "out of range"),
    ('{"Image": "x", "HostConfig": {"Memory": 1e400}}', "out of range"),
    ('{"Image": "x", "HostConfig": {"Privileged": "true"}}', "boolean"),
    ('{"Image": "x", "HostConfig": {"Privileged": 1}}', "boolean"),
    ('{"Image": ["x"]}', "string"),
    ('{"Image": "x", "Cmd": [1]}', "array of strings"),
    ('not json', "not JSON"),
    ('{"Image": "x",}', "not JSON"),
    ('["x"]', "object"),
])
def test_undecodable_bodies_are_refused(body: str, why: str) -> None:
    with pytest.raises(Undecodable, match=why):
        canonicalize("POST", CREATE, body)


def test_depth_is_bounded() -> None:
    deep = '{"Image": "x", "Future": ' + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "}"
    with pytest.raises(Undecodable, match="nested deeper"):
        canonicalize("POST", CREATE, deep)
    very_deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(Undecodable):
        canonicalize("POST", "/v1.41/some/json", very_deep)


# --- strslice, other endpoints, non-JSON bodies -------------------------------------------------------

def test_cmd_may_be_a_string_and_is_written_as_an_array() -> None:
    assert create('{"Image": "x", "Cmd": "true", "Entrypoint": []}') == {"Image": "x", "Cmd": ["true"],
                                                                         "Entrypoint": []}


def test_exec_create_is_read_with_its_struct() -> None:
    found = canonicalize("POST", "/containers/web/exec", '{"cmd": ["id"], "privileged": true, "USER": "0"}')
    assert found.value == {"Cmd": ["id"], "Privileged": True, "User": "0"}


def test_a_body_on_an_endpoint_without_json_is_left_alone_unless_it_is_json() -> None:
    assert canonicalize("POST", "/v1.41/build", "\x00tar...") is None
    assert canonicalize("POST", "/v1.41/somewhere", '{"a": 1, "a": 1}').value == {"a": 1}
    with pytest.raises(Undecodable):
        canonicalize("POST", "/v1.41/somewhere", '{"a": 1} trailing')


def test_canonical_text_is_a_fixed_point() -> None:
    sample = (Path(__file__).parents[3] / "examples" / "create-body.json").read_text()
    once = canonicalize("POST", CREATE, sample)
    twice = canonicalize("POST", CREATE, once.text)
    assert once.text == twice.text
    assert judged_body("POST", "/v1.41/containers/create?name=web", once.text) == once.text


def test_versions_read_as_moby_compares_them() -> None:
    assert split_version("/v1.41/containers/create") == ((1, 41), "/containers/create")
    assert split_version("/containers/create") == (None, "/containers/create")
    assert api_version("1.24.0") == api_version("1.24") > api_version("1.23.9") > api_version("01.23")


def test_the_schema_knows_the_structs_the_issue_names() -> None:
    schema = engine_schema()
    for method, path in [("POST", "/containers/create"), ("POST", "/containers/x/exec"), ("POST", "/networks/create"),
                         ("POST", "/volumes/create"), ("POST", "/services/create"), ("POST", "/secrets/create"),
                         ("POST", "/configs/create"), ("POST", "/plugins/p/set"), ("POST", "/containers/x/update")]:
        assert schema.endpoint(method, path, None) is not None, path
    fields = schema.structs["container.HostConfig"].fields
    assert {"Privileged", "Binds", "Mounts", "CapAdd", "SecurityOpt", "PidMode", "Devices", "Memory"} <= set(fields)
