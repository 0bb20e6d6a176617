//! Chunked body scanner tests: accepted forms, rejections, every split point.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use proptest::prelude::*;

use super::*;

/// Feeds `input` in pieces cut at `cuts` and returns the body length found.
fn end_with_cuts(input: &[u8], cuts: &[usize]) -> Result<Option<usize>, ChunkError> {
    let mut dec = ChunkedDecoder::new();
    let mut at = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    bounds.push(input.len());
    bounds.sort_unstable();
    for end in bounds {
        if end < at {
            continue;
        }
        let p = dec.advance(&input[at..end])?;
        at += p.consumed;
        if p.done {
            return Ok(Some(at));
        }
        assert_eq!(at, end, "everything is consumed until the end");
    }
    Ok(None)
}

fn end(input: &[u8]) -> Result<Option<usize>, ChunkError> {
    end_with_cuts(input, &[])
}

fn byte_by_byte(input: &[u8]) -> Result<Option<usize>, ChunkError> {
    let cuts: Vec<usize> = (0..input.len()).collect();
    end_with_cuts(input, &cuts)
}

#[test]
fn finds_the_end_and_leaves_the_rest() {
    let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let mut input = body.to_vec();
    input.extend_from_slice(b"GET /next HTTP/1.1\r\n");
    assert_eq!(end(&input), Ok(Some(body.len())));
    assert_eq!(byte_by_byte(&input), Ok(Some(body.len())));
    let mut dec = ChunkedDecoder::new();
    let p = dec.advance(&input).unwrap();
    assert!(p.done && dec.is_done());
    assert_eq!(
        dec.advance(b"more").unwrap(),
        Progress {
            consumed: 0,
            done: true
        }
    );
    dec.reset();
    assert!(!dec.is_done());
    assert_eq!(dec.advance(b"0\r\n\r\n").unwrap().consumed, 5);
}

#[test]
fn accepted_forms() {
    for ok in [
        &b"0\r\n\r\n"[..],
        b"000\r\n\r\n",
        b"A\r\n0123456789\r\n0\r\n\r\n",
        b"a\r\n0123456789\r\n0\r\n\r\n",
        b"00000001\r\nx\r\n0\r\n\r\n",
        b"5;name=value\r\nhello\r\n0\r\n\r\n",
        b"5;a;b=\"q;\\\"x\"\r\nhello\r\n0;last\r\n\r\n",
        b"5 ;ext\r\nhello\r\n0\t;ext\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other:\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX-Sum: a\tb \xff\r\n\r\n",
    ] {
        assert_eq!(
            end(ok),
            Ok(Some(ok.len())),
            "{:?}",
            String::from_utf8_lossy(ok)
        );
        assert_eq!(byte_by_byte(ok), Ok(Some(ok.len())));
    }
}

#[test]
fn every_split_point() {
    let body = b"1a;x=y\r\nabcdefghijklmnopqrstuvwxyz\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n";
    for cut in 0..=body.len() {
        assert_eq!(
            end_with_cuts(body, &[cut]),
            Ok(Some(body.len())),
            "cut {cut}"
        );
        for cut2 in cut..=body.len() {
            assert_eq!(end_with_cuts(body, &[cut, cut2]), Ok(Some(body.len())));
        }
    }
}

#[test]
fn partial_input_is_consumed_entirely() {
    let mut dec = ChunkedDecoder::new();
    assert_eq!(
        dec.advance(b"10\r\nabc").unwrap(),
        Progress {
            consumed: 7,
            done: false
        }
    );
    assert_eq!(dec.data_remaining(), 13);
    assert_eq!(dec.advance(&[b'x'; 13]).unwrap().consumed, 13);
    assert_eq!(dec.data_remaining(), 0);
    assert_eq!(dec.advance(b"").unwrap().consumed, 0);
    assert!(dec.advance(b"\r\n0\r\n\r\n").unwrap().done);
}

#[test]
fn sixteen_hex_digits_fit() {
    let mut dec = ChunkedDecoder::new();
    assert_eq!(dec.advance(b"ffffffffffffffff\r\n").unwrap().consumed, 18);
    assert_eq!(dec.data_remaining(), u64::MAX);
    let mut dec = ChunkedDecoder::new();
    assert_eq!(
        dec.advance(b"10000000000000000\r\n"),
        Err(ChunkError::SizeTooLong { max_digits: 16 })
    );
    let mut dec = ChunkedDecoder::new();
    assert_eq!(
        dec.advance(b"00000000000000001\r\n"),
        Err(ChunkError::SizeTooLong { max_digits: 16 })
    );
}

