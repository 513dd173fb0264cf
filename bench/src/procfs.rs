//! Reading a process's CPU time and memory from `/proc` (Linux).

use anyhow::{Context, anyhow};

/// Clock ticks per second used by `/proc/PID/stat` (`USER_HZ`, 100 on every
/// mainstream Linux architecture).
const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU seconds of a process (all its threads), from the text of
/// `/proc/PID/stat`.
pub fn parse_cpu_seconds(stat: &str) -> anyhow::Result<f64> {
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .ok_or_else(|| anyhow!("malformed stat line"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15) → indexes 11 and 12.
    let utime: u64 = fields
        .get(11)
        .ok_or_else(|| anyhow!("stat line without utime"))?
        .parse()?;
    let stime: u64 = fields
        .get(12)
        .ok_or_else(|| anyhow!("stat line without stime"))?
        .parse()?;
    Ok((utime + stime) as f64 / TICKS_PER_SEC)
}

/// CPU seconds used so far by `pid` (`"self"` works too).
pub fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    parse_cpu_seconds(&text)
}

/// A `kB` field such as `VmRSS` or `VmHWM` from the text of `/proc/PID/status`.
pub fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// `(VmRSS, VmHWM)` of `pid` in kB.
pub fn memory_kb(pid: &str) -> anyhow::Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let rss = parse_status_kb(&text, "VmRSS").ok_or_else(|| anyhow!("no VmRSS for {pid}"))?;
    let hwm = parse_status_kb(&text, "VmHWM").unwrap_or(rss);
    Ok((rss, hwm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_name() {
        let line = "1234 (my proc (x)) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 3 0 100 1000000 300 18446744073709551615";
        assert!((parse_cpu_seconds(line).unwrap() - 3.0).abs() < 1e-9);
        assert!(parse_cpu_seconds("garbage").is_err());
    }

    #[test]
    fn status_fields() {
        let status = "Name:\tx\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(10240));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(20480));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn reads_self() {
        assert!(cpu_seconds("self").unwrap() >= 0.0);
        let (rss, hwm) = memory_kb("self").unwrap();
        assert!(rss > 0 && hwm >= rss);
    }
}
