//! An HDR-like log-linear latency histogram: exact below 256 µs, under
//! 0.8 % relative error above, constant memory however long the run.

use super::*;

/// Sub-buckets per power of two: values below `2 * SUB` µs are exact, above
/// that the relative error is below `1 / SUB`.
pub(crate) const SUB_BITS: u32 = 7;
pub(crate) const SUB: usize = 1 << SUB_BITS;
/// Enough buckets for values up to `u32::MAX` µs (71 minutes).
pub(crate) const BUCKETS: usize = 2 * SUB + (32 - SUB_BITS as usize - 1) * SUB;

/// A log-linear latency histogram in microseconds, HDR style.
#[derive(Clone, Default)]
pub(crate) struct Hist {
    /// Allocated on the first record.
    pub(crate) counts: Vec<u64>,
    pub(crate) total: u64,
    pub(crate) sum: u64,
    pub(crate) max: u64,
}

impl Hist {
    pub(crate) fn index(v: u64) -> usize {
        if v < 2 * SUB as u64 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let shift = msb - SUB_BITS;
        let top = (v >> shift) as usize;
        2 * SUB + (shift as usize - 1) * SUB + (top - SUB)
    }

    /// The representative value of a bucket (its midpoint).
    pub(crate) fn value(index: usize) -> u64 {
        if index < 2 * SUB {
            return index as u64;
        }
        let rel = index - 2 * SUB;
        let shift = (rel / SUB + 1) as u32;
        let top = (rel % SUB + SUB) as u64;
        let low = top << shift;
        low + ((1u64 << shift) - 1) / 2
    }

    pub(crate) fn record(&mut self, micros: u64) {
        let v = micros.min(u64::from(u32::MAX));
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.sum += v;
        self.max = self.max.max(v);
    }

    pub(crate) fn merge(&mut self, other: &Hist) {
        if other.total == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    pub(crate) fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
        self.sum = 0;
        self.max = 0;
    }

    /// The value at quantile `q` (0..=1); never above the exact maximum.
    pub(crate) fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::value(i).min(self.max));
            }
        }
        Some(self.max)
    }

    pub(crate) fn summary(&self) -> Option<LatencySummary> {
        (self.total > 0).then(|| LatencySummary {
            p50: self.quantile(0.50).unwrap_or(0),
            p90: self.quantile(0.90).unwrap_or(0),
            p99: self.quantile(0.99).unwrap_or(0),
            max: self.max,
            mean: self.sum / self.total,
        })
    }
}

/// Latency figures in microseconds.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct LatencySummary {
    pub(crate) p50: u64,
    pub(crate) p90: u64,
    pub(crate) p99: u64,
    pub(crate) max: u64,
    pub(crate) mean: u64,
}
