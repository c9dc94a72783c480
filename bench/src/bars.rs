//! The bars: what each one requires, and the verdicts of a run. Thresholds
//! can be overridden by id (`--bar protected=0.9`), which is also how a
//! deliberately tightened bar shows that a miss fails the command.

use std::collections::HashMap;

use serde::Serialize;

use crate::stats::Spread;

/// How a measured value is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Rule {
    /// `measured ≥ threshold`.
    AtLeast,
    /// `measured ≤ threshold`.
    AtMost,
    /// `measured < threshold`.
    Below,
}

impl Rule {
    fn symbol(self) -> &'static str {
        match self {
            Self::AtLeast => "≥",
            Self::AtMost => "≤",
            Self::Below => "<",
        }
    }

    fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Self::AtLeast => measured >= threshold,
            Self::AtMost => measured <= threshold,
            Self::Below => measured < threshold,
        }
    }
}

/// One bar's definition.
#[derive(Debug, Clone, Copy)]
pub struct BarDef {
    /// Stable id (for `--bar id=value` and the report).
    pub id: &'static str,
    /// What is measured against what.
    pub what: &'static str,
    /// The comparison.
    pub rule: Rule,
    /// The default threshold.
    pub threshold: f64,
    /// Unit of the value (`×` for ratios).
    pub unit: &'static str,
}

macro_rules! bar {
    ($name:ident, $id:literal, $rule:ident, $t:expr, $unit:literal, $what:literal) => {
        #[doc = $what]
        pub const $name: BarDef = BarDef {
            id: $id,
            what: $what,
            rule: Rule::$rule,
            threshold: $t,
            unit: $unit,
        };
    };
}

bar!(
    PROTECTED,
    "protected",
    AtLeast,
    0.85,
    "×",
    "OP protected request (one token, repeated) vs bare axum, per server CPU-s"
);
bar!(
    FORWARD_AUTH,
    "forward-auth",
    AtLeast,
    0.85,
    "×",
    "OP forward-auth check (`/auth/verify`, one token, repeated) vs bare axum answering the same identity headers, per server CPU-s"
);
bar!(
    NEW_TOKEN,
    "new-token",
    AtLeast,
    0.95,
    "×",
    "OP protected request with a new token each time vs a bare handler doing one verification"
);
bar!(
    MINT,
    "mint",
    AtLeast,
    0.5,
    "×",
    "MA mint (family in Redis) vs a bare handler signing one EdDSA token"
);
bar!(
    REFRESH,
    "refresh",
    AtLeast,
    0.5,
    "×",
    "MA refresh rotation (Redis) vs a bare handler signing one EdDSA token"
);
bar!(
    LOGIN,
    "login",
    AtLeast,
    0.9,
    "×",
    "OP login vs raw argon2id on one thread, per server CPU-s"
);
bar!(
    REFRESH_RACES,
    "refresh-races",
    AtMost,
    0.0,
    "",
    "20-way refresh races under load that handed out a second successor"
);
bar!(
    BURST_RSS,
    "login-burst-rss",
    Below,
    256.0,
    "MiB",
    "OP peak RSS in a burst of concurrent logins on a fresh replica"
);
bar!(
    PROPAGATION,
    "revocation-p99",
    Below,
    10.0,
    "ms",
    "revocation propagation p99, from MA's answer to every replica rejecting the token, under load"
);
bar!(
    REVOCATION_BYTES,
    "revocation-bytes",
    AtMost,
    64.0,
    "B",
    "OP resident memory per live revoked jti beyond the first 10k"
);
bar!(
    REVOCATION_RESYNC,
    "revocation-resync",
    AtMost,
    2.0,
    "s",
    "time for a replica to resync the revocation list after a Redis reconnect"
);
bar!(
    REVOCATION_THROUGHPUT,
    "revocation-throughput",
    AtLeast,
    0.9,
    "×",
    "protected-path throughput with the view full vs empty, per server CPU-s"
);
bar!(
    SESSION_BYTES,
    "session-bytes",
    AtMost,
    256.0,
    "B",
    "Redis memory per live session (refresh family)"
);
bar!(
    USERS_LOGIN,
    "users-login",
    AtMost,
    1.5,
    "×",
    "login p50 latency at the most users vs the fewest (the email index does its job)"
);

/// One measurement of a bar.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// The bar's id.
    pub id: &'static str,
    /// What was measured, with its conditions (size, replicas).
    pub what: String,
    /// The comparison.
    pub rule: Rule,
    /// The unit.
    pub unit: &'static str,
    /// The value judged (the median for ratios).
    pub value: f64,
    /// Median and spread over pairs, for ratios.
    pub spread: Option<Spread>,
    /// Anything that qualifies the figure (exhausted tokens, failures).
    pub note: String,
}

