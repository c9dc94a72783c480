//! Reads CPU time and memory of processes and of the machine from `/proc`:
//! the figures that stay comparable on a shared machine.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::{BenchError, Result};

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux in practice).
fn ticks_per_sec() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

fn ticks(t: u64) -> Duration {
    Duration::from_micros(t.saturating_mul(1_000_000) / ticks_per_sec())
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| BenchError::io(format!("reading {path}"), e))
}

/// `(command name, parent pid, user + system ticks)` from one `/proc/<pid>/stat` text.
fn parse_stat(stat: &str) -> Option<(String, u32, u64)> {
    // The name is in parentheses and may hold spaces or ')': split at the last one.
    let open = stat.find('(')?;
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.get(open + 1..)?.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ppid: u32 = fields.get(1)?.parse().ok()?;
    Some((name, ppid, utime + stime))
}

/// User + system CPU time consumed so far by `pid` (all its threads).
///
/// # Errors
/// When `/proc/<pid>/stat` cannot be read or parsed.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = read(&format!("/proc/{pid}/stat"))?;
    parse_stat(&stat)
        .map(|(_, _, t)| ticks(t))
        .ok_or_else(|| BenchError::Setup(format!("cannot parse /proc/{pid}/stat")))
}

/// The sum of [`cpu_time`] over `pids` (processes that are gone count 0).
#[must_use]
pub fn cpu_time_of(pids: &[u32]) -> Duration {
    pids.iter().filter_map(|p| cpu_time(*p).ok()).sum()
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = read(&format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| BenchError::Setup(format!("no {field} in /proc/{pid}/status")))
}

/// Resident set size of `pid` now (`VmRSS`), bytes.
///
/// # Errors
/// When `/proc/<pid>/status` cannot be read.
pub fn rss(pid: u32) -> Result<u64> {
    Ok(status_kib(pid, "VmRSS:")? * 1024)
}

/// Peak resident set size of `pid` since start or the last [`reset_peak`] (`VmHWM`), bytes.
///
/// # Errors
/// When `/proc/<pid>/status` cannot be read.
pub fn peak_rss(pid: u32) -> Result<u64> {
    Ok(status_kib(pid, "VmHWM:")? * 1024)
}

/// Resets the peak RSS of `pid` to its current RSS (`clear_refs` 5), so the
/// next [`peak_rss`] is the peak of what happened since.
///
/// # Errors
/// When the kernel refuses the write.
pub fn reset_peak(pid: u32) -> Result<()> {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").map_err(|e| BenchError::io(format!("writing {path}"), e))
}

/// Busy CPU time of the whole machine so far (all CPUs; everything but idle and iowait).
///
/// # Errors
/// When `/proc/stat` cannot be read.
pub fn machine_busy() -> Result<Duration> {
    let stat = read("/proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| BenchError::Setup("no cpu line in /proc/stat".into()))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    let busy: u64 = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| v.get(*i))
        .sum();
    Ok(ticks(busy))
}

/// CPUs of the machine (`cpuN` lines of `/proc/stat`), whatever this
/// process's affinity (a pinned generator sees one CPU in `available_parallelism`).
#[must_use]
pub fn machine_cpus() -> usize {
    std::fs::read_to_string("/proc/stat")
        .map(|s| {
            s.lines()
                .filter(|l| {
                    l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
                })
                .count()
        })
        .unwrap_or(0)
        .max(1)
}

/// The 1-, 5- and 15-minute load averages.
///
/// # Errors
/// When `/proc/loadavg` cannot be read.
pub fn loadavg() -> Result<[f64; 3]> {
    let s = read("/proc/loadavg")?;
    let mut it = s
        .split_whitespace()
        .map(|x| x.parse::<f64>().unwrap_or(0.0));
    Ok([
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ])
}

/// One process in [`all_processes`].
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// Command name.
    pub name: String,
    /// Parent pid.
    pub ppid: u32,
    /// CPU time so far.
    pub cpu: Duration,
}

/// Every process on the machine: pid → name, parent and CPU time.
#[must_use]
pub fn all_processes() -> HashMap<u32, ProcessInfo> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            && let Some((name, ppid, t)) = parse_stat(&stat)
        {
            out.insert(
                pid,
                ProcessInfo {
                    name,
                    ppid,
                    cpu: ticks(t),
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        let line = "1234 (tokio-rt (w) 1) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(
            parse_stat(line),
            Some(("tokio-rt (w) 1".to_owned(), 1, 300))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_memory_and_the_machine_a_clock() -> Result<()> {
        let me = std::process::id();
        assert!(rss(me)? > 0);
        assert!(peak_rss(me)? >= rss(me)? / 2);
        assert!(all_processes().contains_key(&me));
        assert!(machine_busy()? > Duration::ZERO);
        assert!(machine_cpus() >= std::thread::available_parallelism().map_or(1, usize::from));
        Ok(())
    }
}