#[test]
fn rejections() {
    for (bad, want) in [
        (&b"\r\n"[..], ChunkError::InvalidSize { byte: b'\r' }),
        (b"x\r\n", ChunkError::InvalidSize { byte: b'x' }),
        (b" 5\r\n", ChunkError::InvalidSize { byte: b' ' }),
        (b"-5\r\n", ChunkError::InvalidSize { byte: b'-' }),
        (b"0x5\r\n", ChunkError::InvalidSize { byte: b'x' }),
        (b";ext\r\n", ChunkError::InvalidSize { byte: b';' }),
        (b"5 \r\n", ChunkError::InvalidSize { byte: b'\r' }),
        (b"5 5\r\n", ChunkError::InvalidSize { byte: b'5' }),
        (b"5\n", ChunkError::InvalidSize { byte: b'\n' }),
        (b"5\r\r\n", ChunkError::BadLineEnding { byte: b'\r' }),
        (b"5\rx", ChunkError::BadLineEnding { byte: b'x' }),
        (b"5;a\nb\r\n", ChunkError::InvalidExtension { byte: b'\n' }),
        (b"5;a\0\r\n", ChunkError::InvalidExtension { byte: 0 }),
        (b"5\r\nhelloX\r\n", ChunkError::BadLineEnding { byte: b'X' }),
        (
            b"5\r\nhello\n0\r\n\r\n",
            ChunkError::BadLineEnding { byte: b'\n' },
        ),
        (
            b"5\r\nhello\r0\r\n\r\n",
            ChunkError::BadLineEnding { byte: b'0' },
        ),
        (
            b"5\r\nhello\r\n0\r\n\n",
            ChunkError::InvalidTrailer { byte: b'\n' },
        ),
        (b"0\r\n\rx", ChunkError::BadLineEnding { byte: b'x' }),
        (b"0\r\n \r\n", ChunkError::InvalidTrailer { byte: b' ' }),
        (
            b"0\r\nX: a\r\n b\r\n\r\n",
            ChunkError::InvalidTrailer { byte: b' ' },
        ),
        (
            b"0\r\nX : a\r\n\r\n",
            ChunkError::InvalidTrailer { byte: b' ' },
        ),
        (
            b"0\r\nX: a\nY: b\r\n\r\n",
            ChunkError::InvalidTrailer { byte: b'\n' },
        ),
        (
            b"0\r\nX: a\rY\r\n\r\n",
            ChunkError::BadLineEnding { byte: b'Y' },
        ),
        (
            b"0\r\nX: a\0\r\n\r\n",
            ChunkError::InvalidTrailer { byte: 0 },
        ),
        (
            b"0\r\n:a\r\n\r\n",
            ChunkError::InvalidTrailer { byte: b':' },
        ),
    ] {
        assert_eq!(end(bad), Err(want), "{:?}", String::from_utf8_lossy(bad));
        assert_eq!(byte_by_byte(bad), Err(want));
    }
}

#[test]
fn extension_and_trailer_bounds() {
    let mut dec = ChunkedDecoder::with_limits(8, 16);
    assert!(dec.advance(b"1;12345678\r\nx\r\n").is_ok());
    assert_eq!(
        dec.advance(b"1;123456789\r\n"),
        Err(ChunkError::ExtensionTooLong { max: 8 })
    );
    let mut dec = ChunkedDecoder::with_limits(8, 16);
    // 16 bytes of trailer lines ("X: 123456789012\r\n" is 17) are refused.
    assert_eq!(
        dec.advance(b"0\r\nX: 12345678901\r\n\r\n").map(|p| p.done),
        Ok(true)
    );
    let mut dec = ChunkedDecoder::with_limits(8, 16);
    assert_eq!(
        dec.advance(b"0\r\nX: 123456789012\r\n\r\n"),
        Err(ChunkError::TrailerTooLarge { max: 16 })
    );
    // The default bounds.
    let mut dec = ChunkedDecoder::new();
    let long_ext = format!("1;{}\r\n", "e".repeat(DEFAULT_MAX_EXTENSION + 1));
    assert_eq!(
        dec.advance(long_ext.as_bytes()),
        Err(ChunkError::ExtensionTooLong {
            max: DEFAULT_MAX_EXTENSION
        })
    );
    let mut dec = ChunkedDecoder::new();
    let trailers: String = (0..2000).map(|i| format!("T{i}: v\r\n")).collect();
    let body = format!("0\r\n{trailers}\r\n");
    assert_eq!(
        dec.advance(body.as_bytes()),
        Err(ChunkError::TrailerTooLarge {
            max: DEFAULT_MAX_TRAILER
        })
    );
}

fn encode(chunks: &[(Vec<u8>, String)], trailers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (data, ext) in chunks {
        out.extend_from_slice(format!("{:x}{ext}\r\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    for (n, v) in trailers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        cut in 0usize..400,
    ) {
        let _ = end_with_cuts(&bytes, &[cut]);
        let mut prefixed = b"5\r\n".to_vec();
        prefixed.extend_from_slice(&bytes);
        let _ = end(&prefixed);
        let mut trailer = b"0\r\n".to_vec();
        trailer.extend_from_slice(&bytes);
        let _ = end(&trailer);
    }

    #[test]
    fn encoded_bodies_end_exactly(
        chunks in proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 1..300),
                proptest::option::of("[a-z]{1,8}(=[a-z0-9]{1,8})?"),
            ),
            0..8,
        ),
        trailers in proptest::collection::vec(("[A-Za-z-]{1,10}", "[ -~]{0,20}"), 0..3),
        junk in proptest::collection::vec(any::<u8>(), 0..50),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let chunks: Vec<(Vec<u8>, String)> = chunks
            .into_iter()
            .map(|(d, e)| (d, e.map(|e| format!(";{e}")).unwrap_or_default()))
            .collect();
        let trailers: Vec<(String, String)> =
            trailers.into_iter().map(|(n, v)| (n, v.trim().to_string())).collect();
        let body = encode(&chunks, &trailers);
        let mut input = body.clone();
        input.extend_from_slice(&junk);
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        prop_assert_eq!(end_with_cuts(&input, &cuts), Ok(Some(body.len())));
    }
}
