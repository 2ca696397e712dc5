"""The built-in ``policy`` adapter: who may do what through the gateway.

A rules file (``rules:`` of the adapter's entry in adapters.yml) lists profiles; the first profile whose
``match`` fits the client (unix uid/gid, TCP source CIDR, TLS certificate CN/SAN, listener) decides, by its
ordered ``allow``/``deny`` rules on the cleaned, version-stripped path (first match wins, default deny), and
by its ``powers`` for the bodies that ask the daemon for host powers (privileged, host namespaces, binds, ...).
See docs/policy.md.
"""
