"""Helpers for the operations tests: configs, reload triggers, waiting on the gateway's log, metrics."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .gateway import Gateway
from .util import wait_until

CREATE = "POST /*/containers/create"


def config(endpoints: dict[str, dict[str, list[str]]], adapters: dict[str, object]) -> str:
    return json.dumps({"version": 1, "endpoints": endpoints, "adapters": adapters})  # JSON is YAML


def replace_file(path: str | os.PathLike, text: str) -> None:
    """Write like editors and config managers do: a new file renamed over the old one."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def count_in_log(gw: Gateway, text: str) -> int:
    return gw.log_text().count(text)


def wait_for_log(gw: Gateway, text: str, count: int = 1, timeout: float = 15.0) -> None:
    wait_until(lambda: count_in_log(gw, text) >= count, timeout, 0.05, f"{count}x {text!r} in the gateway log")


def reload_by_sighup(gw: Gateway, path: str, text: str, generation: int) -> None:
    """Rewrite the config in place (same inode) and send SIGHUP; wait for the new generation."""
    Path(path).write_text(text)
    gw.proc.send_signal(signal.SIGHUP)
    wait_for_log(gw, f"config reloaded (generation {generation})")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` with these labels (others any) in Prometheus text format; 0 if none."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))
