"""Configuration scale: how fast a file change goes live, and what a large table costs.

For each size N, ringway (2 workers) starts from a dynamic TOML file with N routers,
`Host(`svcI.example.com`) && PathPrefix(`/api`)`, each with its own load-balancer
service pointing at the origin. Once `svc{N-1}.example.com/api/x` answers 200:

- RSS of the data plane (the process started) and of the control plane (its child whose
  command line contains `controlplane`), once both are quiet;
- 5 rounds: the file is replaced atomically (written to a temp file in the same folder,
  then `os.rename`) by a version with one more router, `Host(`probe-K.example.com`)`.
  The temp file is written and both processes are let go quiet (its own inotify events
  make the provider re-read the unchanged file) before the rename. From the instant
  just before the rename, 4 keep-alive connections (opened before it, each checked to
  answer 404 for probe-K) send `GET /api/x` with `Host: probe-K...` back to back, no
  sleep, until each answers 200 or 5 s have passed. The kernel spreads
  the connections over the 2 workers (SO_REUSEPORT), so the time at which the last of
  them sees 200 is "live on every worker". What it covers: inotify → file provider
  reload → aggregation → IPC → compile → publish → first request routed on each worker.
  Also kept per round: the slowest single request while polling (a worker stalled by
  the reload shows here) and 404s to requests sent after another connection had seen
  200 (a table published to one worker before another; expected 0).

The same rounds run a second way at the largest size ("directory" mode): the N routers stay
in one file of a watched directory and each round adds a small file `probe-K.toml` (written
aside, then renamed in). That is a change to a 10,000-router table whose cost is not the
re-parse of the whole 1.7 MB file: Docker, KV and one-file-per-service directories change
that way.

And a third way ("yaml" mode): the same N routers written in YAML, the file rewritten whole
each round as in the first (Traefik reads both formats; YAML takes another parser).

With the largest table up and no traffic, utime + stime of both processes over 5 s gives
their idle CPU cost.
"""

import os
import socket
import statistics
import time

from . import procstat, servers
from .provision import log

SIZES = (10, 1000, 10000)
WORKERS = 2
ROUNDS = 5
CONNS = 4
POLL_TIMEOUT_S = 5.0
IDLE_SAMPLE_S = 5.0
READY_TIMEOUT_S = 120.0
QUIET_STEP_S = 0.1       # quiet = no CPU tick in either process over one step
QUIET_TIMEOUT_S = 5.0
PATH = "/api/x"
API_BODY = b"api\n"      # what the origin serves at /api/x (servers.origin)


class ProtocolError(Exception):
    pass


def settings():
    return {"sizes": list(SIZES), "workers": WORKERS, "rounds": ROUNDS, "conns": CONNS,
            "poll_timeout_s": POLL_TIMEOUT_S, "idle_sample_s": IDLE_SAMPLE_S,
            "path": PATH}


# --- the dynamic configuration ---------------------------------------------------------

def probe_toml(k, origin_port):
    """Probe router K alone (directory mode's new file)."""
    return dynamic_toml(0, origin_port, probes=k, first_probe=k)


def dynamic_toml(routers, origin_port, probes=0, first_probe=1):
    """N routers svcI + probe routers probe-`first_probe`..probe-`probes`, each with its
    own service."""
    url = f"http://127.0.0.1:{origin_port}"
    parts = []
    for i in range(routers):
        parts.append(
            f'[http.routers.r{i}]\n'
            f'rule = "Host(`svc{i}.example.com`) && PathPrefix(`/api`)"\n'
            f'service = "s{i}"\n\n'
            f'[http.services.s{i}.loadBalancer]\n'
            f'servers = [{{ url = "{url}" }}]\n\n')
    for k in range(first_probe, probes + 1):
        parts.append(
            f'[http.routers.probe{k}]\n'
            f'rule = "Host(`probe-{k}.example.com`)"\n'
            f'service = "p{k}"\n\n'
            f'[http.services.p{k}.loadBalancer]\n'
            f'servers = [{{ url = "{url}" }}]\n\n')
    return "".join(parts)


def dynamic_yaml(routers, origin_port, probes=0, first_probe=1):
    """`dynamic_toml`'s configuration in YAML: routers first, then services."""
    url = f"http://127.0.0.1:{origin_port}"
    names = [(f"r{i}", f"Host(`svc{i}.example.com`) && PathPrefix(`/api`)", f"s{i}")
             for i in range(routers)]
    names += [(f"probe{k}", f"Host(`probe-{k}.example.com`)", f"p{k}")
              for k in range(first_probe, probes + 1)]
    parts = ["http:\n  routers:\n"]
    for name, rule, service in names:
        parts.append(f'    {name}:\n      rule: "{rule}"\n      service: {service}\n')
    parts.append("  services:\n")
    for _, _, service in names:
        parts.append(f'    {service}:\n      loadBalancer:\n        servers:\n'
                     f'          - url: "{url}"\n')
    return "".join(parts)


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


