"""The Docker SDK for Python, directly against dockerd and through a pass-through gateway.

Each scenario runs once per side with a ``docker.DockerClient`` of its own and the results (data,
exit codes, exception types, HTTP status codes, error texts) are compared after normalising generated
names and IDs.
"""

from __future__ import annotations

import hashlib
import io
import random
import socket
import tarfile
import threading
import time
from contextlib import contextmanager

import docker
import docker.errors
import pytest
from docker.utils.socket import STDERR, STDOUT, frames_iter

pytestmark = pytest.mark.docker

IMAGE = "ps-busybox:latest"


@contextmanager
def client_for(host: str, timeout: int = 60):
    c = docker.DockerClient(base_url=host, timeout=timeout)
    try:
        yield c
    finally:
        c.close()


def per_side(sides, fn):
    """``fn(side, client)`` for both sides -> {side: result}."""
    out = {}
    for side, host in sides.items():
        with client_for(host) as c:
            out[side] = fn(side, c)
    return out


def assert_same(sides, res, ids=True, extra=()):
    d = sides.norm("direct", ids=ids, extra=extra)(repr(res["direct"]))
    g = sides.norm("gateway", ids=ids, extra=extra)(repr(res["gateway"]))
    assert g == d, f"direct and through-gateway differ:\n direct: {d}\ngateway: {g}"


def error_of(fn):
    """Call fn; return (exception class name, HTTP status, explanation) or ('ok', result)."""
    try:
        return ("ok", fn())
    except docker.errors.APIError as e:
        return (type(e).__name__, e.status_code, e.explanation)
    except docker.errors.DockerException as e:
        return (type(e).__name__, str(e))


class Watchdog:
    """Closes a blocking stream after ``timeout`` seconds so that no read can hang the test."""

    def __init__(self, stream, timeout: float):
        self.fired = False
        self._timer = threading.Timer(timeout, self._fire, args=(stream,))
        self._timer.daemon = True

    def _fire(self, stream):
        self.fired = True
        try:
            stream.close()
        except Exception:
            pass

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()


def read_frames(sock) -> tuple[bytes, bytes]:
    """Read a multiplexed (non-tty) attach/exec stream to its end: (stdout, stderr)."""
    out, err = b"", b""
    for stream, data in frames_iter(sock, tty=False):
        if stream == STDOUT:
            out += data
        elif stream == STDERR:
            err += data
    return out, err


def sleeper(client, name):
    return client.containers.run(IMAGE, ["sleep", "600"], name=name, detach=True)


# --------------------------------------------------------------------------------------------------

def test_ping_version_info(sides):
    def scenario(side, c):
        v = c.version()
        i = c.info()
        return (c.ping(), v["Version"], v["ApiVersion"], v["Os"], i["ServerVersion"], i["Driver"], i["Name"],
                i["NCPU"], c.api.api_version)

    res = per_side(sides, scenario)
    assert res["gateway"] == res["direct"]
    assert res["direct"][0] is True


def test_containers_run_output(sides):
    def scenario(side, c):
        out = c.containers.run(IMAGE, ["sh", "-c", "echo out-line; echo err-line >&2"], name=sides.name(side),
                               remove=True)
        both = c.containers.run(IMAGE, ["sh", "-c", "echo out-line; sleep 0.3; echo err-line >&2"], remove=True,
                                stdout=True, stderr=True)
        # run() follows the logs while the container runs; dockerd 20.10 may end that stream before the last
        # lines (seen directly too), so the big output is read after the container has exited.
        runner = c.containers.run(IMAGE, ["seq", "1", "100000"], detach=True)
        runner.wait(timeout=60)
        big = runner.logs()
        runner.remove()
        return out, both, hashlib.sha256(big).hexdigest(), big.count(b"\n")

    res = per_side(sides, scenario)
    assert_same(sides, res)
    assert res["gateway"][0] == b"out-line\n" and res["gateway"][3] == 100000


def test_containers_run_nonzero_exit(sides):
    def scenario(side, c):
        try:
            c.containers.run(IMAGE, ["sh", "-c", "echo bad >&2; exit 13"], name=sides.name(side), remove=False)
        except docker.errors.ContainerError as e:
            return ("ContainerError", e.exit_status, e.stderr, e.command)
        return ("no error",)

    res = per_side(sides, scenario)
    assert_same(sides, res)
    assert res["gateway"][:3] == ("ContainerError", 13, b"bad\n")


