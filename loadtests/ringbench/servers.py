"""The origin and the proxies under test: their configs, launch, readiness and teardown.

Every server gets its own folder in the run's temp dir (config, pid file, log),
listens on a free 127.0.0.1 port, and runs in the foreground in its own
session so that teardown can signal exactly the processes this harness started.
Settings are the same for every proxy: one worker or thread, HTTP/1.1
keep-alive to the origin with a pool of 128, no access log, no disk buffering,
and room for 20,000+ connections.
"""

import http.client
import os
import signal
import socket
import subprocess
import time

from . import procstat

SMALL_BODY = b"hello world\n"
ONE_MIB = 1024 * 1024
POOL = 128
READY_TIMEOUT_S = 60
# Descriptors each server may open: RLIMIT_NOFILE as the harness could raise it
# (see set_fd_limit). nginx gets up to 30,000 and 20,000 connections; HAProxy
# reserves two descriptors per connection, so its maxconn is at most half.
FD_LIMIT = 65536


def set_fd_limit(nofile):
    global FD_LIMIT
    FD_LIMIT = nofile


def haproxy_maxconn():
    return min(30000, (FD_LIMIT - 100) // 2)


class StartError(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=2.0):
    """(status, body) of one GET to 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Server:
    """One launched server: argv, port, log, and the process groups to measure."""

    def __init__(self, name, argv, port, workdir, env=None, dataplane_only=False):
        self.name = name
        self.argv = argv
        self.port = port
        self.workdir = workdir
        self.env = env
        self.dataplane_only = dataplane_only
        self.proc = None
        self.log_path = os.path.join(workdir, "output.log")
        self.seen = set()  # every descendant pid ever seen, for teardown

    def start(self):
        log = open(self.log_path, "wb")
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=self.workdir, env=env, start_new_session=True)
        log.close()
        return self

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, path="/small", expect=SMALL_BODY, timeout=READY_TIMEOUT_S):
        """Poll the port until a GET returns 200 with the expected body."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"{self.name} exited with {self.proc.returncode}:\n"
                                 f"{self.log_tail()}")
            try:
                status, body = http_get(self.port, path, timeout=1.0)
                if status == 200 and body == expect:
                    self._remember_children()
                    return
                last = f"HTTP {status}, {len(body)} bytes"
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            time.sleep(0.05)
        raise StartError(f"{self.name} not ready on 127.0.0.1:{self.port} after {timeout}s "
                         f"(last: {last}):\n{self.log_tail()}")

    def _remember_children(self):
        if self.proc and self.proc.poll() is None:
            self.seen.update(procstat.descendants(self.proc.pid))

    def group(self):
        """The processes whose CPU and RSS count as this server's."""
        return procstat.Group(self.proc.pid, only_root=self.dataplane_only)

    def controlplane(self):
        """ringway's `ringway controlplane` child, measured on its own."""
        if not self.dataplane_only:
            return None
        return procstat.ChildGroup(
            self.proc.pid, lambda p: b"controlplane" in procstat.cmdline(p))

    def stop(self):
        if not self.proc:
            return
        self._remember_children()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        # Children that left the process group (setsid) are killed by their own pid.
        for pid in self.seen:
            if procstat.alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc = None


def _folder(tmp, name):
    path = os.path.join(tmp, name)
    os.makedirs(path, exist_ok=True)
    return path


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def _nginx_main(d, http_block):
    return (f"user root;\nworker_processes 1;\nworker_rlimit_nofile {min(30000, FD_LIMIT)};\n"
            f"pid {d}/nginx.pid;\nerror_log {d}/error.log error;\n"
            f"events {{ worker_connections {min(20000, FD_LIMIT)}; }}\n"
            f"http {{\n    access_log off;\n    default_type application/octet-stream;\n"
            f"    keepalive_requests 100000;\n    keepalive_timeout 75s;\n"
            f"    client_body_temp_path {d}/tmp_body;\n    proxy_temp_path {d}/tmp_proxy;\n"
            f"    fastcgi_temp_path {d}/tmp_fcgi;\n    uwsgi_temp_path {d}/tmp_uwsgi;\n"
            f"    scgi_temp_path {d}/tmp_scgi;\n{http_block}}}\n")


def _nginx_argv(d, conf):
    return ["nginx", "-p", d, "-e", f"{d}/error.log", "-c", conf, "-g", "daemon off;"]


