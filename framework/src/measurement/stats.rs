//! Statistics shared by measurements: nearest-rank percentiles (CL2's client-side latency
//! helper), Prometheus' histogram quantile with linear interpolation, and the perfdash
//! PerfData document shape.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Nearest-rank percentile of ascending-sorted `sorted`: `x[ceil(n·p/100) − 1]`; 0 when empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let n = sorted.len() as f64;
    let rank = (n * p / 100.0).ceil();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let idx = (rank.max(1.0) as usize - 1).min(sorted.len() - 1);
    sorted[idx]
}

/// Sorts `values` and returns the nearest-rank percentiles `ps` (e.g. `[50.0, 90.0, 99.0]`).
pub fn percentiles(values: &mut [f64], ps: &[f64]) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    ps.iter().map(|p| percentile_sorted(values, *p)).collect()
}

/// One cumulative histogram bucket: observations `<= le`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub le: f64,
    pub count: f64,
}

/// Prometheus `histogram_quantile`: `q` in [0,1] over cumulative buckets (any order).
///
/// Linear interpolation inside the bucket holding the rank; the first bucket starts at 0; a
/// `+Inf` bucket is implied by the largest count if missing; a rank falling into `+Inf` yields
/// the upper bound of the last finite bucket. Returns NaN with no observations.
pub fn histogram_quantile(q: f64, buckets: &[Bucket]) -> f64 {
    if buckets.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let mut b: Vec<Bucket> = buckets.to_vec();
    b.sort_by(|x, y| x.le.total_cmp(&y.le));
    // Monotonic fix-up (counts may be slightly off after diffs).
    for i in 1..b.len() {
        if b[i].count < b[i - 1].count {
            b[i].count = b[i - 1].count;
        }
    }
    if b.last().is_some_and(|l| l.le.is_finite()) {
        let c = b.last().map(|l| l.count).unwrap_or(0.0);
        b.push(Bucket {
            le: f64::INFINITY,
            count: c,
        });
    }
    if b.len() < 2 {
        return f64::NAN;
    }
    let total = b[b.len() - 1].count;
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let idx = b
        .iter()
        .position(|x| x.count >= rank)
        .unwrap_or(b.len() - 1);
    if idx == b.len() - 1 {
        return b[b.len() - 2].le;
    }
    if idx == 0 && b[0].le <= 0.0 {
        return b[0].le;
    }
    let (start, prev_count) = if idx == 0 {
        (0.0, 0.0)
    } else {
        (b[idx - 1].le, b[idx - 1].count)
    };
    let end = b[idx].le;
    let in_bucket = b[idx].count - prev_count;
    if in_bucket <= 0.0 {
        return end;
    }
    start + (end - start) * ((rank - prev_count) / in_bucket)
}

/// Count of observations `<= bound` in cumulative `buckets` (largest `le <= bound`).
pub fn count_le(buckets: &[Bucket], bound: f64) -> f64 {
    buckets
        .iter()
        .filter(|b| b.le <= bound)
        .map(|b| b.count)
        .fold(0.0, f64::max)
}

/// One perfdash data item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct DataItem {
    pub data: BTreeMap<String, f64>,
    pub unit: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A perfdash PerfData document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PerfData {
    pub version: String,
    #[serde(rename = "dataItems")]
    pub data_items: Vec<DataItem>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl PerfData {
    /// An empty document of `version`.
    pub fn new(version: &str) -> Self {
        Self {
            version: version.to_string(),
            data_items: Vec::new(),
            labels: BTreeMap::new(),
        }
    }

    /// As a JSON value (for [`super::Summary::content`]).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencyPercentiles {
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub count: usize,
}

impl LatencyPercentiles {
    /// Nearest-rank percentiles of `values` (sorted in place).
    pub fn of(values: &mut [f64]) -> Self {
        let p = percentiles(values, &[10.0, 50.0, 90.0, 99.0, 100.0]);
        Self {
            p10: p[0],
            p50: p[1],
            p90: p[2],
            p99: p[3],
            max: p[4],
            count: values.len(),
        }
    }

    /// `{Perc10, Perc50, Perc90, Perc99}` data map.
    pub fn data(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("Perc10".to_string(), self.p10),
            ("Perc50".to_string(), self.p50),
            ("Perc90".to_string(), self.p90),
            ("Perc99".to_string(), self.p99),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(le, count)| Bucket { le, count })
            .collect()
    }

    #[test]
    fn histogram_quantile_matches_cl2_vectors() {
        // CL2 pkg/measurement/util/histogram_test.go: {1:20, 2:30, 4:40, 8:60}.
        let sorted = b(&[(1.0, 20.0), (2.0, 30.0), (4.0, 40.0), (8.0, 60.0)]);
        let unsorted = b(&[(4.0, 40.0), (1.0, 20.0), (8.0, 60.0), (2.0, 30.0)]);
        for v in [&sorted, &unsorted] {
            assert!((histogram_quantile(0.5, v) - 2.0).abs() < 1e-9);
            assert!((histogram_quantile(0.9, v) - 6.8).abs() < 1e-9);
            assert!((histogram_quantile(0.99, v) - 7.88).abs() < 1e-9);
        }
    }

    #[test]
    fn histogram_quantile_inf_bucket_and_empty() {
        let v = b(&[(1.0, 5.0), (2.0, 5.0), (f64::INFINITY, 10.0)]);
        assert_eq!(histogram_quantile(0.99, &v), 2.0);
        assert!(histogram_quantile(0.5, &b(&[(1.0, 0.0)])).is_nan());
        assert!(histogram_quantile(0.5, &[]).is_nan());
        // Rank in first bucket interpolates from 0.
        assert!((histogram_quantile(0.25, &b(&[(1.0, 10.0), (2.0, 20.0)])) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(
            percentiles(&mut v, &[50.0, 90.0, 99.0, 10.0]),
            vec![5.0, 9.0, 10.0, 1.0]
        );
        let mut one = vec![7.0];
        assert_eq!(
            percentiles(&mut one, &[1.0, 50.0, 100.0]),
            vec![7.0, 7.0, 7.0]
        );
        assert_eq!(percentile_sorted(&[], 50.0), 0.0);
        let mut hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentiles(&mut hundred, &[99.0, 100.0]), vec![99.0, 100.0]);
    }

    #[test]
    fn count_le_picks_largest_bucket_below_bound() {
        let v = b(&[(0.5, 3.0), (1.0, 7.0), (5.0, 9.0)]);
        assert_eq!(count_le(&v, 1.0), 7.0);
        assert_eq!(count_le(&v, 4.0), 7.0);
        assert_eq!(count_le(&v, 0.1), 0.0);
    }

    #[test]
    fn perfdata_serializes_like_cl2() {
        let mut pd = PerfData::new("v1");
        pd.data_items.push(DataItem {
            data: BTreeMap::from([("Perc50".into(), 1.5)]),
            unit: "ms".into(),
            labels: BTreeMap::new(),
        });
        let s = serde_json::to_string(&pd).unwrap();
        assert_eq!(
            s,
            r#"{"version":"v1","dataItems":[{"data":{"Perc50":1.5},"unit":"ms"}]}"#
        );
    }
}
