//! Performance: is a difference beyond the noise of the repetitions?
//!
//! Each metric (ok ops/s, p50 and p99 latency of ok ops) is summarised per cell as the median
//! of the runs and their range (min–max). A difference is flagged as a regression only when
//! both hold: the medians differ by more than the threshold (10% by default), *and* the ranges
//! do not overlap (every NEW run is worse than every BASE run). With runs that vary as much as
//! the shared 2-core machines make them, that keeps one noisy run from failing a comparison.
//! It needs at least 3 runs on each side: two runs of each, drawn from the same distribution,
//! lie apart in a given direction one time in six; three of each, one time in twenty (before
//! the threshold cuts that further). With fewer runs the numbers are shown unjudged.
//! Improvements are reported by the same rule, never flagged.

use riptide_store::campaign::CampaignRun;

use super::CellReport;

/// Runs a side needs before a difference is judged.
pub const MIN_RUNS: usize = 3;

/// Median and range of one metric over a cell's runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[v.len() - 1],
            n: v.len(),
        })
    }
}

/// How NEW compares with BASE on one metric.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Worse,
    Better,
    WithinNoise,
    TooFewRuns,
}

/// The rule of the module docs. `higher_is_better` for throughput, not for latency.
pub fn judge(base: Spread, new: Spread, higher_is_better: bool, threshold: f64) -> Change {
    if base.n < MIN_RUNS || new.n < MIN_RUNS {
        return Change::TooFewRuns;
    }
    let relative = if base.median == 0.0 {
        if new.median == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        (new.median - base.median) / base.median
    };
    let (up, down) = (new.min > base.max, new.max < base.min);
    let big = relative.abs() > threshold;
    match (higher_is_better, big && up, big && down) {
        (true, _, true) | (false, true, _) => Change::Worse,
        (true, true, _) | (false, _, true) => Change::Better,
        _ => Change::WithinNoise,
    }
}

/// A metric: its label, how to read it from a run, and whether higher is better.
type Metric = (&'static str, fn(&CampaignRun) -> f64, bool);

pub(super) fn compare(
    base: &[CampaignRun],
    new: &[CampaignRun],
    threshold: f64,
    report: &mut CellReport,
) {
    let metrics: [Metric; 3] = [
        ("ok ops/s  ", |r| r.ok_per_s, true),
        ("p50 ms    ", |r| r.p50_ms, false),
        ("p99 ms    ", |r| r.p99_ms, false),
    ];
    for (name, get, higher_is_better) in metrics {
        let values = |runs: &[CampaignRun]| runs.iter().map(get).collect::<Vec<f64>>();
        let (Some(b), Some(n)) = (Spread::of(&values(base)), Spread::of(&values(new))) else {
            continue;
        };
        let change = judge(b, n, higher_is_better, threshold);
        let pct = if b.median == 0.0 {
            0.0
        } else {
            (n.median - b.median) / b.median * 100.0
        };
        let verdict = match change {
            Change::Worse => {
                report.perf = true;
                "REGRESSED"
            }
            Change::Better => "improved",
            Change::WithinNoise => "within noise",
            Change::TooFewRuns => "not judged: 3 runs a side needed",
        };
        report.lines.push(format!(
            "{name} {} -> {}  {pct:+.1}%  {verdict}",
            show(b),
            show(n)
        ));
    }
}

fn show(s: Spread) -> String {
    let digits = if s.median >= 100.0 { 0 } else { 2 };
    format!("{:.d$} [{:.d$}–{:.d$}]", s.median, s.min, s.max, d = digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64]) -> Spread {
        Spread::of(v).unwrap()
    }

    #[test]
    fn medians_and_ranges() {
        assert_eq!(
            s(&[3.0, 1.0, 2.0]),
            Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0,
                n: 3
            }
        );
        assert_eq!(s(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn only_a_big_change_with_ranges_apart_counts() {
        let base = s(&[1000.0, 1050.0, 980.0]);
        // 30% slower and every run below every base run: worse.
        assert_eq!(
            judge(base, s(&[700.0, 720.0, 690.0]), true, 0.1),
            Change::Worse
        );
        // 30% slower in the median, but one run overlaps the base's range: noise.
        assert_eq!(
            judge(base, s(&[700.0, 720.0, 1000.0]), true, 0.1),
            Change::WithinNoise
        );
        // Ranges apart but only 4% slower: below the threshold.
        assert_eq!(
            judge(base, s(&[960.0, 955.0, 950.0]), true, 0.1),
            Change::WithinNoise
        );
        assert_eq!(
            judge(base, s(&[1500.0, 1400.0, 1450.0]), true, 0.1),
            Change::Better
        );
        assert_eq!(
            judge(base, s(&[1500.0, 1400.0]), true, 0.1),
            Change::TooFewRuns
        );
        // Latency: higher is worse.
        let lat = s(&[2.0, 2.2, 2.1]);
        assert_eq!(judge(lat, s(&[3.0, 3.1, 3.3]), false, 0.1), Change::Worse);
        assert_eq!(judge(lat, s(&[1.0, 1.1, 1.2]), false, 0.1), Change::Better);
        assert_eq!(
            judge(s(&[1.0, 1.0]), s(&[5.0, 6.0, 7.0]), false, 0.1),
            Change::TooFewRuns
        );
    }
}
