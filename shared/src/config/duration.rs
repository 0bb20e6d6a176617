//! Traefik durations: Go duration strings (`10s`, `1m30s`, `1.5s`, `100ms`) or bare seconds.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration as Traefik reads it (paerser's `types.Duration`): a bare integer is a number of
/// seconds (`10` = 10 s), anything else is a Go duration string (`1m30s`, `100ms`, `1.5h`,
/// `0`). Negative durations are refused. `Display` prints Go's format (`1m30s`), which parses
/// back to the same value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TraefikDuration(pub Duration);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {input:?}")]
    Invalid { input: String },
    #[error("invalid duration {input:?}: negative durations are not allowed")]
    Negative { input: String },
    #[error("invalid duration {input:?}: too large")]
    Overflow { input: String },
}

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// Go's `time.Duration` is an i64 of nanoseconds; stay within it.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a Traefik duration: bare integer seconds or a Go duration string.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    let invalid = || DurationError::Invalid {
        input: input.to_string(),
    };
    if s.is_empty() {
        return Err(invalid());
    }
    // Bare integer (Go's strconv.ParseInt): seconds.
    let (negative, digits) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u128 = digits.parse().map_err(|_| DurationError::Overflow {
            input: input.to_string(),
        })?;
        if negative && secs != 0 {
            return Err(DurationError::Negative {
                input: input.to_string(),
            });
        }
        let nanos = secs.checked_mul(NANOS_PER_SEC).filter(|n| *n <= MAX_NANOS);
        return match nanos {
            Some(n) => Ok(nanos_to_duration(n)),
            None => Err(DurationError::Overflow {
                input: input.to_string(),
            }),
        };
    }
    parse_go(digits, input).and_then(|n| {
        if negative && n != 0 {
            Err(DurationError::Negative {
                input: input.to_string(),
            })
        } else {
            Ok(nanos_to_duration(n))
        }
    })
}

/// Go's `time.ParseDuration` without the sign: `([0-9]*(\.[0-9]*)?unit)+`.
fn parse_go(mut s: &str, input: &str) -> Result<u128, DurationError> {
    let invalid = || DurationError::Invalid {
        input: input.to_string(),
    };
    let overflow = || DurationError::Overflow {
        input: input.to_string(),
    };
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        // Integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        // Fraction.
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        // Unit.
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        let unit = match &s[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            // A missing or unknown unit ("0" alone is handled as bare seconds).
            _ => return Err(invalid()),
        };
        s = &s[unit_len..];
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| overflow())?
        };
        let mut value = int.checked_mul(unit).ok_or_else(overflow)?;
        if !frac_part.is_empty() {
            let mut frac: u128 = 0;
            let mut scale: u128 = 1;
            for b in frac_part.bytes() {
                if scale >= 10u128.pow(19) {
                    break; // beyond nanosecond precision for every unit
                }
                frac = frac * 10 + u128::from(b - b'0');
                scale *= 10;
            }
            value += frac * unit / scale;
        }
        total = total.checked_add(value).ok_or_else(overflow)?;
        if total > MAX_NANOS {
            return Err(overflow());
        }
    }
    Ok(total)
}

fn nanos_to_duration(n: u128) -> Duration {
    // n <= i64::MAX, so both parts fit.
    Duration::new((n / NANOS_PER_SEC) as u64, (n % NANOS_PER_SEC) as u32)
}

/// Formats a duration the way Go's `time.Duration.String` does: `0s`, `1.5µs`, `100ms`,
/// `1.5s`, `1m30s`, `2h0m0s`.
pub fn format_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".to_string();
    }
    if n < 1_000 {
        return format!("{n}ns");
    }
    if n < 1_000_000 {
        return format!("{}\u{b5}s", fmt_frac(n, 3));
    }
    if n < NANOS_PER_SEC {
        return format!("{}ms", fmt_frac(n, 6));
    }
    let hours = n / (3600 * NANOS_PER_SEC);
    let rem = n % (3600 * NANOS_PER_SEC);
    let minutes = rem / (60 * NANOS_PER_SEC);
    let secs = rem % (60 * NANOS_PER_SEC);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&fmt_frac(secs, 9));
    out.push('s');
    out
}

