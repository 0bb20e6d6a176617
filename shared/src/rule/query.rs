//! Query-string access as Go's `url.ParseQuery` sees it, without allocating for short values.

/// Calls `f` with each decoded value of `key` in the raw `query` until `f` returns true;
/// returns whether it did. Like Go: pairs split on `&`, key and value split on the first
/// `=`, `+` decodes to a space, and pairs holding `;` or a bad `%` escape are skipped.
pub(super) fn any_value(query: &str, key: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
    query
        .as_bytes()
        .split(|&c| c == b'&')
        .filter(|pair| !pair.is_empty() && !pair.contains(&b';'))
        .any(|pair| {
            let (k, v) = match pair.iter().position(|&c| c == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            unescape_eq(k, key.as_bytes()) == Some(true) && with_unescaped(v, f) == Some(true)
        })
}

/// Whether `raw` decodes to `want`; `None` if it is badly escaped (checked only up to the
/// first difference).
pub(super) fn unescape_eq(raw: &[u8], want: &[u8]) -> Option<bool> {
    let mut i = 0;
    let mut w = want.iter();
    while i < raw.len() {
        let (c, used) = decode_at(raw, i)?;
        if w.next() != Some(&c) {
            return Some(false);
        }
        i += used;
    }
    Some(w.next().is_none())
}

/// Calls `f` with `raw` decoded; `None` if it is badly escaped.
pub(super) fn with_unescaped(raw: &[u8], f: &mut dyn FnMut(&[u8]) -> bool) -> Option<bool> {
    if !raw.iter().any(|&c| c == b'%' || c == b'+') {
        return Some(f(raw));
    }
    let mut stack = [0u8; 256];
    if raw.len() <= stack.len() {
        let n = unescape_into(raw, &mut stack)?;
        Some(f(&stack[..n]))
    } else {
        let mut heap = vec![0u8; raw.len()];
        let n = unescape_into(raw, &mut heap)?;
        Some(f(&heap[..n]))
    }
}

/// Decodes `raw` into `out` (at least as long as `raw`); returns the decoded length.
fn unescape_into(raw: &[u8], out: &mut [u8]) -> Option<usize> {
    let (mut i, mut n) = (0, 0);
    while i < raw.len() {
        let (c, used) = decode_at(raw, i)?;
        *out.get_mut(n)? = c;
        n += 1;
        i += used;
    }
    Some(n)
}

/// The byte at `raw[i]` decoded, and how many input bytes it took.
fn decode_at(raw: &[u8], i: usize) -> Option<(u8, usize)> {
    match raw[i] {
        b'+' => Some((b' ', 1)),
        b'%' => {
            let hi = hex(*raw.get(i + 1)?)?;
            let lo = hex(*raw.get(i + 2)?)?;
            Some((hi << 4 | lo, 3))
        }
        c => Some((c, 1)),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
