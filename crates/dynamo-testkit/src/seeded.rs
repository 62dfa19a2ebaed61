//! A tiny deterministic generator for seeded tests: the same seed gives the
//! same cases on every run and machine.

/// Xorshift64: `Xorshift(seed).below(n)` draws in `0..n`. A seed of 0
/// draws only 0s: give a non-zero one.
#[derive(Debug, Clone)]
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next draw, in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_numbers_in_range() {
        let (mut a, mut b) = (Xorshift(42), Xorshift(42));
        let drawn: Vec<u64> = (0..100).map(|_| a.below(10)).collect();
        assert_eq!(drawn, (0..100).map(|_| b.below(10)).collect::<Vec<_>>());
        assert!(drawn.iter().all(|&d| d < 10));
        assert!(drawn.iter().any(|&d| d != drawn[0]));
    }
}