/// `v / 10^prec` with the fraction's trailing zeros trimmed.
fn fmt_frac(v: u128, prec: u32) -> String {
    let p = 10u128.pow(prec);
    let (int, frac) = (v / p, v % p);
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

impl FromStr for TraefikDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(TraefikDuration)
    }
}

impl fmt::Display for TraefikDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl From<TraefikDuration> for Duration {
    fn from(d: TraefikDuration) -> Duration {
        d.0
    }
}

impl<'de> Deserialize<'de> for TraefikDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

/// For `#[serde(deserialize_with = "ringway_shared::config::duration::deserialize")]`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    TraefikDuration::deserialize(deserializer).map(|d| d.0)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = TraefikDuration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration (`10s`, `1m30s`, `100ms`) or a number of seconds")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::custom(DurationError::Invalid {
            input: v.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_go_durations_and_bare_seconds() {
        let cases: &[(&str, Duration)] = &[
            ("10s", Duration::from_secs(10)),
            ("1m30s", Duration::from_secs(90)),
            ("100ms", ms(100)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", ms(1500)),
            (".5s", ms(500)),
            ("1.s", Duration::from_secs(1)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("60", Duration::from_secs(60)),
            ("+5", Duration::from_secs(5)),
            (
                "2h45m0.5s",
                Duration::from_millis((2 * 3600 + 45 * 60) * 1000 + 500),
            ),
            ("1us", Duration::from_micros(1)),
            ("1\u{b5}s", Duration::from_micros(1)),
            ("1\u{3bc}s", Duration::from_micros(1)),
            ("7ns", Duration::from_nanos(7)),
            ("1.0000000001s", Duration::from_secs(1)),
            (" 3s ", Duration::from_secs(3)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input), Ok(*want), "{input}");
        }
    }

    #[test]
    fn refuses_bad_durations() {
        for input in [
            "", "abc", "1.5", "10x", "s", ".s", "1h-5m", "--1s", "1 s", "0.0",
        ] {
            assert!(parse_duration(input).is_err(), "{input:?} should fail");
        }
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::Negative { .. })
        ));
        assert!(matches!(
            parse_duration("-10"),
            Err(DurationError::Negative { .. })
        ));
        assert!(matches!(
            parse_duration("9999999999999h"),
            Err(DurationError::Overflow { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999999999999999999999999"),
            Err(DurationError::Overflow { .. })
        ));
        assert_eq!(
            parse_duration("abc").map_err(|e| e.to_string()),
            Err("invalid duration \"abc\"".to_string())
        );
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_nanos(7)), "7ns");
        assert_eq!(format_duration(Duration::from_nanos(1500)), "1.5\u{b5}s");
        assert_eq!(format_duration(ms(100)), "100ms");
        assert_eq!(format_duration(ms(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m0s");
    }

    #[test]
    fn deserializes_from_toml_strings_and_integers() {
        #[derive(Deserialize)]
        struct T {
            a: TraefikDuration,
            b: TraefikDuration,
        }
        let t: T = toml::from_str("a = \"1m\"\nb = 30").expect("valid");
        assert_eq!(t.a.0, Duration::from_secs(60));
        assert_eq!(t.b.0, Duration::from_secs(30));
        assert!(toml::from_str::<T>("a = 1.5\nb = 1").is_err());
    }

    proptest! {
        #[test]
        fn print_then_parse_round_trips(nanos in 0u64..=i64::MAX as u64) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn bare_integers_are_seconds(secs in 0u64..1_000_000_000) {
            prop_assert_eq!(parse_duration(&secs.to_string()), Ok(Duration::from_secs(secs)));
        }

        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = parse_duration(&s);
        }
    }
}
