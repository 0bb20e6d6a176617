"""results.json, results.md (markdown tables) and chart.png from one run's results."""

import json
import os

from . import provision

TARGET_ORDER = ["ringway", "nginx", "haproxy", "caddy", "origin"]
LABELS = {"ringway": "ringway", "nginx": "nginx", "haproxy": "HAProxy", "caddy": "Caddy",
          "origin": "origin (direct)"}
COLORS = {"ringway": "#e8710a", "nginx": "#34a853", "haproxy": "#4285f4",
          "caddy": "#a142f4", "origin": "#9aa0a6"}
FLAG = "⚠"
NOTES = ("One worker/thread per proxy, same nginx origin.\n\n"
         "CPU µs/request = (utime + stime of the\nproxy's processes during the run)\n"
         "÷ requests completed.\nringway: data plane only.\n\n"
         "KiB per idle connection = RSS growth\n÷ connections held.\n\n"
         "Hatched bars: the run had errors.")


def _order(rows, key="target"):
    return sorted(rows, key=lambda r: TARGET_ORDER.index(r[key])
                  if r[key] in TARGET_ORDER else len(TARGET_ORDER))


def _fmt(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _mib(kib):
    return None if kib is None else kib / 1024


def _bytes_per_s(value):
    if value is None:
        return "–"
    for unit, size in (("GiB/s", 1024 ** 3), ("MiB/s", 1024 ** 2), ("KiB/s", 1024)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} B/s"


def _errors(run):
    if run.get("error"):
        return f"{FLAG} {run['error'].splitlines()[0][:80]}"
    if not run["flagged"]:
        return "0"
    parts = [f"non-2xx {run['non2xx']}"] if run["non2xx"] else []
    parts += [f"{k} {v}" for k, v in run["socket_errors"].items() if v]
    if run.get("tool_error"):
        parts.append(run["tool_error"].splitlines()[-1][:60])
    return f"{FLAG} " + ", ".join(parts or ["no requests"])


def _ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "–"


def _header(meta):
    m, s = meta["machine"], meta["settings"]
    versions = " · ".join(f"{k}: `{v}`" for k, v in meta["versions"].items())
    idle = f"{s['idle_conns']:,} idle connections"
    if s["idle_conns"] < s["idle_conns_requested"]:
        idle += (f" (not {s['idle_conns_requested']:,}: the RLIMIT_NOFILE hard limit is "
                 f"{s['nofile']:,} and HAProxy needs two descriptors per connection)")
    only = s.get("only")
    if only is not None and not meta["scenarios"] and "idle" not in only:
        # --only without the proxy matrix: the peers were not run.
        settings = [f"- **Scenarios run:** {', '.join(only) or 'none'} (`--only`); "
                    f"all traffic on 127.0.0.1.", ""]
    else:
        settings = [
            f"- **Settings:** {s['duration_s']} s per wrk run after a {s['warmup_s']} s "
            f"warm-up; ab {s['ab_requests']:,} requests; {idle}; every proxy "
            f"with one worker/thread, keep-alive pool of {s['pool']} to one nginx origin "
            f"(1 worker); all traffic on 127.0.0.1.",
            "",
        ]
    return [
        "# ringway load test",
        "",
        f"- **Date:** {meta['date']}",
        f"- **Commit:** `{meta['commit']}`",
        f"- **Machine:** {m['nproc']} CPUs (nproc), {m['cpu']}, Linux {m['kernel']}; "
        f"load average {m['loadavg_at_start']} at start, {m.get('loadavg_at_end', '?')} "
        f"at end",
        f"- **Versions:** {versions}",
    ] + settings


def _main_table(meta, runs):
    if not meta["scenarios"]:
        return []
    lines = [
        "## Throughput and cost per request",
        "",
        "CPU µs/req is the user+system CPU time of the proxy's processes during the run "
        "divided by the requests completed (for ringway: the data plane only). "
        "RSS MiB is read as the tool exits (in brackets: of it anonymous memory, the "
        "process's own; the rest is its mapped binary and libraries), then 1 s later. "
        f"{FLAG} marks a run with errors; its numbers are not comparable.",
        "",
        "| scenario | target | req/s | transfer/s | p50 ms | p90 ms | p99 ms | CPU µs/req "
        "| RSS MiB (anon) | RSS 1 s later | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for scenario in meta["scenarios"]:
        for r in _order([r for r in runs if r["scenario"] == scenario["name"]]):
            lat = r.get("latency_ms", {})
            name = LABELS.get(r["target"], r["target"])
            if r["flagged"]:
                name = f"{FLAG} {name}"
            lines.append(
                f"| {scenario['title']} | {name} | {_fmt(r.get('rps'))} "
                f"| {_bytes_per_s(r.get('transfer_bytes_per_s'))} "
                f"| {_fmt(lat.get('p50'), 2)} | {_fmt(lat.get('p90'), 2)} "
                f"| {_fmt(lat.get('p99'), 2)} | {_fmt(r.get('cpu_us_per_req'), 1)} "
                f"| {_fmt(_mib(r.get('rss_kib')), 1)} ({_fmt(_mib(r.get('rss_anon_kib')), 1)}) "
                f"| {_fmt(_mib(r.get('rss_settled_kib')), 1)} | {_errors(r)} |")
    return lines + [""]


def _ratio_table(meta, runs):
    if not meta["scenarios"]:
        return []
    lines = [
        "## ringway relative to its peers",
        "",
        "req/s: above 1× means ringway serves more. CPU/req: below 1× means ringway "
        "spends less CPU per request.",
        "",
        "| scenario | req/s ÷ HAProxy | req/s ÷ nginx | CPU/req ÷ HAProxy | CPU/req ÷ nginx |",
        "|---|--:|--:|--:|--:|",
    ]
    for scenario in meta["scenarios"]:
        by = {r["target"]: r for r in runs
              if r["scenario"] == scenario["name"] and not r["flagged"]}
        rw = by.get("ringway", {})
        hp, ng = by.get("haproxy", {}), by.get("nginx", {})
        lines.append(
            f"| {scenario['title']} | {_ratio(rw.get('rps'), hp.get('rps'))} "
            f"| {_ratio(rw.get('rps'), ng.get('rps'))} "
            f"| {_ratio(rw.get('cpu_us_per_req'), hp.get('cpu_us_per_req'))} "
            f"| {_ratio(rw.get('cpu_us_per_req'), ng.get('cpu_us_per_req'))} |")
    return lines + [""]


def _controlplane_table(meta, runs):
    rows = [r for r in runs if r.get("controlplane")]
    if not rows:
        return []
    titles = {s["name"]: s["title"] for s in meta["scenarios"]}
    lines = ["## ringway control plane (`ringway controlplane`, not counted above)", "",
             "| scenario | CPU ms during the run | RSS MiB after |", "|---|--:|--:|"]
    for r in rows:
        cp = r["controlplane"]
        lines.append(f"| {titles.get(r['scenario'], r['scenario'])} "
                     f"| {_fmt(cp['cpu_s'] * 1e3)} | {_fmt(_mib(cp['rss_kib']), 1)} |")
    return lines + [""]


def _idle_table(meta, idle):
    if not idle:
        return []
    lines = [
        f"## Idle keep-alive connections ({meta['settings']['idle_conns']:,})",
        "",
        "Each connection made one request, read the response and stayed open. "
        "KiB/conn = (RSS after − RSS before) ÷ connections held.",
        "",
        "| proxy | held | failed | still open at the end | RSS before MiB "
        "| RSS after MiB | KiB/conn | seconds |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in _order(idle):
        name = LABELS.get(r["target"], r["target"])
        if r["flagged"]:
            name = f"{FLAG} {name}"
        note = f" ({r['error']})" if r.get("error") else ""
        lines.append(
            f"| {name} | {_fmt(r.get('opened'))} | {_fmt(r.get('failed'))}{note} "
            f"| {_fmt(r.get('still_open'))} | {_fmt(_mib(r.get('rss_before_kib')), 1)} "
            f"| {_fmt(_mib(r.get('rss_after_kib')), 1)} | {_fmt(r.get('kib_per_conn'), 1)} "
            f"| {_fmt(r.get('seconds'), 1)} |")
    return lines + [""]


def _scale_table(scale):
    if not scale:
        return []
    lines = ["## ringway workers (small, wrk pinned with `taskset -c 1`)", "",
             "| workers | req/s | CPU µs/req | p99 ms | errors |", "|--:|--:|--:|--:|---|"]
    for r in scale:
        lines.append(f"| {r['workers']} | {_fmt(r.get('rps'))} "
                     f"| {_fmt(r.get('cpu_us_per_req'), 1)} "
                     f"| {_fmt(r.get('latency_ms', {}).get('p99'), 2)} | {_errors(r)} |")
    return lines + [""]


def _ms_list(rounds):
    return " · ".join(f"{r['all_ms']:.1f}" if "all_ms" in r else FLAG for r in rounds)


def _reconfig_section(rc):
    if not rc:
        return []
    st = rc["settings"]
    lines = [
        f"## Configuration scale (ringway, {st['workers']} workers, file provider)",
        "",
        f"ringway starts from a dynamic TOML file with N routers "
        f"(``Host(`svcI.example.com`) && PathPrefix(`/api`)``, each with its own service). "
        f"Then, {st['rounds']} times, the file is replaced atomically (temp file in the same "
        f"folder, then `rename`) by a version with one more router, "
        f"``Host(`probe-K.example.com`)``. **rename → live** is the time from just before the "
        f"rename until the new router answered 200 on each of {st['conns']} keep-alive "
        f"connections (spread over the workers by SO_REUSEPORT), polled back to back for at "
        f"most {st['poll_timeout_s']:.0f} s: inotify → file provider reload → aggregation → "
        f"IPC → compile → publish → first request routed on every worker. *Slowest poll* is "
        f"the longest single request while polling, over all rounds (a worker stalled by "
        f"the reload); *stale 404s* are 404s to requests sent after another connection had "
        f"already seen 200 (a worker still on the old table; 0 expected). RSS is VmRSS once "
        f"the table is loaded and both processes are quiet; control-plane CPU is utime + "
        f"stime per reload (10 ms ticks).",
        "",
        "| routers | file KiB | start → routable ms | rename → live median ms | max ms "
        "| each round ms | slowest poll ms | stale 404s | control-plane CPU ms/reload "
        "| data-plane RSS MiB | control-plane RSS MiB "
        "| RSS MiB after the reloads (data / control) | errors |",
        "|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    rows = list(rc["sizes"])
    for mode in ("directory", "yaml"):
        if rc.get(mode):
            rows.append(rc[mode])
    for r in rows:
        name = f"{r['routers']:,}"
        if r.get("mode") == "directory":
            name += " (directory: one new file per round)"
        elif r.get("mode") == "yaml":
            name += " (YAML, rewritten whole)"
        if r.get("flagged"):
            name = f"{FLAG} {name}"
        err = f"{FLAG} {r['error'].splitlines()[0][:80]}" if r.get("error") else "0"
        slowest = [x["slowest_poll_ms"] for x in r.get("rounds", []) if "slowest_poll_ms" in x]
        stale = [x["stale_404s"] for x in r.get("rounds", []) if "stale_404s" in x]
        after = "–"
        if r.get("dataplane_rss_after_kib") is not None:
            after = (f"{_fmt(_mib(r['dataplane_rss_after_kib']), 1)} / "
                     f"{_fmt(_mib(r['controlplane_rss_after_kib']), 1)}")
        lines.append(
            f"| {name} | {_fmt(r['file_bytes'] / 1024 if 'file_bytes' in r else None)} "
            f"| {_fmt(r.get('startup_ms'))} | {_fmt(r.get('median_ms'), 1)} "
            f"| {_fmt(r.get('max_ms'), 1)} | {_ms_list(r.get('rounds', [])) or '–'} "
            f"| {_fmt(max(slowest), 1) if slowest else '–'} "
            f"| {_fmt(sum(stale)) if stale else '–'} "
            f"| {_fmt(r.get('controlplane_cpu_ms_per_reload'))} "
            f"| {_fmt(_mib(r.get('dataplane_rss_kib')), 1)} "
            f"| {_fmt(_mib(r.get('controlplane_rss_kib')), 1)} | {after} | {err} |")
    lines.append("")
    lo, hi = st["sizes"][0], st["sizes"][-1]
    if rc.get("dataplane_bytes_per_router") is not None:
        lines += [f"- **Data-plane RSS per router:** (RSS at {hi:,} − RSS at {lo:,}) ÷ "
                  f"{hi - lo:,} = **{rc['dataplane_bytes_per_router']:,} bytes** "
                  f"(control plane, the same way: "
                  f"{rc['controlplane_bytes_per_router']:,} bytes)."]
    i = rc.get("idle")
    if i:
        def ms(key):
            return "–" if i.get(key) is None else f"{i[key]:,.2f}"
        lines += [f"- **Idle with {i['routers']:,} routers** (no traffic, "
                  f"{i['seconds']:.1f} s, utime + stime): data plane "
                  f"**{ms('dataplane_cpu_ms_per_s')} CPU ms/s**, control plane "
                  f"**{ms('controlplane_cpu_ms_per_s')} CPU ms/s** (one clock tick over "
                  f"the window is {i['resolution_ms_per_s']:.2f} ms/s; per-thread schedstat, "
                  f"finer: {ms('dataplane_schedstat_ms_per_s')} and "
                  f"{ms('controlplane_schedstat_ms_per_s')} ms/s)."]
    return lines + [""]


def markdown(results):
    meta = results["meta"]
    lines = _header(meta) + _main_table(meta, results["runs"]) + \
        _ratio_table(meta, results["runs"]) + _controlplane_table(meta, results["runs"]) + \
        _idle_table(meta, results["idle"]) + _scale_table(results["scale"]) + \
        _reconfig_section(results.get("reconfig"))
    if results["skipped"]:
        lines += ["## Not measured", ""]
        lines += [f"- **{k}**: {v.splitlines()[0]}" for k, v in results["skipped"].items()]
        lines.append("")
    return "\n".join(lines)


def chart(results, path):
    """Bars of req/s (top) and CPU µs/request (bottom), one panel per scenario."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        provision.log("matplotlib missing: no chart")
        return False
    scenarios = results["meta"]["scenarios"]
    rc = [r for r in (results.get("reconfig") or {}).get("sizes", [])
          if r.get("dataplane_rss_kib") is not None]
    cols = len(scenarios) + (1 if results["idle"] else 0) + (1 if rc else 0)
    if not cols:
        provision.log("nothing to chart: no chart.png")
        if os.path.exists(path):
            os.unlink(path)  # never leave an older run's chart beside these results
        return False
    fig, axes = plt.subplots(2, cols, figsize=(max(4.2 * cols, 7), 8), squeeze=False)

    def bars(ax, rows, key, title):
        rows = [r for r in rows if r.get(key) is not None]
        names = [LABELS.get(r["target"], r["target"]) for r in rows]
        values = [r[key] for r in rows]
        drawn = ax.bar(names, values, color=[COLORS.get(r["target"], "#777") for r in rows],
                       hatch=None)
        for bar, r in zip(drawn, rows):
            if r["flagged"]:
                bar.set_hatch("//")
        ax.bar_label(drawn, labels=[f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
                                    for v in values], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.margins(y=0.15)

    for i, s in enumerate(scenarios):
        rows = _order([r for r in results["runs"] if r["scenario"] == s["name"]])
        bars(axes[0][i], rows, "rps", f"{s['title']}\nrequests/s (higher is better)")
        bars(axes[1][i], rows, "cpu_us_per_req",
             f"{s['title']}\nCPU µs/request (lower is better)")
    if results["idle"]:
        col = len(scenarios)
        bars(axes[0][col], _order(results["idle"]), "kib_per_conn",
             f"{results['meta']['settings']['idle_conns']:,} idle connections\n"
             f"KiB per connection (lower is better)")
        axes[1][col].axis("off")
        axes[1][col].text(0, 0.5, NOTES, fontsize=9, va="center", wrap=True)
    if rc:
        _reconfig_chart(axes[0][-1], axes[1][-1], rc)
    meta = results["meta"]
    fig.suptitle(f"ringway vs peers — {meta['commit']} — {meta['date']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _reconfig_chart(top, bottom, rows):
    """rename → live (median bar, max whisker) and RSS of both processes, per table size."""
    names = [f"{r['routers']:,}" for r in rows]
    median = [r.get("median_ms") or 0 for r in rows]
    upper = [max(0, (r.get("max_ms") or 0) - (r.get("median_ms") or 0)) for r in rows]
    drawn = top.bar(names, median, yerr=[[0] * len(rows), upper], capsize=4,
                    color=COLORS["ringway"])
    for bar, r in zip(drawn, rows):
        if r.get("flagged"):
            bar.set_hatch("//")
    top.bar_label(drawn, labels=[f"{v:,.1f}" for v in median], fontsize=8)
    top.set_title("ringway: file rename → live on every worker\n"
                  "ms, median (whisker: max) — lower is better", fontsize=10)
    top.set_xlabel("routers", fontsize=8)
    top.margins(y=0.15)
    x = range(len(rows))
    width = 0.4
    dp = [r["dataplane_rss_kib"] / 1024 for r in rows]
    cp = [(r.get("controlplane_rss_kib") or 0) / 1024 for r in rows]
    b1 = bottom.bar([i - width / 2 for i in x], dp, width, label="data plane",
                    color=COLORS["ringway"])
    b2 = bottom.bar([i + width / 2 for i in x], cp, width, label="control plane",
                    color="#fbbc04")
    for b in (b1, b2):
        bottom.bar_label(b, labels=[f"{v.get_height():,.1f}" for v in b], fontsize=8)
    bottom.set_xticks(list(x), names)
    bottom.set_xlabel("routers", fontsize=8)
    bottom.set_title("ringway RSS MiB by table size\n(lower is better)", fontsize=10)
    bottom.legend(fontsize=8)
    bottom.margins(y=0.15)


def write(results, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(markdown(results))
    chart(results, os.path.join(out_dir, "chart.png"))
