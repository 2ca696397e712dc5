"""The results file (JSON, every run's figures) and the short table printed and written beside it."""

from __future__ import annotations

import json
from pathlib import Path

MIB = 1024 * 1024


def _rows(results: dict, workload: str) -> list[dict]:
    return [r for r in results["rows"] if r["workload"] == workload]


def _find(results: dict, **match) -> dict | None:
    return next((r for r in results["rows"] if all(r.get(k) == v for k, v in match.items())), None)


def targets(results: dict) -> list[dict]:
    """Issue 6's, 3's and 11's targets, each met / not met with the figure behind it."""
    out: list[dict] = []

    def add(target: str, figure: str, met: bool | None) -> None:
        out.append({"target": target, "figure": figure, "met": met})

    for endpoint in ("/_ping", "/containers/json"):  # issue 11: HAProxy's cost or less, same run
        for c in (1, 10, 50):
            def cell(name: str) -> dict | None:
                return _find(results, workload="http", endpoint=endpoint, concurrency=c, candidate=name)
            ps, hp = cell("powerstrip"), cell("haproxy")
            # the relay itself is judged with its access log off when the run has that candidate (issue 11 gives
            # the default, log on, a target of its own: within 1.15× of HAProxy's CPU)
            relay = cell("powerstrip-nolog") or ps
            if relay and hp:
                what = "the relay, access log off" if relay is not ps else "access log on"
                add(f"unhooked GET {endpoint} c={c} ({what}): CPU per request ≤ HAProxy's",
                    f"{relay['cpu_us_per_req']:.1f} vs HAProxy {hp['cpu_us_per_req']:.1f} µs",
                    relay["cpu_us_per_req"] <= hp["cpu_us_per_req"])
                # the daemon's work and the machine's idle time behind each: what a missed ratio comes from
                add(f"unhooked GET {endpoint} c={c} ({what}): req/s ratio to direct ≥ HAProxy's",
                    f"{relay['rps_ratio']:.2f} vs HAProxy {hp['rps_ratio']:.2f} (daemon CPU "
                    f"{relay['daemon_cpu_us_per_req']:.1f} vs {hp['daemon_cpu_us_per_req']:.1f} µs/req, machine busy "
                    f"{relay['machine_busy']:.0%} vs {hp['machine_busy']:.0%})", relay["rps_ratio"] >= hp["rps_ratio"])
            if ps and hp and relay is not ps:
                ratio = ps["cpu_us_per_req"] / hp["cpu_us_per_req"]
                add(f"unhooked GET {endpoint} c={c}, access log on (the default): CPU within 1.15× of HAProxy's",
                    f"{ps['cpu_us_per_req']:.1f} vs HAProxy {hp['cpu_us_per_req']:.1f} µs ({ratio:.2f}×)", ratio <= 1.15)
            routes = cell("powerstrip-routes")
            if ps and routes and c == 10:
                ratio = routes["cpu_us_per_req"] / ps["cpu_us_per_req"]
                add(f"policy route table (no pattern matching) GET {endpoint} c=10: CPU within 5 % of no config",
                    f"{routes['cpu_us_per_req']:.0f} vs {ps['cpu_us_per_req']:.0f} µs ({ratio:.2f}×)", ratio <= 1.05)
        row = _find(results, workload="http", endpoint=endpoint, concurrency=1, candidate="powerstrip")
        if row:
            others = [(name, _find(results, workload="http", endpoint=endpoint, concurrency=1, candidate=name))
                      for name in ("haproxy", "floor")]
            context = "".join(f", {name} {other['added_p50_us']:+.0f}" for name, other in others if other)
            add(f"added p50 of an unhooked request ≤ 60 µs (GET {endpoint}, c=1)",
                f"{row['added_p50_us']:.0f} µs{context}", row["added_p50_us"] <= 60)
    for kind in ("archive", "logs"):  # issue 11: streams stay ≥ 0.95 of direct
        row = _find(results, workload=kind, candidate="powerstrip")
        if row:
            others = [(name, _find(results, workload=kind, candidate=name)) for name in ("haproxy", "floor")]
            context = "".join(f", {name} {other['ratio']:.2f}" for name, other in others if other)
            add(f"stream ({kind}) ≥ 0.95 of direct MiB/s (issue 11)", f"{row['ratio']:.2f}{context}",
                row["ratio"] >= 0.95)
    row = _find(results, workload="idle_events", candidate="powerstrip")
    if row:
        add(f"{row['streams']} idle streams: ≤ 8 KiB of gateway RSS each", f"{row['per_stream_kib']:.1f} KiB",
            row["per_stream_kib"] <= 8)

    ps = _find(results, workload="http", endpoint="/containers/json", concurrency=10, candidate="powerstrip")
    hp = _find(results, workload="http", endpoint="/containers/json", concurrency=10, candidate="haproxy")
    if ps and hp:
        add("unhooked GET /containers/json c=10 ≥ 0.9 of direct", f"{ps['rps_ratio']:.2f}", ps["rps_ratio"] >= 0.9)
        add("… and no worse than HAProxy's ratio by more than 0.05",
            f"{ps['rps_ratio']:.2f} vs HAProxy {hp['rps_ratio']:.2f}", ps["rps_ratio"] >= hp["rps_ratio"] - 0.05)
    ping = _find(results, workload="http", endpoint="/_ping", concurrency=10, candidate="powerstrip")
    if ping:
        add("unhooked GET /_ping c=10 ≥ 0.5 of direct", f"{ping['rps_ratio']:.2f}", ping["rps_ratio"] >= 0.5)
    for endpoint in ("/_ping", "/containers/json"):
        row = _find(results, workload="http", endpoint=endpoint, concurrency=1, candidate="powerstrip")
        if row:
            add(f"added p50 of an unhooked request ≤ 100 µs (GET {endpoint}, c=1)",
                f"{row['added_p50_us']:.0f} µs", row["added_p50_us"] <= 100)
    for kind in ("archive", "logs"):
        row = _find(results, workload=kind, candidate="powerstrip")
        if row:
            add(f"stream ({kind}) ≥ 0.9 of direct MiB/s", f"{row['ratio']:.2f}", row["ratio"] >= 0.9)
            growth = row["peak_rss_mib"] - row["rss_before_mib"]
            add(f"stream ({kind}): gateway RSS flat (peak growth ≤ 32 MiB for {row['bytes'] / MIB:.0f} MiB)",
                f"+{growth:.1f} MiB (peak {row['peak_rss_mib']:.1f} MiB)", growth <= 32)
    row = _find(results, workload="idle_events", candidate="powerstrip")
    if row:
        add(f"{row['streams']} idle streams: gateway RSS ≤ 150 MiB", f"{row['rss_mib']:.1f} MiB", row["rss_mib"] <= 150)
    for name, limit in (("powerstrip-inproc", 300), ("powerstrip-http", 1500), ("powerstrip-http-v2", 1500)):
        row = _find(results, workload="hook_create_refused", candidate=name)
        if row:
            add(f"hooked create (daemon answers 404 at once), {name}: hook adds ≤ {limit / 1000:g} ms at p50 "
                "(vs unhooked powerstrip)",
                f"{row['hook_p50_us'] / 1000:+.2f} ms (paired median {row['hook_paired_us'] / 1000:+.2f} ms; "
                f"vs direct {row['added_p50_us'] / 1000:+.2f} ms)", row["hook_p50_us"] <= limit)
    row = _find(results, workload="canonical", candidate="canonicalize")
    if row:
        add(f"canonicalising a {row['body_bytes']}-byte create body adds ≤ 50 µs at p50 (CPU)",
            f"{row['cpu_p50_us']:.1f} µs CPU (wall p50 {row['p50_us']:.1f}, p99 {row['p99_us']:.1f}; "
            f"json.loads alone {row['json_loads_cpu_p50_us']:.1f} µs CPU)", row["cpu_p50_us"] <= 50)
    row = _find(results, workload="hostaware", candidate="hostaware-10")
    if row:
        add("ten host-aware rules polling every second: gateway CPU < 1 % of a core (issue 14)",
            f"{row['cpu_percent']:.2f} % ({row['rules_judged']} rules judged, {row['seconds']:g} s)",
            row["cpu_percent"] < 1 and row["rules_judged"] == 10)
    out += [{"target": t["target"], "figure": t["figure"], "met": t["met"]} for t in policy_targets(results["rows"])]
    return out


