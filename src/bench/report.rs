//! The results: one row per timed phase, as a table or as JSON, each read
//! against the machine limit that bounds it.

use std::fmt::Write as _;
use std::time::Duration;

use super::limits::Limits;
use super::stats::Phase;
use super::units::mib_per_s;

/// `/proc` counts CPU time in 10 ms ticks: shorter phases get no CPU figures.
const MIN_CPU_SECS: f64 = 0.05;

/// The machine limit a phase is read against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Writes: the server hashes every byte with MD5 on one core per stream,
    /// and fsyncs it to the data disk.
    Write,
    /// Reads: the data disk's sequential read speed (the page cache may beat it).
    DiskRead,
    None,
}

/// A named figure beside a row: `complete 12.3 ms`.
#[derive(Debug, Clone)]
pub struct Note {
    pub label: &'static str,
    pub value: f64,
    pub unit: &'static str,
}

pub struct Row {
    pub name: String,
    pub phase: Phase,
    /// Throughput rows show MiB/s; operation-rate rows only ops/s.
    pub throughput: bool,
    pub basis: Basis,
    pub notes: Vec<Note>,
}

impl Row {
    pub fn new(name: impl Into<String>, phase: Phase, throughput: bool, basis: Basis) -> Row {
        Row { name: name.into(), phase, throughput, basis, notes: Vec::new() }
    }

    pub fn note(mut self, label: &'static str, value: f64, unit: &'static str) -> Row {
        self.notes.push(Note { label, value, unit });
        self
    }

    fn mib_s(&self) -> Option<f64> {
        self.throughput.then(|| mib_per_s(self.phase.bytes, self.phase.elapsed.as_secs_f64()))
    }

    /// This row's MiB/s over each machine limit that bounds it.
    fn ratios(&self, limits: Option<&Limits>) -> Vec<(f64, &'static str)> {
        let (Some(l), Some(mib_s)) = (limits, self.mib_s()) else { return Vec::new() };
        let against: &[(f64, &'static str)] = match self.basis {
            Basis::Write => &[(l.md5_mib_s, "md5"), (l.disk_write_mib_s, "disk write")],
            Basis::DiskRead => &[(l.disk_read_mib_s, "disk read")],
            Basis::None => &[],
        };
        against.iter().map(|&(limit, name)| (mib_s / limit, name)).collect()
    }

    /// CPU cores busy on average: `client+server` (the server only when measured).
    fn cores(&self) -> String {
        let secs = self.phase.elapsed.as_secs_f64();
        if secs < MIN_CPU_SECS {
            return "-".to_string();
        }
        let cores = |d: Option<Duration>| d.filter(|_| secs > 0.0).map(|d| d.as_secs_f64() / secs);
        match (cores(self.phase.cpu.client), cores(self.phase.cpu.server)) {
            (Some(c), Some(s)) => format!("{c:.2}+{s:.2}"),
            (Some(c), None) => format!("{c:.2}"),
            _ => "-".to_string(),
        }
    }

    /// The server's peak RSS, then CPU seconds per GiB moved (throughput rows)
    /// or microseconds per operation: steadier than rates on a shared machine,
    /// and comparable across machines once divided by the MD5 limit.
    fn server_costs(&self) -> Vec<Note> {
        let p = &self.phase;
        let gib = p.bytes as f64 / (1u64 << 30) as f64;
        let mut notes = Vec::new();
        if let Some(kib) = p.cpu.server_peak_rss_kib {
            notes.push(Note { label: "server peak RSS", value: kib as f64 / 1024.0, unit: "MiB" });
        }
        if p.elapsed.as_secs_f64() < MIN_CPU_SECS {
            return notes;
        }
        for (who, cpu) in [("server", p.cpu.server), ("client", p.cpu.client)] {
            let Some(secs) = cpu.map(|d| d.as_secs_f64()) else { continue };
            let note = match self.throughput {
                true if gib > 0.0 => Note { label: cpu_label(who, true), value: secs / gib, unit: "s" },
                false if p.ops > 0 => {
                    Note { label: cpu_label(who, false), value: secs * 1e6 / p.ops as f64, unit: "us" }
                }
                _ => continue,
            };
            notes.push(note);
        }
        notes
    }

    fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        self.phase.latencies.percentile(p).map(ms)
    }
}

