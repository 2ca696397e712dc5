"""Click options handed to a command as a few settings objects instead of one argument each.

``grouped(*options, **builders)`` adds ``options`` to a command in the order given, which is the order
``--help`` lists them, so a command's options can be grouped by what they configure without moving
them around on the command line. Each builder makes one object from some of the values, and the
command receives it as an argument named like the builder's keyword. A builder names what it takes
by its parameters: option names, or the keyword of an earlier builder whose object it needs (a
parameter with a default may be missing). What a builder took is not passed on unless the command's
own signature names it; every other value is, so an option no builder and no parameter wants is a
``TypeError`` on the first run rather than a value silently dropped.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def grouped(*options: Decorator, **builders: Callable[..., Any]) -> Decorator:
    """``options`` (``click.option(...)`` decorators) on a command, and the ``builders`` that group them."""
    wanted = {name: tuple(inspect.signature(build).parameters) for name, build in builders.items()}

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = set(inspect.signature(command).parameters)
        taken = {param for params in wanted.values() for param in params} - own

        @functools.wraps(command)
        def with_groups(*args: Any, **values: Any) -> Any:
            for name, build in builders.items():
                values[name] = build(**{param: values[param] for param in wanted[name] if param in values})
            for param in taken:
                values.pop(param, None)
            return command(*args, **values)

        for option in reversed(options):
            with_groups = option(with_groups)
        return with_groups

    return decorate
