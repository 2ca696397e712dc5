"""``powerstrip network ...`` and ``powerstrip info CONTAINER`` (filled in by the net adapter work)."""

import click


@click.group("network")
def network() -> None:
    """Manage powerstrip's virtual networks."""


@click.command("info")
@click.argument("container")
def info(container: str) -> None:
    """Show a container's virtual network, IP, MAC and gateway."""
    raise click.ClickException("not implemented yet")
