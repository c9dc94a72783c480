//! The harness run end to end in its smoke mode (debug build, the smallest
//! sizes, one short pair): every part runs against real processes, Postgres
//! and the harness's own Redis, the results file and the README embedding
//! are written, every bar is measured, and the judge fails the run naming a
//! bar that was deliberately tightened while passing one that was loosened.
//! The bars themselves are not the point here (a debug build on a shared
//! machine); `./scripts/bench` judges them.

use std::process::Command;

use authrealm_bench::report::{README_BEGIN, README_END};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn a_smoke_run_measures_every_bar_writes_the_report_and_fails_on_a_missed_bar() -> TestResult {
    let database = std::env::var("DATABASE_URL")
        .map_err(|_| "DATABASE_URL is not set: run ./scripts/test (it starts Postgres)")?;
    let dir = tempfile::tempdir()?;
    let results = dir.path().join("RESULTS.md");
    let json = dir.path().join("results.json");
    let readme = dir.path().join("README.md");
    std::fs::write(
        &readme,
        format!("# Title\n\n{README_BEGIN}\nold figures\n{README_END}\n\nafter\n"),
    )?;
    let out = Command::new(env!("CARGO_BIN_EXE_authrealm-bench"))
        .args([
            "--smoke",
            "--judge",
            "--bar",
            "protected=1000",
            "--bar",
            "revocation-p99=60000",
        ])
        .arg("--results")
        .arg(&results)
        .arg("--json")
        .arg(&json)
        .arg("--readme")
        .arg(&readme)
        .env("DATABASE_URL", database)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a missed bar must fail the run:\n{stderr}"
    );
    assert!(
        stderr.contains("MISSED BAR `protected`"),
        "the missed bar is named:\n{stderr}"
    );
    assert!(!stderr.contains("MISSED BAR `revocation-p99`"), "{stderr}");
    assert!(!stderr.contains("PART FAILED"), "every part ran:\n{stderr}");

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let bars = report["bars"].as_array().ok_or("no bars in the JSON")?;
    for def in authrealm_bench::bars::ALL {
        let of_def: Vec<&serde_json::Value> = bars
            .iter()
            .filter(|b| b["measured"]["id"] == def.id)
            .collect();
        assert!(!of_def.is_empty(), "bar {} was not measured", def.id);
        for b in of_def {
            assert!(
                b["measured"]["value"].as_f64().is_some_and(f64::is_finite),
                "{b}"
            );
        }
    }
    let verdicts = |id: &str| -> Vec<String> {
        bars.iter()
            .filter(|b| b["measured"]["id"] == id)
            .map(|b| b["verdict"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(verdicts("protected"), ["Missed"]);
    assert_eq!(
        verdicts("revocation-p99"),
        ["Met", "Met"],
        "one per replica count (1, 2)"
    );

    let sections = report["sections"]
        .as_array()
        .ok_or("no sections in the JSON")?;
    for title in [
        "Ratio bars",
        "Live revocations in OP's view",
        "Sessions and refresh families in Redis",
        "Users in Postgres",
        "Verified-token cache at its cap",
        "Revocation propagation with several OP replicas",
        "Peak memory",
    ] {
        let s = sections
            .iter()
            .find(|s| s["title"] == title)
            .ok_or_else(|| format!("no section {title:?}"))?;
        let rows = s["rows"].as_array().map_or(0, Vec::len);
        assert!(rows > 0, "section {title:?} has no rows");
    }

    let markdown = std::fs::read_to_string(&results)?;
    assert!(
        markdown.contains("**Machine**") && markdown.contains("How loud the machine was"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| `protected`:") && markdown.contains("**MISSED**"),
        "{markdown}"
    );
    let embedded = std::fs::read_to_string(&readme)?;
    assert!(
        embedded.starts_with(&format!("# Title\n\n{README_BEGIN}\n")),
        "{embedded}"
    );
    assert!(
        embedded.ends_with(&format!("{README_END}\n\nafter\n")),
        "{embedded}"
    );
    assert!(
        !embedded.contains("old figures") && embedded.contains(markdown.trim_end()),
        "{embedded}"
    );
    Ok(())
}
