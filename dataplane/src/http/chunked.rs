//! Finds the end of a chunked body (RFC 9112 §7.1) that is forwarded verbatim.

/// Default bound on one chunk line's extensions (from the first `;` to its CR).
pub const DEFAULT_MAX_EXTENSION: usize = 4 * 1024;
/// Default bound on the trailer section (all trailer field lines, without the final CRLF).
pub const DEFAULT_MAX_TRAILER: usize = 16 * 1024;
/// Hex digits a chunk size may have: 16 fill a `u64`.
pub const MAX_SIZE_DIGITS: u8 = 16;

/// A sans-io chunked-body scanner. Feed it the bytes that follow the head; it says how many of
/// them belong to the body. The caller forwards `input[..consumed]` unchanged and calls again
/// with the next bytes (any split works, down to single bytes) until `done`. Bytes after the
/// end are never consumed: they are the next pipelined message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
    /// Size being read, then data bytes left in the current chunk.
    remaining: u64,
    digits: u8,
    extension_len: usize,
    trailer_len: usize,
    max_extension: usize,
    max_trailer: usize,
}

/// What one [`ChunkedDecoder::advance`] call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Leading bytes of the input that belong to the body.
    pub consumed: usize,
    /// The body ended within those bytes (at `consumed`).
    pub done: bool,
}

/// A framing fault in a chunked body: the message cannot be delimited, so the connection must
/// be closed (400 for a request body not yet answered, 502 for a response not yet started).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("invalid byte {byte:#04x} in chunk size")]
    InvalidSize { byte: u8 },
    #[error("chunk size longer than {max_digits} hex digits")]
    SizeTooLong { max_digits: u8 },
    #[error("invalid byte {byte:#04x} in chunk extension")]
    InvalidExtension { byte: u8 },
    #[error("chunk extensions longer than {max} bytes")]
    ExtensionTooLong { max: usize },
    #[error("expected CRLF, found {byte:#04x}")]
    BadLineEnding { byte: u8 },
    #[error("invalid byte {byte:#04x} in trailer section")]
    InvalidTrailer { byte: u8 },
    #[error("trailer section longer than {max} bytes")]
    TrailerTooLarge { max: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Chunk size digits (none read yet when `digits == 0`).
    Size,
    /// Whitespace after the size: only more whitespace or `;` may follow (BWS).
    SizeSpace,
    /// Chunk extensions, up to CR.
    Extension,
    /// CR of the chunk line seen.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// Start of a trailer field line, or the CR of the final CRLF.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a body, with the default bounds.
    pub const fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_EXTENSION, DEFAULT_MAX_TRAILER)
    }

    /// A decoder with custom bounds on extension and trailer bytes.
    pub const fn with_limits(max_extension: usize, max_trailer: usize) -> Self {
        ChunkedDecoder {
            state: State::Size,
            remaining: 0,
            digits: 0,
            extension_len: 0,
            trailer_len: 0,
            max_extension,
            max_trailer,
        }
    }

    /// Back to the start of a body, keeping the bounds.
    pub fn reset(&mut self) {
        *self = Self::with_limits(self.max_extension, self.max_trailer);
    }

    /// The body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Data bytes left in the current chunk (0 outside chunk data): that many bytes can be
    /// forwarded, or spliced, without looking at them.
    pub fn data_remaining(&self) -> u64 {
        if self.state == State::Data {
            self.remaining
        } else {
            0
        }
    }

    /// Scans `input`, the next bytes of the body.
    pub fn advance(&mut self, input: &[u8]) -> Result<Progress, ChunkError> {
        let mut pos = 0;
        while pos < input.len() {
            if self.state == State::Done {
                break;
            }
            if self.state == State::Data {
                let left = (input.len() - pos) as u64;
                let take = self.remaining.min(left);
                self.remaining -= take;
                // `take <= left`, which came from a usize.
                pos += take as usize;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let Some(&byte) = input.get(pos) else { break };
            pos += 1;
            self.step(byte)?;
        }
        Ok(Progress {
            consumed: pos,
            done: self.state == State::Done,
        })
    }

    /// One byte outside chunk data.
    fn step(&mut self, byte: u8) -> Result<(), ChunkError> {
        match self.state {
            State::Size => match byte {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if self.digits == MAX_SIZE_DIGITS {
                        return Err(ChunkError::SizeTooLong {
                            max_digits: MAX_SIZE_DIGITS,
                        });
                    }
                    self.digits += 1;
                    self.remaining = (self.remaining << 4) | u64::from(hex_value(byte));
                }
                _ if self.digits == 0 => return Err(ChunkError::InvalidSize { byte }),
                b';' => self.state = State::Extension,
                b' ' | b'\t' => self.state = State::SizeSpace,
                b'\r' => self.state = State::SizeLf,
                _ => return Err(ChunkError::InvalidSize { byte }),
            },
            State::SizeSpace => match byte {
                b' ' | b'\t' => {}
                b';' => self.state = State::Extension,
                _ => return Err(ChunkError::InvalidSize { byte }),
            },
            State::Extension => match byte {
                b'\r' => self.state = State::SizeLf,
                b'\t' | 0x20..=0x7e | 0x80..=0xff => {
                    self.extension_len += 1;
                    if self.extension_len > self.max_extension {
                        return Err(ChunkError::ExtensionTooLong {
                            max: self.max_extension,
                        });
                    }
                }
                _ => return Err(ChunkError::InvalidExtension { byte }),
            },
            State::SizeLf => {
                expect_lf(byte)?;
                self.state = if self.remaining == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                };
            }
            State::DataCr => {
                if byte != b'\r' {
                    return Err(ChunkError::BadLineEnding { byte });
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                expect_lf(byte)?;
                self.state = State::Size;
                self.digits = 0;
                self.remaining = 0;
                self.extension_len = 0;
            }
            State::TrailerStart => {
                if byte == b'\r' {
                    self.state = State::EndLf;
                } else if is_tchar(byte) {
                    self.count_trailer()?;
                    self.state = State::TrailerName;
                } else {
                    return Err(ChunkError::InvalidTrailer { byte });
                }
            }
            State::TrailerName => {
                self.count_trailer()?;
                if byte == b':' {
                    self.state = State::TrailerValue;
                } else if !is_tchar(byte) {
                    return Err(ChunkError::InvalidTrailer { byte });
                }
            }
            State::TrailerValue => match byte {
                b'\r' => {
                    self.count_trailer()?;
                    self.state = State::TrailerLf;
                }
                b'\t' | 0x20..=0x7e | 0x80..=0xff => self.count_trailer()?,
                _ => return Err(ChunkError::InvalidTrailer { byte }),
            },
            State::TrailerLf => {
                expect_lf(byte)?;
                self.count_trailer()?;
                self.state = State::TrailerStart;
            }
            State::EndLf => {
                expect_lf(byte)?;
                self.state = State::Done;
            }
            // `advance` handles these without calling `step`.
            State::Data | State::Done => {}
        }
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailer_len += 1;
        if self.trailer_len > self.max_trailer {
            return Err(ChunkError::TrailerTooLarge {
                max: self.max_trailer,
            });
        }
        Ok(())
    }
}

fn expect_lf(byte: u8) -> Result<(), ChunkError> {
    if byte == b'\n' {
        Ok(())
    } else {
        Err(ChunkError::BadLineEnding { byte })
    }
}

fn hex_value(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        b'A'..=b'F' => byte - b'A' + 10,
        _ => 0,
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests;
