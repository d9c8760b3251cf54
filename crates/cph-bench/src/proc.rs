//! Readings of processes from `/proc`: resident memory, CPU times, the load average.
//!
//! `which` is `self` or a pid, as in `/proc/<which>/…`.

use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The value of a `Key:   1234 kB` line of a `/proc/<pid>/status` text (`VmRSS`, `VmHWM`,
/// `Threads`, …): the first number after `Key:`.
pub fn parse_status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The value of a `Key:   1234 kB` line of `/proc/<which>/status`, in KiB.
pub fn status_kib(which: &str, key: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{which}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status_kib(&text, key).with_context(|| format!("no {key} in {path}"))
}

/// The resident set of process `pid` in KiB (0 when there is none or it is unreadable).
pub fn rss_of_kib(pid: Option<&str>) -> u64 {
    pid.and_then(|p| status_kib(p, "VmRSS").ok()).unwrap_or(0)
}

/// CPU times of a process from `/proc/<which>/stat`, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// utime + stime of the process itself.
    pub own: f64,
    /// cutime + cstime: children it has waited for.
    pub children: f64,
}

/// Parses a `/proc/<pid>/stat` text (`path` names it in errors) with `hz` clock ticks a second.
pub fn parse_stat(path: &str, text: &str, hz: f64) -> anyhow::Result<CpuTimes> {
    // The command name (field 2) may hold spaces; fields after it start past the last ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("malformed {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime, stime, cutime, cstime are fields 14 to 17.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i - 3)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("malformed field {i} of {path}"))
    };
    Ok(CpuTimes {
        own: (ticks(14)? + ticks(15)?) as f64 / hz,
        children: (ticks(16)? + ticks(17)?) as f64 / hz,
    })
}

/// Clock ticks a second (`_SC_CLK_TCK`; 100 if the system does not say).
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// Reads `/proc/<which>/stat`.
pub fn cpu_times(which: &str) -> anyhow::Result<CpuTimes> {
    let path = format!("/proc/{which}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat(&path, &text, clock_ticks())
}

/// utime + stime of this process, in seconds.
pub fn cpu_seconds() -> anyhow::Result<f64> {
    Ok(cpu_times("self")?.own)
}

/// Own CPU seconds of process `pid`, or 0 when there is none (it is not accounted then).
pub fn own_cpu(pid: Option<&str>) -> f64 {
    pid.and_then(|p| cpu_times(p).ok()).map_or(0.0, |c| c.own)
}

/// The parent pid in a `/proc/<pid>/stat` text (field 4).
pub fn parse_ppid(text: &str) -> Option<u32> {
    let rest = text.rsplit_once(')')?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Own CPU seconds of `root` and of every live process descending from it (a server that forks
/// a process per connection, such as `sshd`), or 0 when `root` is gone.
pub fn tree_cpu(root: Option<&str>) -> f64 {
    let Some(root) = root.and_then(|r| r.parse::<u32>().ok()) else {
        return 0.0;
    };
    let hz = clock_ticks();
    // (pid, ppid, own CPU) of every process that can be read now.
    let mut procs = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let path = format!("/proc/{pid}/stat");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let (Some(ppid), Ok(t)) = (parse_ppid(&text), parse_stat(&path, &text, hz)) {
                procs.push((pid, ppid, t.own));
            }
        }
    }
    descendants_cpu(root, &procs)
}

/// The CPU of `root` and its descendants among `(pid, ppid, cpu)` entries.
pub fn descendants_cpu(root: u32, procs: &[(u32, u32, f64)]) -> f64 {
    let mut tree = vec![root];
    let mut total = 0.0;
    let mut i = 0;
    while let Some(&pid) = tree.get(i) {
        for &(p, pp, cpu) in procs {
            if p == pid {
                total += cpu;
            }
            // Bounded by the number of processes: a pid enters the tree once.
            if pp == pid && p != pid && !tree.contains(&p) {
                tree.push(p);
            }
        }
        i += 1;
    }
    total
}

/// CPU this process used over `dur` of wall time, as a percentage of one core.
pub async fn cpu_percent_over(dur: Duration) -> anyhow::Result<f64> {
    let c0 = cpu_seconds()?;
    let t0 = Instant::now();
    tokio::time::sleep(dur).await;
    let c1 = cpu_seconds()?;
    Ok(100.0 * (c1 - c0) / t0.elapsed().as_secs_f64())
}

/// The 1-minute load average of a `/proc/loadavg` text.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// The 1-minute load average (0 if unreadable).
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| parse_loadavg(&t))
        .unwrap_or(0.0)
}

