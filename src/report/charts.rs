//! The report's charts as SVG, drawn with plotters' SVG backend. Text is laid out with
//! plotters' built-in width estimate (its `ttf` feature is off) and drawn by whatever
//! shows the SVG, so no font files are needed to render. Long series are thinned to at
//! most [`MAX_POINTS`] points per line, so a study's page stays small.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::error::ReportError;
use crate::metrics::stats::quantile_sorted;
use crate::metrics::{Analysis, Estimate, GroupAnalysis};
use crate::monitor::Sample;
use crate::results::schema::TenantRecord;
use crate::results::Study;

/// The most points one line of a chart gets.
pub const MAX_POINTS: usize = 300;

/// The charts `--chart` names, in the page's order.
pub const CHARTS: &[(&str, &str)] = &[
    (
        "np",
        "Normalized progress per tenant and mode, with 95% bootstrap CIs",
    ),
    (
        "sharing",
        "STP, ANTT and fairness per mode, with 95% bootstrap CIs",
    ),
    (
        "latency",
        "Latency (or step time) CDF per tenant and mode, with the SLO",
    ),
    (
        "throughput",
        "Throughput over each measured window, per tenant and mode",
    ),
    (
        "gpu",
        "GPU utilization, SM clock, power and memory over each run",
    ),
];

const WIDTH: u32 = 960;
const FONT: &str = "sans-serif";
const PALETTE: &[RGBColor] = &[
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
];

fn color(idx: usize) -> RGBColor {
    PALETTE[idx % PALETTE.len()]
}

/// One chart by name.
pub fn render(study: &Study, analysis: &Analysis, name: &str) -> Result<String, ReportError> {
    let draw = |e: String| ReportError::Draw {
        chart: name.to_string(),
        message: e,
    };
    match name {
        "np" => np_chart(study, analysis).map_err(draw),
        "sharing" => sharing_chart(study, analysis).map_err(draw),
        "latency" => latency_chart(study, analysis).map_err(draw),
        "throughput" => throughput_chart(study, analysis).map_err(draw),
        "gpu" => gpu_chart(study, analysis).map_err(draw),
        _ => Err(ReportError::UnknownChart {
            name: name.to_string(),
            known: CHARTS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

type DrawResult = Result<(), String>;
type GroupFigure = fn(&GroupAnalysis) -> Option<Estimate>;
type SampleFigure = fn(&Sample) -> Option<f64>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Draws on an SVG of `height` and returns its text.
fn svg(
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult,
) -> Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// A group's name in legends: the mode, with the configuration when there are several.
fn group_label(analysis: &Analysis, group: &GroupAnalysis) -> String {
    let many = analysis.groups.iter().any(|g| g.config_idx > 0);
    if many {
        format!("{} c{}", group.mode, group.config_idx)
    } else {
        group.mode.to_string()
    }
}

/// Bars with whiskers: `values[series][category]`, one series per group.
fn bars(
    area: &DrawingArea<SVGBackend, Shift>,
    caption: &str,
    categories: &[String],
    series: &[(String, RGBColor, Vec<Option<Estimate>>)],
    reference: Option<f64>,
) -> DrawResult {
    let top = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().flatten())
        .map(|e| e.ci_high.max(e.mean))
        .fold(reference.unwrap_or(0.0), f64::max)
        .max(1e-9)
        // Room above the bars for the legend.
        * 1.45;
    let n_cat = categories.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..n_cat as f64, 0.0..top)
        .map_err(err)?;
    let labels = categories.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n_cat * 2 + 1)
        .x_label_formatter(&|x| {
            let idx = x.floor() as usize;
            if (x - idx as f64 - 0.5).abs() < 0.01 {
                labels.get(idx).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .label_style((FONT, 13))
        .draw()
        .map_err(err)?;
    let n_series = series.len().max(1) as f64;
    let width = 0.8 / n_series;
    for (s_idx, (label, c, values)) in series.iter().enumerate() {
        let c = *c;
        let x0 = |cat: usize| cat as f64 + 0.1 + s_idx as f64 * width;
        chart
            .draw_series(values.iter().enumerate().filter_map(|(cat, v)| {
                v.map(|e| {
                    Rectangle::new(
                        [(x0(cat), 0.0), (x0(cat) + width * 0.9, e.mean)],
                        c.filled(),
                    )
                })
            }))
            .map_err(err)?
            .label(label.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        chart
            .draw_series(values.iter().enumerate().filter_map(|(cat, v)| {
                v.filter(|e| e.n > 1).map(|e| {
                    let mid = x0(cat) + width * 0.45;
                    PathElement::new(
                        vec![(mid, e.ci_low), (mid, e.ci_high)],
                        BLACK.stroke_width(2),
                    )
                })
            }))
            .map_err(err)?;
    }
    if let Some(y) = reference {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, y), (n_cat as f64, y)],
                BLACK.mix(0.5).stroke_width(1),
            )))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn np_chart(_study: &Study, analysis: &Analysis) -> Result<String, String> {
    let shared: Vec<(usize, &GroupAnalysis)> = analysis
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.mode.concurrent())
        .collect();
    let mut names: Vec<String> = vec![];
    for t in shared.iter().flat_map(|(_, g)| &g.tenants) {
        if !names.contains(&t.name) {
            names.push(t.name.clone());
        }
    }
    let series: Vec<(String, RGBColor, Vec<Option<Estimate>>)> = shared
        .iter()
        .map(|(idx, g)| {
            (
                group_label(analysis, g),
                color(*idx),
                names
                    .iter()
                    .map(|n| g.tenants.iter().find(|t| &t.name == n).and_then(|t| t.np))
                    .collect(),
            )
        })
        .collect();
    svg(360, |root| {
        bars(
            root,
            "Normalized progress (NP = throughput shared / alone; line at 1)",
            &names,
            &series,
            Some(1.0),
        )
    })
}

fn sharing_chart(_study: &Study, analysis: &Analysis) -> Result<String, String> {
    let shared: Vec<(usize, &GroupAnalysis)> = analysis
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.mode.concurrent())
        .collect();
    svg(320, |root| {
        let panels = root.split_evenly((1, 3));
        let figures: [(&str, GroupFigure, f64); 3] = [
            ("STP (sum of NP)", |g| g.stp, 1.0),
            ("ANTT (mean 1/NP)", |g| g.antt, 1.0),
            ("fairness (Jain)", |g| g.fairness, 1.0),
        ];
        for (panel, (caption, pick, reference)) in panels.iter().zip(figures) {
            let series: Vec<(String, RGBColor, Vec<Option<Estimate>>)> = shared
                .iter()
                .map(|(idx, g)| (group_label(analysis, g), color(*idx), vec![pick(g)]))
                .collect();
            bars(panel, caption, &[String::new()], &series, Some(reference))?;
        }
        Ok(())
    })
}

