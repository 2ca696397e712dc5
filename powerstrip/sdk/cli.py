"""``powerstrip adapter try``: one request through one adapter, as the gateway would run it (``sdk.testing``)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from powerstrip.hooks.inprocess import AdapterLoadError, import_adapter
from powerstrip.sdk.testing import PostVerdict, PreVerdict, parse_peer, post, pre


def _text(file: str | None, text: str | None, what: str) -> str | None:
    if file is not None and text is not None:
        raise click.UsageError(f"give --{what} FILE or --{what}-json TEXT, not both")
    if file is None:
        return text
    try:
        return Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from None


def _header(item: str) -> tuple[str, str]:
    name, colon, value = item.partition(":")
    if not colon or not name.strip():
        raise click.BadParameter(f"{item!r}: expected 'Name: value'", param_hint="--header")
    return name.strip(), value.strip()


@click.command("try")
@click.argument("target", metavar="MODULE:ATTR|URL")
@click.argument("method")
@click.argument("path")
@click.option("--body", "body_file", type=click.Path(exists=True, dir_okay=False), help="The request body (a file).")
@click.option("--body-json", "body_text", metavar="TEXT", help="The request body, given as text.")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="A request header (repeatable).")
@click.option("--as", "identity", multiple=True, metavar="KEY=VALUE",
              help="The client: uid=N, gid=N, pid=N, addr=IP, cn=NAME, san=DNS:x, listener=URL (repeatable).")
@click.option("--dry-run", is_flag=True, help="Call it as in a dry run (X-Powerstrip-Dry-Run: 1).")
@click.option("--response", "response_file", type=click.Path(exists=True, dir_okay=False),
              help="Run the post-hook on this daemon answer body (a file) instead of the pre-hook.")
@click.option("--response-json", "response_text", metavar="TEXT", help="As --response, the body given as text.")
@click.option("--code", type=int, default=200, show_default=True, help="The daemon answer's status (post-hook).")
@click.option("--content-type", default="application/json", show_default=True,
              help="The daemon answer's content type (post-hook).")
@click.option("--name", help="The adapter's name in adapters.yml (what the client's messages say).")
@click.option("--timeout", type=float, default=5.0, show_default=True)
@click.option("--failure-policy", type=click.Choice(["fail", "ignore"]), default="fail", show_default=True)
@click.option("--kind", type=click.Choice(["mutating", "validating"]), default="mutating", show_default=True)
@click.option("--protocol", type=click.Choice(["1", "2"]), default="1", show_default=True,
              help="An HTTP adapter's protocol.")
def try_command(target: str, method: str, path: str, body_file: str | None, body_text: str | None,
                headers: tuple[str, ...], identity: tuple[str, ...], dry_run: bool, response_file: str | None,
                response_text: str | None, code: int, content_type: str, name: str | None, timeout: float,
                failure_policy: str, kind: str, protocol: str) -> None:
    """Send METHOD PATH through one adapter as the gateway would, and print what the client would get or the
    daemon be sent (JSON). TARGET is an SDK adapter (MODULE:ATTR, imported from the current directory or
    PYTHONPATH) or an HTTP adapter's URL. Exits 1 when the request would be refused.

    \b
      powerstrip adapter try examples.owner_policy:adapter POST /v1.41/containers/create \\
          --body-json '{"Image": "busybox", "HostConfig": {"Privileged": true}}' --as uid=1000
    """
    try:
        peer = parse_peer(identity)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as") from None
    body = _text(body_file, body_text, "body")
    response = _text(response_file, response_text, "response")
    adapter: Any = target
    if not target.startswith(("http://", "https://")):
        try:
            adapter = import_adapter(target, [Path.cwd()])
        except AdapterLoadError as exc:
            raise click.ClickException(str(exc)) from None
    options: dict[str, Any] = {"headers": [_header(item) for item in headers], "peer": peer, "name": name,
                               "timeout": timeout, "failure_policy": failure_policy, "kind": kind,
                               "protocol": int(protocol)}
    request_line = f"{method.upper()} {path}"
    verdict: PreVerdict | PostVerdict
    try:
        if response is None:
            verdict = pre(adapter, request_line, body=body, dry_run=dry_run, **options)
        else:
            verdict = post(adapter, request_line, request_body=body, code=code, body=response,
                           content_type=content_type, **options)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({"allowed": verdict.allowed, **dataclasses.asdict(verdict)}, indent=2))
    sys.exit(0 if verdict.allowed else 1)
