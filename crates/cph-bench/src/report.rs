//! The summary table every benchmark prints, and the arithmetic of its figures.

/// One line of the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub figure: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    /// Whether the target was met; `None` when the row has no target to meet.
    pub met: Option<bool>,
}

impl Row {
    /// The row as a Markdown table line.
    pub fn markdown(&self) -> String {
        let met = match self.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "–",
        };
        format!(
            "| {} | {} | {} | {} | {} | {} |",
            self.name, self.figure, self.baseline, self.ratio, self.target, met
        )
    }
}

/// The head of the summary table (column names and the separator line).
pub const TABLE_HEAD: [&str; 2] = [
    "| benchmark | figure | same-run baseline | ratio | target | met |",
    "|---|---|---|---|---|---|",
];

/// The summary table: a blank line, the head, one line per row.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from("\n");
    for line in TABLE_HEAD {
        out.push_str(line);
        out.push('\n');
    }
    for r in rows {
        out.push_str(&r.markdown());
        out.push('\n');
    }
    out
}

/// Prints [`table`] on standard output.
pub fn print_table(rows: &[Row]) {
    print!("{}", table(rows));
}

/// Bytes in (decimal) megabytes.
pub fn mb(bytes: f64) -> f64 {
    bytes / 1e6
}

/// `a / b` with two decimals, or `n/a (baseline 0)` when the baseline is not positive.
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "n/a (baseline 0)".into()
    }
}

/// The median (the mean of the middle two for an even count; 0 for none).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The [`median`] of `f` over `items`.
pub fn median_by<T>(items: &[T], f: impl Fn(&T) -> f64) -> f64 {
    median(&items.iter().map(f).collect::<Vec<_>>())
}

/// The nearest-rank percentile (`p` in 0..=1) of sorted values (0 for none).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(met: Option<bool>) -> Row {
        Row {
            name: "adb push 1 GiB".into(),
            figure: "512 MB/s".into(),
            baseline: "cp 900 MB/s".into(),
            ratio: ratio(512.0, 900.0),
            target: "≥ 0.60 of cp".into(),
            met,
        }
    }

    #[test]
    fn ratios_have_two_decimals_and_name_a_zero_baseline() {
        assert_eq!(ratio(1.0, 3.0), "0.33");
        assert_eq!(ratio(2.0, 3.0), "0.67");
        assert_eq!(ratio(10.0, 4.0), "2.50");
        assert_eq!(ratio(0.0, 5.0), "0.00");
        assert_eq!(ratio(5.0, 0.0), "n/a (baseline 0)");
        assert_eq!(ratio(5.0, -1.0), "n/a (baseline 0)");
    }

    #[test]
    fn megabytes_are_decimal() {
        assert_eq!(mb(1e6), 1.0);
        assert_eq!(mb(1024.0 * 1024.0), 1.048576);
        assert_eq!(mb(0.0), 0.0);
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[-1.0, 10.0]), 4.5);
    }

    #[test]
    fn median_by_maps_before_taking_the_median() {
        let steps = [(1.0, 100.0), (3.0, 10.0), (2.0, 1.0)];
        assert_eq!(median_by(&steps, |s| s.0), 2.0);
        assert_eq!(median_by(&steps, |s| s.1), 10.0);
        assert_eq!(median_by(&steps, |s| s.0 / s.1), 0.3);
        assert_eq!(median_by::<f64>(&[], |s| *s), 0.0);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v[..50], 0.99), 50.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), 2.0);
        // The rank rounds up: p99 of 10 values is the largest, p34 of 3 the second.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 0.91), 10.0);
        assert_eq!(percentile(&ten, 0.99), 10.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.34), 2.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn rows_render_as_markdown_with_the_verdict() {
        assert_eq!(
            row(Some(false)).markdown(),
            "| adb push 1 GiB | 512 MB/s | cp 900 MB/s | 0.57 | ≥ 0.60 of cp | MISSED |"
        );
        assert!(
            row(Some(true))
                .markdown()
                .ends_with("| ≥ 0.60 of cp | met |")
        );
        assert!(row(None).markdown().ends_with("| ≥ 0.60 of cp | – |"));
    }

    #[test]
    fn the_table_has_its_head_then_one_line_per_row() {
        let t = table(&[row(Some(true)), row(None)]);
        let lines: Vec<&str> = t.split('\n').collect();
        assert_eq!(
            lines,
            [
                "",
                "| benchmark | figure | same-run baseline | ratio | target | met |",
                "|---|---|---|---|---|---|",
                row(Some(true)).markdown().as_str(),
                row(None).markdown().as_str(),
                "",
            ]
        );
        assert_eq!(
            table(&[]),
            format!("\n{}\n{}\n", TABLE_HEAD[0], TABLE_HEAD[1])
        );
    }
}
