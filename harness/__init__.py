"""The real parts that tests and benchmarks start, and their helpers (not part of the shipped package).

A private dockerd (dockerd.py), the busybox test image (image.py), powerstrip gateways (gateway.py),
etcd (etcd.py) with certificates (certs.py), gmond (gmond.py), simulated hosts (multihost.py), the docker
CLI and pseudo-terminals (cli.py), direct-vs-gateway comparison (compare.py), the net adapter's leftovers
(net.py), QoS on one host with iperf3 (qos.py); for the tests only, a test HTTP adapter
(adapter_server.py, adapter_service.py), raw HTTP (rawhttp.py) and operations helpers (ops.py).
Both ``tests/`` and ``bench/`` import it and it imports neither: it sits at the top level so that a
benchmark does not depend on the test tree. The pytest fixtures built on it are in tests/conftest.py.
"""
