//! Per-second rates of `counter` and `derive` datapoints, shared by the collector and the
//! portal so that both turn raw samples into the same stored values.

use super::model::DatapointType;

/// 2^32, the modulus of a 32-bit counter.
const WRAP_32: f64 = 4_294_967_296.0;
/// 2^64, the modulus of a 64-bit counter.
const WRAP_64: f64 = 18_446_744_073_709_551_616.0;

/// The per-second rate between two samples `(timestamp_ms, value)` of a datapoint.
///
/// * [`DatapointType::Derive`]: `(cur − prev) / seconds`, which may be negative.
/// * [`DatapointType::Counter`]: the same for an increase. A decrease is a wrap when both
///   values fit in 32 bits (modulus 2^32), else in 64 bits (modulus 2^64), **and** the
///   wrapped increase `cur + modulus − prev` is under half the modulus; any other decrease
///   is a reset (a reboot, a cleared counter) and gives `None`, as does a negative value.
///   64-bit counters are carried in `f64`, exact up to 2^53.
/// * [`DatapointType::Gauge`] and [`DatapointType::Expression`] are not rates: `None`.
///
/// `None` too when the time does not increase (`cur.0 <= prev.0`) or a value is not finite.
///
/// ```
/// use palisade_core::datasource::{counter_rate, DatapointType};
/// let c = DatapointType::Counter;
/// assert_eq!(counter_rate((0, 100.0), (10_000, 600.0), c), Some(50.0));
/// // A 32-bit counter wrapped: 4294967000 → 704 is an increase of 1000.
/// assert_eq!(counter_rate((0, 4_294_967_000.0), (1_000, 704.0), c), Some(1000.0));
/// // A reset: no value rather than a spike.
/// assert_eq!(counter_rate((0, 1_000_000.0), (1_000, 5.0), c), None);
/// assert_eq!(counter_rate((0, 10.0), (1_000, 5.0), DatapointType::Derive), Some(-5.0));
/// ```
pub fn counter_rate(prev: (i64, f64), cur: (i64, f64), kind: DatapointType) -> Option<f64> {
    let (t0, v0) = prev;
    let (t1, v1) = cur;
    if t1 <= t0 || !v0.is_finite() || !v1.is_finite() {
        return None;
    }
    // i128: no overflow whatever the timestamps.
    let seconds = (i128::from(t1) - i128::from(t0)) as f64 / 1000.0;
    let delta = match kind {
        DatapointType::Gauge | DatapointType::Expression => return None,
        DatapointType::Derive => v1 - v0,
        DatapointType::Counter => counter_delta(v0, v1)?,
    };
    let rate = delta / seconds;
    rate.is_finite().then_some(rate)
}

/// The increase of a counter from `v0` to `v1`, wraps included; `None` on a reset.
fn counter_delta(v0: f64, v1: f64) -> Option<f64> {
    if v0 < 0.0 || v1 < 0.0 {
        return None;
    }
    if v1 >= v0 {
        return Some(v1 - v0);
    }
    let modulus = if v0 < WRAP_32 && v1 < WRAP_32 {
        WRAP_32
    } else if v0 < WRAP_64 && v1 < WRAP_64 {
        WRAP_64
    } else {
        return None;
    };
    let wrapped = v1 + (modulus - v0);
    (wrapped < modulus / 2.0).then_some(wrapped)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const C: DatapointType = DatapointType::Counter;
    const D: DatapointType = DatapointType::Derive;

    #[test]
    fn plain_rates() {
        assert_eq!(counter_rate((1_000, 0.0), (61_000, 600.0), C), Some(10.0));
        assert_eq!(counter_rate((0, 5.0), (500, 5.0), C), Some(0.0));
        assert_eq!(counter_rate((0, 5.0), (500, 6.0), C), Some(2.0));
        assert_eq!(counter_rate((0, 100.0), (2_000, 50.0), D), Some(-25.0));
        assert_eq!(counter_rate((0, -10.0), (1_000, -4.0), D), Some(6.0));
    }

    #[test]
    fn time_must_increase() {
        assert_eq!(counter_rate((1_000, 0.0), (1_000, 10.0), C), None);
        assert_eq!(counter_rate((2_000, 0.0), (1_000, 10.0), C), None);
        assert_eq!(counter_rate((2_000, 0.0), (1_000, 10.0), D), None);
        // Extreme timestamps do not overflow.
        assert!(counter_rate((i64::MIN, 0.0), (i64::MAX, 1.0), C).is_some());
    }

    #[test]
    fn gauges_and_expressions_are_not_rates() {
        assert_eq!(
            counter_rate((0, 1.0), (1_000, 2.0), DatapointType::Gauge),
            None
        );
        assert_eq!(
            counter_rate((0, 1.0), (1_000, 2.0), DatapointType::Expression),
            None
        );
    }

    #[test]
    fn wrap_32() {
        let max = u32::MAX as f64;
        assert_eq!(counter_rate((0, max), (1_000, 0.0), C), Some(1.0));
        assert_eq!(counter_rate((0, max - 9.0), (2_000, 10.0), C), Some(10.0));
        // Just under half the range after the wrap still counts as a wrap.
        let half = WRAP_32 / 2.0;
        assert_eq!(
            counter_rate((0, half + 1.0), (1_000, 0.0), C),
            Some(half - 1.0)
        );
        // Half the range or more is a reset.
        assert_eq!(counter_rate((0, half), (1_000, 0.0), C), None);
        assert_eq!(counter_rate((0, 1_000.0), (1_000, 10.0), C), None);
    }

    #[test]
    fn wrap_64() {
        // prev does not fit in 32 bits: the counter is 64-bit.
        let prev = WRAP_64 - 4_096.0;
        assert_eq!(counter_rate((0, prev), (1_000, 4_096.0), C), Some(8_192.0));
        // A 64-bit counter falling from a modest value is a reset.
        assert_eq!(counter_rate((0, 10_000_000_000.0), (1_000, 3.0), C), None);
        // Values beyond 64 bits cannot wrap.
        assert_eq!(counter_rate((0, WRAP_64 * 2.0), (1_000, 3.0), C), None);
    }

    #[test]
    fn negative_and_non_finite_values() {
        assert_eq!(counter_rate((0, -1.0), (1_000, 5.0), C), None);
        assert_eq!(counter_rate((0, 5.0), (1_000, -1.0), C), None);
        assert_eq!(counter_rate((0, f64::NAN), (1_000, 5.0), C), None);
        assert_eq!(counter_rate((0, 0.0), (1_000, f64::INFINITY), D), None);
        assert_eq!(counter_rate((0, f64::MAX), (1_000, -f64::MAX), D), None);
    }
}
