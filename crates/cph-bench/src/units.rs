//! Byte sizes: the binary units, parsing `--size`-style arguments and rendering sizes.

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;

/// Parses `1073741824`, `256MiB`, `2GiB`, `512KiB`, `1G`, `1TiB` (binary units; `B` optional;
/// `KB`, `MB`, … are read as binary too). A size must be positive.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 1GiB or 256MiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => KIB,
        "m" | "mib" | "mb" => MIB,
        "g" | "gib" | "gb" => GIB,
        "t" | "tib" | "tb" => TIB,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if v == 0 {
        return Err("a size must be positive".into());
    }
    Ok(v)
}

/// `1.5 GiB` / `256 MiB` / `64 KiB`: GiB with one decimal, MiB and KiB rounded to whole units.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes >= GIB {
        format!("{:.1} GiB", b / GIB as f64)
    } else if bytes >= MIB {
        format!("{:.0} MiB", b / MIB as f64)
    } else {
        format!("{:.0} KiB", b / KIB as f64)
    }
}

/// `1 GiB` / `64 MiB` / `3.5 KiB`: whole GiB only for exact multiples (anything else of a GiB or
/// more in MiB), MiB rounded, KiB with one decimal.
pub fn human_whole(bytes: u64) -> String {
    if bytes >= GIB && bytes.is_multiple_of(GIB) {
        format!("{} GiB", bytes / GIB)
    } else if bytes >= MIB {
        format!("{:.0} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / KIB as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("2GiB"), Ok(2 * GIB));
        assert_eq!(parse_size("256MiB"), Ok(256 * MIB));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1g"), Ok(GIB));
        assert_eq!(parse_size("1 GB"), Ok(GIB));
        assert_eq!(parse_size(" 3m "), Ok(3 * MIB));
        assert_eq!(parse_size("2TiB"), Ok(2 * TIB));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
    }

    #[test]
    fn bad_sizes_are_refused_with_the_reason() {
        assert_eq!(parse_size("0"), Err("a size must be positive".into()));
        assert!(parse_size("0MiB").is_err());
        assert!(
            parse_size("1PiB")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("GiB").unwrap_err().contains("is not a size"));
        assert!(parse_size("").is_err());
        assert!(parse_size("-1GiB").is_err());
        assert!(
            parse_size("99999999999T")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn human_renders_gib_with_a_decimal() {
        assert_eq!(human(GIB), "1.0 GiB");
        assert_eq!(human(3 * GIB / 2), "1.5 GiB");
        assert_eq!(human(40 * GIB), "40.0 GiB");
        assert_eq!(human(256 * MIB), "256 MiB");
        assert_eq!(human(GIB - 1), "1024 MiB");
        assert_eq!(human(8 * MIB), "8 MiB");
        assert_eq!(human(64 * KIB), "64 KiB");
        assert_eq!(human(1536), "2 KiB");
        assert_eq!(human(0), "0 KiB");
    }

    #[test]
    fn human_whole_renders_exact_gib_without_a_decimal() {
        assert_eq!(human_whole(GIB), "1 GiB");
        assert_eq!(human_whole(4 * GIB), "4 GiB");
        assert_eq!(human_whole(3 * GIB / 2), "1536 MiB");
        assert_eq!(human_whole(64 * MIB), "64 MiB");
        assert_eq!(human_whole(2 * GIB + 512 * MIB), "2560 MiB");
        assert_eq!(human_whole(3584), "3.5 KiB");
        assert_eq!(human_whole(512), "0.5 KiB");
    }
}
