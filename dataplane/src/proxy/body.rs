//! Streaming message bodies between two sockets through one bounded buffer, finding their end
//! (Content-Length, chunked, or the connection's close) without buffering them.

use super::io::{read_append, with_timeout, write_from};
use crate::http::chunked::ChunkedDecoder;
use crate::http::request::Framing;
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use std::time::Duration;

/// Where a body's framing stands.
pub enum BodyState {
    Done,
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// Why a body could not be moved.
#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    #[error("timed out reading the body")]
    ReadTimeout,
    #[error("connection closed before the end of the body")]
    Truncated,
    #[error("reading the body: {0}")]
    Read(std::io::Error),
    #[error("writing the body: {0}")]
    Write(std::io::Error),
    #[error("invalid chunked framing: {0}")]
    Framing(String),
}

impl BodyState {
    pub fn new(framing: &Framing) -> BodyState {
        match framing {
            Framing::None => BodyState::Done,
            Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length(*n),
            Framing::Chunked => BodyState::Chunked(ChunkedDecoder::new()),
            Framing::UntilClose => BodyState::UntilClose,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, BodyState::Done)
    }

    /// Consumes the body bytes at the start of `data`; returns how many belong to the body.
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, PumpError> {
        match self {
            BodyState::Done => Ok(0),
            BodyState::Length(rem) => {
                let take = (*rem).min(data.len() as u64);
                *rem -= take;
                if *rem == 0 {
                    *self = BodyState::Done;
                }
                Ok(take as usize)
            }
            BodyState::Chunked(d) => {
                let p = d
                    .advance(data)
                    .map_err(|e| PumpError::Framing(e.to_string()))?;
                if p.done {
                    *self = BodyState::Done;
                }
                Ok(p.consumed)
            }
            BodyState::UntilClose => Ok(data.len()),
        }
    }
}

/// Moves the rest of a body from `src` to `dst` through `buf` (whose content is discarded).
/// On success returns the offset in `buf` where bytes past the body begin (a pipelined
/// request, or garbage from an upstream); `buf.len()` when there are none.
pub async fn pump<R: AsyncReadRent, W: AsyncWriteRent>(
    src: &mut R,
    dst: &mut W,
    state: &mut BodyState,
    mut buf: Vec<u8>,
    read_timeout: Duration,
) -> (Result<usize, PumpError>, Vec<u8>) {
    loop {
        if state.is_done() {
            let len = buf.len();
            return (Ok(len), buf);
        }
        buf.clear();
        let cap = buf.capacity().max(super::MIN_READ);
        let Some((res, b)) = with_timeout(read_timeout, read_append(src, buf, cap)).await else {
            return (Err(PumpError::ReadTimeout), Vec::new());
        };
        buf = b;
        match res {
            Ok(0) => {
                if matches!(state, BodyState::UntilClose) {
                    *state = BodyState::Done;
                    return (Ok(0), buf);
                }
                return (Err(PumpError::Truncated), buf);
            }
            Ok(_) => {}
            Err(e) => return (Err(PumpError::Read(e)), buf),
        }
        let used = match state.feed(&buf) {
            Ok(n) => n,
            Err(e) => return (Err(e), buf),
        };
        let extra_from = used;
        if used > 0 {
            let whole = used == buf.len();
            let (res, b) = if whole {
                write_from(dst, buf, 0).await
            } else {
                // Keep the bytes past the body: write only the body part.
                let tail = buf.split_off(used);
                let (res, mut b) = write_from(dst, buf, 0).await;
                b.extend_from_slice(&tail);
                (res, b)
            };
            buf = b;
            if let Err(e) = res {
                return (Err(PumpError::Write(e)), buf);
            }
        }
        if state.is_done() {
            return (Ok(extra_from), buf);
        }
    }
}
