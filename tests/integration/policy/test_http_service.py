"""The policy as an HTTP adapter service (``powerstrip adapter run builtin:policy --rules FILE``), called over
protocol v2, whose documents carry the client's uid and the listener it came in on: the same decisions as
in-process."""

from __future__ import annotations

import http.client
import json

import pytest

from harness import rawhttp
from harness.adapter_service import AdapterService
from harness.cli import run_docker
from harness.gateway import free_tcp_port

pytestmark = pytest.mark.docker


def test_policy_served_over_http_judges_by_the_peer_in_the_v2_document(make_gateway, tmp_path, uniq):
    port = free_tcp_port()
    rules = tmp_path / "policy.yml"
    rules.write_text(f"profiles:\n"
                     f"  - name: tcp\n    match: {{listener: 'tcp://127.0.0.1:{port}'}}\n"
                     f"    rules: [{{allow: 'GET /volumes'}}]\n"
                     f"  - name: root\n    match: {{uid: 0}}\n    presets: [traefik]\n")
    with AdapterService("builtin:policy", ("--rules", str(rules))) as service:
        gw = make_gateway(json.dumps({"endpoints": {"* /*": {"pre": ["policy"]}},
                                      "adapters": {"policy": {"url": service.url, "protocol": 2}}}),
                          extra_args=["--listen", f"tcp://127.0.0.1:{port}"])
        assert run_docker(gw.url, "ps").rc == 0
        refused = run_docker(gw.url, "create", "--name", f"pol-http-{uniq}", "ps-busybox", "true")
        assert refused.rc != 0
        assert "no rule of profile 'root' allows POST /containers/create" in refused.err
        assert rawhttp.request(gw.socket_path, "GET", "/v1.41/volumes").status == 403
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", "/v1.41/volumes")
            assert connection.getresponse().status == 200
        finally:
            connection.close()
