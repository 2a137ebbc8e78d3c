//! The results table: one row per figure, Markdown.

use std::time::Duration;

use crate::phases::{FanoutResult, IngestResult, LatencyResult};

#[derive(Default)]
pub struct Table {
    rows: Vec<[String; 3]>,
    /// Requests/s of the load generator straight to the receiver, when measured: every
    /// throughput figure is then also given as a ratio of it.
    ceiling: Option<f64>,
}

impl Table {
    pub fn row(&mut self, phase: &str, figure: &str, value: impl Into<String>) {
        self.rows
            .push([phase.to_owned(), figure.to_owned(), value.into()]);
    }

    pub fn set_ceiling(&mut self, per_second: f64) {
        self.ceiling = (per_second > 0.0).then_some(per_second);
    }

    /// `rate` of a throughput figure, and its ratio to the ceiling when there is one.
    fn throughput(&self, per_second: f64) -> String {
        match self.ceiling {
            Some(ceiling) => format!(
                "{} ({} of ceiling)",
                rate(per_second),
                ratio(per_second, ceiling)
            ),
            None => rate(per_second),
        }
    }

    /// The ceiling's rows; later throughput figures are ratios of its rate.
    pub fn ceiling(&mut self, p: &str, r: &IngestResult, concurrency: usize) {
        self.set_ceiling(r.accepted_per_second());
        self.row(
            p,
            "requests/s, load generator straight to the receiver (204 answers)",
            rate(r.accepted_per_second()),
        );
        self.row(
            p,
            "requests answered / errors",
            format!("{} / {}", int(r.accepted), int(r.errors)),
        );
        self.row(
            p,
            "posting window, clients",
            format!("{}, {concurrency}", seconds(r.elapsed)),
        );
        self.first_error(p, r.first_error.as_deref());
    }

    pub fn ingest(&mut self, p: &str, r: &IngestResult, concurrency: usize) {
        let figure = self.throughput(r.accepted_per_second());
        self.row(p, "events accepted/s (202 answers only)", figure);
        self.row(
            p,
            "events accepted / errors (non-202 or failed)",
            format!("{} / {}", int(r.accepted), int(r.errors)),
        );
        self.row(
            p,
            "posting window, clients",
            format!("{}, {concurrency}", seconds(r.elapsed)),
        );
        self.row(
            p,
            "deliveries arrived during the window",
            format!(
                "{} ({}/s)",
                int(r.delivered.unique),
                rate(r.delivered.unique as f64 / r.elapsed.as_secs_f64().max(f64::EPSILON))
            ),
        );
        self.first_error(p, r.first_error.as_deref());
    }

    pub fn fanout(&mut self, r: &FanoutResult, name: &str) {
        let mut throughput = self.throughput(r.deliveries_per_second());
        if !r.complete() {
            throughput.push_str(" (INCOMPLETE: gave up waiting)");
        }
        self.row(
            name,
            "deliveries/s end to end (first post → last arrival)",
            throughput,
        );
        self.row(
            name,
            "deliveries arrived / expected (events × webhooks)",
            format!(
                "{} / {} ({} × {})",
                int(r.arrived.unique),
                int(r.expected),
                int(r.accepted),
                r.webhooks
            ),
        );
        self.row(name, "end-to-end time", seconds(r.elapsed));
        self.row(
            name,
            "events accepted / errors (of events posted)",
            format!(
                "{} / {} (of {})",
                int(r.accepted),
                int(r.errors),
                int(r.events)
            ),
        );
        self.row(
            name,
            "events accepted/s while posting",
            format!(
                "{} (posting took {})",
                rate(r.accepted_per_second()),
                seconds(r.posting)
            ),
        );
        self.row(name, "duplicate deliveries", int(r.arrived.duplicates()));
        self.first_error(name, r.first_error.as_deref());
    }

    pub fn latency(&mut self, r: &LatencyResult) {
        let name = format!("latency @ {}/s", int(u64::from(r.rate)));
        let name = name.as_str();
        self.row(
            name,
            "events sent / accepted / errors",
            format!("{} / {} / {}", int(r.sent), int(r.accepted), int(r.errors)),
        );
        self.row(
            name,
            "deliveries arrived (of accepted)",
            format!("{} of {}", int(r.arrived), int(r.accepted)),
        );
        for (label, q) in [("p50", 0.50), ("p99", 0.99), ("max", 1.0)] {
            self.row(
                name,
                &format!("latency {label} (post → arrival), ms"),
                r.quantile(q).map_or_else(|| "n/a".to_owned(), millis),
            );
        }
        self.row(
            name,
            "worst send lag behind schedule, ms / most posts in flight",
            format!("{} / {}", millis(r.max_send_lag), int(r.max_in_flight)),
        );
        self.first_error(name, r.first_error.as_deref());
    }

    fn first_error(&mut self, phase: &str, error: Option<&str>) {
        if let Some(error) = error {
            let mut error: String = error.chars().take(160).collect();
            error = error.replace('|', "\\|").replace('\n', " ");
            self.row(phase, "first error", error);
        }
    }

    /// Markdown, columns padded so it reads as plain text too.
    pub fn render(&self) -> String {
        let header = ["phase", "figure", "value"].map(str::to_owned);
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String; 3]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (cell, w))| {
                    let pad = w - cell.chars().count();
                    // Figures right-aligned in the value column.
                    if i == 2 {
                        format!("{}{cell}", " ".repeat(pad))
                    } else {
                        format!("{cell}{}", " ".repeat(pad))
                    }
                })
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = line(&header);
        out.push_str(&format!(
            "|{}|{}|{}:|\n",
            "-".repeat(widths[0] + 2),
            "-".repeat(widths[1] + 2),
            "-".repeat(widths[2] + 1)
        ));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// `12345678` → `12,345,678`.
pub fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `value / ceiling` with three decimals (`0.058`).
pub fn ratio(value: f64, ceiling: f64) -> String {
    if ceiling > 0.0 {
        format!("{:.3}", value / ceiling)
    } else {
        "n/a".to_owned()
    }
}

/// A rate with one decimal and thousands separators.
pub fn rate(per_second: f64) -> String {
    let tenths = (per_second * 10.0).round().max(0.0) as u64;
    format!("{}.{}", int(tenths / 10), tenths % 10)
}

pub fn millis(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

pub fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(12_345_678), "12,345,678");
        assert_eq!(rate(1234.56), "1,234.6");
        assert_eq!(millis(Duration::from_micros(1234)), "1.23");
        assert_eq!(mebibytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }

    #[test]
    fn throughput_figures_are_ratios_of_the_ceiling() {
        assert_eq!(ratio(5_000.0, 70_000.0), "0.071");
        assert_eq!(ratio(1.0, 0.0), "n/a");
        let mut t = Table::default();
        assert_eq!(t.throughput(653.0), "653.0");
        t.set_ceiling(65_300.0);
        assert_eq!(t.throughput(653.0), "653.0 (0.010 of ceiling)");
        t.set_ceiling(0.0);
        assert_eq!(t.throughput(653.0), "653.0");
    }

    #[test]
    fn renders_markdown() {
        let mut t = Table::default();
        t.row("a", "b", "1");
        let text = t.render();
        assert!(text.starts_with("| phase | figure | value |\n"), "{text}");
        assert!(text.ends_with("| a     | b      |     1 |\n"), "{text}");
    }
}
