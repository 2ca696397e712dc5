"""The loaded configs in service: generations (which config serves the next request) and hot reload.

Above the relay (``proxy`` reads the current generation's routes and adapters) and below the app
wiring (``app``), so neither imports the other's internals.
"""
