//! Whole items from exact work counts.
//!
//! A step reports whole items (`u64`), but a probe's work is counted in FLOP or bytes and
//! reported in GFLOP or GB so that throughput in items/s reads as GFLOP/s or GB/s. Rounding
//! each step would bias the total; instead the part below one item is carried into the
//! next step, so the items summed over any run of steps are the exact work, rounded down,
//! off by less than one item.

/// Converts exact work units (FLOP, bytes) into whole items (GFLOP, GB), carrying the
/// remainder from step to step.
#[derive(Debug, Clone)]
pub(crate) struct WholeItems {
    units_per_item: u128,
    carried_units: u128,
}

impl WholeItems {
    pub(crate) fn new(units_per_item: u64) -> Self {
        WholeItems {
            units_per_item: u128::from(units_per_item.max(1)),
            carried_units: 0,
        }
    }

    /// Adds one step's work and returns the whole items it completes.
    pub(crate) fn add(&mut self, units: u128) -> u64 {
        let total = self.carried_units + units;
        self.carried_units = total % self.units_per_item;
        u64::try_from(total / self.units_per_item).unwrap_or(u64::MAX)
    }
}

/// One GFLOP or one GB in FLOP or bytes (SI prefixes, as NVIDIA's datasheets use).
pub(crate) const GIGA: u64 = 1_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remainders_carry_so_the_sum_is_exact() {
        let mut items = WholeItems::new(GIGA);
        let step = 1_400_000_000u128; // 1.4 GB per step
        let emitted: Vec<u64> = (0..5).map(|_| items.add(step)).collect();
        assert_eq!(emitted, vec![1, 1, 2, 1, 2]);
        assert_eq!(emitted.iter().sum::<u64>(), 7);
    }

    #[test]
    fn whole_multiples_carry_nothing() {
        let mut items = WholeItems::new(GIGA);
        assert_eq!(items.add(4 * u128::from(GIGA)), 4);
        assert_eq!(items.add(4 * u128::from(GIGA)), 4);
    }
}
