//! The human views: a terminal table and Markdown, the same sections in two styles.

use tabled::builder::Builder;
use tabled::settings::Style;

use super::format::{estimate, mean, sig3};
use super::sweep;
use crate::metrics::{Analysis, GroupAnalysis};
use crate::results::Study;
use crate::workload::Device;

/// Which human style to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextStyle {
    Terminal,
    Markdown,
}

/// Renders a study's report.
pub fn render(study: &Study, analysis: &Analysis, style: TextStyle) -> String {
    let mut out = String::new();
    let heading = |out: &mut String, title: &str| match style {
        TextStyle::Markdown => out.push_str(&format!("\n## {title}\n\n")),
        TextStyle::Terminal => out.push_str(&format!("\n{title}\n")),
    };
    let title = format!("gpushare study `{}`", study.scenario.name);
    match style {
        TextStyle::Markdown => out.push_str(&format!("# {title}\n\n")),
        TextStyle::Terminal => out.push_str(&format!("{title}\n")),
    }
    if !study.scenario.description.is_empty() {
        out.push_str(&format!("{}\n", study.scenario.description));
    }
    let env = &study.environment;
    out.push_str(&format!(
        "\nhost {} ({}, {} CPUs), gpushare {} ({})\n",
        env.host, env.cpu_model, env.n_cpus, env.gpushare_version, env.git_commit
    ));
    if let Some(container) = &env.container {
        let images: Vec<String> = container
            .images
            .iter()
            .map(|i| {
                let id = i.id.strip_prefix("sha256:").unwrap_or(&i.id);
                let digest = i
                    .digest
                    .as_deref()
                    .map_or(String::new(), |d| format!(", {d}"));
                format!("{} ({}{digest})", i.name, &id[..id.len().min(12)])
            })
            .collect();
        out.push_str(&format!(
            "tenants in containers: {}, Docker engine {} (API {})\n",
            images.join(", "),
            container.engine_version,
            container.api_version
        ));
    }
    let n_valid = analysis.runs.iter().filter(|r| r.verdict.valid).count();
    out.push_str(&format!(
        "{} of {} runs VALID{}\n",
        n_valid,
        analysis.runs.len(),
        if study.interrupted {
            "; the study was INTERRUPTED"
        } else {
            ""
        }
    ));
    if let Some(sentence) = super::Completeness::of(study).sentence() {
        out.push_str(&format!("{sentence}\n"));
    }
    if analysis
        .groups
        .iter()
        .flat_map(|g| &g.tenants)
        .any(|t| t.device == Device::Cpu)
    {
        out.push_str("CPU workloads are test fixtures: their figures are not GPU data.\n");
    }

    heading(
        &mut out,
        "Tenants (mean over VALID repetitions, [95% bootstrap CI])",
    );
    out.push_str(&table(tenant_rows(study, analysis), style));
    out.push_str(&notes(analysis));

    if !analysis.baselines.is_empty() {
        heading(
            &mut out,
            "Baselines (each tenant alone; identical replicas pooled into one, [95% bootstrap CI])",
        );
        out.push_str(&table(sweep::baseline_rows(study, analysis), style));
        for note in sweep::baseline_notes(study, analysis) {
            out.push_str(&format!("{note}\n"));
        }
    }

    heading(
        &mut out,
        "Sharing (NP against exclusive; STP = sum NP, ANTT = mean 1/NP, fairness = Jain)",
    );
    if analysis.groups.iter().any(|g| g.util_gpu_pct.is_some()) {
        out.push_str(
            "GPU util and power: NVML means over the measured windows. Energy gain: the energy \
             the tenants would have used alone for the same items over the energy used shared \
             (above 1, sharing saved energy).\n\n",
        );
    }
    out.push_str(&table(sharing_rows(study, analysis), style));

    for group in analysis
        .groups
        .iter()
        .filter(|g| !g.throttling_seen.is_empty())
    {
        out.push_str(&format!(
            "{} c{}: the GPU reported clock throttling: {}\n",
            group.mode,
            group.config_idx,
            group.throttling_seen.join(", ")
        ));
    }
    let unmonitored: Vec<&str> = study
        .runs
        .iter()
        .filter_map(|r| r.monitor_note.as_deref())
        .collect();
    if let Some(note) = unmonitored.first() {
        out.push_str(&format!(
            "No GPU samples in {} run(s): {note}\n",
            unmonitored.len()
        ));
    }

    if sweep::has_sweep(study) {
        heading(
            &mut out,
            "Along the sweep (means over VALID repetitions; latency of the SLO, probe and serving tenants)",
        );
        out.push_str(&table(sweep::sweep_rows(study, analysis), style));
    }

    heading(&mut out, "Runs");
    out.push_str(&table(run_rows(analysis), style));

    let invalid: Vec<_> = analysis.runs.iter().filter(|r| !r.verdict.valid).collect();
    if !invalid.is_empty() {
        heading(&mut out, "Why runs are INVALID");
        for run in invalid {
            for check in &run.verdict.failed {
                let who = check
                    .tenant
                    .as_deref()
                    .map(|t| format!(" tenant `{t}`:"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "- {}:{who} {}. Fix: {}.\n",
                    run.id, check.problem, check.fix
                ));
            }
        }
    }
    out
}