/// The samples a tenant's latency is judged on: its own latency if it measures one, else
/// its step times, in milliseconds.
fn latency_ms(t: &TenantRecord) -> Vec<f64> {
    let s = if t.samples.latency_s.is_empty() {
        &t.samples.step_s
    } else {
        &t.samples.latency_s
    };
    s.iter().map(|v| v * 1e3).collect()
}

/// CDF points at fixed probabilities, denser in the tail: at most [`MAX_POINTS`].
fn cdf_points(mut values: Vec<f64>) -> Vec<(f64, f64)> {
    values.retain(|v| v.is_finite() && *v > 0.0);
    if values.is_empty() {
        return vec![];
    }
    values.sort_by(f64::total_cmp);
    let mut probabilities: Vec<f64> = (0..=99).map(|i| f64::from(i) / 100.0).collect();
    probabilities.extend((991..=999).map(|i| f64::from(i) / 1000.0));
    probabilities.extend([0.9999, 1.0]);
    probabilities
        .into_iter()
        .map(|p| (quantile_sorted(&values, p), p))
        .collect()
}

/// Tenant names in plan order, and for each group the VALID runs' records of a tenant.
fn tenant_names(analysis: &Analysis) -> Vec<String> {
    let mut names: Vec<String> = vec![];
    for t in analysis.groups.iter().flat_map(|g| &g.tenants) {
        if !names.contains(&t.name) {
            names.push(t.name.clone());
        }
    }
    names
}

