//! Key tokens: `wk_<id>_<secret>`, where the id (16 hex digits) names the key and the secret is
//! 256 random bits (43 characters of unpadded base64url). Only the SHA-256 of the secret is
//! stored: a token is random, so a fast hash is right (there is nothing to brute-force that a
//! slow hash would protect). The secret alone fits one SHA-256 block, where the whole token
//! would take two: this hash runs on every request.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every token starts with, so that one pasted somewhere it should not be is recognised
/// (by people and by secret scanners).
pub const PREFIX: &str = "wk_";

const ID_LEN: usize = 16;
const SECRET_BYTES: usize = 32;
const SECRET_LEN: usize = 43;

/// A new key's id and token.
pub struct NewToken {
    /// The key id (public: it names the key in lists and logs).
    pub id: String,
    /// The token (secret: shown once).
    pub token: String,
    /// What is stored of it.
    pub hash: [u8; 32],
}

/// Draws a new id and token from the operating system's random source.
pub fn generate() -> Result<NewToken, getrandom::Error> {
    let mut id = [0u8; ID_LEN / 2];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id)?;
    getrandom::fill(&mut secret)?;
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let hash = Sha256::digest(secret.as_bytes()).into();
    let token = format!("{PREFIX}{id}_{secret}");
    Ok(NewToken { id, token, hash })
}

/// The hash a token is stored as: the SHA-256 of its secret (`None`: not a token's shape).
pub fn hash(token: &str) -> Option<[u8; 32]> {
    let (_, secret) = split(token)?;
    Some(Sha256::digest(secret.as_bytes()).into())
}

/// The key id a token names, if it has a token's shape at all.
pub fn id_of(token: &str) -> Option<&str> {
    split(token).map(|(id, _)| id)
}

/// (id, secret) of a token of the right shape.
fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let shaped = id.len() == ID_LEN
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && secret.len() == SECRET_LEN;
    shaped.then_some((id, secret))
}

/// Whether `token` hashes to `stored`, compared in constant time.
pub fn verify(token: &str, stored: &[u8; 32]) -> bool {
    hash(token).is_some_and(|hash| hash.ct_eq(stored).into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_token_names_its_key_and_verifies_only_against_its_own_hash() {
        let new = generate().unwrap();
        assert!(new.token.starts_with("wk_"));
        assert_eq!(id_of(&new.token), Some(new.id.as_str()));
        let stored = hash(&new.token).unwrap();
        assert!(verify(&new.token, &stored));
        let other = generate().unwrap();
        assert_ne!(new.id, other.id);
        assert!(!verify(&other.token, &stored));
        assert_eq!(new.hash, stored);
        for bad in [
            "",
            "wk_",
            "Bearer x",
            "wk_0123_abc",
            &new.token[1..],
            &format!("{}x", new.token),
        ] {
            assert_eq!(id_of(bad), None, "{bad:?}");
        }
    }
}
