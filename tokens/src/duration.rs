//! Durations as people write them in flags and manifests: `90s`, `5m`,
//! `1h30m`, `30d`. One parser for MA, OP and the operator.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: use whole numbers with units s, m, h or d, e.g. 90s, 5m, 1h30m, 30d"
)]
pub struct DurationError {
    /// The text that was refused.
    pub input: String,
}

/// Parses `<n><unit>` segments (units `s`, `m`, `h`, `d`; at least one; no
/// sign, no fractions), e.g. `1h30m`.
///
/// # Errors
/// [`DurationError`] for empty input, a missing or unknown unit, or overflow.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        input: input.to_owned(),
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(err()),
        };
        let n: u64 = digits.parse().map_err(|_| err())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
    }
    if !digits.is_empty() {
        return Err(err());
    }
    Ok(Duration::from_secs(total))
}

/// Formats whole seconds back in the largest exact units, e.g. `1h30m`.
#[must_use]
pub fn format(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if secs >= unit {
            out.push_str(&format!("{}{name}", secs / unit));
            secs %= unit;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_common_forms() {
        for (text, secs) in [
            ("90s", 90),
            ("5m", 300),
            ("1h30m", 5400),
            ("30d", 2_592_000),
            ("0s", 0),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(2_592_000)), "30d");
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in [
            "",
            "5",
            "m",
            "-5m",
            "1.5h",
            "5w",
            "10 m",
            "99999999999999999999s",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(
            parse("5w")
                .err()
                .is_some_and(|e| e.to_string().contains("\"5w\""))
        );
    }
}
