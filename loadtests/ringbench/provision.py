"""What a run needs before it starts: packages, the ringway binary, and facts about the machine."""

import os
import platform
import re
import resource
import subprocess
import sys

# Debian package -> how to tell that it is installed.
PACKAGES = {
    "nginx": ["nginx", "-v"],
    "haproxy": ["haproxy", "-v"],
    "caddy": ["caddy", "version"],
    "wrk": ["sh", "-c", "command -v wrk"],
    "apache2-utils": ["ab", "-V"],
    "python3-matplotlib": ["/usr/bin/python3", "-c", "import matplotlib"],
}
SOURCE_DIRS = ["src", "shared", "dataplane", "controlplane"]
NOFILE = 65536


def log(msg):
    print(f"[loadtest] {msg}", file=sys.stderr, flush=True)


def _works(argv):
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def needed_packages(proxies, wrk=True, ab=True):
    """The packages a run needs: the origin (nginx), the peers in `proxies`, the tools."""
    needed = {"nginx", "python3-matplotlib"} | ({"haproxy", "caddy"} & set(proxies))
    if wrk:
        needed.add("wrk")
    if ab:
        needed.add("apache2-utils")
    return [pkg for pkg in PACKAGES if pkg in needed]


def ensure_packages(packages=None):
    """apt-get install whatever is missing of `packages` (default: all of PACKAGES;
    apt-get update first, only then)."""
    missing = [pkg for pkg, probe in PACKAGES.items()
               if (packages is None or pkg in packages) and not _works(probe)]
    if not missing:
        return
    log(f"installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, timeout=900,
                   stdout=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                   check=True, env=env, timeout=1800, stdout=sys.stderr)
    still = [pkg for pkg in missing if not _works(PACKAGES[pkg])]
    if still:
        raise SystemExit(f"still missing after apt-get install: {' '.join(still)}")


def raise_nofile():
    """Lift RLIMIT_NOFILE for this process and, by inheritance, every server it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(NOFILE, soft), max(NOFILE, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _newest_source_mtime(repo):
    newest = 0.0
    for name in ("Cargo.toml", "Cargo.lock"):
        newest = max(newest, os.path.getmtime(os.path.join(repo, name)))
    for top in SOURCE_DIRS:
        for root, dirs, files in os.walk(os.path.join(repo, top)):
            dirs[:] = [d for d in dirs if d != "target"]
            for f in files:
                if f.endswith((".rs", ".toml")):
                    newest = max(newest, os.path.getmtime(os.path.join(root, f)))
    return newest


def ensure_ringway(repo, build):
    """Path of target/release/ringway, building it when missing or stale.

    Returns (path or None, problem or None).
    """
    binary = os.path.join(repo, "target", "release", "ringway")
    exists = os.path.exists(binary)
    stale = not exists or os.path.getmtime(binary) < _newest_source_mtime(repo)
    if stale and build:
        log("building ringway: cargo build --release --locked")
        first_error = None
        with subprocess.Popen(["cargo", "build", "--release", "--locked"], cwd=repo,
                              stdin=subprocess.DEVNULL, stdout=sys.stderr,
                              stderr=subprocess.PIPE, text=True) as cargo:
            for line in cargo.stderr:  # shown as it comes, the first error kept
                sys.stderr.write(line)
                if first_error is None and line.startswith("error"):
                    first_error = line.strip()
        if cargo.returncode != 0:
            return None, (f"cargo build --release --locked failed (exit {cargo.returncode})"
                          f": {first_error or 'see its output'}")
    elif stale and exists:
        log("warning: target/release/ringway is older than the sources (--no-build)")
    if not os.path.exists(binary):
        return None, "target/release/ringway does not exist (--no-build)"
    return binary, None


def _first_line(argv):
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    out = (proc.stdout + proc.stderr).strip()
    return out.splitlines()[0] if out else "unavailable"


def versions(ringway_binary):
    found = {
        "nginx": _first_line(["nginx", "-v"]),
        "haproxy": _first_line(["haproxy", "-v"]),
        "caddy": _first_line(["caddy", "version"]),
        "wrk": _first_line(["wrk", "-v"]),
        "ab": _first_line(["ab", "-V"]),
    }
    if ringway_binary:
        found["ringway"] = _first_line([ringway_binary, "version"])
    # Keep the version number and drop the boilerplate around it.
    found["nginx"] = found["nginx"].replace("nginx version: ", "")
    found["wrk"] = re.sub(r" \[.*", "", found["wrk"])
    found["ab"] = re.sub(r"^This is ApacheBench, ", "ab ", found["ab"])
    found["haproxy"] = re.sub(r" - https?://\S+", "", found["haproxy"])
    return found


def machine():
    model = platform.machine()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": model,
            "kernel": platform.release(), "loadavg_at_start": load}


def git_commit(repo):
    def git(*args):
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " (uncommitted changes)"
    return commit