def stage(path, text):
    """Write the next version next to `path` (same folder, so the rename is atomic)."""
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    write_file(tmp, text)
    return tmp


# --- a raw HTTP/1.1 keep-alive client ---------------------------------------------------

class Conn:
    """One keep-alive connection sending `GET /api/x` with a fixed Host header."""

    def __init__(self, port, host, timeout=2.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = f"GET {PATH} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ProtocolError("connection closed by ringway")
        self.buf += data

    def get(self, deadline=None):
        """Status of one request; the response is read whole, by its Content-Length."""
        if deadline is not None:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
        self.sock.sendall(self.request)
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._fill()
        head, self.buf = self.buf[:end], self.buf[end + 4:]
        lines = head.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise ProtocolError(f"bad status line {lines[0][:80]!r}") from None
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            elif name.strip().lower() == b"connection" and b"close" in value.lower():
                raise ProtocolError(f"HTTP {status} with Connection: close")
        if length is None:
            raise ProtocolError(f"HTTP {status} without Content-Length")
        while len(self.buf) < length:
            self._fill()
        self.buf = self.buf[length:]
        return status

    def close(self):
        self.sock.close()


# --- processes --------------------------------------------------------------------------

def _controlplane_pid(server):
    pids = server.controlplane().pids()
    return pids[0] if pids else None


def _cpu_ticks(pid):
    """utime + stime (fields 14 and 15 of /proc/<pid>/stat) in clock ticks; None if gone."""
    fields = procstat._stat_fields(pid) if pid else None
    return int(fields[11]) + int(fields[12]) if fields else None


def _schedstat_ns(pid):
    """Time on CPU of all threads in ns (/proc/<pid>/task/*/schedstat), for precision."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total


def wait_quiet(pids, timeout=QUIET_TIMEOUT_S):
    """Wait until none of `pids` gains a CPU tick over QUIET_STEP_S; False on timeout."""
    deadline = time.monotonic() + timeout
    last = [_cpu_ticks(p) for p in pids]
    while time.monotonic() < deadline:
        time.sleep(QUIET_STEP_S)
        now = [_cpu_ticks(p) for p in pids]
        if now == last:
            return True
        last = now
    return False


def _start(tmp, origin_port, binary, routers, started, mode="file"):
    d = os.path.join(tmp, f"reconfig-{routers}-{mode}")
    os.makedirs(d, exist_ok=True)
    watched = os.path.join(d, "dynamic")
    os.makedirs(watched, exist_ok=True)
    if mode == "yaml":
        dynamic = os.path.join(watched, "dynamic.yaml")
        write_file(dynamic, dynamic_yaml(routers, origin_port))
    else:
        dynamic = os.path.join(watched, "dynamic.toml")
        write_file(dynamic, dynamic_toml(routers, origin_port))
    port = servers.free_port()
    provider = (f"--providers.file.directory={watched}" if mode == "directory"
                else f"--providers.file.filename={dynamic}")
    argv = [binary, f"--dataplane.workers={WORKERS}", provider,
            f"--entrypoints.web.address=127.0.0.1:{port}", "--log.level=ERROR"]
    server = servers.Server(f"ringway-{routers}r-{mode}", argv, port, d,
                            dataplane_only=True)
    started.append(server)
    t0 = time.monotonic()
    server.start()
    host = f"svc{routers - 1}.example.com"
    deadline = t0 + READY_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise servers.StartError(f"{server.name} exited with {server.proc.returncode}:\n"
                                     f"{server.log_tail()}")
        conn = None
        try:
            conn = Conn(port, host, timeout=1.0)
            status = conn.get()
            if status == 200:
                server._remember_children()
                return server, dynamic, (time.monotonic() - t0) * 1e3
            last = f"HTTP {status}"
        except (OSError, ProtocolError) as e:
            last = repr(e)
        finally:
            if conn:
                conn.close()
        time.sleep(0.02)
    raise servers.StartError(f"{server.name}: {host}{PATH} not routed after "
                             f"{READY_TIMEOUT_S:.0f} s (last: {last}):\n{server.log_tail()}")


# --- one round: rename → live on every connection ---------------------------------------

def one_round(server, dynamic, origin_port, routers, k, mode="file"):
    host = f"probe-{k}.example.com"
    if mode == "file":
        target = dynamic
        tmp = stage(dynamic, dynamic_toml(routers, origin_port, probes=k))
    elif mode == "yaml":
        target = dynamic
        tmp = stage(dynamic, dynamic_yaml(routers, origin_port, probes=k))
    else:
        target = os.path.join(os.path.dirname(dynamic), f"probe-{k}.toml")
        tmp = stage(target, probe_toml(k, origin_port))
    conns = []
    row = {"probe": host}
    try:
        for _ in range(CONNS):
            conns.append(Conn(server.port, host))
        for c in conns:  # open and warm every connection; the probe must not route yet
            status = c.get(time.monotonic() + 2.0)
            if status != 404:
                raise ProtocolError(f"{host} answered {status} before the rename")
        cp = _controlplane_pid(server)
        # Let the reload that the temp file's own events trigger (same content: nothing is
        # pushed) finish, so that the time below is the rename's alone.
        wait_quiet([server.proc.pid, cp])
        cpu_before = _cpu_ticks(cp)
        live_ms = [None] * CONNS
        polls = 0
        pending = list(range(CONNS))
        t0 = time.monotonic()
        os.rename(tmp, target)
        deadline = t0 + POLL_TIMEOUT_S
        slowest = 0.0     # the longest single request while polling: a stalled worker
        stale = 0         # 404s to requests sent after another connection had seen 200
        first_200 = None
        while pending and time.monotonic() < deadline:
            for i in list(pending):
                sent = time.monotonic()
                try:
                    status = conns[i].get(deadline)
                except TimeoutError:
                    break  # the deadline passed while waiting for an answer
                now = time.monotonic()
                polls += 1
                slowest = max(slowest, now - sent)
                if status == 200:
                    live_ms[i] = (now - t0) * 1e3
                    pending.remove(i)
                    first_200 = first_200 or now
                elif status != 404:
                    raise ProtocolError(f"{host} answered {status} (expected 404, then 200)")
                elif first_200 is not None and sent > first_200:
                    stale += 1
        row.update(per_conn_ms=[None if v is None else round(v, 2) for v in live_ms],
                   polls=polls, slowest_poll_ms=round(slowest * 1e3, 2),
                   stale_404s=stale)
        if pending:
            row.update(error=f"{len(pending)} of {CONNS} connections still 404 after "
                             f"{POLL_TIMEOUT_S:.0f} s")
        else:
            row.update(first_ms=round(min(live_ms), 2), all_ms=round(max(live_ms), 2))
        wait_quiet([server.proc.pid, cp])
        cpu_after = _cpu_ticks(cp)
        if cpu_before is not None and cpu_after is not None:
            row["controlplane_cpu_ms"] = round((cpu_after - cpu_before) * 1e3
                                               / procstat.CLK_TCK, 1)
    except (OSError, ProtocolError) as e:
        row.setdefault("error", f"{type(e).__name__}: {e}")
    finally:
        for c in conns:
            c.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return row


def _rss(server):
    return server.group().rss_kib(), server.controlplane().rss_kib()


def measure_size(tmp, origin_port, binary, routers, started, mode="file"):
    row = {"routers": routers, "mode": mode}
    try:
        server, dynamic, startup_ms = _start(tmp, origin_port, binary, routers, started, mode)
    except (servers.StartError, OSError) as e:
        row.update(error=str(e), flagged=True)
        return row, None
    row["file_bytes"] = os.path.getsize(dynamic)
    row["startup_ms"] = round(startup_ms, 1)
    cp = _controlplane_pid(server)
    row["quiet"] = wait_quiet([server.proc.pid, cp])
    row["dataplane_rss_kib"], row["controlplane_rss_kib"] = _rss(server)
    rounds = []
    for k in range(1, ROUNDS + 1):
        r = one_round(server, dynamic, origin_port, routers, k, mode)
        rounds.append(r)
        log(f"  round {k}: " + (f"live on all {CONNS} connections after {r['all_ms']:.1f} ms "
                                f"(first {r['first_ms']:.1f} ms, {r['polls']} polls, "
                                f"slowest {r['slowest_poll_ms']:.1f} ms, "
                                f"{r['stale_404s']} stale 404s)"
                                if "all_ms" in r else f"ERROR {r['error']}"))
    row["rounds"] = rounds
    times = [r["all_ms"] for r in rounds if "all_ms" in r]
    if times:
        row["median_ms"] = round(statistics.median(times), 2)
        row["max_ms"] = round(max(times), 2)
    cpu = [r["controlplane_cpu_ms"] for r in rounds if "controlplane_cpu_ms" in r]
    if cpu:
        row["controlplane_cpu_ms_per_reload"] = round(statistics.median(cpu), 1)
    row["dataplane_rss_after_kib"], row["controlplane_rss_after_kib"] = _rss(server)
    if _controlplane_pid(server) != cp:
        row["error"] = "the control plane was restarted during the rounds"
    if server.proc.poll() is not None:
        row["error"] = f"ringway exited during the rounds:\n{server.log_tail()}"
    elif any("error" in r for r in rounds):
        row.setdefault("error", next(r["error"] for r in rounds if "error" in r))
    row["flagged"] = "error" in row
    return row, server


def idle_cost(server, seconds=IDLE_SAMPLE_S):
    """CPU ms per second of the data plane and the control plane with no traffic."""
    dp, cp = server.proc.pid, _controlplane_pid(server)
    wait_quiet([dp, cp])
    t0 = time.monotonic()
    ticks0 = [_cpu_ticks(dp), _cpu_ticks(cp)]
    ns0 = [_schedstat_ns(dp), _schedstat_ns(cp)]
    time.sleep(seconds)
    ticks1 = [_cpu_ticks(dp), _cpu_ticks(cp)]
    ns1 = [_schedstat_ns(dp), _schedstat_ns(cp)]
    elapsed = time.monotonic() - t0
    out = {"routers": SIZES[-1], "seconds": round(elapsed, 2), "clk_tck": procstat.CLK_TCK}
    for name, a, b, na, nb in zip(("dataplane", "controlplane"), ticks0, ticks1, ns0, ns1):
        if a is None or b is None:
            out[f"{name}_cpu_ms_per_s"] = None
            continue
        out[f"{name}_cpu_ms_per_s"] = round((b - a) * 1e3 / procstat.CLK_TCK / elapsed, 2)
        if na is not None and nb is not None:
            out[f"{name}_schedstat_ms_per_s"] = round((nb - na) / 1e6 / elapsed, 3)
    out["resolution_ms_per_s"] = round(1e3 / procstat.CLK_TCK / elapsed, 2)
    return out


def run(tmp, origin_port, binary, started):
    """The whole scenario; returns the `reconfig` part of results.json."""
    result = {"settings": settings(), "sizes": [], "idle": None}
    for routers in SIZES:
        log(f"reconfig: ringway with {routers:,} routers, {WORKERS} workers")
        row, server = measure_size(tmp, origin_port, binary, routers, started)
        if "startup_ms" in row:
            log(f"  routable {row['startup_ms']:,.0f} ms after start; RSS data plane "
                f"{row['dataplane_rss_kib'] / 1024:.1f} MiB, control plane "
                f"{row['controlplane_rss_kib'] / 1024:.1f} MiB")
        if row.get("error"):
            log(f"  ERROR {row['error'].splitlines()[0]}")
        result["sizes"].append(row)
        if server is not None:
            if routers == SIZES[-1] and server.proc.poll() is None:
                log(f"reconfig: idle CPU with {routers:,} routers over {IDLE_SAMPLE_S:.0f} s")
                result["idle"] = idle_cost(server)
                i = result["idle"]
                log(f"  data plane {i['dataplane_cpu_ms_per_s']} ms/s, control plane "
                    f"{i['controlplane_cpu_ms_per_s']} ms/s")
            server.stop()
    routers = SIZES[-1]
    log(f"reconfig: {routers:,} routers in a watched directory, one new file per round")
    row, server = measure_size(tmp, origin_port, binary, routers, started, mode="directory")
    if row.get("error"):
        log(f"  ERROR {row['error'].splitlines()[0]}")
    result["directory"] = row
    if server is not None:
        server.stop()
    log(f"reconfig: {routers:,} routers in one YAML file, rewritten whole per round")
    row, server = measure_size(tmp, origin_port, binary, routers, started, mode="yaml")
    if row.get("error"):
        log(f"  ERROR {row['error'].splitlines()[0]}")
    result["yaml"] = row
    if server is not None:
        server.stop()
    by = {r["routers"]: r for r in result["sizes"] if r.get("dataplane_rss_kib")}
    lo, hi = SIZES[0], SIZES[-1]
    if lo in by and hi in by:
        result["dataplane_bytes_per_router"] = round(
            (by[hi]["dataplane_rss_kib"] - by[lo]["dataplane_rss_kib"]) * 1024 / (hi - lo))
        result["controlplane_bytes_per_router"] = round(
            (by[hi]["controlplane_rss_kib"] - by[lo]["controlplane_rss_kib"]) * 1024
            / (hi - lo))
    return result
