"""Test harness: a private dockerd (dockerd.py), the busybox test image (image.py), powerstrip gateways
(gateway.py), the docker CLI and pseudo-terminals (cli.py), direct-vs-gateway comparison (compare.py).
The pytest fixtures built on them are in tests/conftest.py."""
