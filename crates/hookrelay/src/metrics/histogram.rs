//! A histogram of millisecond observations that records with atomics only: the delivery
//! engine observes every attempt, and `prometheus-client`'s own histogram takes a mutex each
//! time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// Counts per bucket (not cumulative; the encoder adds them up), with upper bounds in
/// milliseconds, exposed in seconds. Clones share the counts.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    bounds_ms: &'static [u64],
    /// One per bound, then the `+Inf` bucket.
    counts: Box<[AtomicU64]>,
    sum_ms: AtomicU64,
}

impl Histogram {
    pub fn new(bounds_ms: &'static [u64]) -> Self {
        Histogram(Arc::new(Inner {
            bounds_ms,
            counts: (0..=bounds_ms.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ms: AtomicU64::new(0),
        }))
    }

    pub fn observe_millis(&self, ms: u64) {
        let h = &self.0;
        let bucket = h
            .bounds_ms
            .iter()
            .position(|&bound| ms <= bound)
            .unwrap_or(h.bounds_ms.len());
        h.counts[bucket].fetch_add(1, Ordering::Relaxed);
        h.sum_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Observations so far (for tests and the scrape).
    pub fn count(&self) -> u64 {
        self.0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = &self.0;
        let buckets: Vec<(f64, u64)> = h
            .bounds_ms
            .iter()
            .map(|&ms| ms as f64 / 1000.0)
            .chain(std::iter::once(f64::INFINITY))
            .zip(h.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = h.sum_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new(&[10, 100]);
        for ms in [0, 10, 11, 100, 101, 5000] {
            h.observe_millis(ms);
        }
        let counts: Vec<u64> =
            h.0.counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect();
        assert_eq!(counts, [2, 2, 2]);
        assert_eq!(h.count(), 6);
        assert_eq!(h.0.sum_ms.load(Ordering::Relaxed), 5222);
    }
}
