//! Reads a process's CPU time and peak memory from `/proc`, the figures that
//! stay comparable on a noisy shared machine.

use std::time::Duration;

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux in practice).
fn ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// User + system CPU time consumed so far by `pid` (all its threads).
///
/// # Errors
/// When `/proc/<pid>/stat` cannot be read or parsed.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may contain spaces: split after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("bad stat line"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")": state is field 3 of the full line, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields
        .get(11)
        .ok_or_else(|| anyhow::anyhow!("no utime"))?
        .parse()?;
    let stime: u64 = fields
        .get(12)
        .ok_or_else(|| anyhow::anyhow!("no stime"))?
        .parse()?;
    let ticks = ticks_per_sec();
    Ok(Duration::from_millis((utime + stime) * 1000 / ticks))
}

/// Peak resident set size of `pid` (`VmHWM`), in bytes.
///
/// # Errors
/// When `/proc/<pid>/status` cannot be read or has no `VmHWM`.
pub fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM"))?
        .parse()?;
    Ok(kib * 1024)
}
