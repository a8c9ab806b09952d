//! Multi-tenant figures of merit from each tenant's isolated (exclusive) baseline:
//! normalized progress, system throughput and average normalized turnaround time
//! (Eyerman & Eeckhout, "System-level performance metrics for multiprogram workloads",
//! IEEE Micro 2008), and Jain's fairness index (Jain, Chiu & Hawe 1984).

use serde::{Deserialize, Serialize};

/// Normalized progress of one tenant: its throughput shared over its throughput alone.
pub fn normalized_progress(shared: f64, alone: f64) -> Option<f64> {
    (alone > 0.0 && shared.is_finite()).then(|| shared / alone)
}

/// System throughput: the sum of normalized progress. Above 1, sharing got more done
/// than running the tenants one at a time.
pub fn stp(np: &[f64]) -> f64 {
    np.iter().sum()
}

/// Average normalized turnaround time: the mean slowdown, mean of 1/NP. Infinite when a
/// tenant made no progress.
pub fn antt(np: &[f64]) -> f64 {
    if np.is_empty() {
        return f64::NAN;
    }
    np.iter().map(|x| 1.0 / x).sum::<f64>() / np.len() as f64
}

/// Jain's fairness index over normalized progress: (sum x)^2 / (n * sum x^2), from 1/n
/// (one tenant gets everything) to 1 (all slowed equally).
pub fn jain_fairness(np: &[f64]) -> f64 {
    let sum: f64 = np.iter().sum();
    let sum_sq: f64 = np.iter().map(|x| x * x).sum();
    if sum_sq == 0.0 {
        return f64::NAN;
    }
    sum * sum / (np.len() as f64 * sum_sq)
}

/// The per-run sharing figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SharingFigures {
    /// System throughput, sum of NP (unitless).
    pub stp: f64,
    /// Average normalized turnaround time, mean of 1/NP (unitless).
    pub antt: f64,
    /// Jain's fairness index over NP, from 1/n to 1.
    pub fairness: f64,
}

impl SharingFigures {
    pub fn of(np: &[f64]) -> SharingFigures {
        SharingFigures {
            stp: stp(np),
            antt: antt(np),
            fairness: jain_fairness(np),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_tenants_each_at_sixty_percent() {
        let np = [
            normalized_progress(600.0, 1000.0).unwrap(),
            normalized_progress(30.0, 50.0).unwrap(),
        ];
        assert!((stp(&np) - 1.2).abs() < 1e-12);
        assert!((antt(&np) - 1.0 / 0.6).abs() < 1e-12);
        assert!((jain_fairness(&np) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn unequal_progress_lowers_fairness_by_jains_formula() {
        // (0.9 + 0.3)^2 / (2 * (0.81 + 0.09)) = 1.44 / 1.8 = 0.8
        let np = [0.9, 0.3];
        assert!((jain_fairness(&np) - 0.8).abs() < 1e-12);
        // ANTT = (1/0.9 + 1/0.3) / 2
        assert!((antt(&np) - (1.0 / 0.9 + 1.0 / 0.3) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn one_tenant_taking_everything_is_the_least_fair() {
        assert!((jain_fairness(&[1.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn no_baseline_means_no_normalized_progress() {
        assert_eq!(normalized_progress(5.0, 0.0), None);
    }
}