/// Samples a process's `VmRSS` at a fixed interval; stops when dropped.
pub struct RssSampler {
    max_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling process `pid` every `every` (on the current tokio runtime).
    pub fn start(pid: &str, every: Duration) -> RssSampler {
        let max_kib = Arc::new(AtomicU64::new(0));
        let (max, pid) = (max_kib.clone(), pid.to_string());
        let task = tokio::spawn(async move {
            loop {
                if let Ok(kib) = status_kib(&pid, "VmRSS") {
                    max.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(every).await;
            }
        });
        RssSampler { max_kib, task }
    }

    /// The largest sample since the last call.
    pub fn take_max_kib(&self) -> u64 {
        self.max_kib.swap(0, Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_pid_is_read_past_a_command_name_with_spaces() {
        let text = "4242 (sshd: root [priv]) S 17 4242 4242 0 -1 4194560 1 0 0 0 3 4 0 0 20 0";
        assert_eq!(parse_ppid(text), Some(17));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn a_tree_counts_its_root_and_every_descendant_only() {
        let procs = [
            (10, 1, 1.0),  // root
            (11, 10, 2.0), // child
            (12, 11, 4.0), // grandchild
            (13, 1, 8.0),  // unrelated
            (14, 13, 16.0),
        ];
        assert_eq!(descendants_cpu(10, &procs), 7.0);
        assert_eq!(descendants_cpu(13, &procs), 24.0);
        assert_eq!(descendants_cpu(99, &procs), 0.0);
        assert!(tree_cpu(Some(&std::process::id().to_string())) >= 0.0);
    }

    /// Lines of a real `/proc/<pid>/status`.
    const STATUS: &str = "Name:\tcph\n\
        Umask:\t0022\n\
        State:\tS (sleeping)\n\
        VmPeak:\t 1234568 kB\n\
        VmHWM:\t   98765 kB\n\
        VmRSS:\t   45678 kB\n\
        RssAnon:\t   40000 kB\n\
        VmRSSX:\t 1 kB\n\
        Threads:\t17\n";

    /// A `/proc/<pid>/stat` whose command name holds spaces and a `)`; utime 250, stime 150,
    /// cutime 30, cstime 20.
    const STAT: &str = "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 1200 300 0 0 \
        250 150 30 20 20 0 17 0 12345 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn status_lines_are_read_by_exact_key() {
        assert_eq!(parse_status_kib(STATUS, "VmRSS"), Some(45678));
        assert_eq!(parse_status_kib(STATUS, "VmHWM"), Some(98765));
        assert_eq!(parse_status_kib(STATUS, "VmPeak"), Some(1_234_568));
        assert_eq!(parse_status_kib(STATUS, "Threads"), Some(17));
        // A key is not a prefix of a longer key.
        assert_eq!(parse_status_kib(STATUS, "Rss"), None);
        assert_eq!(parse_status_kib(STATUS, "VmSwap"), None);
        assert_eq!(parse_status_kib(STATUS, "State"), None);
        assert_eq!(parse_status_kib("", "VmRSS"), None);
    }

    #[test]
    fn stat_fields_count_from_past_the_command_name() {
        let t = parse_stat("/proc/4242/stat", STAT, 100.0).unwrap();
        assert_eq!(
            t,
            CpuTimes {
                own: 4.0,
                children: 0.5
            }
        );
        let t = parse_stat("/proc/4242/stat", STAT, 250.0).unwrap();
        assert_eq!(
            t,
            CpuTimes {
                own: 1.6,
                children: 0.2
            }
        );
    }

    #[test]
    fn malformed_stat_texts_are_errors_naming_the_file() {
        let e = parse_stat("/proc/1/stat", "4242 no name here", 100.0).unwrap_err();
        assert_eq!(e.to_string(), "malformed /proc/1/stat");
        let e = parse_stat("/proc/1/stat", "1 (x) S 1 2 3 4 5 6 7 8 9 10", 100.0).unwrap_err();
        assert_eq!(e.to_string(), "malformed field 14 of /proc/1/stat");
        let e = parse_stat(
            "/proc/1/stat",
            "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 1 1 1",
            100.0,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "malformed field 14 of /proc/1/stat");
    }

    #[test]
    fn the_load_average_is_the_first_field() {
        assert_eq!(parse_loadavg("0.52 0.58 0.59 3/977 12345\n"), Some(0.52));
        assert_eq!(parse_loadavg("12.00 1 1 1/1 1"), Some(12.0));
        assert_eq!(parse_loadavg(""), None);
        assert_eq!(parse_loadavg("x 1 1"), None);
    }

    #[test]
    fn this_process_reads_as_alive_and_busy() {
        assert!(status_kib("self", "VmRSS").unwrap() > 0);
        assert!(rss_of_kib(Some("self")) > 0);
        assert_eq!(rss_of_kib(None), 0);
        assert!(status_kib("self", "NoSuchKey").is_err());
        let t0 = cpu_seconds().unwrap();
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(100) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(cpu_seconds().unwrap() > t0);
        assert!(own_cpu(Some("self")) > 0.0);
        assert_eq!(own_cpu(None), 0.0);
        assert!(loadavg() >= 0.0);
    }

    #[tokio::test]
    async fn the_sampler_keeps_the_largest_sample_until_taken() {
        let s = RssSampler::start("self", Duration::from_millis(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let first = s.take_max_kib();
        assert!(first > 0);
        // Taking resets it; the sampler goes on.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(s.take_max_kib() > 0);
    }
}
