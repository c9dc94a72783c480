//! The machine a run measured on and how loud it was: CPU, memory, kernel,
//! the date and command, load averages, the other work's share of the CPU
//! in every window, and which other processes used the CPU during the run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::proc;
use crate::stats::Spread;

/// Facts about the run, printed atop the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunMeta {
    /// UTC date and time of the start.
    pub date: String,
    /// The command that produced the report.
    pub command: String,
    /// `git describe` of the tree measured.
    pub commit: String,
    /// CPU model.
    pub cpu: String,
    /// CPUs.
    pub cpus: usize,
    /// Memory, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// Operating system.
    pub os: String,
    /// `rustc --version`.
    pub rustc: String,
    /// `release` or `debug`.
    pub build: String,
    /// Pinning of servers and generator.
    pub pinning: String,
    /// Windows, pairs, connections.
    pub method: String,
    /// Load averages at the start.
    pub load_start: [f64; 3],
    /// Load averages at the end.
    pub load_end: [f64; 3],
    /// How the quiet-machine wait went.
    pub quiet: String,
    /// Other work's share of the machine over every measured window.
    pub other_load: Spread,
    /// Other processes that used the most CPU during the run: (name, CPU-seconds).
    pub other_processes: Vec<(String, f64)>,
    /// Wall time of the run, seconds.
    pub duration_secs: f64,
}

fn first_line_of(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_default()
}

fn file_field(path: &str, prefix: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()?.lines().find_map(|l| {
        l.strip_prefix(prefix)
            .map(|v| v.trim().trim_matches('"').to_owned())
    })
}

