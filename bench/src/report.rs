//! The run's report: the machine and how loud it was, every bar with its
//! verdict, and each scenario's table, as Markdown (the results file the
//! README embeds) and as JSON (for tools and the smoke test).

use serde::Serialize;

use crate::bars::{Judged, Verdict};
use crate::machine::RunMeta;

/// A table of one scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// A paragraph above the table: what was measured and how.
    pub intro: String,
    /// Column headings.
    pub header: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
    /// Lines below the table.
    pub notes: Vec<String>,
}

impl Section {
    /// A section with a title, an intro and column headings.
    #[must_use]
    pub fn new(title: &str, intro: impl Into<String>, header: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            intro: intro.into(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn markdown(&self, out: &mut String) {
        out.push_str(&format!("\n#### {}\n\n", self.title));
        if !self.intro.is_empty() {
            out.push_str(&self.intro);
            out.push_str("\n\n");
        }
        if !self.header.is_empty() {
            out.push_str(&format!("| {} |\n", self.header.join(" | ")));
            let align: Vec<&str> = self
                .header
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---" } else { "---:" })
                .collect();
            out.push_str(&format!("| {} |\n", align.join(" | ")));
            for r in &self.rows {
                out.push_str(&format!("| {} |\n", r.join(" | ")));
            }
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
    }
}

/// The peak resident memory of MA and OP during one part.
#[derive(Debug, Clone, Default)]
pub struct Peak {
    /// The part (or scenario within it).
    pub part: String,
    /// MA's peak RSS, bytes (0: not part of it).
    pub ma: u64,
    /// The largest OP replica's peak RSS, bytes.
    pub op: u64,
    /// What drove it.
    pub note: String,
}

/// What one part of the benchmark produced.
#[derive(Debug, Default)]
pub struct PartReport {
    /// Its tables.
    pub sections: Vec<Section>,
    /// Its bar measurements.
    pub bars: Vec<crate::bars::Measured>,
    /// Peak memory of the services during it.
    pub peaks: Vec<Peak>,
}

/// The table of peak memory over every part.
#[must_use]
pub fn peak_section(peaks: &[Peak]) -> Section {
    let mut s = Section::new(
        "Peak memory",
        "Peak resident memory (`VmHWM`, reset at the start of each part) of MA and of the largest OP replica.",
        &["part", "MA peak (MiB)", "OP peak (MiB)", "what drove it"],
    );
    for p in peaks {
        let m = |b: u64| if b == 0 { "—".to_owned() } else { mib(b) };
        s.row(vec![p.part.clone(), m(p.ma), m(p.op), p.note.clone()]);
    }
    s
}

/// The whole report of a run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Machine, date, command, noise.
    pub meta: RunMeta,
    /// Every bar with its verdict.
    pub bars: Vec<Judged>,
    /// Every scenario's table.
    pub sections: Vec<Section>,
    /// Parts that could not run, with why.
    pub errors: Vec<String>,
}

/// Formats a number with thousands separators and `decimals` decimals.
#[must_use]
pub fn num(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if x < 0.0 && s.chars().any(|c| c != '0' && c != '.') {
        "-"
    } else {
        ""
    };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// "1k", "10k", "1M" for sizes.
#[must_use]
pub fn size(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// Bytes as MiB with one decimal.
#[must_use]
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_048_576.0)
}

impl Report {
    /// Bars that missed.
    #[must_use]
    pub fn missed(&self) -> Vec<&Judged> {
        self.bars
            .iter()
            .filter(|b| b.verdict == Verdict::Missed)
            .collect()
    }

    /// The Markdown results file.
    #[must_use]
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&self.meta.markdown());
        out.push_str("\n#### Bars\n\n");
        out.push_str("| bar | measured | median [min – max] over pairs | required | result |\n");
        out.push_str("| --- | ---: | --- | --- | --- |\n");
        for b in &self.bars {
            let m = &b.measured;
            // Ratios with three decimals, so 0.897 does not read as a met 0.90.
            let decimals = if m.unit == "×" {
                3
            } else if m.value.abs() < 10.0 {
                2
            } else {
                0
            };
            let spread = m.spread.map_or_else(String::new, |s| {
                format!("{:.2} [{:.2} – {:.2}]", s.median, s.min, s.max)
            });
            let verdict = match b.verdict {
                Verdict::Met => "met",
                Verdict::Missed => "**MISSED**",
                Verdict::NotJudged => "not judged (smoke run)",
            };
            let requirement = if b.overridden {
                format!("{} (overridden)", b.requirement())
            } else {
                b.requirement()
            };
            let note = if m.note.is_empty() {
                String::new()
            } else {
                format!("; {}", m.note)
            };
            out.push_str(&format!(
                "| `{}`: {} | {}{}{} | {} | {} | {}{} |\n",
                m.id,
                m.what,
                num(m.value, decimals),
                if m.unit.is_empty() || m.unit == "×" {
                    ""
                } else {
                    " "
                },
                m.unit,
                spread,
                requirement,
                verdict,
                note
            ));
        }
        for s in &self.sections {
            s.markdown(&mut out);
        }
        if !self.errors.is_empty() {
            out.push_str("\n#### Parts that could not run\n\n");
            for e in &self.errors {
                out.push_str(&format!("- {e}\n"));
            }
        }
        out
    }
}

/// The markers between which the README embeds the results.
pub const README_BEGIN: &str =
    "<!-- bench-results:begin (written by ./scripts/bench; do not edit) -->";
/// End marker.
pub const README_END: &str = "<!-- bench-results:end -->";

/// Replaces the text between the markers in `readme` with `results`.
///
/// # Errors
/// When the markers are missing or out of order.
pub fn splice(readme: &str, results: &str) -> Result<String, String> {
    let start = readme
        .find(README_BEGIN)
        .ok_or("the README has no bench-results:begin marker")?;
    let end = readme
        .find(README_END)
        .filter(|e| *e > start)
        .ok_or("the README has no bench-results:end marker after the begin marker")?;
    let head = &readme[..start + README_BEGIN.len()];
    let tail = &readme[end..];
    Ok(format!("{head}\n{}\n{tail}", results.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sizes_and_splicing() -> Result<(), String> {
        assert_eq!(num(1_234_567.891, 1), "1,234,567.9");
        assert_eq!(num(-12.0, 0), "-12");
        assert_eq!(num(999.0, 0), "999");
        assert_eq!(num(f64::NAN, 2), "—");
        assert_eq!(size(1_000_000), "1M");
        assert_eq!(size(10_000), "10k");
        assert_eq!(size(1_500), "1500");
        let readme = format!("intro\n{README_BEGIN}\nold\n{README_END}\nrest\n");
        let new = splice(&readme, "new table\n")?;
        assert_eq!(
            new,
            format!("intro\n{README_BEGIN}\nnew table\n{README_END}\nrest\n")
        );
        assert!(splice("no markers", "x").is_err());
        Ok(())
    }
}
