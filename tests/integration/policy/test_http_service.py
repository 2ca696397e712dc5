"""The policy as an HTTP adapter service (``powerstrip adapter run builtin:policy --rules FILE``), called over
protocol v2, which carries the client's uid: the same decisions as in-process."""

from __future__ import annotations

import json

import pytest

from tests.harness.adapter_service import AdapterService
from tests.harness.cli import run_docker

pytestmark = pytest.mark.docker


def test_policy_served_over_http_judges_by_the_peer_in_the_v2_document(make_gateway, tmp_path, uniq):
    rules = tmp_path / "policy.yml"
    rules.write_text("profiles:\n  - name: root\n    match: {uid: 0}\n    presets: [traefik]\n")
    with AdapterService("builtin:policy", ("--rules", str(rules))) as service:
        gw = make_gateway(json.dumps({"endpoints": {"* /*": {"pre": ["policy"]}},
                                      "adapters": {"policy": {"url": service.url, "protocol": 2}}}))
        assert run_docker(gw.url, "ps").rc == 0
        refused = run_docker(gw.url, "create", "--name", f"pol-http-{uniq}", "ps-busybox", "true")
        assert refused.rc != 0
        assert "no rule of profile 'root' allows POST /containers/create" in refused.err
