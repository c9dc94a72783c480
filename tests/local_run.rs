//! `cargo run --release` as a new user meets it: start the `authrealm` binary
//! with the embedded defaults, paste the walkthrough it prints into bash, and
//! check every step's answer and that Ctrl-C stops it cleanly.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()
        .map(|a| a.port())
}

#[test]
fn the_printed_walkthrough_works_when_pasted_and_ctrl_c_stops_both_services() -> TestResult {
    let data = tempfile::tempdir()?;
    let (op, ma) = (free_port()?, free_port()?);
    let mut child = Command::new(env!("CARGO_BIN_EXE_authrealm"))
        .args([
            "--op-listen",
            &format!("127.0.0.1:{op}"),
            "--ma-listen",
            &format!("127.0.0.1:{ma}"),
        ])
        .arg("--data-dir")
        .arg(data.path())
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut walkthrough = Vec::new();
    let mut inside = false;
    for line in lines.by_ref() {
        let line = line?;
        if line.starts_with("Try it") {
            inside = true;
        } else if line.starts_with("Ctrl-C stops") {
            break;
        } else if inside {
            walkthrough.push(line);
        }
    }
    assert!(
        walkthrough
            .iter()
            .any(|l| l.contains(&format!("127.0.0.1:{op}"))),
        "{walkthrough:?}"
    );

    // Wait until OP is ready (it waits for MA's JWKS), then paste.
    let script = format!(
        "set -e\nfor i in $(seq 100); do curl -sf http://127.0.0.1:{op}/readyz >/dev/null && break; sleep 0.1; done\n{}\n",
        walkthrough.join("\n")
    );
    let out = Command::new("bash").arg("-c").arg(&script).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("\"email\":\"ada@example.com\""),
        "register/me: {text}"
    );
    assert!(text.contains("\"title\":\"first note\""), "notes: {text}");
    assert!(text.contains("logout: 204"), "logout: {text}");
    assert!(
        text.trim_end().ends_with(
            "{\"error\":{\"code\":\"token_revoked\",\"message\":\"the token has been revoked\"}}"
        ),
        "{text}"
    );
    assert!(
        data.path().join("main-project.db").exists(),
        "SQLite file in the data directory"
    );

    // Ctrl-C: both services stop and the process exits 0.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait()? {
            assert!(status.success(), "exit status {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("the runner did not stop within 20 s of Ctrl-C".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for port in [op, ma] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open"
        );
    }
    Ok(())
}
