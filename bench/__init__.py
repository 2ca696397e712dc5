"""The benchmark suite: powerstrip side by side with the daemon itself and HAProxy, one load generator.

``python -m bench`` (or ``make bench``) starts a private dockerd, puts every candidate on a TCP
listener in the daemon's network namespace, runs the workloads and writes ``bench/results/<ts>.json``
and ``.md``. See docs/benchmarks.md.
"""
