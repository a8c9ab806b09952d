//! Figures over a time window of a [`MonitorSeries`]: mean utilization, clock and power,
//! energy, and the throttling seen. Pure functions: no I/O, no clocks.

use serde::{Deserialize, Serialize};

use super::series::{MonitorSeries, Sample};

/// Where [`MonitorSummary::energy_j`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergySource {
    /// The GPU's energy counter, read at the window's edges.
    Counter,
    /// Power samples integrated over the window (trapezoid rule), where the GPU has no
    /// energy counter.
    IntegratedPower,
}

/// GPU figures over one measurement window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorSummary {
    /// Samples taken inside the window.
    pub n_samples: usize,
    /// Mean GPU utilization over the window's samples, in percent.
    pub mean_util_gpu_pct: Option<f64>,
    /// Mean memory-interface utilization over the window's samples, in percent.
    pub mean_util_memory_pct: Option<f64>,
    /// Mean SM clock over the window's samples, in MHz.
    pub mean_sm_clock_mhz: Option<f64>,
    /// Mean board power over the window's samples, in watts.
    pub mean_power_w: Option<f64>,
    /// Highest device memory in use at a sample in the window, in bytes.
    pub peak_memory_used_bytes: Option<u64>,
    /// Energy the board used over the window, in joules.
    pub energy_j: Option<f64>,
    pub energy_source: Option<EnergySource>,
    /// Clock event reasons seen at any sample in the window, other than `gpu_idle` (a GPU
    /// with nothing to run is not throttled), in order of first appearance.
    pub throttling_seen: Vec<String>,
}

