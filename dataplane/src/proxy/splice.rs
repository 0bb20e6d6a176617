//! Zero-copy body relay between two plain sockets, HAProxy's way: non-blocking `splice(2)`
//! through a pooled pipe, waiting for readiness only when a side would block. (Not io_uring's
//! splice op, which the kernel runs on a worker thread per waiting transfer: slower than
//! copying.)

use super::body::PumpError;
use super::io::IdleClock;
use monoio::net::TcpStream;
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Bodies at least this long are spliced; shorter ones are cheaper to copy.
pub const SPLICE_MIN: u64 = 64 * 1024;
/// Requested pipe capacity (the kernel may grant less; `/proc/sys/fs/pipe-max-size`).
/// A 1 MiB pipe takes a whole 1 MiB response in one splice from the origin and hands it to
/// the client in as few sends: against 256 KiB, 9–10% more 1 MiB responses per second and
/// ~18% less CPU per response here (the slots cost the kernel 10 KiB per pipe; pages are
/// only referenced while bytes are in flight).
const PIPE_SIZE: usize = 1024 * 1024;
/// Idle pipes kept per worker.
const PIPES_KEPT: usize = 32;

/// A pipe used as the in-kernel buffer of a splice relay.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_SETPIPE_SZ takes an int argument; failure leaves the default size.
        let granted = unsafe {
            libc::fcntl(
                write.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                PIPE_SIZE as libc::c_int,
            )
        };
        // Refused (an unprivileged user over `pipe-user-pages-soft`): the size it has.
        let capacity = if granted > 0 {
            granted as usize
        } else {
            // SAFETY: F_GETPIPE_SZ takes no argument and returns the capacity or -1.
            match unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) } {
                n if n > 0 => n as usize,
                _ => 4096,
            }
        };
        Ok(Pipe {
            read,
            write,
            capacity,
        })
    }
}

/// Each worker's idle pipes.
#[derive(Default)]
pub struct PipePool {
    free: RefCell<Vec<Pipe>>,
}

impl PipePool {
    pub fn take(&self) -> io::Result<Pipe> {
        match self.free.borrow_mut().pop() {
            Some(p) => Ok(p),
            None => Pipe::new(),
        }
    }