def test_create_start_wait_logs(sides):
    def scenario(side, c):
        ct = c.containers.create(IMAGE, ["sh", "-c", "echo hello-sdk; exit 4"], name=sides.name(side),
                                 labels={"powerstrip.test": "1"})
        ct.start()
        waited = ct.wait(timeout=30)
        ct.reload()
        return (waited, ct.logs(), ct.status, ct.labels, ct.name)

    res = per_side(sides, scenario)
    assert_same(sides, res)
    assert res["gateway"][0] == {"Error": None, "StatusCode": 4}


def test_exec_run_plain_and_demux(sides):
    def scenario(side, c):
        ct = sleeper(c, sides.name(side))
        plain = ct.exec_run(["sh", "-c", "seq 1 50000; echo e >&2; exit 3"])
        demux = ct.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        tty = ct.exec_run(["sh", "-c", "tty; echo x"], tty=True)
        env = ct.exec_run(["env"], environment={"PS_TEST": "yes"}, workdir="/tmp")
        return (plain.exit_code, hashlib.sha256(plain.output).hexdigest(), demux, tty,
                b"PS_TEST=yes" in env.output)

    res = per_side(sides, scenario)
    assert_same(sides, res)
    assert res["gateway"][0] == 3 and res["gateway"][2].output == (b"o\n", b"e\n")


def test_exec_run_stream(sides):
    def scenario(side, c):
        ct = sleeper(c, sides.name(side))
        r = ct.exec_run(["sh", "-c", "for i in 1 2 3 4 5; do echo chunk $i; sleep 0.1; done"], stream=True)
        data = b""
        with Watchdog(r.output, 30):
            for chunk in r.output:
                data += chunk
        return data

    res = per_side(sides, scenario)
    assert res["gateway"] == res["direct"] == b"".join(b"chunk %d\n" % i for i in range(1, 6))


def test_exec_run_socket_with_stdin_half_close(sides):
    payload = random.Random(1).randbytes(1 << 20)
    want = hashlib.sha256(payload).hexdigest().encode()

    def scenario(side, c):
        ct = sleeper(c, sides.name(side))
        r = ct.exec_run(["sh", "-c", "sha256sum; echo after-eof"], socket=True, stdin=True)
        sock = r.output._sock if hasattr(r.output, "_sock") else r.output
        sock.settimeout(30)
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)  # half-close: the command sees EOF, its output must still arrive
        out, err = read_frames(r.output)
        sock.close()
        return out, err

    res = per_side(sides, scenario)
    assert res["gateway"] == res["direct"] == (want + b"  -\nafter-eof\n", b"")


def test_exec_api_inspect_exit_code(sides):
    def scenario(side, c):
        ct = sleeper(c, sides.name(side))
        ex = c.api.exec_create(ct.id, ["sh", "-c", "echo x; exit 8"])
        out = c.api.exec_start(ex["Id"])
        info = c.api.exec_inspect(ex["Id"])
        return out, info["ExitCode"], info["Running"], info["ProcessConfig"]

    res = per_side(sides, scenario)
    assert_same(sides, res)
    assert res["gateway"][:2] == (b"x\n", 8)


def test_logs_stream_until_exit(sides):
    def scenario(side, c):
        ct = c.containers.run(IMAGE, ["sh", "-c", "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done"],
                              name=sides.name(side), detach=True)
        stream = ct.logs(stream=True, follow=True)
        lines = b""
        with Watchdog(stream, 30) as wd:
            for chunk in stream:
                lines += chunk
        return lines, wd.fired

    res = per_side(sides, scenario)
    assert res["gateway"] == res["direct"] == (b"".join(b"tick %d\n" % i for i in range(1, 6)), False)


def test_logs_stream_endless_closed_by_client(sides):
    def scenario(side, c):
        ct = c.containers.run(IMAGE, ["sh", "-c", "i=0; while true; do i=$((i+1)); echo n $i; sleep 0.05; done"],
                              name=sides.name(side), detach=True)
        stream = ct.logs(stream=True, follow=True)
        buf = b""
        with Watchdog(stream, 30):
            for chunk in stream:
                buf += chunk
                if buf.count(b"\n") >= 30:
                    break
        stream.close()
        # the client went away: the daemon (and the gateway) must still answer
        return buf.split(b"\n")[:30], c.ping()

    res = per_side(sides, scenario)
    assert res["gateway"] == res["direct"]
    assert res["direct"][0][-1] == b"n 30"


