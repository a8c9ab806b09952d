//! Small timing helpers the probes share: the median of repeated timings and a precise
//! wait for an intended launch time.

use std::time::{Duration, Instant};

/// The median of `values` (the mean of the middle two for an even count); NaN when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// How close to the deadline the wait stops sleeping and spins. Linux wakes a sleeping
/// thread up to about 50 us late (the default timer slack), more under load.
const SPIN_BEFORE_DEADLINE: Duration = Duration::from_micros(150);

/// Returns at `deadline` (or at once if it has passed): sleeps most of the way, then
/// spins, so the wake-up error stays in the microseconds without spinning for long.
pub(crate) fn wait_until(deadline: Instant) {
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    let remaining = deadline - now;
    if remaining > SPIN_BEFORE_DEADLINE {
        std::thread::sleep(remaining - SPIN_BEFORE_DEADLINE);
    }
    while Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn wait_until_returns_at_the_deadline_not_before() {
        let deadline = Instant::now() + Duration::from_millis(2);
        wait_until(deadline);
        let now = Instant::now();
        assert!(now >= deadline);
        // Generous bound: only checks that the wait does not oversleep wildly.
        assert!(now - deadline < Duration::from_millis(20));
    }
}