impl RunMeta {
    /// Reads the machine's description now.
    #[must_use]
    pub fn probe(command: String, build: &str, pinning: String, method: String) -> Self {
        let cpu = file_field("/proc/cpuinfo", "model name")
            .map(|v| v.trim_start_matches(':').trim().to_owned())
            .unwrap_or_default();
        let memory_gib = file_field("/proc/meminfo", "MemTotal:")
            .and_then(|v| {
                v.split_whitespace()
                    .next()
                    .and_then(|k| k.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / 1_048_576.0);
        let date = jiff::Timestamp::now()
            .strftime("%Y-%m-%d %H:%M UTC")
            .to_string();
        let dirty =
            !first_line_of("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
        let commit = format!(
            "{}{}",
            first_line_of("git", &["rev-parse", "--short=10", "HEAD"]),
            if dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        );
        Self {
            date,
            command,
            commit,
            cpu,
            cpus: proc::machine_cpus(),
            memory_gib,
            kernel: first_line_of("uname", &["-r"]),
            os: file_field("/etc/os-release", "PRETTY_NAME=").unwrap_or_default(),
            rustc: first_line_of("rustc", &["--version"]),
            build: build.to_owned(),
            pinning,
            method,
            load_start: proc::loadavg().unwrap_or_default(),
            ..Self::default()
        }
    }

    /// The head of the results file.
    #[must_use]
    pub fn markdown(&self) -> String {
        let others = if self.other_processes.is_empty() {
            "none measurable".to_owned()
        } else {
            self.other_processes
                .iter()
                .map(|(n, s)| format!("{n} {s:.0} CPU-s"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let l = |a: [f64; 3]| format!("{:.2} / {:.2} / {:.2}", a[0], a[1], a[2]);
        format!(
            "Produced by `{}` on {} ({} build, commit {}), in {:.0} s.\n\n\
             - **Machine**: {} × {}, {:.0} GiB, {}, Linux {}; {}.\n\
             - **Method**: {}; {}.\n\
             - **How loud the machine was**: load average (1/5/15 min) {} at the start, {} at the end; \
             other work used {:.0} % of the machine in the median window (min {:.0} %, max {:.0} %). {} \
             Other processes that used the CPU during the run: {}.\n",
            self.command,
            self.date,
            self.build,
            self.commit,
            self.duration_secs,
            self.cpus,
            self.cpu,
            self.memory_gib,
            self.os,
            self.kernel,
            self.rustc,
            self.method,
            self.pinning,
            l(self.load_start),
            l(self.load_end),
            self.other_load.median * 100.0,
            self.other_load.min * 100.0,
            self.other_load.max * 100.0,
            self.quiet,
            others,
        )
    }
}

/// Pids of this process and every descendant of it now.
fn our_tree(all: &HashMap<u32, proc::ProcessInfo>) -> std::collections::HashSet<u32> {
    let me = std::process::id();
    all.keys()
        .copied()
        .filter(|pid| {
            let mut p = *pid;
            for _ in 0..64 {
                if p == me {
                    return true;
                }
                match all.get(&p) {
                    Some(info) if info.ppid != 0 && info.ppid != p => p = info.ppid,
                    _ => return false,
                }
            }
            false
        })
        .collect()
}

/// Samples the process table in the background and adds up the CPU time
/// of every process that is not part of this run.
#[derive(Debug)]
pub struct NoiseMonitor {
    stop: Arc<AtomicBool>,
    totals: Arc<Mutex<HashMap<String, Duration>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NoiseMonitor {
    /// Starts sampling every `every`.
    #[must_use]
    pub fn start(every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let totals = Arc::new(Mutex::new(HashMap::new()));
        let thread = {
            let (stop, totals) = (stop.clone(), totals.clone());
            std::thread::spawn(move || {
                let mut last = proc::all_processes();
                while !stop.load(Ordering::Relaxed) {
                    let until = Instant::now() + every;
                    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    let now = proc::all_processes();
                    let ours = our_tree(&now);
                    if let Ok(mut t) = totals.lock() {
                        for (pid, info) in &now {
                            if ours.contains(pid) {
                                continue;
                            }
                            // A process new since the last sample counts from its start.
                            let before = last
                                .get(pid)
                                .filter(|b| b.name == info.name)
                                .map_or(Duration::ZERO, |b| b.cpu);
                            *t.entry(info.name.clone()).or_default() +=
                                info.cpu.saturating_sub(before);
                        }
                    }
                    last = now;
                }
            })
        };
        Self {
            stop,
            totals,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the `n` other processes (by name) that used the most CPU.
    #[must_use]
    pub fn finish(mut self, n: usize) -> Vec<(String, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut v: Vec<(String, f64)> = self
            .totals
            .lock()
            .map(|t| {
                t.iter()
                    .map(|(k, d)| (k.clone(), d.as_secs_f64()))
                    .collect()
            })
            .unwrap_or_default();
        v.retain(|(_, s)| *s >= 1.0);
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.truncate(n);
        v
    }
}

/// Waits up to `max_wait` for other work to use less than `threshold` of
/// the machine over one second; says how that went.
#[must_use]
pub fn wait_for_quiet(max_wait: Duration, threshold: f64) -> String {
    let deadline = Instant::now() + max_wait;
    let cpus = proc::machine_cpus() as f64;
    let mut waited = Duration::ZERO;
    loop {
        let all = proc::all_processes();
        let ours: Duration = our_tree(&all)
            .iter()
            .filter_map(|p| all.get(p))
            .map(|i| i.cpu)
            .sum();
        let busy = proc::machine_busy().unwrap_or_default();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        let all2 = proc::all_processes();
        let ours2: Duration = our_tree(&all2)
            .iter()
            .filter_map(|p| all2.get(p))
            .map(|i| i.cpu)
            .sum();
        let busy2 = proc::machine_busy().unwrap_or_default();
        let wall = t0.elapsed().as_secs_f64();
        let other = (busy2.saturating_sub(busy).as_secs_f64()
            - ours2.saturating_sub(ours).as_secs_f64())
            / (wall * cpus);
        waited += t0.elapsed();
        if other < threshold {
            return format!(
                "Started after {:.0} s with other work at {:.0} % of the machine (waited for < {:.0} %).",
                waited.as_secs_f64(),
                other.max(0.0) * 100.0,
                threshold * 100.0
            );
        }
        if Instant::now() >= deadline {
            return format!(
                "The machine did not quieten within {:.0} s (other work at {:.0} %, wanted < {:.0} %): started anyway.",
                max_wait.as_secs_f64(),
                other * 100.0,
                threshold * 100.0
            );
        }
    }
}
