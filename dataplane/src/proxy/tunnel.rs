//! The byte relay of TCP routers and of upgraded HTTP connections (`101 Switching
//! Protocols`: WebSocket and others).

use super::io::{read_append, write_from, IdleClock};
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, Split, Splitable};
use monoio::net::TcpStream;
use monoio::BufResult;
use std::future::Future;
use std::time::Duration;

const TUNNEL_BUF: usize = 16 * 1024;

/// Relays bytes both ways through reused userspace buffers until both directions are closed,
/// either side fails, or nothing moved either way for `idle` (zero: no limit). `pending`
/// holds client bytes read already (sent first). Each direction's EOF is forwarded as a
/// half-close (shutdown of the write side) and the other direction goes on; an error or the
/// idle limit closes both.
pub async fn relay<C: AsyncReadRent + AsyncWriteRent + Split>(
    client: &mut C,
    upstream: TcpStream,
    pending: Vec<u8>,
    idle: Duration,
) {
    let clock = IdleClock::new(idle);
    let clock = &clock;
    let (mut cr, mut cw) = Borrowed(client).into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let up = async {
        if !pending.is_empty() {
            let (r, _) = write_from(&mut uw, pending, 0).await;
            if r.is_err() {
                return false;
            }
        }
        let clean = copy(&mut cr, &mut uw, clock).await;
        if clean {
            let _ = uw.shutdown().await;
        }
        clean
    };
    let down = async {
        let clean = copy(&mut ur, &mut cw, clock).await;
        if clean {
            let _ = cw.shutdown().await;
        }
        clean
    };
    let mut up = std::pin::pin!(up);
    let mut down = std::pin::pin!(down);
    monoio::select! {
        clean = &mut up => if clean { down.await; },
        clean = &mut down => if clean { up.await; },
    }
}

/// Copies until EOF (true) or an error or the idle limit (false).
async fn copy<R: AsyncReadRent, W: AsyncWriteRent>(
    r: &mut R,
    w: &mut W,
    clock: &IdleClock,
) -> bool {
    let mut buf = Vec::with_capacity(TUNNEL_BUF);
    loop {
        buf.clear();
        let Some((res, b)) = clock.wait(read_append(r, buf, TUNNEL_BUF)).await else {
            return false;
        };
        buf = b;
        match res {
            Ok(0) => return true,
            Err(_) => return false,
            Ok(_) => {}
        }
        let Some((res, b)) = clock.wait(write_from(w, buf, 0)).await else {
            return false;
        };
        buf = b;
        if res.is_err() {
            return false;
        }
    }
}

/// A borrowed stream that can be split in two halves for the duration of the relay.
struct Borrowed<'a, C>(&'a mut C);

// SAFETY: `C` is `Split` (its reads and writes are independent, as for monoio's own
// `TcpStream` and monoio-rustls' streams over one), and this only borrows it.
unsafe impl<C: Split> Split for Borrowed<'_, C> {}

impl<C: AsyncReadRent> AsyncReadRent for Borrowed<'_, C> {
    fn read<T: IoBufMut>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        self.0.read(buf)
    }

    fn readv<T: IoVecBufMut>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        self.0.readv(buf)
    }
}

impl<C: AsyncWriteRent> AsyncWriteRent for Borrowed<'_, C> {
    fn write<T: IoBuf>(&mut self, buf: T) -> impl Future<Output = BufResult<usize, T>> {
        self.0.write(buf)
    }

    fn writev<T: IoVecBuf>(&mut self, buf_vec: T) -> impl Future<Output = BufResult<usize, T>> {
        self.0.writev(buf_vec)
    }

    fn flush(&mut self) -> impl Future<Output = std::io::Result<()>> {
        self.0.flush()
    }

    fn shutdown(&mut self) -> impl Future<Output = std::io::Result<()>> {
        self.0.shutdown()
    }
}
