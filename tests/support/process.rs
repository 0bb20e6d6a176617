//! The `ringway` binary under test: start, inspect through /proc, signal, stop.

use std::cell::{Cell, RefCell};
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{wait_for, TestDir};

/// A running `ringway` (the data plane) with stdout and stderr captured to files.
///
/// It runs in its own process group; dropping it kills the group and any control plane
/// seen, and prints the captured output if the test is failing.
pub struct Ringway {
    child: RefCell<Child>,
    pid: u32,
    exited: Cell<Option<ExitStatus>>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    args: Vec<String>,
    controlplanes_seen: RefCell<Vec<u32>>,
    _logs: TestDir,
    _cwd: Option<TestDir>,
}

impl Ringway {
    /// Starts `ringway args...` with a fresh temp dir as its working directory.
    pub fn start<S: AsRef<str>>(args: &[S]) -> Ringway {
        let cwd = TestDir::new("cwd");
        let mut r = Self::spawn(cwd.path(), args);
        r._cwd = Some(cwd);
        r
    }

    /// Starts `ringway args...` in `cwd`.
    pub fn start_in<S: AsRef<str>>(cwd: &Path, args: &[S]) -> Ringway {
        Self::spawn(cwd, args)
    }

    fn spawn<S: AsRef<str>>(cwd: &Path, args: &[S]) -> Ringway {
        let logs = TestDir::new("logs");
        let stdout_path = logs.join("stdout.log");
        let stderr_path = logs.join("stderr.log");
        let stdout = File::create(&stdout_path).expect("create stdout log");
        let stderr = File::create(&stderr_path).expect("create stderr log");
        let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringway"));
        cmd.args(&args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the
        // parent; it makes the kernel kill ringway if the spawning test thread dies first.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn the ringway binary");
        Ringway {
            pid: child.id(),
            child: RefCell::new(child),
            exited: Cell::new(None),
            stdout_path,
            stderr_path,
            args,
            controlplanes_seen: RefCell::new(Vec::new()),
            _logs: logs,
            _cwd: None,
        }
    }

    /// Runs `ringway args...` to completion (e.g. `check`), with a deadline.
    pub fn run<S: AsRef<str>>(args: &[S], timeout: Duration) -> (ExitStatus, String, String) {
        let r = Ringway::start(args);
        let status = r
            .wait_exit(timeout)
            .unwrap_or_else(|| panic!("ringway {:?} did not exit within {timeout:?}", r.args));
        (status, r.stdout(), r.stderr())
    }

    /// The data plane's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The pid of the live `ringway controlplane` child, if there is one now.
    pub fn controlplane_pid(&self) -> Option<u32> {
        let found = children_of(self.pid())
            .into_iter()
            .find(|&c| is_alive(c) && cmdline(c).is_some_and(|c| c.contains("controlplane")));
        if let Some(pid) = found {
            let mut seen = self.controlplanes_seen.borrow_mut();
            if !seen.contains(&pid) {
                seen.push(pid);
            }
        }
        found
    }

    /// Waits for a control-plane child other than `not` to appear.
    pub fn wait_controlplane(&self, timeout: Duration, not: Option<u32>) -> u32 {
        wait_for(timeout, || {
            self.controlplane_pid().filter(|&p| Some(p) != not)
        })
        .unwrap_or_else(|| {
            panic!(
                "no control plane process (other than {not:?}) under ringway pid {} within \
                 {timeout:?}\n{}",
                self.pid(),
                self.logs()
            )
        })
    }

    /// Sends `sig` to the data plane only.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
    }

    /// Waits up to `timeout` for the data plane to exit.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_exit() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the data plane is still running (reaps it if it has exited).
    pub fn is_running(&self) -> bool {
        self.try_exit().is_none()
    }

    /// The exit status if the data plane has exited (reaping it).
    pub fn try_exit(&self) -> Option<ExitStatus> {
        if self.exited.get().is_none() {
            let status = self
                .child
                .borrow_mut()
                .try_wait()
                .expect("try_wait on ringway");
            self.exited.set(status);
        }
        self.exited.get()
    }

    /// Resident set size of the data plane in KiB (VmRSS).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The command line and the tail of both outputs, for assertion messages.
    pub fn logs(&self) -> String {
        format!(
            "--- ringway {}\n--- stdout (tail):\n{}\n--- stderr (tail):\n{}",
            self.args.join(" "),
            tail(&self.stdout(), 60),
            tail(&self.stderr(), 60)
        )
    }
}

impl Drop for Ringway {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            // Remember the current control plane before the data plane goes.
            let _ = self.controlplane_pid();
            let pid = self.pid() as libc::pid_t;
            // SAFETY: kill(2) on the process group we created (pgid = our unreaped child's
            // pid) and on the child itself.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
            let _ = self.child.borrow_mut().wait();
        }
        for &cp in self.controlplanes_seen.borrow().iter() {
            if is_alive(cp) && cmdline(cp).is_some_and(|c| c.contains("controlplane")) {
                // SAFETY: kill(2) on a control plane our ringway spawned, checked alive and
                // still running `ringway controlplane` just above.
                unsafe {
                    libc::kill(cp as libc::pid_t, libc::SIGKILL);
                }
            }
        }
        if thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

/// Children of `pid`, from /proc/<pid>/task/*/children, or by scanning /proc when the
/// kernel does not provide that file.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut have_children_file = false;
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(s) = fs::read_to_string(task.path().join("children")) {
                have_children_file = true;
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    if !have_children_file {
        if let Ok(procs) = fs::read_dir("/proc") {
            for p in procs.flatten() {
                let Some(child) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                if stat_field(child).is_some_and(|(_, ppid)| ppid == pid) {
                    out.push(child);
                }
            }
        }
    }
    out
}

/// State letter and parent pid from /proc/<pid>/stat.
fn stat_field(pid: u32) -> Option<(char, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Resident set size of `pid` in KiB (VmRSS from /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The command line of `pid` with NULs turned into spaces (empty for zombies).
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Whether `pid` exists and is neither a zombie nor dead.
pub fn is_alive(pid: u32) -> bool {
    matches!(stat_field(pid), Some((state, _)) if state != 'Z' && state != 'X')
}
