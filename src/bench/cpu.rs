//! CPU time, in seconds, of the node processes and of the load generator itself; and the
//! nodes' resident memory.
//!
//! A node's time is `utime + stime` from `/proc/<pid>/stat` (fields 14 and 15, in clock ticks),
//! read for the exact pid the supervisor started, before and after the measured window. The
//! generator's is `getrusage(RUSAGE_SELF)`: the whole riptide process, so it includes the few
//! status probes bench itself makes (an upper bound on what the clients cost).

/// CPU seconds (user + system) a process has used so far; `None` if it is gone.
pub fn process_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    ticks_from_stat(&stat).map(|ticks| ticks as f64 / clock_ticks_per_second())
}

/// `utime + stime` from a `/proc/<pid>/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces, so fields are counted after its closing `)`.
fn ticks_from_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// CPU seconds (user + system) this process has used so far.
pub fn own_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Resident memory of a process in MiB (`VmRSS` of `/proc/<pid>/status`); `None` if it is gone.
pub fn process_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    rss_kib_from_status(&status).map(|kib| kib as f64 / 1024.0)
}

/// The `VmRSS:   123456 kB` line of a `/proc/<pid>/status`.
fn rss_kib_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let kib = fields.next()?.parse().ok()?;
    (fields.next()? == "kB").then_some(kib)
}

/// The 1-minute load average, as `/proc/loadavg` gives it.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (riptide node) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(ticks_from_stat(stat), Some(300));
        assert_eq!(ticks_from_stat("garbage"), None);
    }

    #[test]
    fn rss_is_read_from_the_vmrss_line_in_kib() {
        let status = "Name:\triptide-node\nVmPeak:\t  99999 kB\nVmRSS:\t   20480 kB\nThreads:\t4\n";
        assert_eq!(rss_kib_from_status(status), Some(20480));
        assert_eq!(rss_kib_from_status("Name:\tx\n"), None);
        assert_eq!(rss_kib_from_status("VmRSS:\t12 MB\n"), None);
        let own = process_rss_mib(std::process::id()).unwrap();
        assert!(own > 1.0, "this test process holds more than 1 MiB: {own}");
        assert_eq!(process_rss_mib(u32::MAX), None);
    }

    #[test]
    fn this_process_has_a_cpu_time_and_spending_some_raises_it() {
        let pid = std::process::id();
        let before = process_seconds(pid).unwrap();
        let own = own_seconds();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(100) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(own_seconds() > own);
        assert!(process_seconds(pid).unwrap() >= before);
        assert!(load_average().is_some());
    }
}
