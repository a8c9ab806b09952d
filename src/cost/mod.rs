//! `gpushare cost`: what a unit of each tenant's work costs under each mode, from a study's
//! figures and a GPU's hourly price.
//!
//! Exclusive: the tenant holds the GPU alone, so an item costs `price / (3600 x T)`, with
//! `T` its exclusive throughput (items/s). Shared: the GPU-hour is split among the tenants
//! in proportion to the progress each made, `NP_i / STP` (Eyerman & Eeckhout 2008), so an
//! item of tenant `i` costs `price x (NP_i / STP) / (3600 x T_i)` with `T_i` its shared
//! throughput; this equals its exclusive cost divided by STP. Training tenants are priced
//! per epoch (`epoch_items` items: ImageNet-1k's 1,281,167 training images unless told),
//! every other tenant per million items (requests, sequences, steps). Groups without a
//! VALID run are left out, and so are open-loop tenants (a serving tenant paced by its
//! offered load): their throughput is the load they were sent, not what the GPU gave
//! them, so it prices nothing.
//!
//! **Invariant:** pure arithmetic over an analysis; the price is always the caller's.

use crate::metrics::Analysis;
use crate::sharing::ModeSetting;

/// ImageNet-1k's training set, in images: the default epoch.
pub const IMAGENET_1K_TRAIN_IMAGES: u64 = 1_281_167;

/// What the costs are computed from.
#[derive(Debug, Clone, Copy)]
pub struct Pricing {
    /// The GPU's price, in currency units per hour.
    pub price_per_hour: f64,
    /// Items in one training epoch.
    pub epoch_items: u64,
    /// Items other tenants are priced per (1,000,000).
    pub per_items: u64,
}

/// One tenant under one mode.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    pub mode: String,
    /// System throughput of the mode (1 for exclusive).
    pub stp: Option<f64>,
    pub tenant: String,
    pub workload: String,
    pub item: String,
    /// Mean throughput over VALID runs, in items per second.
    pub throughput_items_per_s: f64,
    /// The tenant's share of the GPU-hour, from 0 to 1.
    pub gpu_share: f64,
    /// What `unit_items` items cost, in the price's currency.
    pub cost: f64,
    /// How many items `cost` is for.
    pub unit_items: u64,
    /// `epoch` or `1M <items>`.
    pub unit: String,
}

/// One row per tenant and mode group with VALID figures; a shared group without STP
/// (no VALID exclusive baseline) is left out.
pub fn cost_rows(analysis: &Analysis, pricing: &Pricing) -> Vec<CostRow> {
    let mut rows = vec![];
    for group in analysis.groups.iter().filter(|g| !g.from_invalid) {
        let exclusive = group.mode == ModeSetting::Exclusive;
        let stp = if exclusive {
            Some(1.0)
        } else {
            group.stp.map(|e| e.mean)
        };
        let Some(stp_value) = stp.filter(|s| *s > 0.0) else {
            continue;
        };
        let mode = if analysis.groups.iter().any(|g| g.config_idx != 0) {
            format!("{} c{}", group.mode, group.config_idx)
        } else {
            group.mode.to_string()
        };
        for tenant in group.tenants.iter().filter(|t| !t.open_loop) {
            let Some(throughput) = tenant.throughput_items_per_s.map(|e| e.mean) else {
                continue;
            };
            let share = if exclusive {
                Some(1.0)
            } else {
                tenant.np.map(|np| np.mean / stp_value)
            };
            let Some(share) = share.filter(|_| throughput > 0.0) else {
                continue;
            };
            let training = tenant.workload.starts_with("train.");
            let (unit_items, unit) = if training {
                (pricing.epoch_items, "epoch".to_string())
            } else {
                (
                    pricing.per_items,
                    format!("{} {}", per_label(pricing.per_items), tenant.item),
                )
            };
            let cost_per_item = pricing.price_per_hour * share / (3600.0 * throughput);
            rows.push(CostRow {
                mode: mode.clone(),
                stp: Some(stp_value),
                tenant: tenant.name.clone(),
                workload: tenant.workload.clone(),
                item: tenant.item.clone(),
                throughput_items_per_s: throughput,
                gpu_share: share,
                cost: cost_per_item * unit_items as f64,
                unit_items,
                unit,
            });
        }
    }
    rows
}

