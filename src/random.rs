//! The one random source: a small, fast, seedable generator (SplitMix64).
//!
//! It draws backoff jitter and lease nonces, and the journal's per-run checksum salt. Lease
//! nonces fence deliveries against mix-ups, not attackers (API keys are a separate concern),
//! and the salt only has to differ between runs, so a non-cryptographic generator is enough.

use std::hash::BuildHasher;

/// SplitMix64 state.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (tests fix it, so jitter and nonces repeat).
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A generator seeded differently in every process and every call: the standard library's
    /// per-process random hash keys, mixed with the time and the process id.
    pub fn from_entropy() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Rng(std::collections::hash_map::RandomState::new().hash_one((std::process::id(), nanos)))
    }

    /// The next uniformly distributed u64.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_and_entropy_differs() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..4).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(first[0], first[1]);
        assert_ne!(
            Rng::from_entropy().next_u64(),
            Rng::from_entropy().next_u64()
        );
    }
}
