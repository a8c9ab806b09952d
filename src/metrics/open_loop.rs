//! Open-loop tenants: those that pace themselves (a serving tenant at a fixed offered
//! rate, a notebook that mostly thinks, the latency probe's fixed launch interval; see
//! [`crate::workload::paces_itself`]). Their throughput is their offered load whenever
//! they keep up, so their NP is close to 1 then and says nothing about the capacity the
//! GPU had left for them: it measures whether they kept up, not how fast they could go.
//! Reports mark them and state STP over the closed-loop tenants beside the total.

/// NP at or above which an open-loop tenant kept up with its offered load: it completed at
/// least 95% of the work it completed alone, where nothing competed with it.
pub const KEPT_UP_NP: f64 = 0.95;

/// Whether an open-loop tenant with normalized progress `np` kept up with its offered load.
pub fn kept_up(np: f64) -> bool {
    np >= KEPT_UP_NP
}

/// STP over the closed-loop tenants of a run (`(np, open_loop)` per tenant): `None`
/// unless the run has both kinds, since otherwise it equals the total or is empty.
pub fn closed_loop_stp(tenants: &[(f64, bool)]) -> Option<f64> {
    let closed: Vec<f64> = tenants
        .iter()
        .filter(|(_, open)| !open)
        .map(|(np, _)| *np)
        .collect();
    (!closed.is_empty() && closed.len() < tenants.len()).then(|| super::sharing::stp(&closed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_loop_stp_only_for_mixed_runs() {
        assert_eq!(closed_loop_stp(&[(0.5, false), (1.0, true)]), Some(0.5));
        assert_eq!(closed_loop_stp(&[(0.5, false), (0.4, false)]), None);
        assert_eq!(closed_loop_stp(&[(1.0, true)]), None);
        assert!(kept_up(0.95) && !kept_up(0.949));
    }
}
