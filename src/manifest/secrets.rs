//! Secret generation: alphanumeric only, because `$` breaks compose interpolation and other
//! punctuation breaks the URLs the secrets are spliced into.

use rand::distr::{Alphanumeric, SampleString};

/// Length of every generated secret.
pub const LENGTH: usize = 40;

/// A fresh secret from the thread-local CSPRNG (seeded by the OS).
pub fn generate() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), LENGTH)
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_long_alphanumeric_and_distinct() {
        let a = super::generate();
        let b = super::generate();
        assert_eq!(a.len(), 40);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
