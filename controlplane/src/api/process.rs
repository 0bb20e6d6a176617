//! Prometheus' standard process metrics (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, …) for ringway as a whole: the data plane and the control
//! plane summed, read from `/proc`, as Traefik's Go client reports them for its one process.

use std::fmt::Write as _;

struct Sample {
    cpu_ticks: u64,
    start_ticks: u64,
    virtual_bytes: u64,
    resident_pages: u64,
    open_fds: u64,
}

/// `/proc/<pid>/stat` and `/proc/<pid>/fd`; `None` if the process is gone.
fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let field = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
    Some(Sample {
        cpu_ticks: field(14)? + field(15)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        resident_pages: field(24)?,
        open_fds,
    })
}

/// Boot time, in Unix seconds.
fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

pub fn render(out: &mut String) {
    // SAFETY: sysconf, getpid and getppid take no pointers.
    let (ticks, page, me, parent) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK).max(1) as f64,
            libc::sysconf(libc::_SC_PAGESIZE).max(1) as u64,
            libc::getpid() as u32,
            libc::getppid() as u32,
        )
    };
    let (Some(dp), Some(cp)) = (sample(parent), sample(me)) else {
        return;
    };
    let metrics: [(&str, &str, &str, f64); 5] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            (dp.cpu_ticks + cp.cpu_ticks) as f64 / ticks,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            ((dp.resident_pages + cp.resident_pages) * page) as f64,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            (dp.virtual_bytes + cp.virtual_bytes) as f64,
        ),
        (
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            (dp.open_fds + cp.open_fds) as f64,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            boot_time().unwrap_or(0) as f64 + dp.start_ticks as f64 / ticks,
        ),
    ];
    for (name, kind, help, value) in metrics {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}