    /// Returns an empty pipe. (A pipe that still holds bytes after an error is dropped.)
    pub fn give(&self, pipe: Pipe) {
        let mut free = self.free.borrow_mut();
        if free.len() < PIPES_KEPT {
            free.push(pipe);
        }
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl F_GETFL/F_SETFL on an open descriptor with integer arguments.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        if flags & libc::O_NONBLOCK == 0
            && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call; null offsets mean
    // "use the file position", as required for sockets and pipes.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Writes what is left of `parts` after its first `skip` bytes into `fd` (non-blocking).
fn write_parts(fd: RawFd, parts: [&[u8]; 2], skip: usize) -> io::Result<usize> {
    let (first, second) = match parts[0].len().checked_sub(skip) {
        Some(_) => (&parts[0][skip..], parts[1]),
        None => (&[][..], &parts[1][skip - parts[0].len()..]),
    };
    let iov = [first, second].map(|p| libc::iovec {
        iov_base: p.as_ptr() as *mut libc::c_void,
        iov_len: p.len(),
    });
    // SAFETY: `fd` is open; both iovecs point into live slices of the stated lengths, which
    // writev only reads.
    let n = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Moves `len` bytes (or, with `None`, everything until `src` closes) from `src` to `dst`,
/// after `prefix` (both parts in order: a response head and the body bytes read with it),
/// which is written into the pipe so that it leaves with the first body bytes in one send
/// instead of a send of its own. `idle` bounds each wait for readiness; bytes moved
/// count as activity on it.
pub async fn relay(
    src: &TcpStream,
    dst: &TcpStream,
    len: Option<u64>,
    prefix: [&[u8]; 2],
    pool: &PipePool,
    idle: &IdleClock,
) -> Result<(), PumpError> {
    // splice(2) blocks on a blocking socket whatever its flags say, and io_uring sockets are
    // blocking: make both non-blocking first (io_uring is indifferent to the flag).
    set_nonblocking(src.as_raw_fd()).map_err(PumpError::Read)?;
    set_nonblocking(dst.as_raw_fd()).map_err(PumpError::Write)?;
    let mut pipe = pool.take().map_err(PumpError::Read)?;
    let result = pump(src, dst, len, prefix, &mut pipe, idle).await;
    if result.is_ok() {
        pool.give(pipe);
    }
    result
}

async fn pump(
    src: &TcpStream,
    dst: &TcpStream,
    len: Option<u64>,
    prefix: [&[u8]; 2],
    pipe: &mut Pipe,
    idle: &IdleClock,
) -> Result<(), PumpError> {
    let (src_fd, dst_fd) = (src.as_raw_fd(), dst.as_raw_fd());
    let mut remaining = len;
    let mut in_pipe = 0usize;
    let mut src_done = false;
    let prefix_len = prefix[0].len() + prefix[1].len();
    let mut prefix_in = 0usize;
    loop {
        let want = remaining.map_or(usize::MAX, |r| usize::try_from(r).unwrap_or(usize::MAX));
        let mut progressed = false;
        if prefix_in < prefix_len {
            // The prefix enters the pipe whole before any byte of `src`.
            match write_parts(pipe.write.as_raw_fd(), prefix, prefix_in) {
                Ok(n) => {
                    prefix_in += n;
                    in_pipe += n;
                    progressed = n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(PumpError::Write(e)),
            }
        } else if !src_done && want > 0 && in_pipe < pipe.capacity {
            match splice(
                src_fd,
                pipe.write.as_raw_fd(),
                want.min(pipe.capacity - in_pipe),
            ) {
                Ok(0) => {
                    if remaining.is_some() {
                        return Err(PumpError::Truncated);
                    }
                    src_done = true;
                }
                Ok(n) => {
                    in_pipe += n;
                    if let Some(r) = remaining.as_mut() {
                        *r -= n as u64;
                    }
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(PumpError::Read(e)),
            }
        }
        if in_pipe > 0 {
            match splice(pipe.read.as_raw_fd(), dst_fd, in_pipe) {
                Ok(n) => {
                    in_pipe -= n;
                    progressed |= n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(PumpError::Write(e)),
            }
        }
        let finished =
            in_pipe == 0 && prefix_in == prefix_len && (src_done || remaining == Some(0));
        if finished {
            return Ok(());
        }
        if progressed {
            idle.touch();
            continue;
        }
        // Neither side could move. With bytes held, the destination is what blocks us;
        // with an empty pipe, the source.
        let ready = if in_pipe > 0 {
            idle.wait(dst.writable(false)).await
        } else {
            idle.wait(src.readable(false)).await
        };
        match ready {
            None => return Err(PumpError::ReadTimeout),
            Some(Err(e)) => return Err(PumpError::Read(e)),
            Some(Ok(())) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(fd: RawFd) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: `buf` is writable for its length; the pipe is non-blocking.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
    }

    #[test]
    fn the_prefix_written_from_any_offset_is_the_rest_of_both_parts_in_order() {
        let pipe = Pipe::new().expect("pipe");
        let parts: [&[u8]; 2] = [b"HTTP/1.1 200 OK\r\n\r\n", b"body bytes"];
        let whole = parts.concat();
        for skip in 0..=whole.len() {
            let n = write_parts(pipe.write.as_raw_fd(), parts, skip).expect("write");
            assert_eq!(n, whole.len() - skip, "skip {skip}");
            assert_eq!(
                read_all(pipe.read.as_raw_fd()),
                &whole[skip..],
                "skip {skip}"
            );
        }
        assert_eq!(
            write_parts(pipe.write.as_raw_fd(), [b"", b""], 0).expect("write"),
            0
        );
    }

    #[test]
    fn a_pipe_knows_the_capacity_it_was_granted() {
        let pipe = Pipe::new().expect("pipe");
        // SAFETY: F_GETPIPE_SZ on an open pipe.
        let size = unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        assert_eq!(pipe.capacity, size as usize);
        assert!(pipe.capacity >= 4096);
    }
}
