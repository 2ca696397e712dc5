"""What host-aware rules cost: a gateway's CPU with ten rules polling every second (issue 14: < 1 % of a core).

    sudo .venv/bin/python -m bench.hostaware [--seconds 60] [--rules 10] [--source builtin|gmond]

Also run by ``make bench`` (workload ``hostaware``). Three idle gateways side by side against one
private dockerd: a pass-through one (the floor), one with ``builtin:hostaware`` and no rules, and
one with ``--rules`` rules polling every second (a condition that is never met, so the cost is the
polling itself: reading the source, judging the rules, the store's heartbeat). CPU is the
process's user + system time over the window (``/proc/PID/stat``), as a percentage of one core.
With ``--source gmond`` the rules read a real gmond (Debian ganglia-monitor) instead of psutil.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import cpu_seconds
from harness.gateway import REPO_ROOT, Gateway
from harness.util import remove_tree

CONFIG = """version: 1
endpoints:
  "POST /*/containers/create":
    pre: [hostaware]
adapters:
  hostaware: builtin:hostaware
"""


def _rule(index: int) -> str:
    return json.dumps({"name": f"bench{index}", "metric": ("load_one", "cpu_idle", "mem_free", "bytes_in")[index % 4],
                       "op": "<", "threshold": -1, "polling": 1, "times": 3, "action": "refuse-create"})


def _rules_judged(state: Path) -> int:
    """How many rules the gateway's published record shows with a value: proof that they were polled."""
    if not state.exists():
        return 0
    out = subprocess.run([sys.executable, "-m", "powerstrip", "hosts", "list", "--json", "--state-dir", str(state)],
                         check=True, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT).stdout
    return sum(1 for line in out.splitlines() for s in json.loads(line)["rules"].values() if s["value"] is not None)


def run(docker_url: str, seconds: float, rules: int, progress, source: str | None = None) -> list[dict]:
    """Rows ``{"workload": "hostaware", "candidate": ..., "cpu_percent": ...}`` for the three gateways."""
    workdir = tempfile.mkdtemp(prefix="psb-ha-", dir="/tmp")
    gateways: list[tuple[str, str, Gateway]] = []
    try:
        config = Path(workdir, "adapters.yml")
        config.write_text(CONFIG)
        extra = ["--metrics-source", source] if source else []
        for name, label, conf, rule_count in (
            ("powerstrip", "pass-through (no adapter)", None, 0),
            ("hostaware-0", "builtin:hostaware, no rule", config, 0),
            (f"hostaware-{rules}", f"builtin:hostaware, {rules} rules polling every 1 s", config, rules),
        ):
            state = Path(workdir, name)
            gw = Gateway(docker_url, config=conf, state_dir=str(state), log_level="info", extra_args=extra)
            gateways.append((name, label, gw))
            gw.start()
            for index in range(rule_count):
                subprocess.run([sys.executable, "-m", "powerstrip", "rules", "add", _rule(index),
                                "--state-dir", str(state)], check=True, capture_output=True, timeout=60, cwd=REPO_ROOT)
        progress(f"hostaware: {len(gateways)} gateways up; letting them settle, then {seconds:g} s of measuring")
        time.sleep(5)  # start-up work (imports, the first polls, the rules' INFO messages) is not measured
        before = {name: cpu_seconds(gw.proc.pid) for name, _, gw in gateways}
        started = time.monotonic()
        time.sleep(seconds)
        spent = time.monotonic() - started
        rows = []
        for name, label, gw in gateways:
            used = cpu_seconds(gw.proc.pid) - before[name]
            rows.append({"workload": "hostaware", "candidate": name, "label": label, "seconds": round(spent, 1),
                         "source": source or "builtin", "cpu_percent": round(100 * used / spent, 3),
                         "rules_judged": _rules_judged(Path(workdir, name))})
        return rows
    finally:
        for _, _, gw in gateways:
            gw.stop()
        remove_tree(workdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostaware", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rules", type=int, default=10)
    parser.add_argument("--source", choices=("builtin", "gmond"), default="builtin")
    args = parser.parse_args(argv)
    from harness.dockerd import PrivateDockerd
    from harness.gmond import Gmond

    dockerd = PrivateDockerd()
    gmond = Gmond() if args.source == "gmond" else None
    try:
        dockerd.start()
        if gmond is not None:
            gmond.start()
        rows = run(dockerd.url, args.seconds, args.rules, lambda m: print(m, file=sys.stderr, flush=True),
                   gmond.url if gmond else None)
    finally:
        if gmond is not None:
            gmond.stop()
        dockerd.stop()
    for row in rows:
        print(f"{row['label']:<48} {row['cpu_percent']:7.3f} % of a core over {row['seconds']:g} s "
              f"(source {row['source']}, {row['rules_judged']} rules judged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
