"""Whatever a body or a rules file holds, the policy answers (a list of violations, a PolicyError), never crashes:
a crash would be a 502, safe but unexplained."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from powerstrip.adapters.policy.loader import PolicyError, parse_policy
from powerstrip.adapters.policy.model import Powers
from powerstrip.adapters.policy.powers import checker_for

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children,
                                                                                         max_size=4), max_leaves=20)
FIELDS = st.sampled_from(["Privileged", "Binds", "Mounts", "CapAdd", "CapDrop", "SecurityOpt", "Sysctls", "Devices",
                          "NetworkMode", "VolumesFrom", "Runtime", "MaskedPaths", "Memory", "User", "Image",
                          "HostConfig", "TaskTemplate", "DriverOpts", "Driver", "Links"])
BODIES = st.dictionaries(FIELDS, JSON | st.dictionaries(FIELDS, JSON, max_size=6), max_size=6)
STRICT = Powers(root=False, images=("docker.io/library/*",), require_limits=frozenset({"memory", "cpu", "pids"}),
                require_drop=frozenset({"ALL"}), require_no_new_privileges=True)


@settings(max_examples=300, deadline=None)
@given(BODIES, st.sampled_from(["/containers/create", "/containers/x/start", "/containers/x/update",
                                "/containers/x/exec", "/services/create", "/volumes/create", "/networks/create"]))
def test_any_body_gets_an_answer(body, path):
    found = checker_for("POST", path).check(body, {}, STRICT)
    assert isinstance(found, list) and all(isinstance(item, str) for item in found)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_rules_text_loads_or_says_why(text):
    try:
        parse_policy(text, "p.yml")
    except PolicyError as exc:
        assert exc.problems and all(problem.startswith("p.yml") for problem in exc.problems)


PROFILE_KEYS = st.sampled_from(["name", "match", "presets", "mode", "rules", "powers", "rate_limit", "owner", "labels",
                                "env", "image_remap", "redact", "uid", "allow", "deny", "address", "privileged",
                                "bind_sources", "rate", "burst", "listener", "cert_cn"])
TREES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.just("GET /x"),
                     lambda children: st.lists(children, max_size=3) | st.dictionaries(PROFILE_KEYS, children, max_size=4),
                     max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(PROFILE_KEYS, TREES, max_size=6), max_size=3))
def test_any_profile_structure_loads_or_says_why(profiles):
    import yaml

    try:
        parse_policy(yaml.safe_dump({"profiles": profiles}), "p.yml")
    except PolicyError as exc:
        assert exc.problems and all(problem.startswith("p.yml:") for problem in exc.problems)
