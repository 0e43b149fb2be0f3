//! Uniform random draws for latency, declines and injected failures.

use uuid::Uuid;

/// A uniform draw from `[0, 1)`.
///
/// A v4 UUID is 122 random bits from the OS generator; its low 62 bits are all random, and 53 of
/// them fill an `f64` mantissa exactly. This spares a random-number crate for a sandbox's dice.
pub(crate) fn unit() -> f64 {
    const MANTISSA_BITS: u32 = 53;
    let bits = Uuid::new_v4().as_u128() as u64 & ((1 << MANTISSA_BITS) - 1);
    bits as f64 / (1u64 << MANTISSA_BITS) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_fall_in_the_unit_interval_and_spread_over_it() {
        let draws: Vec<f64> = (0..10_000).map(|_| super::unit()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let below_half = draws.iter().filter(|d| **d < 0.5).count();
        assert!(
            (4_500..5_500).contains(&below_half),
            "{below_half} of 10000 below 0.5"
        );
    }
}
