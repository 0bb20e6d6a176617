//! Small owned-buffer I/O helpers over monoio's rent-style traits.

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use std::cell::Cell;
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

/// Reads into the spare capacity of `buf` (appending), growing it by at least `min_spare`
/// bytes of room first. Returns the number of bytes read (0 = EOF).
pub async fn read_append<S: AsyncReadRent>(
    s: &mut S,
    buf: Vec<u8>,
    min_spare: usize,
) -> (io::Result<usize>, Vec<u8>) {
    read_append_at_most(s, buf, min_spare, usize::MAX).await
}

/// `read_append` that reads at most `max` bytes (at least one), whatever room `buf` has.
pub async fn read_append_at_most<S: AsyncReadRent>(
    s: &mut S,
    mut buf: Vec<u8>,
    min_spare: usize,
    max: usize,
) -> (io::Result<usize>, Vec<u8>) {
    if buf.capacity() - buf.len() < min_spare.max(1) {
        buf.reserve(min_spare.max(1));
    }
    let len = buf.len();
    let end = buf.capacity().min(len.saturating_add(max.max(1)));
    let (res, slice) = s.read(buf.slice_mut(len..end)).await;
    (res, slice.into_inner())
}

/// Writes `buf[from..]` completely.
pub async fn write_from<S: AsyncWriteRent>(
    s: &mut S,
    buf: Vec<u8>,
    from: usize,
) -> (io::Result<()>, Vec<u8>) {
    let end = buf.len();
    write_range(s, buf, from, end).await
}

/// Writes `buf[from..to]` completely.
pub async fn write_range<S: AsyncWriteRent>(
    s: &mut S,
    buf: Vec<u8>,
    from: usize,
    to: usize,
) -> (io::Result<()>, Vec<u8>) {
    let to = to.min(buf.len());
    if from >= to {
        return (Ok(()), buf);
    }
    let (res, slice) = s.write_all(buf.slice(from..to)).await;
    (res.map(|_| ()), slice.into_inner())
}

/// Awaits `fut` for at most `limit`; a zero limit means no limit (Traefik's convention).
pub async fn with_timeout<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    if limit.is_zero() {
        Some(fut.await)
    } else {
        monoio::time::timeout(limit, fut).await.ok()
    }
}

/// The inactivity bound of a relay: every wait on it ends `limit` after the last byte moved in
/// any direction (so a quiet direction of a busy connection never times out). A zero limit
/// means no limit.
pub struct IdleClock {
    limit: Duration,
    last: Cell<Instant>,
}

impl IdleClock {
    pub fn new(limit: Duration) -> Self {
        IdleClock {
            limit,
            last: Cell::new(Instant::now()),
        }
    }

    /// Records that bytes moved.
    pub fn touch(&self) {
        if !self.limit.is_zero() {
            self.last.set(Instant::now());
        }
    }

    /// Awaits `fut` until it completes (which counts as activity) or nothing has moved for
    /// the limit; `None` then.
    pub async fn wait<F: Future>(&self, fut: F) -> Option<F::Output> {
        if self.limit.is_zero() {
            return Some(fut.await);
        }
        let mut fut = std::pin::pin!(fut);
        loop {
            let left = (self.last.get() + self.limit).saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            if let Ok(out) = monoio::time::timeout(left, &mut fut).await {
                self.touch();
                return Some(out);
            }
        }
    }
}