/// The records of `tenant` in a group's runs: VALID ones, or all when none is.
fn records<'a>(
    study: &'a Study,
    analysis: &Analysis,
    group: &GroupAnalysis,
    tenant: &str,
) -> Vec<&'a TenantRecord> {
    study
        .runs
        .iter()
        .zip(&analysis.runs)
        .filter(|(r, a)| {
            r.mode == group.mode
                && r.config_idx == group.config_idx
                && (a.verdict.valid || group.from_invalid)
        })
        .filter_map(|(r, _)| r.tenants.iter().find(|t| t.name == tenant))
        .collect()
}

/// One panel per item, stacked two per row.
fn panels<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
    n: usize,
) -> Vec<DrawingArea<SVGBackend<'a>, Shift>> {
    let rows = n.div_ceil(2).max(1);
    root.split_evenly((rows, 2)).into_iter().take(n).collect()
}

fn panel_height(n: usize) -> u32 {
    (n.div_ceil(2).max(1) as u32) * 300
}

type Line = (String, RGBColor, Vec<(f64, f64)>);

/// A line chart; `log_x` for latencies. Empty lines are skipped.
fn lines(
    area: &DrawingArea<SVGBackend, Shift>,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    data: &[Line],
    log_x: bool,
    vertical: Option<(f64, &str)>,
) -> DrawResult {
    let points = || data.iter().flat_map(|(_, _, p)| p.iter());
    let (mut x_lo, mut x_hi, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for (x, y) in points() {
        x_lo = x_lo.min(*x);
        x_hi = x_hi.max(*x);
        y_hi = y_hi.max(*y);
    }
    if let Some((x, _)) = vertical {
        x_lo = x_lo.min(x);
        x_hi = x_hi.max(x);
    }
    if !x_lo.is_finite() {
        (x_lo, x_hi) = (if log_x { 0.001 } else { 0.0 }, 1.0);
    }
    if x_hi <= x_lo {
        x_hi = x_lo * 2.0 + 1.0;
    }
    let y_hi = if y_hi > 0.0 { y_hi * 1.1 } else { 1.0 };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, (FONT, 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .label_style((FONT, 12))
                .x_labels(6)
                .y_labels(6)
                .draw()
                .map_err(err)?;
            for (label, c, p) in data.iter().filter(|(_, _, p)| !p.is_empty()) {
                let c = *c;
                chart
                    .draw_series(LineSeries::new(p.iter().copied(), c.stroke_width(2)))
                    .map_err(err)?
                    .label(label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2))
                    });
            }
            if let Some((x, label)) = vertical {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, 0.0), (x, y_hi)],
                        RED.stroke_width(2),
                    )))
                    .map_err(err)?
                    .label(label.to_string())
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 14, y)], RED.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font((FONT, 12))
                .draw()
                .map_err(err)?;
        }};
    }
    if log_x {
        let x_lo = x_lo.max(1e-4);
        finish!(builder
            .build_cartesian_2d((x_lo * 0.8..x_hi * 1.25).log_scale(), 0.0..y_hi)
            .map_err(err)?);
    } else {
        finish!(builder
            .build_cartesian_2d(x_lo..x_hi, 0.0..y_hi)
            .map_err(err)?);
    }
    Ok(())
}

fn latency_chart(study: &Study, analysis: &Analysis) -> Result<String, String> {
    let names = tenant_names(analysis);
    svg(panel_height(names.len()), |root| {
        for (area, name) in panels(root, names.len()).iter().zip(&names) {
            let data: Vec<Line> = analysis
                .groups
                .iter()
                .enumerate()
                .map(|(idx, g)| {
                    let all: Vec<f64> = records(study, analysis, g, name)
                        .into_iter()
                        .flat_map(latency_ms)
                        .collect();
                    (group_label(analysis, g), color(idx), cdf_points(all))
                })
                .collect();
            let slo = study
                .plan
                .configs
                .iter()
                .flat_map(|c| &c.tenants)
                .find(|t| &t.name == name)
                .and_then(|t| t.slo.as_ref())
                .map(|s| {
                    (
                        s.target_ms,
                        format!("SLO: P{} <= {} ms", s.percentile, s.target_ms),
                    )
                });
            lines(
                area,
                &format!("{name}: latency CDF"),
                "ms (log scale)",
                "fraction of samples",
                &data,
                true,
                slo.as_ref().map(|(x, l)| (*x, l.as_str())),
            )?;
        }
        Ok(())
    })
}