def test_events_bounded(sides):
    def scenario(side, c):
        name = sides.name(side)
        t0 = time.time() - 1
        c.containers.run(IMAGE, ["true"], name=name, remove=True)
        t1 = time.time() + 1
        time.sleep(max(0.0, t1 - time.time()) + 0.2)
        events = c.events(since=t0, until=t1, decode=True, filters={"container": name})
        with Watchdog(events, 30):
            return [(e["Type"], e["Action"], e["Actor"]["Attributes"].get("name")) for e in events]

    res = per_side(sides, scenario)
    assert_same(sides, res)
    actions = [a for _, a, _ in res["direct"]]
    assert actions[0] == "create" and actions[-1] == "destroy"


def test_events_live_stream(sides):
    def scenario(side, c):
        name = sides.name(side)
        events = c.events(decode=True, filters={"container": name})
        got = []
        with Watchdog(events, 30):
            c.containers.run(IMAGE, ["true"], name=name, remove=True)
            for e in events:
                got.append(e["Action"])
                if e["Action"] == "destroy":
                    break
        events.close()
        return got

    res = per_side(sides, scenario)
    assert res["gateway"] == res["direct"]
    assert res["direct"][-1] == "destroy"


def _tar_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mode = 0o640
        ti.mtime = 1_700_000_000
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_put_and_get_archive(sides):
    data = random.Random(9).randbytes(4 * 1024 * 1024 + 7)
    want = hashlib.sha256(data).hexdigest()

    def scenario(side, c):
        ct = sleeper(c, sides.name(side))
        put = ct.put_archive("/tmp", _tar_of("blob.bin", data))
        inside = ct.exec_run(["sha256sum", "/tmp/blob.bin"]).output
        stream, stat = ct.get_archive("/tmp/blob.bin")
        raw = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
            member = tf.getmember("blob.bin")
            got = tf.extractfile(member).read()
        missing = error_of(lambda: ct.get_archive("/no/such/path"))
        return (put, inside, {k: stat[k] for k in ("name", "size", "mode", "mtime")},
                hashlib.sha256(got).hexdigest(), member.size, missing)

    res = per_side(sides, scenario)
    assert_same(sides, res)
    assert res["gateway"][1] == f"{want}  /tmp/blob.bin\n".encode() and res["gateway"][3] == want


def _build_context(fail: bool = False) -> bytes:
    buf = io.BytesIO()
    dockerfile = ("FROM ps-busybox\nCOPY payload.bin /payload.bin\nRUN sha256sum /payload.bin > /sum\n"
                  + ("RUN exit 7\n" if fail else "") + 'CMD ["cat", "/sum"]\n').encode()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("Dockerfile", dockerfile), ("payload.bin", random.Random(2).randbytes(2 << 20))):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _log_text(logs) -> str:
    return "".join(str(entry.get("stream", entry.get("error", entry.get("aux", "")))) for entry in logs)


def test_images_build(sides):
    ctx = _build_context()

    def scenario(side, c):
        tag = sides.name(side, "img")
        image, logs = c.images.build(fileobj=io.BytesIO(ctx), custom_context=True, tag=tag, nocache=True, rm=True)
        out = c.containers.run(tag, remove=True)
        return _log_text(logs), image.tags, out

    res = per_side(sides, scenario)
    assert_same(sides, res)
    assert res["gateway"][2].endswith(b"  /payload.bin\n")


def test_images_build_error(sides):
    ctx = _build_context(fail=True)

    def scenario(side, c):
        try:
            c.images.build(fileobj=io.BytesIO(ctx), custom_context=True, tag=sides.name(side, "img"), nocache=True)
        except docker.errors.BuildError as e:
            return "BuildError", e.msg, _log_text(e.build_log)
        return ("no error",)

    res = per_side(sides, scenario)
    assert_same(sides, res)
    assert res["gateway"][0] == "BuildError" and "non-zero code: 7" in res["gateway"][1]


def test_api_errors(sides):
    def scenario(side, c):
        name = sides.name(side)
        return [
            error_of(lambda: c.containers.get(sides.name(side, "absent"))),
            error_of(lambda: c.images.get("powerstrip-no-such-image:0")),
            error_of(lambda: c.images.pull("127.0.0.1:9/powerstrip/nope", tag="1")),
            error_of(lambda: c.containers.create("127.0.0.1:9/nope:1", ["true"])),
            error_of(lambda: c.containers.create(IMAGE, ["true"], restart_policy={"Name": "bogus"})),
            error_of(lambda: c.containers.create(IMAGE, ["true"], name="bad name!")),
            error_of(lambda: (c.containers.create(IMAGE, ["true"], name=name).name,
                              c.containers.create(IMAGE, ["true"], name=name))),
            error_of(lambda: c.volumes.get(sides.name(side, "novol"))),
            error_of(lambda: c.networks.get(sides.name(side, "nonet"))),
            error_of(lambda: c.api.kill(name)),  # not running: 409
        ]

    res = per_side(sides, scenario)
    assert_same(sides, res)
    kinds = [r[0] for r in res["gateway"]]
    assert kinds[:2] == ["NotFound", "ImageNotFound"]
    assert res["gateway"][0][1] == 404


