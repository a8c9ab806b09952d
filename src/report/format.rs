//! Number formatting shared by the report views.

use crate::metrics::Estimate;

/// A value with three significant digits, no exponent for everyday magnitudes.
pub fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `mean [low, high]`; just the mean with one value.
pub fn estimate(e: Option<&Estimate>) -> String {
    match e {
        None => "-".to_string(),
        Some(e) if e.n < 2 => sig3(e.mean),
        Some(e) => format!("{} [{}, {}]", sig3(e.mean), sig3(e.ci_low), sig3(e.ci_high)),
    }
}

/// The mean alone, or `-`.
pub fn mean(e: Option<&Estimate>) -> String {
    e.map_or_else(|| "-".to_string(), |e| sig3(e.mean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig3(1978.4), "1978");
        assert_eq!(sig3(19.784), "19.8");
        assert_eq!(sig3(0.9784), "0.978");
        assert_eq!(sig3(1.0), "1.00");
        assert_eq!(sig3(f64::NAN), "-");
    }
}