fn cpu_label(who: &str, per_gib: bool) -> &'static str {
    match (who, per_gib) {
        ("server", true) => "server CPU per GiB",
        ("server", false) => "server CPU per op",
        (_, true) => "client CPU per GiB",
        (_, false) => "client CPU per op",
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

/// The human-readable report.
pub fn table(rows: &mut [Row], limits: Option<&Limits>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36} {:>7} {:>9} {:>9} {:>9} {:>9} {:>6} {:>10}  vs limit",
        "scenario", "ops", "MiB/s", "ops/s", "p50 ms", "p99 ms", "errors", "cores c+s"
    );
    for row in rows.iter_mut() {
        let (p50, p99) = (row.percentile_ms(50.0), row.percentile_ms(99.0));
        let ratios: Vec<String> =
            row.ratios(limits).iter().map(|(r, name)| format!("{:.0}% of {name}", r * 100.0)).collect();
        let ratio = ratios.join(", ");
        let _ = writeln!(
            out,
            "{:<36} {:>7} {:>9} {:>9.1} {:>9} {:>9} {:>6} {:>10}  {ratio}",
            row.name,
            row.phase.ops,
            opt(row.mib_s(), 1),
            row.phase.ops_per_s(),
            opt(p50, 2),
            opt(p99, 2),
            row.phase.errors,
            row.cores(),
        );
        for note in row.notes.iter().chain(&row.server_costs()) {
            let _ = writeln!(out, "    {} {:.2} {}", note.label, note.value, note.unit);
        }
        for message in &row.phase.messages {
            let _ = writeln!(out, "    error: {message}");
        }
    }
    if let Some(l) = limits {
        let _ = writeln!(out, "machine limits (no server):");
        let read = format!("disk read ({})", l.read_method);
        let _ = writeln!(out, "    {:<32} {:>9.1} MiB/s", "md5 (one core, md5-many)", l.md5_mib_s);
        let _ = writeln!(out, "    {:<32} {:>9.1} MiB/s", "md5 (one core, md-5 crate)", l.md5_crate_mib_s);
        let _ = writeln!(out, "    {:<32} {:>9.1} MiB/s", "disk write (with fsync)", l.disk_write_mib_s);
        let _ = writeln!(out, "    {read:<32} {:>9.1} MiB/s", l.disk_read_mib_s);
        let fsync = "4 KiB write + fdatasync p50/p99";
        let _ = writeln!(out, "    {fsync:<32} {:>9.0} / {:.0} us", l.fsync_p50_us, l.fsync_p99_us);
    }
    out
}

/// The same report as one JSON document.
pub fn json(rows: &mut [Row], limits: Option<&Limits>) -> String {
    let mut items = Vec::new();
    for row in rows.iter_mut() {
        let (p50, p99) = (row.percentile_ms(50.0), row.percentile_ms(99.0));
        let mut o = format!(
            "{{\"scenario\":{},\"ops\":{},\"bytes\":{},\"seconds\":{},\"mib_s\":{},\"ops_s\":{},\
             \"p50_ms\":{},\"p99_ms\":{},\"errors\":{}",
            quote(&row.name),
            row.phase.ops,
            row.phase.bytes,
            num(Some(row.phase.elapsed.as_secs_f64())),
            num(row.mib_s()),
            num(Some(row.phase.ops_per_s())),
            num(p50),
            num(p99),
            row.phase.errors,
        );
        let cpu = row.phase.cpu;
        let secs = |d: Option<Duration>| num(d.map(|d| d.as_secs_f64()));
        let _ = write!(o, ",\"client_cpu_s\":{},\"server_cpu_s\":{}", secs(cpu.client), secs(cpu.server));
        let ratios: Vec<String> =
            row.ratios(limits).iter().map(|(r, name)| format!("{}:{}", quote(name), num(Some(*r)))).collect();
        let _ = write!(o, ",\"ratios\":{{{}}}", ratios.join(","));
        for note in row.notes.iter().chain(&row.server_costs()) {
            let _ = write!(
                o,
                ",{}:{}",
                quote(&format!("{}_{}", note.label.replace(' ', "_"), note.unit).to_lowercase()),
                num(Some(note.value))
            );
        }
        let messages: Vec<String> = row.phase.messages.iter().map(|m| quote(m)).collect();
        let _ = write!(o, ",\"error_messages\":[{}]}}", messages.join(","));
        items.push(o);
    }
    let limits = limits.map_or_else(
        || "null".to_string(),
        |l| {
            format!(
                "{{\"md5_mib_s\":{},\"md5_crate_mib_s\":{},\"disk_write_mib_s\":{},\"disk_read_mib_s\":{},\"disk_read_method\":{},\
                 \"fsync_p50_us\":{},\"fsync_p99_us\":{}}}",
                num(Some(l.md5_mib_s)),
                num(Some(l.md5_crate_mib_s)),
                num(Some(l.disk_write_mib_s)),
                num(Some(l.disk_read_mib_s)),
                quote(l.read_method),
                num(Some(l.fsync_p50_us)),
                num(Some(l.fsync_p99_us))
            )
        },
    );
    format!("{{\"results\":[{}],\"limits\":{limits}}}\n", items.join(","))
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "null".to_string(),
    }
}

/// A JSON string literal (RFC 8259 section 7).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_escaped_and_ratios_use_the_basis() {
        let mut phase = Phase { ops: 2, bytes: 200 << 20, elapsed: Duration::from_secs(1), ..Phase::default() };
        phase.latencies.record(Duration::from_millis(4));
        phase.fail("bad \"etag\"\n".into());
        let limits = Limits {
            md5_mib_s: 400.0,
            md5_crate_mib_s: 300.0,
            disk_write_mib_s: 1.0,
            disk_read_mib_s: 1.0,
            read_method: "O_DIRECT",
            fsync_p50_us: 120.0,
            fsync_p99_us: 900.0,
        };
        let mut rows = vec![Row::new("put", phase, true, Basis::Write).note("complete", 1.5, "ms")];
        let doc = json(&mut rows, Some(&limits));
        assert!(doc.contains("\"mib_s\":200.000"), "{doc}");
        assert!(doc.contains("\"ratios\":{\"md5\":0.500,\"disk write\":200.000}"), "{doc}");
        assert!(doc.contains("\"complete_ms\":1.500"), "{doc}");
        assert!(doc.contains("\"fsync_p50_us\":120.000,\"fsync_p99_us\":900.000"), "{doc}");
        assert!(doc.contains("bad \\\"etag\\\"\\u000a"), "{doc}");
        assert!(table(&mut rows, Some(&limits)).contains("50% of md5, 20000% of disk write"));
    }
}
