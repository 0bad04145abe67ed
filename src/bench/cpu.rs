//! CPU time of this process and, when it runs on the same machine, of the
//! server, over each timed phase. On a shared or small machine the CPU seconds
//! per operation are steadier than the wall-clock rates, and the client's share
//! shows whether the benchmark itself is the bottleneck. For the server, also
//! its peak RSS during the phase: the kernel's high-water mark is reset when
//! the phase starts (`clear_refs`) and read when it ends.

use std::time::Duration;

/// Linux's USER_HZ: `/proc/<pid>/stat` counts CPU time in 1/100 s on every
/// architecture Linux supports (the kernel scales to it for user space).
const TICKS_PER_SECOND: u64 = 100;

/// CPU time (user + system) from the text of `/proc/<pid>/stat`. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted from
/// the last `)`: utime and stime are fields 14 and 15 of the whole line.
pub fn parse_stat(stat: &str) -> Option<Duration> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / TICKS_PER_SECOND))
}

fn cpu_of(pid: &str) -> Option<Duration> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU used by the client and the server between [`CpuMeter::start`] and `stop`.
#[derive(Debug, Default, Clone, Copy)]
pub struct CpuUse {
    pub client: Option<Duration>,
    pub server: Option<Duration>,
    /// The server's peak resident set during the phase, in KiB.
    pub server_peak_rss_kib: Option<u64>,
}

pub struct CpuMeter {
    server_pid: Option<u32>,
    client: Option<Duration>,
    server: Option<Duration>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> CpuMeter {
        if let Some(pid) = server_pid {
            // "5" resets VmHWM (proc(5)); without the permission the figure
            // is the peak since the server started, still an upper bound.
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
        CpuMeter { server_pid, client: cpu_of("self"), server: server_pid.and_then(|p| cpu_of(&p.to_string())) }
    }

    pub fn stop(&self) -> CpuUse {
        let since = |before: Option<Duration>, now: Option<Duration>| Some(now?.saturating_sub(before?));
        CpuUse {
            client: since(self.client, cpu_of("self")),
            server: since(self.server, self.server_pid.and_then(|p| cpu_of(&p.to_string()))),
            server_peak_rss_kib: self.server_pid.and_then(peak_rss_kib),
        }
    }
}

/// `VmHWM` from `/proc/<pid>/status`, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utime_and_stime_after_an_awkward_name() {
        let line = "1234 (tes) ra (x)) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(3250)));
        assert_eq!(parse_stat("1 (short) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(CpuMeter::start(None).stop().client.is_some());
        assert!(CpuMeter::start(Some(u32::MAX)).stop().server.is_none());
        let own = CpuMeter::start(Some(std::process::id())).stop();
        assert!(own.server_peak_rss_kib.is_some_and(|kib| kib > 100), "{own:?}");
    }
}