pub(super) fn table(rows: Vec<Vec<String>>, style: TextStyle) -> String {
    let mut builder = Builder::default();
    for row in rows {
        builder.push_record(row);
    }
    let mut table = builder.build();
    match style {
        TextStyle::Markdown => table.with(Style::markdown()),
        TextStyle::Terminal => table.with(Style::sharp()),
    };
    format!("{table}\n")
}

fn config_label(study: &Study, group: &GroupAnalysis) -> String {
    let label = study
        .plan
        .configs
        .get(group.config_idx)
        .map(|c| c.label.as_str())
        .unwrap_or("");
    if label.is_empty() {
        format!("c{}", group.config_idx)
    } else {
        format!("c{} {label}", group.config_idx)
    }
}

pub(super) fn tenant_rows(study: &Study, analysis: &Analysis) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "mode".to_string(),
        "config".into(),
        "tenant".into(),
        "workload".into(),
        "throughput (items/s)".into(),
        "NP".into(),
        "P50 ms".into(),
        "P99 ms".into(),
        "SLO attained".into(),
        "SLO met".into(),
        "failed".into(),
        "J/item alone".into(),
        "offered load".into(),
    ]];
    for group in &analysis.groups {
        for t in &group.tenants {
            let device = if t.device == Device::Cpu {
                " (CPU)"
            } else {
                ""
            };
            rows.push(vec![
                group.mode.to_string(),
                config_label(study, group),
                t.name.clone(),
                format!("{}{device}", t.workload),
                format!(
                    "{} {}/s",
                    estimate(t.throughput_items_per_s.as_ref()),
                    t.item
                ),
                estimate(t.np.as_ref()),
                mean(t.p50_ms.as_ref()),
                mean(t.p99_ms.as_ref()),
                t.slo_attainment
                    .as_ref()
                    .map_or("-".to_string(), |e| format!("{:.1}%", e.mean * 100.0)),
                match (t.slo_met, t.slo_judged) {
                    (Some(met), Some(judged)) => format!("{met}/{judged}"),
                    _ => "-".to_string(),
                },
                t.failed_fraction
                    .as_ref()
                    .map_or("-".to_string(), |e| format!("{:.2}%", e.mean * 100.0)),
                mean(t.energy_per_item_j.as_ref()),
                offered_load(t),
            ]);
            if group.from_invalid {
                for cell in rows
                    .last_mut()
                    .into_iter()
                    .flat_map(|r| r.iter_mut().skip(4))
                {
                    if cell != "-" {
                        cell.push_str(" (INVALID)");
                    }
                }
            }
        }
    }
    without_empty_columns(rows, &[9, 10, 11, 12])
}

/// Whether an open-loop tenant kept up with its offered load, over the runs behind its NP.
pub(super) fn offered_load(t: &crate::metrics::TenantGroup) -> String {
    match (t.kept_up, t.np.as_ref()) {
        (Some(kept), Some(np)) if kept == np.n => format!("kept up {kept}/{}", np.n),
        (Some(kept), Some(np)) => format!("fell behind {}/{}", np.n - kept, np.n),
        _ => "-".to_string(),
    }
}

