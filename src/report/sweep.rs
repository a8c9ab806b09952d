//! Two tables of the human report that read a study across its points: the pooled
//! exclusive baselines (each with its spread, its GPU utilization alone and the
//! host-bound flag), and, for a study with a sweep, one row per point and mode with the
//! figures that move along it (tenant count, STP, NP per tenant, the latency tenants'
//! P50/P99, GPU memory): the interval and replica-count sweeps read from it.

use super::format::{estimate, mean, sig3};
use crate::metrics::{Analysis, TenantGroup};
use crate::results::Study;
use crate::sharing::ModeSetting;

/// One row per pooled baseline: `tenant`, throughput alone [CI], CV, replicas measured,
/// GPU utilization alone, and the flag.
pub fn baseline_rows(study: &Study, analysis: &Analysis) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "config".to_string(),
        "tenant".into(),
        "alone (items/s)".into(),
        "CV".into(),
        "measured".into(),
        "GPU util % alone".into(),
        "flag".into(),
    ]];
    for b in &analysis.baselines {
        let e = &b.throughput_items_per_s;
        rows.push(vec![
            config_label(study, b.config_idx),
            b.tenant.clone(),
            format!("{} {}/s", estimate(Some(e)), b.item),
            format!("{:.1}%", e.cv * 100.0),
            format!("{} x {} replica(s)", e.n, b.n_replicas),
            mean(b.util_gpu_pct.as_ref()),
            if b.host_bound.is_some() {
                "host-bound"
            } else {
                "-"
            }
            .to_string(),
        ]);
    }
    rows
}

/// The flags' full reasons, one line each.
pub fn baseline_notes(study: &Study, analysis: &Analysis) -> Vec<String> {
    analysis
        .baselines
        .iter()
        .filter_map(|b| {
            b.host_bound.as_ref().map(|why| {
                format!(
                    "{} `{}`: {why}",
                    config_label(study, b.config_idx),
                    b.tenant
                )
            })
        })
        .collect()
}

/// Whether the study has more than one configuration (a tenant sweep).
pub fn has_sweep(study: &Study) -> bool {
    study.plan.configs.len() > 1
}

/// A tenant whose latency the sweep follows: one with an SLO, or whose rate its
/// parameters set (a latency probe, a service).
fn latency_tenant(t: &TenantGroup) -> bool {
    t.slo_judged.is_some() || t.workload == "probe.latency" || t.workload.starts_with("serve.")
}

/// One row per shared mode and sweep point (exclusive rows carry only the tenant count
/// and latency alone).
pub fn sweep_rows(study: &Study, analysis: &Analysis) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "config".to_string(),
        "mode".into(),
        "tenants".into(),
        "STP".into(),
        "NP per tenant (min-max)".into(),
        "latency P50 / worst P99 ms".into(),
        "GPU memory GiB".into(),
        "VALID runs".into(),
    ]];
    let mut groups: Vec<_> = analysis.groups.iter().collect();
    groups.sort_by_key(|g| (g.config_idx, g.mode != ModeSetting::Exclusive));
    for g in groups {
        let n_tenants = study
            .plan
            .configs
            .get(g.config_idx)
            .map_or(g.tenants.len(), |c| c.tenants.len());
        let np: Vec<f64> = g
            .tenants
            .iter()
            .filter_map(|t| t.np.as_ref().map(|e| e.mean))
            .collect();
        let np_text = if np.is_empty() || g.mode == ModeSetting::Exclusive {
            "-".to_string()
        } else {
            let lo = np.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = np.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let avg = np.iter().sum::<f64>() / np.len() as f64;
            format!("{} ({}-{})", sig3(avg), sig3(lo), sig3(hi))
        };
        let latency: Vec<&TenantGroup> = g.tenants.iter().filter(|t| latency_tenant(t)).collect();
        let latency_text = if latency.is_empty() {
            "-".to_string()
        } else {
            let p50: Vec<f64> = latency
                .iter()
                .filter_map(|t| t.p50_ms.as_ref().map(|e| e.mean))
                .collect();
            let p99 = latency
                .iter()
                .filter_map(|t| t.p99_ms.as_ref().map(|e| e.mean))
                .fold(f64::NAN, f64::max);
            if p50.is_empty() {
                "-".to_string()
            } else {
                let p50 = p50.iter().sum::<f64>() / p50.len() as f64;
                format!("{} / {}", sig3(p50), sig3(p99))
            }
        };
        rows.push(vec![
            config_label(study, g.config_idx),
            g.mode.to_string(),
            n_tenants.to_string(),
            estimate(g.stp.as_ref()),
            np_text,
            latency_text,
            g.memory_used_peak_bytes
                .as_ref()
                .map_or("-".to_string(), |e| sig3(e.mean / (1u64 << 30) as f64)),
            format!("{}/{}", g.n_valid, g.n_runs),
        ]);
    }
    rows
}

fn config_label(study: &Study, config_idx: usize) -> String {
    let label = study
        .plan
        .configs
        .get(config_idx)
        .map(|c| c.label.as_str())
        .unwrap_or("");
    if label.is_empty() {
        format!("c{config_idx}")
    } else {
        format!("c{config_idx} {label}")
    }
}
