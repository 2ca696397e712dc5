"""The loaded configs in service: the adapter registry, generations (which config serves the next
request) and hot reload.

Above the adapters (the registry creates built-in ones) and the relay, below the app wiring (``app``):
the proxy only reads the current generation's routes and adapters.
"""
