"""Time DNS lookups as a container makes them: run inside its network namespace (``nsenter --net``),
it asks Docker's embedded DNS (127.0.0.11) for NAME COUNT times and prints the latencies as JSON.

    nsenter --net=/proc/PID/ns/net python -m bench.dns_probe NAME COUNT
"""

from __future__ import annotations

import json
import sys
import time

import dns.message
import dns.query
import dns.rcode


def main() -> None:
    name, count = sys.argv[1], int(sys.argv[2])
    latencies = []
    for _ in range(count):
        query = dns.message.make_query(name, "A")
        began = time.perf_counter()
        reply = dns.query.udp(query, "127.0.0.11", timeout=2)
        latencies.append(time.perf_counter() - began)
        if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
            sys.exit(f"{name}: {dns.rcode.to_text(reply.rcode())}")
    json.dump(latencies, sys.stdout)


if __name__ == "__main__":
    main()
