//! Seeded, platform-independent randomness. `SmallRng` differs between 32- and 64-bit targets, so
//! native and wasm32 runs would disagree; Xoshiro256++ is the same everywhere.

pub use rand::{Rng, RngCore, SeedableRng};
pub type SsiRng = rand_xoshiro::Xoshiro256PlusPlus;

/// SplitMix64 finaliser: decorrelates derived seeds such as (seed, user, purpose).
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator for one purpose (`tag`) of one entity (`index`) under a global seed, so that the
/// draws for a user do not depend on which other users were processed before it.
pub fn derived(seed: u64, tag: u64, index: u64) -> SsiRng {
    SsiRng::seed_from_u64(mix(mix(seed ^ mix(tag)) ^ index))
}

pub fn seeded(seed: u64) -> SsiRng {
    SsiRng::seed_from_u64(mix(seed))
}
