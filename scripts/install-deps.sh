#!/usr/bin/env bash
# Install the system packages powerstrip's `make run` and `make test` need, only those that are missing:
#   docker.io (dockerd, containerd, runc, Debian's docker CLI), busybox-static (the test image),
#   iproute2 (ip netns), iptables (dockerd's networking, the qos adapter's DSCP marks), etcd-server (cluster
#   state for the net adapter), iperf3 and tcpdump (the qos tests measure rates and read ToS bytes on the wire),
#   ganglia-monitor (gmond: a real Ganglia metrics source for the host-aware rules tests),
#   ansible (the inventory tests drive ansible-inventory and ansible's docker connection), openssl (test certificates),
#   docker-compose (a client in the policy tests).
# --bench: also what `make bench` drives (haproxy, wrk, curl, valgrind).
# POWERSTRIP_DEPS_DRY_RUN=1: only say what would be installed.
set -euo pipefail

missing=()
need() {  # need BINARY PACKAGE
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need dockerd docker.io
need containerd docker.io
need runc docker.io
need ip iproute2
need iptables iptables
need nsenter util-linux
need etcd etcd-server
need gmond ganglia-monitor
need docker-compose docker-compose
need iperf3 iperf3
need tcpdump tcpdump
need ansible ansible
need ansible-inventory ansible
need openssl openssl
if [ "${1:-}" = --bench ]; then
    need haproxy haproxy
    need wrk wrk
    need curl curl
    need valgrind valgrind
fi

# The test image needs a *static* busybox (Debian's plain "busybox" package is dynamically linked).
static_busybox=no
for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ] && ! LC_ALL=C ldd "$b" >/dev/null 2>&1; then static_busybox=yes; fi
done
[ "$static_busybox" = yes ] || missing+=(busybox-static)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

# unique, in order
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
echo "installing missing system packages: ${pkgs[*]}" >&2
if [ -n "${POWERSTRIP_DEPS_DRY_RUN:-}" ]; then exit 0; fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to apt-get install ${pkgs[*]}" >&2; exit 1; }
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
# serialise with the test harness, which may install the same packages
exec 9>>/tmp/powerstrip-apt.lock
flock -w 900 9 || { echo "timed out waiting for /tmp/powerstrip-apt.lock" >&2; exit 1; }
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${pkgs[@]}"
