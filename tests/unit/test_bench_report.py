"""The benchmark's arithmetic without a daemon: targets from result rows, the profile summary, stats."""

from __future__ import annotations

from bench import report
from bench.profile import summarise
from bench.stats import percentile


def grid_row(endpoint: str, c: int, candidate: str, ratio: float, added: float = 0.0) -> dict:
    return {"workload": "http", "endpoint": endpoint, "concurrency": c, "candidate": candidate, "rps": 1000 * ratio,
            "rps_ratio": ratio, "p50_us": 100 + added, "p99_us": 500, "added_p50_us": added, "added_p99_us": 0,
            "cpu_us_per_req": 50, "daemon_cpu_us_per_req": 20, "machine_busy": 0.95}


def results(rows: list[dict]) -> dict:
    return {"meta": {"started": "t", "mode": "quick", "machine": "m", "commit": "c", "candidates": [], "notes": []},
            "rows": rows}


def verdicts(rows: list[dict]) -> dict[str, bool]:
    return {t["target"]: t["met"] for t in report.targets(results(rows))}


def test_request_targets_are_judged_against_direct_and_haproxy():
    got = verdicts([
        grid_row("/containers/json", 10, "powerstrip", 0.92), grid_row("/containers/json", 10, "haproxy", 0.99),
        grid_row("/_ping", 10, "powerstrip", 0.49), grid_row("/_ping", 1, "powerstrip", 0.8, added=99),
        grid_row("/containers/json", 1, "powerstrip", 0.8, added=101),
    ])
    assert got["unhooked GET /containers/json c=10 ≥ 0.9 of direct"] is True
    assert got["… and no worse than HAProxy's ratio by more than 0.05"] is False  # 0.92 < 0.99 - 0.05
    assert got["unhooked GET /_ping c=10 ≥ 0.5 of direct"] is False
    assert got["added p50 of an unhooked request ≤ 100 µs (GET /_ping, c=1)"] is True
    assert got["added p50 of an unhooked request ≤ 100 µs (GET /containers/json, c=1)"] is False


def test_issue_11_targets_compare_cpu_and_ratio_with_haproxy_and_the_route_table_with_no_config():
    cheap = dict(grid_row("/_ping", 10, "powerstrip", 0.6), cpu_us_per_req=15)
    haproxy = dict(grid_row("/_ping", 10, "haproxy", 0.5), cpu_us_per_req=18)
    routes = dict(grid_row("/_ping", 10, "powerstrip-routes", 0.6), cpu_us_per_req=16)
    got = verdicts([cheap, haproxy, routes, grid_row("/_ping", 1, "powerstrip", 0.8, added=61)])
    assert got["unhooked GET /_ping c=10 (access log on): CPU per request ≤ HAProxy's"] is True
    assert got["unhooked GET /_ping c=10 (access log on): req/s ratio to direct ≥ HAProxy's"] is True
    assert got["policy route table (no pattern matching) GET /_ping c=10: CPU within 5 % of no config"] is False
    assert got["added p50 of an unhooked request ≤ 60 µs (GET /_ping, c=1)"] is False


def test_with_a_log_off_candidate_the_relay_is_judged_by_it_and_the_default_within_1_15_of_haproxy():
    rows = [dict(grid_row("/_ping", 50, "powerstrip", 0.5), cpu_us_per_req=16.5),
            dict(grid_row("/_ping", 50, "powerstrip-nolog", 0.55), cpu_us_per_req=14.0),
            dict(grid_row("/_ping", 50, "haproxy", 0.6), cpu_us_per_req=14.5)]
    got = verdicts(rows)
    assert got["unhooked GET /_ping c=50 (the relay, access log off): CPU per request ≤ HAProxy's"] is True
    assert got["unhooked GET /_ping c=50 (the relay, access log off): req/s ratio to direct ≥ HAProxy's"] is False
    assert got["unhooked GET /_ping c=50, access log on (the default): CPU within 1.15× of HAProxy's"] is True
    rows[2]["machine_busy"] = 0.97
    figures = {t["target"]: t["figure"] for t in report.targets(results(rows))}
    assert figures["unhooked GET /_ping c=50 (the relay, access log off): req/s ratio to direct ≥ HAProxy's"] == \
        "0.55 vs HAProxy 0.60 (daemon CPU 20.0 vs 20.0 µs/req, machine busy 95% vs 97%)"
    rows[0]["cpu_us_per_req"] = 17.0  # 1.17×
    assert verdicts(rows)["unhooked GET /_ping c=50, access log on (the default): CPU within 1.15× of HAProxy's"] \
        is False