def test_networks_and_volumes(sides):
    subnets = {"direct": "10.232.1", "gateway": "10.232.2"}

    def scenario(side, c):
        sn = subnets[side]
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=f"{sn}.0/24")])
        net = c.networks.create(sides.name(side, "net"), driver="bridge", ipam=ipam, labels={"t": "1"})
        vol = c.volumes.create(sides.name(side, "vol"), labels={"t": "1"})
        out = c.containers.run(IMAGE, ["sh", "-c", "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; "
                                                   "echo v > /v/f; cat /v/f"],
                               network=net.name, volumes={vol.name: {"bind": "/v", "mode": "rw"}}, remove=True)
        net.reload()
        listed = [n.name for n in c.networks.list(names=[net.name])]
        vols = [v.name for v in c.volumes.list(filters={"name": vol.name})]
        dup = error_of(lambda: c.networks.create(net.name, ipam=ipam))
        net.remove()
        vol.remove()
        return (out, net.attrs["IPAM"]["Config"], net.attrs["Labels"], listed, vols, dup,
                error_of(lambda: c.networks.get(net.id)), error_of(lambda: vol.remove()))

    res = per_side(sides, scenario)
    assert_same(sides, res, extra=[(r"10\.232\.[12]\.", "10.232.X.")])
    assert res["direct"][0] == b"inet 10.232.1.2/24\nv\n"


def test_df_and_lists(sides):
    def scenario(side, c):
        df = c.df()
        return (sorted(df.keys()), sorted(t for i in c.images.list() for t in i.tags if "pst-" not in t),
                len(c.containers.list(all=True, filters={"name": sides.prefix(side)})))

    res = per_side(sides, scenario)
    assert res["gateway"] == res["direct"]
    assert "ps-busybox:latest" in res["direct"][1]


def test_attach_socket_and_wait(sides):
    def scenario(side, c):
        ct = c.containers.create(IMAGE, ["sh", "-c", "read l; echo got:$l; exit 2"], name=sides.name(side),
                                 stdin_open=True)
        s = c.api.attach_socket(ct.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        raw = s._sock if hasattr(s, "_sock") else s
        raw.settimeout(30)
        ct.start()
        raw.sendall(b"hello-sock\n")
        out, _ = read_frames(s)
        raw.close()
        return out, ct.wait(timeout=30)["StatusCode"]

    res = per_side(sides, scenario)
    assert res["gateway"] == res["direct"] == (b"got:hello-sock\n", 2)


def test_many_requests_on_kept_alive_connections(sides):
    """The SDK reuses its pooled connections: 300 requests, mixed, all answered alike."""
    def scenario(side, c):
        ct = sleeper(c, sides.name(side))
        seen = []
        for i in range(100):
            seen.append(len(c.containers.list(filters={"name": sides.prefix(side)})))
            seen.append(c.api.inspect_container(ct.id)["State"]["Running"])
            seen.append(c.api.ping())
        return seen

    res = per_side(sides, scenario)
    assert res["gateway"] == res["direct"] == [1, True, True] * 100


def test_sdk_over_tcp_listener(dockerd, make_gateway, uniq):
    gw = make_gateway(tcp=True)
    with client_for(gw.tcp_url) as c, client_for(dockerd.url) as d:
        via = c.containers.run(IMAGE, ["sh", "-c", "echo tcp-ok"], remove=True)
        direct = d.containers.run(IMAGE, ["sh", "-c", "echo tcp-ok"], remove=True)
        assert via == direct == b"tcp-ok\n"
        ct = c.containers.run(IMAGE, ["sleep", "600"], name=f"pst-{uniq}-tcp", detach=True)
        try:
            r = ct.exec_run(["sh", "-c", "seq 1 20000"])
            assert r.exit_code == 0 and r.output.splitlines()[-1] == b"20000"
        finally:
            ct.remove(force=True)
