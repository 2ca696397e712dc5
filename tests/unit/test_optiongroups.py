"""``optiongroups.grouped``: options stay in the order given, and the command gets the builders' objects."""

from __future__ import annotations

from dataclasses import dataclass

import click
import pytest
from click.testing import CliRunner

from powerstrip.optiongroups import grouped


@dataclass(frozen=True)
class Window:
    width: int
    height: int


def _window(width: int, height: int) -> Window:
    return Window(width, height)


def _area(window: Window, scale: int = 1) -> int:
    return window.width * window.height * scale


def _command(seen: dict[str, object]) -> click.Command:
    @click.command()
    @grouped(
        click.option("--width", type=int, default=2),
        click.option("--title", default="t"),
        click.option("--height", type=int, default=3),
        window=_window,
        area=_area,  # takes the earlier group; its ``scale`` has no option and keeps its default
    )
    def show(title: str, window: Window, area: int) -> None:
        seen.update(title=title, window=window, area=area)

    return show


def test_options_keep_the_order_given_and_the_command_gets_the_groups() -> None:
    seen: dict[str, object] = {}
    command = _command(seen)
    assert [p.name for p in command.params] == ["width", "title", "height"]
    result = CliRunner().invoke(command, ["--height", "5", "--title", "x"])
    assert result.exit_code == 0, result.output
    assert seen == {"title": "x", "window": Window(2, 5), "area": 10}


def test_a_value_nobody_takes_is_an_error_not_dropped() -> None:
    @click.command()
    @grouped(click.option("--width", type=int, default=2), click.option("--stray", default="s"),
             window=lambda width: width)
    def show(window: int) -> None:
        raise AssertionError("not reached")

    result = CliRunner().invoke(show, [])
    assert isinstance(result.exception, TypeError) and "stray" in str(result.exception)


def test_a_builder_error_is_the_command_line_error() -> None:
    def _positive(width: int) -> int:
        if width <= 0:
            raise click.BadParameter("must be positive", param_hint="--width")
        return width

    @click.command()
    @grouped(click.option("--width", type=int, default=2), width_ok=_positive)
    def show(width_ok: int) -> None:
        click.echo(width_ok)

    assert CliRunner().invoke(show, ["--width", "4"]).output == "4\n"
    result = CliRunner().invoke(show, ["--width", "0"])
    assert result.exit_code == 2 and "Invalid value for --width: must be positive" in result.output


@pytest.mark.parametrize("argv", [[], ["--width", "7"]])
def test_the_command_may_name_an_option_a_builder_takes_too(argv: list[str]) -> None:
    seen: dict[str, object] = {}

    @click.command()
    @grouped(click.option("--width", type=int, default=2), double=lambda width: 2 * width)
    def show(width: int, double: int) -> None:
        seen.update(width=width, double=double)

    assert CliRunner().invoke(show, argv).exit_code == 0
    width = int(argv[1]) if argv else 2
    assert seen == {"width": width, "double": 2 * width}
