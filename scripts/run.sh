#!/usr/bin/env bash
# `make run`: start powerstrip on ./powerstrip.sock in front of a Docker daemon.
#
# Uses the daemon at /var/run/docker.sock when one answers there. Otherwise it starts a private dockerd
# with everything under ./.run/ (data, exec root, socket, log) and its own bridge "ps-run0"
# (172.29.254.1/24, so it cannot take docker0 from another daemon; --bridge none if the bridge cannot be
# made), and stops it again when powerstrip ends.
#
# Config: examples/socketplane.yml when it exists, else none (pure pass-through).
# Environment: POWERSTRIP_LOG_LEVEL (default info), POWERSTRIP_RUN_ARGS (extra `serve` arguments).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
RUN_DIR="$ROOT/.run"
LISTEN_SOCK="$ROOT/powerstrip.sock"
SYSTEM_SOCK=/var/run/docker.sock
BRIDGE=ps-run0
BRIDGE_CIDR=172.29.254.1/24

ping_sock() {  # ping_sock PATH -> 0 when GET /_ping answers OK
    "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(3)
s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
sys.exit(0 if data.startswith(b"HTTP/1.1 200") and data.rstrip().endswith(b"OK") else 1)
PYEOF
}

started_pid=""
stop_private_dockerd() {
    [ -n "$started_pid" ] || return 0
    echo "stopping the private dockerd (pid $started_pid)" >&2
    kill -TERM "$started_pid" 2>/dev/null || true
    for _ in $(seq 1 60); do
        kill -0 "$started_pid" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL "$started_pid" 2>/dev/null || true
    started_pid=""
}

if ping_sock "$SYSTEM_SOCK"; then
    DOCKER_SOCK="$SYSTEM_SOCK"
    echo "using the Docker daemon at $SYSTEM_SOCK" >&2
else
    mkdir -p "$RUN_DIR"
    # unix socket paths are limited to ~107 bytes: fall back to a short path when the checkout is deep
    DOCKER_SOCK="$RUN_DIR/docker.sock"
    if [ ${#DOCKER_SOCK} -gt 100 ]; then
        DOCKER_SOCK="/tmp/powerstrip-run-$(printf '%s' "$ROOT" | md5sum | cut -c1-8).sock"
    fi
    if ping_sock "$DOCKER_SOCK"; then
        echo "using the private Docker daemon already running at $DOCKER_SOCK" >&2
    else
        if [ "$(id -u)" -ne 0 ]; then
            echo "no Docker daemon answers at $SYSTEM_SOCK, and starting a private one needs root" >&2
            exit 1
        fi
        if [ -f "$RUN_DIR/dockerd.pid" ] && kill -0 "$(cat "$RUN_DIR/dockerd.pid")" 2>/dev/null; then
            echo "a private dockerd (pid $(cat "$RUN_DIR/dockerd.pid")) is running but not answering; see $RUN_DIR/dockerd.log" >&2
            exit 1
        fi
        rm -f "$RUN_DIR/dockerd.pid"
        bridge_args=(--bridge "$BRIDGE")
        if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
            if ip link add "$BRIDGE" type bridge 2>/dev/null && ip addr add "$BRIDGE_CIDR" dev "$BRIDGE" \
                && ip link set "$BRIDGE" up; then
                :
            else
                ip link del "$BRIDGE" 2>/dev/null || true
                echo "cannot create bridge $BRIDGE: the private dockerd runs with --bridge none" >&2
                bridge_args=(--bridge none)
            fi
        fi
        echo "no Docker daemon at $SYSTEM_SOCK: starting a private one ($RUN_DIR, log $RUN_DIR/dockerd.log)" >&2
        setsid dockerd --host "unix://$DOCKER_SOCK" --data-root "$RUN_DIR/root" --exec-root "$RUN_DIR/exec" \
            --pidfile "$RUN_DIR/dockerd.pid" "${bridge_args[@]}" \
            >>"$RUN_DIR/dockerd.log" 2>&1 </dev/null &
        started_pid=$!
        trap stop_private_dockerd EXIT
        for _ in $(seq 1 120); do
            ping_sock "$DOCKER_SOCK" && break
            kill -0 "$started_pid" 2>/dev/null || { tail -n 30 "$RUN_DIR/dockerd.log" >&2; exit 1; }
            sleep 0.5
        done
        ping_sock "$DOCKER_SOCK" || { echo "dockerd did not answer in 60s:" >&2; tail -n 30 "$RUN_DIR/dockerd.log" >&2; exit 1; }
    fi
    # No image registry may be reachable: give the private daemon the small busybox image the tests use
    # (ps-busybox:latest, also tagged ubuntu:latest as in the README's examples) when it has no ubuntu.
    if ! DOCKER_HOST="unix://$DOCKER_SOCK" "$PY" -c 'import docker, sys; docker.from_env().images.get("ubuntu:latest")' >/dev/null 2>&1; then
        echo "importing a busybox image as ps-busybox:latest and ubuntu:latest into the private daemon" >&2
        "$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); from harness.image import build_test_image; build_test_image(sys.argv[2])' \
            "$ROOT" "unix://$DOCKER_SOCK" || echo "could not import the busybox image (continuing)" >&2
    fi
fi

args=(serve --listen "unix://$LISTEN_SOCK" --docker "unix://$DOCKER_SOCK" --log-level "${POWERSTRIP_LOG_LEVEL:-info}")
if [ -f "$ROOT/examples/socketplane.yml" ]; then
    args+=(--config "$ROOT/examples/socketplane.yml")
fi
# shellcheck disable=SC2206
args+=(${POWERSTRIP_RUN_ARGS:-})

cat >&2 <<EOF
powerstrip on $LISTEN_SOCK, in front of unix://$DOCKER_SOCK. In another shell:
  export DOCKER_HOST=unix://$LISTEN_SOCK PATH="$ROOT/.venv/bin:\$PATH"; cd "$ROOT"
  docker ps                        # through the gateway
  powerstrip network list          # the net adapter's networks: finds this gateway's daemon and state
EOF
if [ -z "$started_pid" ]; then
    exec "$PY" -m powerstrip "${args[@]}"
fi
# We own the private dockerd: run powerstrip as a child, pass signals on, then stop dockerd.
"$PY" -m powerstrip "${args[@]}" &
gw=$!
trap 'kill -TERM $gw 2>/dev/null || true' INT TERM
rc=0
while kill -0 "$gw" 2>/dev/null; do
    wait "$gw" || rc=$?
done
exit "$rc"
