//! The `tessera bench` command line, and each scenario's defaults.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::units::{format_size, parse_size};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
/// S3's smallest part, except the last one.
const MIN_PART: u64 = 5 * MIB;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// PutObject of --count objects of --size, --concurrency in flight.
    Put,
    /// GetObject of --count objects of --size (uploaded first, not timed).
    Get,
    /// Random --range-size ranges of one --size object by --concurrency readers.
    Range,
    /// One --size object in --part-size parts; or, with --parts N, Complete of N copied parts.
    Multipart,
    /// 4 KiB objects: a PutObject phase, then a GetObject phase.
    Small,
    /// ListObjectsV2 of --count keys in pages of 1,000 (keys created first, not timed).
    List,
    /// DeleteObject of --count objects, then DeleteObjects of --count more in batches of 1,000.
    Delete,
    /// --count PutObjects of one held --size content, --count instant uploads of it, one of a held 1 GiB.
    Dedup,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Put => "put",
            Scenario::Get => "get",
            Scenario::Range => "range",
            Scenario::Multipart => "multipart",
            Scenario::Small => "small",
            Scenario::List => "list",
            Scenario::Delete => "delete",
            Scenario::Dedup => "dedup",
        }
    }

    /// (size, count, concurrency) when not given.
    fn defaults(self) -> (u64, u64, usize) {
        match self {
            Scenario::Put | Scenario::Get | Scenario::Dedup => (16 * MIB, 64, 4),
            Scenario::Range => (1024 * MIB, 2048, 8),
            Scenario::Multipart => (1024 * MIB, 1, 4),
            Scenario::Small => (4 * KIB, 10_000, 16),
            Scenario::List => (0, 10_000, 16),
            Scenario::Delete => (4 * KIB, 10_000, 16),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The S3 endpoint, e.g. http://127.0.0.1:9000.
    #[arg(long)]
    pub endpoint: String,
    #[arg(long, env = "TESSERA_ACCESS_KEY", hide_env_values = true)]
    pub access_key: String,
    #[arg(long, env = "TESSERA_SECRET_KEY", hide_env_values = true)]
    pub secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Object size (16MiB, 4KiB, 1GiB ...); per-scenario default.
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,
    /// Objects, ranges or keys; per-scenario default.
    #[arg(long)]
    pub count: Option<u64>,
    /// Requests in flight; per-scenario default.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Multipart part size [default: 16MiB; 5MiB with --parts].
    #[arg(long, value_parser = parse_size)]
    pub part_size: Option<u64>,
    /// Multipart: time CompleteMultipartUpload of N parts made by UploadPartCopy.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub parts: Option<u16>,
    /// Range scenario: bytes per ranged GET.
    #[arg(long, value_parser = parse_size, default_value = "1MiB")]
    pub range_size: u64,
    /// Stop starting requests after this long (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Use this bucket (created if missing, kept) instead of a fresh tessera-bench-<random>.
    #[arg(long)]
    pub bucket: Option<String>,
    /// Folder on the data disk for the disk-speed measurement.
    #[arg(long, default_value = ".")]
    pub disk_dir: PathBuf,
    /// Skip measuring the machine limits.
    #[arg(long)]
    pub no_limits: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The server's process id when it runs on this machine: its CPU time per
    /// timed phase is reported beside the benchmark's own.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Enable versioning on the bucket before the scenario (each write makes a version).
    #[arg(long)]
    pub versioning: bool,
    /// List scenario: write each key this many times (implies --versioning
    /// when above 1), so the listing runs over noncurrent versions.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub versions: u64,
}

/// The arguments with every default filled in and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub size: u64,
    pub count: u64,
    pub concurrency: usize,
    pub part_size: u64,
    pub range_size: u64,
    pub parts: Option<u16>,
    pub duration: Option<Duration>,
    pub server_pid: Option<u32>,
    pub versioning: bool,
    pub versions: u64,
}

impl Settings {
    pub fn resolve(args: &BenchArgs) -> Result<Settings, String> {
        let (size, count, concurrency) = args.scenario.defaults();
        let many = args.parts.is_some();
        let s = Settings {
            size: args.size.unwrap_or(size),
            count: args.count.unwrap_or(if args.duration.is_some() && args.scenario == Scenario::Range {
                u64::MAX
            } else {
                count
            }),
            concurrency: args.concurrency.unwrap_or(concurrency).max(1),
            part_size: args.part_size.unwrap_or(if many { MIN_PART } else { 16 * MIB }),
            range_size: args.range_size,
            parts: args.parts,
            duration: args.duration,
            server_pid: args.server_pid,
            versioning: args.versioning || args.versions > 1,
            versions: args.versions,
        };
        s.check(args.scenario).map(|()| s)
    }

    fn check(&self, scenario: Scenario) -> Result<(), String> {
        match scenario {
            Scenario::Range if self.range_size == 0 || self.range_size > self.size => Err(format!(
                "--range-size {} must be between 1 byte and --size {}",
                format_size(self.range_size),
                format_size(self.size)
            )),
            Scenario::Multipart
                if self.part_size < MIN_PART && (self.parts.is_some() || self.size > self.part_size) =>
            {
                Err(format!("--part-size must be at least 5 MiB (S3's minimum), not {}", format_size(self.part_size)))
            }
            Scenario::Multipart if self.size == 0 => Err("--size must not be 0 for multipart".into()),
            Scenario::Dedup if self.size == 0 => Err("--size must not be 0 for dedup".into()),
            Scenario::Multipart if self.size.div_ceil(self.part_size) > 10_000 => {
                Err("more than 10,000 parts: raise --part-size".into())
            }
            _ => Ok(()),
        }
    }
}
