//! The deployment ID (`STACKGEN_DEPLOYMENT`): which manifest a running container belongs to.
//! Generated once by `init`, checked here like every other value; the label it becomes is
//! `crate::policy::DEPLOYMENT_LABEL`, the ownership checks against running containers are
//! `crate::ops::deployment`'s.

use rand::Rng;

use crate::policy::DEPLOYMENT_LABEL as LABEL;

/// The manifest key holding the deployment ID.
pub const KEY: &str = "STACKGEN_DEPLOYMENT";

/// A new deployment ID: 16 lowercase hex digits (64 random bits: two manifests never share one
/// by chance).
pub fn generate() -> String {
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// The value check of `STACKGEN_DEPLOYMENT`: 8 to 64 characters, lowercase letters, digits and
/// `-` (a Docker label value, and readable in a message).
pub fn check_id(value: &str) -> Result<(), (String, String)> {
    let ok = (8..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err((
            "is not a deployment ID (8 to 64 characters: lowercase letters, digits, -)".into(),
            format!(
                "delete the line and run `stackgen init` to generate one; if containers are already running with an ID, put that ID back ({LABEL} on `docker inspect`)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_generated_valid_and_distinct() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 16);
        assert!(check_id(&a).is_ok(), "{a}");
        assert_ne!(a, b);
        for bad in [
            "",
            "short",
            "UPPERCASE-ID",
            "has space in it",
            "id=0123456789",
            &"a".repeat(65),
        ] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
