//! What a process costs, read from `/proc`: CPU seconds (`/proc/PID/stat` utime + stime), peak
//! resident memory (`VmHWM` in `/proc/PID/status`, reset through `/proc/PID/clear_refs`), and the
//! machine's description for the report.

use std::sync::OnceLock;

use serde::Serialize;

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on if that fails).
pub fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Clock ticks from `/proc/PID/stat`: utime + stime, and with `reaped` also cutime + cstime
/// (the children it has waited for).
fn cpu_ticks(pid: u32, reaped: bool) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17); index 0
    // here is field 3.
    let last = if reaped { 14 } else { 12 };
    let mut ticks = 0.0;
    for i in 11..=last {
        ticks += fields.get(i)?.parse::<f64>().ok()?;
    }
    Some(ticks)
}

/// User + system CPU seconds `pid` has used so far, or `None` when it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_ticks(pid, false).map(|t| t / clock_ticks())
}

/// CPU seconds of `pid` and all its descendants: the live ones, and the ones that have exited
/// and been waited for (a server that forks a process per connection, like PostgreSQL's
/// postmaster). `None` when `pid` is gone.
pub fn tree_cpu_seconds(pid: u32) -> Option<f64> {
    fn walk(pid: u32, depth: usize) -> f64 {
        let own = cpu_ticks(pid, true).unwrap_or(0.0);
        if depth == 0 {
            return own;
        }
        own + children(pid)
            .into_iter()
            .map(|c| walk(c, depth - 1))
            .sum::<f64>()
    }
    cpu_ticks(pid, true)?;
    Some(walk(pid, 4) / clock_ticks())
}

/// Peak resident set size of `pid` in MiB since start or the last [`reset_peak_rss`].
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_kib(pid, "VmHWM:").map(|kib| kib as f64 / 1024.0)
}

/// Current resident set size of `pid` in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    status_kib(pid, "VmRSS:").map(|kib| kib as f64 / 1024.0)
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Resets `pid`'s peak RSS to its current RSS (`echo 5 > /proc/PID/clear_refs`); false when not
/// permitted, in which case the peak covers the process's whole life.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The direct children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs available.
    pub cpus: usize,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// 1-minute load average when the run started (other work sharing the cores shows here).
    pub load_at_start: f64,
}

impl Machine {
    /// Reads the machine's description.
    pub fn probe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            })
            .map(|kib| kib / 1024.0 / 1024.0)
            .unwrap_or(f64::NAN);
        Self {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            load_at_start: load_average(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some_and(|s| s >= 0.0));
        let own = cpu_seconds(me).unwrap_or(0.0);
        assert!(tree_cpu_seconds(me).is_some_and(|s| s >= own));
        assert!(peak_rss_mib(me).is_some_and(|m| m > 0.0));
        assert!(rss_mib(me).is_some_and(|m| m > 0.0));
        assert!(Machine::probe().cpus >= 1);
    }
}