def test_stream_memory_and_hook_targets():
    rows = [
        {"workload": "archive", "candidate": "powerstrip", "bytes": 1 << 30, "ratio": 0.95, "rss_before_mib": 40.0,
         "peak_rss_mib": 80.0, "mib_per_s": 300},
        {"workload": "idle_events", "candidate": "powerstrip", "streams": 1000, "rss_before_mib": 40.0,
         "rss_mib": 151.0, "per_stream_kib": 113.7},
        {"workload": "hook_create_refused", "candidate": "powerstrip-inproc", "hook_p50_us": 250.0,
         "hook_paired_us": 240.0, "added_p50_us": 600.0, "samples": 10, "p50_us": 900.0, "p99_us": 2000.0,
         "added_p99_us": 900.0},
    ]
    got = verdicts(rows)
    assert got["stream (archive) ≥ 0.9 of direct MiB/s"] is True
    assert got["stream (archive) ≥ 0.95 of direct MiB/s (issue 11)"] is True
    assert got["stream (archive): gateway RSS flat (peak growth ≤ 32 MiB for 1024 MiB)"] is False  # grew 40 MiB
    assert got["1000 idle streams: gateway RSS ≤ 150 MiB"] is False
    assert got["1000 idle streams: ≤ 8 KiB of gateway RSS each"] is False
    assert [v for k, v in got.items() if "powerstrip-inproc" in k] == [True]
    assert "NOT met" in report.markdown(dict(results(rows), targets=report.targets(results(rows))))


def test_profile_summary_counts_own_and_inclusive_samples():
    raw = ("main (app.py:1);relay (exchange.py:10);write (streams.py:5) 6\n"
           "main (app.py:1);relay (exchange.py:10) 3\n"
           "main (app.py:1);select (selectors.py:7) 1\n")
    text = summarise(raw)
    assert "10 samples; waiting in the event loop's poll: 10.0%" in text
    assert "| 60.0 | `write (streams.py)` |" in text
    assert "| 90.0 | `relay (exchange.py)` |" in text


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7.0


def test_hostaware_cpu_target_needs_every_rule_judged():
    row = {"workload": "hostaware", "candidate": "hostaware-10", "label": "x", "source": "builtin", "seconds": 60,
           "cpu_percent": 0.2, "rules_judged": 10}
    (target,) = [t for t in report.targets(results([row])) if "host-aware" in t["target"]]
    assert target["met"]
    (target,) = [t for t in report.targets(results([{**row, "rules_judged": 3}])) if "host-aware" in t["target"]]
    assert not target["met"]
    assert "Host-aware rules" in report.markdown({**results([row]), "targets": []})


def test_policy_targets() -> None:
    from bench.report import policy_targets

    rows = [{"workload": "policy_ping", "unhooked_cpu_us": 60.0, "policy_cpu_us": 66.0, "ratio": 1.1},
            {"workload": "policy_denied", "allowed_cpu_us": 150.0, "denied_cpu_us": 160.0},
            {"workload": "policy_create", "unhooked_p50_us": 700.0, "policy_p50_us": 900.0, "added_ms": 0.2}]
    assert [t["met"] for t in policy_targets(rows)] == [True, False, True]
    assert policy_targets([]) == []


def test_denied_and_allowed_cpu_are_compared_to_the_clock_tick() -> None:
    """Both figures are whole multiples of tick ÷ requests: float noise is not a difference, one step is."""
    from bench.report import policy_targets

    def denied_target(denied: float, allowed: float) -> dict:
        row = {"workload": "policy_denied", "denied_cpu_us": denied, "allowed_cpu_us": allowed, "resolution_us": 5.0}
        (target,) = policy_targets([row])
        return target

    same = denied_target(55.000000000000604, 54.99999999999994)
    assert same["met"] and same["figure"] == "denied 55 µs vs allowed 55 µs (to the 5 µs the clock tick resolves)"
    assert not denied_target(60.00000000000006, 54.99999999999994)["met"]
    assert denied_target(49.99999999999982, 54.99999999999994)["met"]


def test_the_instruction_counts_are_shown_against_haproxys_and_over_the_floor():
    from bench.instructions import report as instructions_report

    rows = [{"request": "GET /_ping", "candidate": "floor", "ir": 8000.0},
            {"request": "GET /_ping", "candidate": "haproxy", "ir": 34000.0},
            {"request": "GET /_ping", "candidate": "powerstrip (log off)", "ir": 30600.0},
            {"request": "POST /containers/create (2 KiB)", "candidate": "haproxy", "ir": 36000.0},
            {"request": "POST /containers/create (2 KiB)", "candidate": "powerstrip (unhooked)", "ir": 72000.0}]
    lines = instructions_report(rows, "t").splitlines()
    assert "| GET /_ping | powerstrip (log off) | 30,600 | 0.90 | 22,600 |" in lines
    assert "| GET /_ping | floor | 8,000 | 0.24 |  |" in lines
    assert "| POST /containers/create (2 KiB) | powerstrip (unhooked) | 72,000 | 2.00 |  |" in lines  # no floor row