/// Items per second over `n_bins` equal bins of the window.
fn throughput_bins(t: &TenantRecord, n_bins: usize) -> Vec<(f64, f64)> {
    let window_s = t
        .summary
        .as_ref()
        .map(|s| s.window_s)
        .unwrap_or_else(|| t.samples.end_s.iter().copied().fold(0.0, f64::max));
    if window_s <= 0.0 {
        return vec![];
    }
    let bin_s = window_s / n_bins as f64;
    let mut counts = vec![0.0; n_bins];
    for (end, items) in t.samples.end_s.iter().zip(&t.samples.items) {
        if *end <= window_s {
            let idx = ((end / bin_s) as usize).min(n_bins - 1);
            counts[idx] += *items as f64;
        }
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| ((i as f64 + 0.5) * bin_s, c / bin_s))
        .collect()
}

fn throughput_chart(study: &Study, analysis: &Analysis) -> Result<String, String> {
    let names = tenant_names(analysis);
    svg(panel_height(names.len()), |root| {
        for (area, name) in panels(root, names.len()).iter().zip(&names) {
            let mut item = String::new();
            let data: Vec<Line> = analysis
                .groups
                .iter()
                .enumerate()
                .map(|(idx, g)| {
                    // The first repetition: one window per mode keeps the lines readable.
                    let first = records(study, analysis, g, name).into_iter().next();
                    if let Some(t) = first {
                        item.clone_from(&t.item);
                    }
                    (
                        group_label(analysis, g),
                        color(idx),
                        first.map(|t| throughput_bins(t, 40)).unwrap_or_default(),
                    )
                })
                .collect();
            lines(
                area,
                &format!("{name}: throughput, first repetition"),
                "s since Go",
                &format!("{item}/s"),
                &data,
                false,
                None,
            )?;
        }
        Ok(())
    })
}

/// Thins `(t, v)` points to at most `max` by averaging consecutive buckets.
pub fn downsample(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}

fn gpu_chart(study: &Study, analysis: &Analysis) -> Result<String, String> {
    let metrics: [(&str, &str, SampleFigure); 4] = [
        ("GPU utilization", "%", |s| s.util_gpu_pct.map(f64::from)),
        ("SM clock", "MHz", |s| s.sm_clock_mhz.map(f64::from)),
        ("board power", "W", |s| s.power_w),
        ("memory used", "GiB", |s| {
            s.memory_used_bytes.map(|b| b as f64 / (1u64 << 30) as f64)
        }),
    ];
    svg(panel_height(metrics.len()), |root| {
        for (area, (caption, unit, pick)) in panels(root, metrics.len()).iter().zip(metrics) {
            let data: Vec<Line> = analysis
                .groups
                .iter()
                .enumerate()
                .map(|(idx, g)| {
                    // The first run of each mode with GPU samples.
                    let series = study
                        .runs
                        .iter()
                        .filter(|r| r.mode == g.mode && r.config_idx == g.config_idx)
                        .find_map(|r| r.monitor.as_ref());
                    let points: Vec<(f64, f64)> = series
                        .map(|s| {
                            s.samples
                                .iter()
                                .filter_map(|x| pick(x).map(|v| (x.t_s, v)))
                                .collect()
                        })
                        .unwrap_or_default();
                    (
                        group_label(analysis, g),
                        color(idx),
                        downsample(&points, MAX_POINTS),
                    )
                })
                .collect();
            lines(
                area,
                &format!("{caption}, first run of each mode"),
                "s since the run's monitor started",
                unit,
                &data,
                false,
                None,
            )?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_averages_buckets_and_keeps_short_series() {
        let points: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, i as f64 * 2.0)).collect();
        assert_eq!(downsample(&points, 20), points);
        assert_eq!(
            downsample(&points, 5),
            vec![(0.5, 1.0), (2.5, 5.0), (4.5, 9.0), (6.5, 13.0), (8.5, 17.0)]
        );
    }

    #[test]
    fn cdf_points_end_at_the_maximum_with_a_denser_tail() {
        let values: Vec<f64> = (1..=1000).map(f64::from).collect();
        let points = cdf_points(values);
        assert!(points.len() <= MAX_POINTS);
        assert_eq!(points.last(), Some(&(1000.0, 1.0)));
        assert_eq!(points[0], (1.0, 0.0));
    }
}