/// Summarizes the samples with `start_s <= t_s <= end_s`. Energy comes from the energy
/// counter interpolated linearly at both edges (using the samples just outside the window
/// where there are some), else from integrating power the same way.
pub fn summarize(series: &MonitorSeries, (start_s, end_s): (f64, f64)) -> MonitorSummary {
    let inside: Vec<&Sample> = series
        .samples
        .iter()
        .filter(|s| s.t_s >= start_s && s.t_s <= end_s)
        .collect();
    let mean = |value: fn(&Sample) -> Option<f64>| {
        let values: Vec<f64> = inside.iter().filter_map(|s| value(s)).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let mut throttling_seen: Vec<String> = Vec::new();
    for reason in inside
        .iter()
        .filter_map(|s| s.throttle_reasons.as_ref())
        .flatten()
    {
        if reason != "gpu_idle" && !throttling_seen.contains(reason) {
            throttling_seen.push(reason.clone());
        }
    }
    let (energy_j, energy_source) = match counter_energy_j(series, start_s, end_s) {
        Some(j) => (Some(j), Some(EnergySource::Counter)),
        None => match integrated_energy_j(series, start_s, end_s) {
            Some(j) => (Some(j), Some(EnergySource::IntegratedPower)),
            None => (None, None),
        },
    };
    MonitorSummary {
        n_samples: inside.len(),
        mean_util_gpu_pct: mean(|s| s.util_gpu_pct.map(f64::from)),
        mean_util_memory_pct: mean(|s| s.util_memory_pct.map(f64::from)),
        mean_sm_clock_mhz: mean(|s| s.sm_clock_mhz.map(f64::from)),
        mean_power_w: mean(|s| s.power_w),
        peak_memory_used_bytes: inside.iter().filter_map(|s| s.memory_used_bytes).max(),
        energy_j,
        energy_source,
        throttling_seen,
    }
}

/// Energy per item over the window, in joules per item; `None` without energy or items.
pub fn energy_per_item_j(summary: &MonitorSummary, items: f64) -> Option<f64> {
    let energy_j = summary.energy_j?;
    (items > 0.0).then(|| energy_j / items)
}

/// The points `(t_s, value)` of one metric, in time order.
fn points(series: &MonitorSeries, value: fn(&Sample) -> Option<f64>) -> Vec<(f64, f64)> {
    series
        .samples
        .iter()
        .filter_map(|s| value(s).map(|v| (s.t_s, v)))
        .collect()
}

/// The value at `t`, linear between the points around it, clamped to the first or last
/// point outside their range.
fn value_at(points: &[(f64, f64)], t: f64) -> Option<f64> {
    let first = points.first()?;
    let last = points.last()?;
    if t <= first.0 {
        return Some(first.1);
    }
    if t >= last.0 {
        return Some(last.1);
    }
    let after = points.partition_point(|p| p.0 < t);
    let (t0, v0) = points[after - 1];
    let (t1, v1) = points[after];
    Some(if t1 > t0 {
        v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    } else {
        v1
    })
}

/// True when the points span some of the window, so edge values are not all clamped
/// from outside it.
fn overlaps(points: &[(f64, f64)], start_s: f64, end_s: f64) -> bool {
    match (points.first(), points.last()) {
        (Some(first), Some(last)) => points.len() >= 2 && first.0 < end_s && last.0 > start_s,
        _ => false,
    }
}

/// The counter's growth between its first and last readings inside the window, plus the
/// power integrated over the two edges outside them (the counter is read less often than
/// power: see `MonitorConfig::slow_interval_ms`). Without power samples, or with fewer
/// than two readings inside, the counter is interpolated linearly at the edges.
fn counter_energy_j(series: &MonitorSeries, start_s: f64, end_s: f64) -> Option<f64> {
    let counter = points(series, |s| s.energy_mj.map(|mj| mj as f64));
    if !overlaps(&counter, start_s, end_s) {
        return None;
    }
    let inside: Vec<(f64, f64)> = counter
        .iter()
        .copied()
        .filter(|(t, _)| *t >= start_s && *t <= end_s)
        .collect();
    let edges_from_power = match (inside.first(), inside.last()) {
        (Some(first), Some(last)) if last.0 > first.0 => {
            let before = integrated_energy_j(series, start_s, first.0);
            let after = integrated_energy_j(series, last.0, end_s);
            before
                .zip(after)
                .map(|(before, after)| (last.1 - first.1, before * 1e3 + after * 1e3))
        }
        _ => None,
    };
    let (delta_mj, edges_mj) = match edges_from_power {
        Some(parts) => parts,
        None => (
            value_at(&counter, end_s)? - value_at(&counter, start_s)?,
            0.0,
        ),
    };
    // The counter only grows; a drop means the driver reloaded mid-window.
    (delta_mj >= 0.0).then_some((delta_mj + edges_mj) / 1e3)
}

/// Power integrated over `start_s..end_s` by the trapezoid rule, interpolating at the
/// edges; 0 for an empty span.
fn integrated_energy_j(series: &MonitorSeries, start_s: f64, end_s: f64) -> Option<f64> {
    let power = points(series, |s| s.power_w);
    if end_s == start_s && !power.is_empty() {
        return Some(0.0);
    }
    if !overlaps(&power, start_s, end_s) || end_s <= start_s {
        return None;
    }
    let mut edges = vec![(start_s, value_at(&power, start_s)?)];
    edges.extend(
        power
            .iter()
            .copied()
            .filter(|(t, _)| *t > start_s && *t < end_s),
    );
    edges.push((end_s, value_at(&power, end_s)?));
    Some(
        edges
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64) -> Sample {
        Sample {
            t_s,
            ..Sample::default()
        }
    }

    fn series(samples: Vec<Sample>) -> MonitorSeries {
        MonitorSeries {
            samples,
            ..MonitorSeries::default()
        }
    }

    #[test]
    fn means_use_only_samples_inside_the_window_that_have_the_metric() {
        let samples = (0..10)
            .map(|k| Sample {
                util_gpu_pct: Some(k * 10),
                sm_clock_mhz: (k != 5).then_some(1980),
                power_w: None,
                ..sample(k as f64)
            })
            .collect();
        let summary = summarize(&series(samples), (2.0, 6.0));
        assert_eq!(summary.n_samples, 5);
        assert_eq!(summary.mean_util_gpu_pct, Some(40.0));
        assert_eq!(summary.mean_sm_clock_mhz, Some(1980.0));
        assert_eq!(summary.mean_power_w, None);
    }

    #[test]
    fn energy_comes_from_the_counter_interpolated_at_the_edges() {
        // 500 W: the counter gains 50 J (50_000 mJ) every 0.1 s.
        let samples = (0..=20)
            .map(|k| Sample {
                energy_mj: Some(1_000_000 + k * 50_000),
                power_w: Some(500.0),
                ..sample(k as f64 * 0.1)
            })
            .collect();
        let summary = summarize(&series(samples), (0.25, 1.25));
        let energy = summary.energy_j.unwrap();
        assert!((energy - 500.0).abs() < 1e-6, "{energy}");
        assert_eq!(summary.energy_source, Some(EnergySource::Counter));
        assert_eq!(energy_per_item_j(&summary, 1000.0), Some(energy / 1000.0));
        assert_eq!(energy_per_item_j(&summary, 0.0), None);
    }

    #[test]
    fn a_counter_read_every_tenth_sample_is_completed_with_power_at_the_edges() {
        // 200 W until 0.5 s, then 600 W; power every 0.1 s, the counter every 1 s, as the
        // sampler's slow metrics come.
        let power_at = |t: f64| if t < 0.5 { 200.0 } else { 600.0 };
        let joules_at = |t: f64| {
            if t < 0.5 {
                200.0 * t
            } else {
                100.0 + 600.0 * (t - 0.5)
            }
        };
        let samples = (0..=30)
            .map(|k| {
                let t = k as f64 * 0.1;
                Sample {
                    power_w: Some(power_at(t)),
                    energy_mj: (k % 10 == 0).then(|| (joules_at(t) * 1e3).round() as u64),
                    ..sample(t)
                }
            })
            .collect();
        let (start, end) = (0.25, 2.45);
        let exact = joules_at(end) - joules_at(start); // 1220 J
        let summary = summarize(&series(samples), (start, end));
        let energy = summary.energy_j.unwrap();
        assert_eq!(summary.energy_source, Some(EnergySource::Counter));
        // The counter covers 1.0-2.0 s exactly; the trapezoid over the power step at
        // 0.5 s adds 20 J. Interpolating the counter alone at the edges would say 1170 J,
        // as it spreads the first second's energy evenly.
        assert!((energy - exact).abs() <= 20.0 + 1e-6, "{energy} vs {exact}");
    }

    #[test]
    fn without_a_counter_energy_integrates_power() {
        // Power ramps from 100 W to 300 W over 2 s: 400 J.
        let samples = (0..=20)
            .map(|k| Sample {
                power_w: Some(100.0 + 10.0 * k as f64),
                ..sample(k as f64 * 0.1)
            })
            .collect();
        let summary = summarize(&series(samples), (0.0, 2.0));
        let energy = summary.energy_j.unwrap();
        assert!((energy - 400.0).abs() < 1e-9, "{energy}");
        assert_eq!(summary.energy_source, Some(EnergySource::IntegratedPower));
    }

    #[test]
    fn a_counter_that_drops_is_not_read_as_negative_energy() {
        let samples = vec![
            Sample {
                energy_mj: Some(5_000),
                ..sample(0.0)
            },
            Sample {
                energy_mj: Some(1_000),
                ..sample(1.0)
            },
        ];
        let summary = summarize(&series(samples), (0.0, 1.0));
        assert_eq!(summary.energy_j, None);
    }

    #[test]
    fn throttling_lists_each_reason_once_and_ignores_idle() {
        let reasons = |r: &[&str]| Some(r.iter().map(|s| s.to_string()).collect());
        let samples = vec![
            Sample {
                throttle_reasons: reasons(&["gpu_idle"]),
                ..sample(0.0)
            },
            Sample {
                throttle_reasons: reasons(&["sw_power_cap"]),
                ..sample(1.0)
            },
            Sample {
                throttle_reasons: reasons(&["sw_power_cap", "hw_thermal_slowdown"]),
                ..sample(2.0)
            },
        ];
        let summary = summarize(&series(samples), (0.0, 2.0));
        assert_eq!(
            summary.throttling_seen,
            vec!["sw_power_cap", "hw_thermal_slowdown"]
        );
    }

    #[test]
    fn a_window_past_the_samples_has_no_figures() {
        let samples = (0..3)
            .map(|k| Sample {
                energy_mj: Some(k * 1000),
                power_w: Some(100.0),
                ..sample(k as f64)
            })
            .collect();
        let summary = summarize(&series(samples), (5.0, 6.0));
        assert_eq!(summary, MonitorSummary::default());
    }
}
