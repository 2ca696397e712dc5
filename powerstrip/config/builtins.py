"""The built-in adapters a config may name (``builtin:NAME``), and where each one's factory lives.

Data only, kept with the config: the loader checks names against it without importing the adapters
(which sit above the hooks, which use the config), and ``powerstrip.adapters`` imports the factory
named here only when a config uses it.
"""

from __future__ import annotations

BUILTINS: dict[str, str] = {
    "debug": "powerstrip.adapters.debug:create_adapter",
    "hostaware": "powerstrip.adapters.hostaware.adapter:create_adapter",
    "net": "powerstrip.adapters.net.adapter:create_adapter",
    "policy": "powerstrip.adapters.policy.adapter:create_adapter",
    "qos": "powerstrip.adapters.qos.adapter:create_adapter",
}