def markdown(results: dict) -> str:
    meta = results["meta"]
    lines = [f"# powerstrip benchmark {meta['started']}", "",
             f"{meta['mode']} mode · {meta['machine']} · commit {meta['commit']} · "
             f"all candidates over TCP loopback in the daemon's netns, load from wrk/curl/http.client", ""]
    names = {c["name"]: c["label"] for c in meta["candidates"]}
    grid = _rows(results, "http")
    if grid:
        lines += ["## Requests (median of repetitions; ratio = req/s ÷ direct; added = p50 − direct p50)", "",
                  "| endpoint | c | candidate | req/s | ratio | p50 µs | p99 µs | added p50 µs | CPU µs/req | "
                  "daemon CPU µs/req | machine busy |",
                  "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in grid:
            lines.append(f"| {r['endpoint']} | {r['concurrency']} | {r['candidate']} | {r['rps']:.0f} | "
                         f"{r['rps_ratio']:.2f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | {r['added_p50_us']:+.0f} | "
                         f"{r['cpu_us_per_req']:.0f} | {r['daemon_cpu_us_per_req']:.0f} | {r['machine_busy']:.0%} |")
        lines.append("")
    streams = _rows(results, "archive") + _rows(results, "logs")
    if streams:
        lines += ["## Streams", "", "| body | candidate | MiB | MiB/s | ratio | RSS before | peak RSS |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for r in streams:
            lines.append(f"| {r['workload']} | {r['candidate']} | {r['bytes'] / MIB:.0f} | {r['mib_per_s']:.0f} | "
                         f"{r['ratio']:.2f} | {r['rss_before_mib']:.1f} | {r['peak_rss_mib']:.1f} |")
        lines.append("")
    idle = _rows(results, "idle_events")
    if idle:
        lines += ["## Idle `GET /events` streams held open (RSS of the process behind the port)", "",
                  "| candidate | streams | RSS before MiB | RSS with streams MiB | KiB/stream |", "|---|---:|---:|---:|---:|"]
        for r in idle:
            lines.append(f"| {r['candidate']} | {r['streams']} | {r['rss_before_mib']:.1f} | {r['rss_mib']:.1f} | "
                         f"{r['per_stream_kib']:.1f} |")
        lines.append("")
    cycles = _rows(results, "lifecycle")
    if cycles:
        lines += ["## create + start + remove", "", "| candidate | cycles | cycles/s | ratio |", "|---|---:|---:|---:|"]
        for r in cycles:
            lines.append(f"| {r['candidate']} | {r['cycles']} | {r['cycles_per_s']:.1f} | {r['ratio']:.2f} |")
        lines.append("")
    for workload, title in (("hook_create", "real creates"),
                            ("hook_create_refused", "image missing, the daemon answers 404 at once")):
        lines += _hook_table(_rows(results, workload), title)
    ha = _rows(results, "hostaware")
    if ha:
        lines += ["## Host-aware rules: idle gateway CPU (issue 14)", "",
                  "| candidate | source | seconds | CPU % of a core | rules judged |", "|---|---|---:|---:|---:|"]
        for r in ha:
            lines.append(f"| {r['label']} | {r['source']} | {r['seconds']:g} | {r['cpu_percent']:.3f} | "
                         f"{r['rules_judged']} |")
        lines.append("")
    pol = {r["workload"]: r for r in results["rows"] if r["workload"].startswith("policy_")}
    if pol:
        lines += ["## Built-in policy (issue 12)", "", "| figure | unhooked / allowed | policy / denied |",
                  "|---|---:|---:|"]
        if "policy_ping" in pol:
            r = pol["policy_ping"]
            lines.append(f"| CPU µs per GET /_ping, c=10 (allowed by path rules) | {r['unhooked_cpu_us']:.0f} | "
                         f"{r['policy_cpu_us']:.0f} |")
        if "policy_denied" in pol:
            r = pol["policy_denied"]
            lines.append(f"| CPU µs per request, keep-alive loop: allowed /_ping, denied /info | "
                         f"{r['allowed_cpu_us']:.0f} | {r['denied_cpu_us']:.0f} |")
        if "policy_create" in pol:
            r = pol["policy_create"]
            lines.append(f"| p50 µs of a body-checked create (daemon 404) | {r['unhooked_p50_us']:.0f} | "
                         f"{r['policy_p50_us']:.0f} |")
        lines.append("")
    lines += ["## Targets", "", "| target | figure | met |", "|---|---|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['figure']} | {'met' if t['met'] else 'NOT met'} |")
    if meta.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in meta["notes"]]
    lines += ["", "Candidates: " + "; ".join(f"`{k}` = {v}" for k, v in names.items())]
    return "\n".join(lines) + "\n"


def _hook_table(rows: list[dict], title: str) -> list[str]:
    if not rows:
        return []
    lines = [f"## Hooked `POST /containers/create` (issue 3): {title}", "",
             "| candidate | samples | p50 ms | p99 ms | added p50 ms | added p99 ms | hook p50 ms | hook paired ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        hook = f"{r['hook_p50_us'] / 1000:+.3f} | {r['hook_paired_us'] / 1000:+.3f}" if "hook_p50_us" in r else "– | –"
        lines.append(f"| {r['candidate']} | {r['samples']} | {r['p50_us'] / 1000:.3f} | {r['p99_us'] / 1000:.3f} | "
                     f"{r['added_p50_us'] / 1000:+.3f} | {r['added_p99_us'] / 1000:+.3f} | {hook} |")
    return lines + [""]


def write(results: dict, directory: Path, stamp: str) -> tuple[Path, Path]:
    results["targets"] = targets(results)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / f"{stamp}.json", directory / f"{stamp}.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def policy_targets(rows: list[dict]) -> list[dict]:
    """Issue 12's speed targets, each met / not met with its figure (also in ``make bench``'s report)."""
    found = {row["workload"]: row for row in rows}
    out = []
    if "policy_ping" in found:
        row = found["policy_ping"]
        out.append({"target": "a request allowed by path rules costs ≤ 1.2x the CPU of an unhooked one (GET /_ping, c=10)",
                    "figure": f"{row['ratio']:.2f}x ({row['policy_cpu_us']:.0f} vs {row['unhooked_cpu_us']:.0f} µs)",
                    "met": row["ratio"] <= 1.2})
    if "policy_denied" in found:
        row = found["policy_denied"]
        step = row.get("resolution_us", 0.0)  # both figures are whole multiples of it: compare in its units
        denied, allowed = (round(row[k] / step) * step if step else row[k] for k in ("denied_cpu_us", "allowed_cpu_us"))
        out.append({"target": "a request denied by the policy costs no more CPU than an allowed one",
                    "figure": f"denied {denied:.0f} µs vs allowed {allowed:.0f} µs"
                              + (f" (to the {step:g} µs the clock tick resolves)" if step else ""),
                    "met": denied <= allowed + step / 2})
    if "policy_create" in found:
        row = found["policy_create"]
        out.append({"target": "a body-checked create adds ≤ 0.3 ms at p50 (daemon answers 404 at once)",
                    "figure": f"{row['added_ms']:+.3f} ms ({row['policy_p50_us']:.0f} vs {row['unhooked_p50_us']:.0f} µs)",
                    "met": row["added_ms"] <= 0.3})
    return out
