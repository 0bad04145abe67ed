//! Human units: `16MiB`, `4k`, `1GB` on the command line; MiB and ms in the report.

const KIB: u64 = 1024;

/// Parses a byte count: a whole number with an optional unit. Binary units
/// (`KiB`, `MiB`, `GiB`, `TiB`, and the bare `K`, `M`, `G`, `T` as storage tools
/// use them) are powers of 1024; `KB`, `MB`, `GB`, `TB` are powers of 1000.
/// Case-insensitive, optional `B` suffix, optional space: `16MiB`, `4 k`, `100`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| format!("`{text}` is not a size (examples: 4KiB, 16MiB, 1GiB)"))?;
    let multiplier = unit_multiplier(unit.trim()).ok_or_else(|| {
        format!("unknown unit `{}` in `{text}` (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", unit.trim())
    })?;
    number.checked_mul(multiplier).ok_or_else(|| format!("`{text}` is too large"))
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    let unit = unit.to_ascii_lowercase();
    if unit.is_empty() || unit == "b" {
        return Some(1);
    }
    let mut chars = unit.chars();
    let power = match chars.next()? {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        _ => return None,
    };
    // `16M`, `16Mi` and `16MiB` are binary, as storage tools read them; only `16MB` is decimal.
    let base = match chars.as_str() {
        "" | "i" | "ib" => KIB,
        "b" => 1000,
        _ => return None,
    };
    Some(base.pow(power))
}

/// `16 MiB`, `1 GiB`, `4 KiB`, `100 B`: the largest binary unit that divides evenly.
#[allow(clippy::indexing_slicing, reason = "the loop keeps unit + 1 < UNITS.len()")]
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= KIB && value.is_multiple_of(KIB) && unit + 1 < UNITS.len() {
        value /= KIB;
        unit += 1;
    }
    format!("{value} {}", UNITS[unit])
}

/// Bytes per second in MiB/s.
pub fn mib_per_s(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / (KIB * KIB) as f64 / secs
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("16 mib"), Ok(16 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert_eq!(parse_size("10B"), Ok(10));
    }

    #[test]
    fn bad_sizes() {
        for bad in ["", "MiB", "-1", "1.5MiB", "16XB", "16MiBs", "1 2", "99999999999999TiB"] {
            assert!(parse_size(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format_size(16 << 20), "16 MiB");
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(1000), "1000 B");
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(5 << 30), "5 GiB");
        assert!((mib_per_s(10 << 20, 2.0) - 5.0).abs() < 1e-9);
        assert_eq!(mib_per_s(1, 0.0), 0.0);
    }
}
