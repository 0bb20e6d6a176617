"""wrk and ab runs against one target, with the target's CPU and RSS around each run.

A measured run reads the CPU time (utime + stime) of every process of the
target just before the load tool starts and just after it exits; CPU time per
request is that delta divided by the requests the tool reports as completed.
"""

import re
import subprocess
import time

WRK_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
GRACE_S = 30  # beyond the nominal duration, before a tool is killed
SETTLE_S = 1  # RSS is read again this long after the tool exits (memory returned by then)


class ToolError(Exception):
    pass


def wrk_argv(port, path, conns, seconds, pin_cpu=None):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
            f"http://127.0.0.1:{port}{path}"]
    return (["taskset", "-c", str(pin_cpu)] + argv) if pin_cpu is not None else argv


def ab_argv(port, path, requests, conns):
    return ["ab", "-q", "-s", "30", "-n", str(requests), "-c", str(conns),
            f"http://127.0.0.1:{port}{path}"]


def _wrk_time_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    return round(float(m.group(1)) * WRK_UNITS_S[m.group(2)] * 1e3, 3) if m else None


def _size_bytes(text):
    m = re.fullmatch(r"([\d.]+)([KMGT]?B)", text)
    return float(m.group(1)) * SIZE_UNITS[m.group(2)] if m else None


def parse_wrk(out):
    """The numbers of wrk's --latency report; raises ToolError if there are none."""
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+[KMGT]?B) read", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    tps = re.search(r"Transfer/sec:\s+([\d.]+[KMGT]?B)", out)
    if not (m and rps and tps):
        raise ToolError(f"unexpected wrk output:\n{out}")
    latency = {}
    for pct, value in re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", out, re.M):
        latency[f"p{pct}"] = _wrk_time_ms(value)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     out)
    socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                             map(int, sock.groups()))) if sock else {}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(m.group(1)),
        "seconds": float(m.group(2)) * WRK_UNITS_S[m.group(3)],
        "rps": float(rps.group(1)),
        "transfer_bytes_per_s": _size_bytes(tps.group(1)),
        "latency_ms": latency,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": socket_errors,
    }


def parse_ab(out):
    """The numbers of ab's report; raises ToolError if there are none."""
    def num(pattern, default=None):
        m = re.search(pattern, out, re.M)
        return float(m.group(1)) if m else default

    complete = num(r"^Complete requests:\s+(\d+)")
    rps = num(r"^Requests per second:\s+([\d.]+)")
    if complete is None or rps is None:
        raise ToolError(f"unexpected ab output:\n{out}")
    latency = {f"p{pct}": float(v) for pct, v in
               re.findall(r"^\s+(50|90|99)%\s+(\d+)", out, re.M)}
    failed = int(num(r"^Failed requests:\s+(\d+)", 0))
    return {
        "requests": int(complete),
        "seconds": num(r"^Time taken for tests:\s+([\d.]+)"),
        "rps": rps,
        "transfer_bytes_per_s": num(r"^Transfer rate:\s+([\d.]+)", 0) * 1024,
        "latency_ms": latency,
        "non2xx": int(num(r"^Non-2xx responses:\s+(\d+)", 0)),
        "socket_errors": {"failed": failed,
                          "write": int(num(r"^Write errors:\s+(\d+)", 0))},
    }


def _run_tool(argv, timeout):
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"{argv[0]} still running after {timeout}s, killed") from e
    return proc


def warm_up(argv, seconds):
    """Run the tool and discard the result (wrk only)."""
    if seconds > 0:
        _run_tool(argv, seconds + GRACE_S)


def measured(server, argv, parse, timeout):
    """Run `argv` once against `server`; return the parsed numbers plus CPU and RSS."""
    group, cp = server.group(), server.controlplane()
    cpu0 = group.cpu_seconds()
    cp0 = cp.cpu_seconds() if cp else 0.0
    t0 = time.monotonic()
    proc = _run_tool(argv, timeout)
    wall = time.monotonic() - t0
    cpu = group.cpu_seconds() - cpu0
    result = {"cmd": " ".join(argv), "wall_s": round(wall, 3)}
    try:
        result.update(parse(proc.stdout))
    except ToolError as e:
        raise ToolError(f"{e}\nstderr: {proc.stderr.strip()[-2000:]}") from None
    if proc.returncode != 0:
        result["tool_error"] = (proc.stderr.strip() or f"exit {proc.returncode}")[-500:]
    result["cpu_s"] = round(cpu, 3)
    requests = result["requests"]
    result["cpu_us_per_req"] = round(cpu * 1e6 / requests, 2) if requests else None
    result["rss_kib"] = group.rss_kib()
    # Anonymous memory is the process's own; the rest of RSS is mapped files (its binary and
    # libraries), which the kernel may map in large folios (ext4 on Linux 6.16+ does).
    result["rss_anon_kib"] = group.rss_kib("RssAnon")
    time.sleep(SETTLE_S)
    result["rss_settled_kib"] = group.rss_kib()
    if cp:
        result["controlplane"] = {"cpu_s": round(cp.cpu_seconds() - cp0, 3),
                                  "rss_kib": cp.rss_kib()}
    errors = result["non2xx"] + sum(result["socket_errors"].values())
    result["errors"] = errors
    result["flagged"] = bool(errors or "tool_error" in result or not requests)
    return result


def wrk(server, path, conns, seconds, warmup_s, pin_cpu=None):
    warm_up(wrk_argv(server.port, path, conns, warmup_s, pin_cpu), warmup_s)
    argv = wrk_argv(server.port, path, conns, seconds, pin_cpu)
    return measured(server, argv, parse_wrk, seconds + GRACE_S)


def ab(server, path, requests, conns, timeout):
    return measured(server, ab_argv(server.port, path, requests, conns), parse_ab, timeout)