/// What the marks in the tenant table mean, when they appear.
pub(super) fn notes(analysis: &Analysis) -> String {
    let mut out = String::new();
    let tenants = || analysis.groups.iter().flat_map(|g| &g.tenants);
    if tenants().any(|t| t.open_loop) {
        out.push_str(&format!(
            "Offered load: open-loop tenants (serving at a fixed rate, notebooks, the latency \
             probe) pace themselves, so their NP is close to 1 whenever they keep up and \
             does not show their capacity; `kept up` means NP of at least {} in every run, \
             `fell behind` in how many runs it was lower. STP closed-loop sums NP over the \
             other tenants.\n",
            crate::metrics::open_loop::KEPT_UP_NP
        ));
    }
    if analysis.groups.iter().any(|g| g.from_invalid) {
        out.push_str(
            "(INVALID): no run of that mode was VALID; the figures its INVALID runs \
             measured are shown so you can see why, and are not results.\n",
        );
    }
    out
}

/// Drops the given columns (ascending indices) where no data row has a value, so a study
/// without GPU samples shows no empty GPU columns.
fn without_empty_columns(mut rows: Vec<Vec<String>>, optional: &[usize]) -> Vec<Vec<String>> {
    let empty: Vec<usize> = optional
        .iter()
        .copied()
        .filter(|&col| rows.iter().skip(1).all(|row| row[col] == "-"))
        .collect();
    for row in &mut rows {
        for &col in empty.iter().rev() {
            row.remove(col);
        }
    }
    rows
}

pub(super) fn sharing_rows(study: &Study, analysis: &Analysis) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "mode".to_string(),
        "config".into(),
        "STP".into(),
        "ANTT".into(),
        "fairness".into(),
        "GPU util %".into(),
        "power W".into(),
        "energy gain".into(),
        "STP closed-loop".into(),
        "VALID runs".into(),
    ]];
    for group in &analysis.groups {
        rows.push(vec![
            group.mode.to_string(),
            config_label(study, group),
            estimate(group.stp.as_ref()),
            estimate(group.antt.as_ref()),
            estimate(group.fairness.as_ref()),
            mean(group.util_gpu_pct.as_ref()),
            mean(group.power_w.as_ref()),
            estimate(group.energy_gain.as_ref()),
            estimate(group.stp_closed_loop.as_ref()),
            format!("{}/{}", group.n_valid, group.n_runs),
        ]);
        if group.from_invalid {
            for cell in rows
                .last_mut()
                .into_iter()
                .flat_map(|r| r.iter_mut().skip(2))
            {
                if cell != "-" && !cell.contains('/') {
                    cell.push_str(" (INVALID)");
                }
            }
        }
    }
    without_empty_columns(rows, &[5, 6, 7, 8])
}

pub(super) fn run_rows(analysis: &Analysis) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "run".to_string(),
        "verdict".into(),
        "STP".into(),
        "throughput per tenant (items/s)".into(),
    ]];
    for run in &analysis.runs {
        let throughputs: Vec<String> = run
            .tenants
            .iter()
            .map(|t| format!("{} {}", t.name, sig3(t.throughput_items_per_s)))
            .collect();
        rows.push(vec![
            run.id.clone(),
            if run.verdict.valid {
                "VALID"
            } else {
                "INVALID"
            }
            .to_string(),
            run.sharing.map_or("-".to_string(), |s| sig3(s.stp)),
            throughputs.join(", "),
        ]);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::without_empty_columns;

    fn rows(data: &[&[&str]]) -> Vec<Vec<String>> {
        data.iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect()
    }

    #[test]
    fn only_optional_columns_without_any_value_are_dropped() {
        let table = rows(&[
            &["mode", "STP", "GPU util %", "power W"],
            &["exclusive", "-", "-", "300"],
            &["mps", "2.0", "-", "-"],
        ]);
        assert_eq!(
            without_empty_columns(table, &[1, 2, 3]),
            rows(&[
                &["mode", "STP", "power W"],
                &["exclusive", "-", "300"],
                &["mps", "2.0", "-"],
            ])
        );
    }
}
