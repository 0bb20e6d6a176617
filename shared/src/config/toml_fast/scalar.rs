//! The leaves of a TOML document: booleans, integers and floats, printed as `Node::from_toml`
//! prints them.

/// The text of a boolean, integer or float as `Node::from_toml` prints the `toml::Value`;
/// `None` for datetimes, numbers out of range and anything invalid.
pub(super) fn scalar(atom: &str) -> Option<String> {
    match atom {
        "true" | "false" => return Some(atom.to_string()),
        "inf" | "+inf" => return Some("inf".to_string()),
        "-inf" => return Some("-inf".to_string()),
        // `f64`'s `Display` prints every NaN so, whatever its sign.
        "nan" | "+nan" | "-nan" => return Some("NaN".to_string()),
        _ => {}
    }
    let b = atom.as_bytes();
    let radix = match b {
        [b'0', b'x', ..] => 16,
        [b'0', b'o', ..] => 8,
        [b'0', b'b', ..] => 2,
        _ => return decimal(b, atom),
    };
    // `toml` hands integers beyond `i64` (even ones fitting `u64`) to serde, and
    // `toml::Value` refuses them.
    let mut value: i64 = 0;
    let mut after_digit = false;
    for &c in &b[2..] {
        if c == b'_' && after_digit {
            after_digit = false;
            continue;
        }
        let digit = char::from(c).to_digit(radix)?;
        value = value
            .checked_mul(i64::from(radix))?
            .checked_add(i64::from(digit))?;
        after_digit = true;
    }
    after_digit.then(|| value.to_string())
}

/// ```abnf
/// dec-int = [ minus / plus ] unsigned-dec-int
/// float = float-int-part ( exp / frac [ exp ] )
/// frac = decimal-point zero-prefixable-int
/// exp = "e" [ minus / plus ] zero-prefixable-int
/// ```
fn decimal(b: &[u8], atom: &str) -> Option<String> {
    let (negative, unsigned) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let int_len = digits(unsigned)?;
    if unsigned[0] == b'0' && int_len > 1 {
        return None;
    }
    let mut i = int_len;
    let mut float = false;
    if unsigned.get(i) == Some(&b'.') {
        i += 1 + digits(&unsigned[i + 1..])?;
        float = true;
    }
    if matches!(unsigned.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(unsigned.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i += digits(&unsigned[i..])?;
        float = true;
    }
    if i != unsigned.len() {
        return None;
    }
    if float {
        // The same text `toml` hands to `f64::from_str`, so the same value; it refuses what
        // overflows to infinity.
        let value: f64 = if atom.contains('_') {
            atom.replace('_', "").parse().ok()?
        } else {
            atom.parse().ok()?
        };
        return value.is_finite().then(|| value.to_string());
    }
    // Accumulated negative so that `i64::MIN` fits.
    let mut value: i64 = 0;
    for &c in unsigned.iter().filter(|&&c| c != b'_') {
        value = value.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
    }
    let value = if negative {
        value
    } else {
        value.checked_neg()?
    };
    Some(value.to_string())
}

/// The length of `DIGIT *( [ "_" ] DIGIT )` at the start of `b`; `None` if it has no digit.
fn digits(b: &[u8]) -> Option<usize> {
    if !b.first()?.is_ascii_digit() {
        return None;
    }
    let mut i = 1;
    loop {
        match b.get(i) {
            Some(c) if c.is_ascii_digit() => i += 1,
            Some(b'_') if b.get(i + 1).is_some_and(u8::is_ascii_digit) => i += 2,
            _ => return Some(i),
        }
    }
}