fn per_label(n: u64) -> String {
    if n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else {
        n.to_string()
    }
}

/// The rows as a Markdown table, with the assumptions above it.
pub fn render(scenario: &str, rows: &[CostRow], pricing: &Pricing) -> String {
    // The price as the user gave it: a quoted price keeps its digits (10.4365, not 10.44).
    let mut out = format!(
        "Cost of `{scenario}` at {} per GPU-hour; an epoch is {} items.\n\n\
         | mode | STP | tenant | workload | throughput, items/s | GPU share | cost | per |\n\
         |---|---|---|---|---|---|---|---|\n",
        pricing.price_per_hour, pricing.epoch_items
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {:.2} | {} | {} | {:.1} {} | {:.2} | {:.4} | {} |\n",
            r.mode,
            r.stp.unwrap_or(1.0),
            r.tenant,
            r.workload,
            r.throughput_items_per_s,
            r.item,
            r.gpu_share,
            r.cost,
            r.unit
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Estimate, GroupAnalysis, TenantGroup};
    use crate::workload::Device;

    fn est(mean: f64) -> Option<Estimate> {
        Some(Estimate {
            mean,
            ci_low: mean,
            ci_high: mean,
            cv: 0.0,
            n: 3,
        })
    }

    fn tenant(name: &str, workload: &str, item: &str, t: f64, np: Option<f64>) -> TenantGroup {
        TenantGroup {
            name: name.into(),
            workload: workload.into(),
            device: Device::Gpu,
            item: item.into(),
            open_loop: false,
            kept_up: None,
            throughput_items_per_s: est(t),
            np: np.and_then(est),
            p50_ms: None,
            p99_ms: None,
            slo_attainment: None,
            slo_observed_ms: None,
            slo_met: None,
            slo_judged: None,
            failed_fraction: None,
            energy_per_item_j: None,
        }
    }

    fn group(mode: ModeSetting, stp: Option<f64>, tenants: Vec<TenantGroup>) -> GroupAnalysis {
        GroupAnalysis {
            mode,
            config_idx: 0,
            n_runs: 3,
            n_valid: 3,
            tenants,
            from_invalid: false,
            stp: stp.and_then(est),
            stp_closed_loop: None,
            antt: None,
            fairness: None,
            util_gpu_pct: None,
            power_w: None,
            energy_gain: None,
            memory_used_peak_bytes: None,
            throttling_seen: vec![],
        }
    }

    #[test]
    fn sharing_divides_each_tenants_exclusive_cost_by_stp() {
        let analysis = Analysis {
            runs: vec![],
            baselines: vec![],
            groups: vec![
                group(
                    ModeSetting::Exclusive,
                    None,
                    vec![
                        tenant("train", "train.resnet50", "images", 2000.0, None),
                        tenant("infer", "infer.batch.bert-base", "sequences", 8000.0, None),
                    ],
                ),
                group(
                    ModeSetting::TimeSlicing,
                    Some(1.25),
                    vec![
                        tenant("train", "train.resnet50", "images", 1500.0, Some(0.75)),
                        tenant(
                            "infer",
                            "infer.batch.bert-base",
                            "sequences",
                            4000.0,
                            Some(0.5),
                        ),
                    ],
                ),
                // No baseline, no STP: left out.
                group(ModeSetting::Mps(Default::default()), None, vec![]),
            ],
        };
        let pricing = Pricing {
            price_per_hour: 3.6,
            epoch_items: 1_000_000,
            per_items: 1_000_000,
        };
        let rows = cost_rows(&analysis, &pricing);
        assert_eq!(rows.len(), 4);
        // 3.6 per hour is 0.001 per second: alone, 1e6 images at 2000/s cost 0.5.
        assert!((rows[0].cost - 0.5).abs() < 1e-12);
        assert!((rows[1].cost - 0.125).abs() < 1e-12);
        // Shared: the same work costs the exclusive cost over STP.
        assert!((rows[2].cost - 0.5 / 1.25).abs() < 1e-12);
        assert!((rows[3].cost - 0.125 / 1.25).abs() < 1e-12);
        assert!((rows[2].gpu_share + rows[3].gpu_share - 1.0).abs() < 1e-12);
        assert_eq!(rows[2].unit, "epoch");
        assert_eq!(rows[3].unit, "1M sequences");
    }
}