def origin(tmp):
    """nginx serving /small (12 bytes), /1m (1 MiB) and /api/x (4 bytes) from files."""
    d = _folder(tmp, "origin")
    www = _folder(d, "www")
    with open(os.path.join(_folder(www, "api"), "x"), "wb") as f:
        f.write(b"api\n")  # the reconfig scenario's routers match PathPrefix(`/api`)
    with open(os.path.join(www, "small"), "wb") as f:
        f.write(SMALL_BODY)
    with open(os.path.join(www, "1m"), "wb") as f:
        f.write(bytes(range(256)) * (ONE_MIB // 256))
    port = free_port()
    conf = _write(os.path.join(d, "nginx.conf"), _nginx_main(d, (
        f"    sendfile on;\n    tcp_nopush on;\n"
        f"    server {{\n        listen 127.0.0.1:{port} backlog=4096;\n"
        f"        root {www};\n    }}\n")))
    return Server("origin", _nginx_argv(d, conf), port, d)


def nginx(tmp, origin_port):
    d = _folder(tmp, "nginx")
    port = free_port()
    conf = _write(os.path.join(d, "nginx.conf"), _nginx_main(d, (
        f"    upstream origin {{\n        server 127.0.0.1:{origin_port};\n"
        f"        keepalive {POOL};\n        keepalive_requests 100000;\n    }}\n"
        f"    server {{\n        listen 127.0.0.1:{port} backlog=4096;\n"
        f"        location / {{\n            proxy_pass http://origin;\n"
        f"            proxy_http_version 1.1;\n"
        f"            proxy_set_header Connection \"\";\n"
        # Stream large bodies through memory buffers, never spool them to disk.
        f"            proxy_max_temp_file_size 0;\n        }}\n    }}\n")))
    return Server("nginx", _nginx_argv(d, conf), port, d)


def haproxy(tmp, origin_port):
    d = _folder(tmp, "haproxy")
    port = free_port()
    conf = _write(os.path.join(d, "haproxy.cfg"), f"""\
global
    nbthread 1
    maxconn {haproxy_maxconn()}

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 75s

frontend web
    bind 127.0.0.1:{port}
    default_backend origin

backend origin
    server o1 127.0.0.1:{origin_port} pool-max-conn {POOL}
""")
    return Server("haproxy", ["haproxy", "-db", "-f", conf, "-p", f"{d}/haproxy.pid"],
                  port, d)


def caddy(tmp, origin_port):
    d = _folder(tmp, "caddy")
    port = free_port()
    conf = _write(os.path.join(d, "Caddyfile"), f"""\
{{
\tadmin off
\tauto_https off
\tlog {{
\t\toutput discard
\t}}
}}

http://:{port} {{
\tbind 127.0.0.1
\treverse_proxy 127.0.0.1:{origin_port} {{
\t\ttransport http {{
\t\t\tkeepalive 75s
\t\t\tkeepalive_idle_conns {POOL}
\t\t\tkeepalive_idle_conns_per_host {POOL}
\t\t}}
\t}}
}}
""")
    env = {"GOMAXPROCS": "1", "HOME": d, "XDG_DATA_HOME": f"{d}/data",
           "XDG_CONFIG_HOME": f"{d}/config"}
    argv = ["caddy", "run", "--config", conf, "--adapter", "caddyfile",
            "--pidfile", f"{d}/caddy.pid"]
    return Server("caddy", argv, port, d, env=env)


def ringway(tmp, origin_port, binary, workers=1, name="ringway"):
    d = _folder(tmp, name)
    port = free_port()
    dynamic = _write(os.path.join(d, "dynamic.toml"), f"""\
[http.routers.r]
rule = "PathPrefix(`/`)"
service = "s"

[http.services.s.loadBalancer]
servers = [{{ url = "http://127.0.0.1:{origin_port}" }}]
""")
    argv = [binary, f"--entrypoints.web.address=127.0.0.1:{port}",
            f"--providers.file.filename={dynamic}", f"--dataplane.workers={workers}",
            "--log.level=ERROR"]
    return Server(name, argv, port, d, dataplane_only=True)


PROXIES = {"ringway": ringway, "nginx": nginx, "haproxy": haproxy, "caddy": caddy}