impl Measured {
    /// A measurement of `def` with `value`.
    #[must_use]
    pub fn new(def: BarDef, value: f64) -> Self {
        Self {
            id: def.id,
            what: def.what.to_owned(),
            rule: def.rule,
            unit: def.unit,
            value,
            spread: None,
            note: String::new(),
        }
    }

    /// A ratio with its spread over pairs.
    #[must_use]
    pub fn ratio(def: BarDef, spread: Spread) -> Self {
        Self {
            spread: Some(spread),
            ..Self::new(def, spread.median)
        }
    }

    /// Adds a condition to what was measured ("1M entries").
    #[must_use]
    pub fn at(mut self, condition: impl AsRef<str>) -> Self {
        self.what = format!("{} ({})", self.what, condition.as_ref());
        self
    }

    /// Adds a note.
    #[must_use]
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// A bar's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The value meets the threshold.
    Met,
    /// The value misses it.
    Missed,
    /// Reported only (smoke run).
    NotJudged,
}

/// A judged bar.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    /// The measurement.
    pub measured: Measured,
    /// The threshold used (default or overridden).
    pub threshold: f64,
    /// Whether the threshold was overridden on the command line.
    pub overridden: bool,
    /// The verdict.
    pub verdict: Verdict,
}

impl Judged {
    /// "≥ 0.85×" for the report.
    #[must_use]
    pub fn requirement(&self) -> String {
        let m = &self.measured;
        let space = if m.unit.is_empty() || m.unit == "×" {
            ""
        } else {
            " "
        };
        format!(
            "{} {}{space}{}",
            m.rule.symbol(),
            trim(self.threshold),
            m.unit
        )
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Judges every measurement against its threshold (overridden by id in
/// `overrides`); `judge` false reports without judging.
#[must_use]
pub fn judge(
    measured: Vec<Measured>,
    overrides: &HashMap<String, f64>,
    judge: bool,
) -> Vec<Judged> {
    measured
        .into_iter()
        .map(|m| {
            let default = ALL
                .iter()
                .find(|d| d.id == m.id)
                .map_or(f64::NAN, |d| d.threshold);
            let (threshold, overridden) =
                overrides.get(m.id).map_or((default, false), |t| (*t, true));
            let verdict = if !judge {
                Verdict::NotJudged
            } else if m.value.is_finite() && m.rule.holds(m.value, threshold) {
                Verdict::Met
            } else {
                Verdict::Missed
            };
            Judged {
                measured: m,
                threshold,
                overridden,
                verdict,
            }
        })
        .collect()
}

/// Every bar, for `--help` and override checks.
pub const ALL: [BarDef; 14] = [
    PROTECTED,
    FORWARD_AUTH,
    NEW_TOKEN,
    MINT,
    REFRESH,
    LOGIN,
    REFRESH_RACES,
    BURST_RSS,
    PROPAGATION,
    REVOCATION_BYTES,
    REVOCATION_RESYNC,
    REVOCATION_THROUGHPUT,
    SESSION_BYTES,
    USERS_LOGIN,
];

/// Parses `id=value`, checking the id names a bar.
///
/// # Errors
/// A message naming the problem.
pub fn parse_override(s: &str) -> Result<(String, f64), String> {
    let (id, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected id=value"))?;
    if !ALL.iter().any(|d| d.id == id) {
        let ids: Vec<&str> = ALL.iter().map(|d| d.id).collect();
        return Err(format!("{id:?} is not a bar; bars: {}", ids.join(", ")));
    }
    let v: f64 = v.parse().map_err(|_| format!("{v:?} is not a number"))?;
    Ok((id.to_owned(), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_rules_and_overrides() {
        let m = vec![
            Measured::new(PROTECTED, 0.86),
            Measured::new(PROPAGATION, 10.0),
            Measured::new(REVOCATION_BYTES, 64.0),
            Measured::new(MINT, f64::NAN),
        ];
        let v: Vec<Verdict> = judge(m.clone(), &HashMap::new(), true)
            .iter()
            .map(|j| j.verdict)
            .collect();
        assert_eq!(
            v,
            [Verdict::Met, Verdict::Missed, Verdict::Met, Verdict::Missed]
        );
        let tight = HashMap::from([("protected".to_owned(), 0.9)]);
        let j = judge(m.clone(), &tight, true);
        assert_eq!(j[0].verdict, Verdict::Missed);
        assert!(j[0].overridden);
        assert_eq!(j[0].requirement(), "≥ 0.9×");
        assert!(
            judge(m, &tight, false)
                .iter()
                .all(|j| j.verdict == Verdict::NotJudged)
        );
    }

    #[test]
    fn overrides_name_real_bars() {
        assert_eq!(parse_override("login=0.95"), Ok(("login".to_owned(), 0.95)));
        assert!(parse_override("logn=0.95").is_err_and(|e| e.contains("not a bar")));
        assert!(parse_override("login").is_err());
        assert!(parse_override("login=fast").is_err());
    }
}
