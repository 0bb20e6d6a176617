//! A TCP stream with bytes already read in front of it: the connection's first bytes, read to
//! tell TLS from plain HTTP, are given back to the TLS handshake.

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, Split};
use monoio::net::TcpStream;
use monoio::BufResult;

pub struct Prefixed {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

impl Prefixed {
    pub fn new(prefix: Vec<u8>, inner: TcpStream) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }

    /// Copies buffered bytes to `dst` (at most `cap`); returns how many.
    fn take_prefix(&mut self, dst: *mut u8, cap: usize) -> usize {
        let rest = &self.prefix[self.pos..];
        let n = rest.len().min(cap);
        // SAFETY: `dst` points to at least `cap` writable bytes (the caller's buffer capacity)
        // and cannot overlap `self.prefix`, which this struct owns.
        unsafe { std::ptr::copy_nonoverlapping(rest.as_ptr(), dst, n) };
        self.pos += n;
        if self.pos == self.prefix.len() {
            self.prefix = Vec::new();
            self.pos = 0;
        }
        n
    }
}

// SAFETY: reads only touch the prefix and the socket's read side, writes only the socket's
// write side; the socket itself is `Split`.
unsafe impl Split for Prefixed {}

impl AsyncReadRent for Prefixed {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        if self.pos < self.prefix.len() && buf.bytes_total() > 0 {
            let n = self.take_prefix(buf.write_ptr(), buf.bytes_total());
            // SAFETY: `take_prefix` initialized the first `n` bytes.
            unsafe { buf.set_init(n) };
            return (Ok(n), buf);
        }
        self.inner.read(buf).await
    }

    async fn readv<T: IoVecBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        if self.pos < self.prefix.len() {
            // Fill the first non-empty iovec only: a short read is always allowed.
            let iovs = buf.write_iovec_ptr();
            let len = buf.write_iovec_len();
            for i in 0..len {
                // SAFETY: `iovs` points to `len` iovecs describing writable memory.
                let iov = unsafe { *iovs.add(i) };
                if iov.iov_len > 0 {
                    let n = self.take_prefix(iov.iov_base.cast(), iov.iov_len);
                    // SAFETY: `n` bytes of the vector were written.
                    unsafe { buf.set_init(n) };
                    return (Ok(n), buf);
                }
            }
            return (Ok(0), buf);
        }
        self.inner.readv(buf).await
    }
}

impl AsyncWriteRent for Prefixed {
    fn write<T: IoBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.inner.write(buf)
    }

    fn writev<T: IoVecBuf>(
        &mut self,
        buf_vec: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.inner.writev(buf_vec)
    }

    fn flush(&mut self) -> impl std::future::Future<Output = std::io::Result<()>> {
        self.inner.flush()
    }

    fn shutdown(&mut self) -> impl std::future::Future<Output = std::io::Result<()>> {
        self.inner.shutdown()
    }
}
