//! Go-syntax durations (`1h2m3s`, `500ms`, `1.5h`), as CL2 configs write them.
//!
//! Parsing follows Go's `time.ParseDuration`: an optional sign, then one or more
//! `<decimal number><unit>` pairs with units `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`; `0` alone
//! is allowed. Negative durations are rejected here because no config field accepts them.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("invalid duration {0:?} (expected Go syntax such as \"1h2m3s\", \"500ms\", \"10m\")")]
    Invalid(String),
    #[error("missing unit in duration {0:?} (units: ns, us, ms, s, m, h)")]
    MissingUnit(String),
    #[error("unknown unit {unit:?} in duration {input:?} (units: ns, us, ms, s, m, h)")]
    UnknownUnit { input: String, unit: String },
    #[error("negative duration {0:?} is not allowed here")]
    Negative(String),
    #[error("duration {0:?} is out of range")]
    Overflow(String),
}

/// Parses a Go duration string into a non-negative [`Duration`].
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(DurationError::Invalid(input.to_string()));
    }
    let mut total_ns: f64 = 0.0;
    let mut chars = rest;
    while !chars.is_empty() {
        let num_len = chars
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(chars.len());
        let num = &chars[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(DurationError::Invalid(input.to_string()));
        }
        let value: f64 = num
            .parse()
            .map_err(|_| DurationError::Invalid(input.to_string()))?;
        chars = &chars[num_len..];
        let unit_len = chars
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(chars.len());
        let unit = &chars[..unit_len];
        chars = &chars[unit_len..];
        let scale = match unit {
            "" => return Err(DurationError::MissingUnit(input.to_string())),
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => {
                return Err(DurationError::UnknownUnit {
                    input: input.to_string(),
                    unit: other.to_string(),
                });
            }
        };
        total_ns += value * scale;
    }
    if negative && total_ns > 0.0 {
        return Err(DurationError::Negative(input.to_string()));
    }
    if !total_ns.is_finite() || total_ns > u64::MAX as f64 {
        return Err(DurationError::Overflow(input.to_string()));
    }
    Ok(Duration::from_nanos(total_ns.round() as u64))
}

/// Formats a duration the way Go's `Duration.String()` does (`1h2m3s`, `500ms`, `0s`).
pub fn format_go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}us", trim_frac(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_frac(ns as f64 / 1e6));
    }
    let total_secs = ns / 1_000_000_000;
    let frac_ns = ns % 1_000_000_000;
    let hours = total_secs / 3600;
    let minutes = (total_secs % 3600) / 60;
    let secs = (total_secs % 60) as f64 + frac_ns as f64 / 1e9;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", trim_frac(secs)));
    out
}

fn trim_frac(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_syntax() {
        assert_eq!(
            parse_go_duration("1h2m3s").unwrap(),
            Duration::from_secs(3723)
        );
        assert_eq!(
            parse_go_duration("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_go_duration("1.5h").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_go_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_go_duration("-0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_go_duration("1us").unwrap(), Duration::from_micros(1));
        assert_eq!(parse_go_duration("1µs").unwrap(), Duration::from_micros(1));
        assert_eq!(
            parse_go_duration("250ns").unwrap(),
            Duration::from_nanos(250)
        );
        assert_eq!(
            parse_go_duration(".5s").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_go_duration("+2s").unwrap(), Duration::from_secs(2));
    }

    #[test]
    fn rejects_bad_durations() {
        assert_eq!(parse_go_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_go_duration("10"),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            parse_go_duration("1d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_go_duration("-1s"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            parse_go_duration("abc"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_go_duration("1..2s"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_go_duration("-"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_go_duration("s"),
            Err(DurationError::Invalid(_))
        ));
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::from_secs(3723)), "1h2m3s");
        assert_eq!(format_go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_go_duration(Duration::from_secs(600)), "10m0s");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        for s in ["1h2m3s", "500ms", "1.5s", "2h0m0s"] {
            assert_eq!(format_go_duration(parse_go_duration(s).unwrap()), s);
        }
    }
}
