//! API keys as values: the token a client sends (`pos_<keyid>_<secret>`)
//! and a freshly made key. What a key may do is `domain::Scope`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::{KeyId, SecretHash};

/// Random bytes in a secret (256 bits).
const SECRET_BYTES: usize = 32;
/// Characters of a generated key id (lowercase letters and digits: ~82 bits).
const KEY_ID_LEN: usize = 16;
/// Longest secret accepted in a token; anything longer is not ours.
const MAX_SECRET_LEN: usize = 128;
const TOKEN_PREFIX: &str = "pos_";

/// A token as a client sends it, split into its public id and its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub key_id: &'a str,
    pub secret: &'a str,
}

impl<'a> Token<'a> {
    /// Parses `pos_<keyid>_<secret>`: a key id of lowercase letters and
    /// digits, a secret of base64url characters; `None` for anything else.
    pub fn parse(text: &'a str) -> Option<Token<'a>> {
        let rest = text.strip_prefix(TOKEN_PREFIX)?;
        let (key_id, secret) = rest.split_once('_')?;
        let id_ok = KeyId::is_valid(key_id);
        let secret_ok = (1..=MAX_SECRET_LEN).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (id_ok && secret_ok).then_some(Token { key_id, secret })
    }

    /// The token of an `Authorization: Bearer <token>` header value.
    pub fn from_bearer(header: &'a str) -> Option<Token<'a>> {
        let (scheme, token) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        Token::parse(token.trim())
    }
}

/// A key just made: the token to show once, and what to store.
pub struct NewKey {
    pub id: KeyId,
    pub hash: SecretHash,
    /// `pos_<id>_<secret>`; never stored, never logged.
    pub token: String,
}

impl NewKey {
    pub fn generate() -> Result<NewKey, getrandom::Error> {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret)?;
        let secret = URL_SAFE_NO_PAD.encode(secret);
        let id = random_key_id()?;
        Ok(NewKey {
            hash: SecretHash::of(&secret),
            token: format!("{TOKEN_PREFIX}{id}_{secret}"),
            id,
        })
    }
}

fn random_key_id() -> Result<KeyId, getrandom::Error> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; KEY_ID_LEN];
    getrandom::fill(&mut bytes)?;
    // 252 is the largest multiple of 36 below 256: redraw above it, so every
    // character is equally likely.
    let mut id = String::with_capacity(KEY_ID_LEN);
    let mut pool = bytes.to_vec();
    while id.len() < KEY_ID_LEN {
        match pool.pop() {
            Some(b) if b < 252 => id.push(ALPHABET[(b % 36) as usize] as char),
            Some(_) => {}
            None => {
                let mut more = [0u8; KEY_ID_LEN];
                getrandom::fill(&mut more)?;
                pool.extend_from_slice(&more);
            }
        }
    }
    Ok(KeyId::generated(&id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_back_and_matches_only_its_own_hash() {
        let key = NewKey::generate().expect("random bytes");
        let token = Token::parse(&key.token).expect("own format");
        assert_eq!(token.key_id, key.id.as_str());
        assert_eq!(token.secret.len(), 43, "256 bits in base64url");
        assert!(key.hash.matches(token.secret));
        let other = NewKey::generate().expect("random bytes");
        assert_ne!(other.id, key.id);
        assert!(!key
            .hash
            .matches(Token::parse(&other.token).expect("own").secret));
        assert!(!key.token.contains(&hex(&key.hash.0)));
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "",
            "pos_",
            "pos__secret",
            "pos_abc",
            "pos_abc_",
            "pos_ABC_secret",
            "key_abc_secret",
            "pos_abc_sec ret",
            "pos_abc_sec.ret",
            &format!("pos_{}_s", "a".repeat(33)),
            &format!("pos_a_{}", "s".repeat(129)),
        ] {
            assert_eq!(Token::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            Token::from_bearer("Bearer pos_abc_s3-_x"),
            Some(Token {
                key_id: "abc",
                secret: "s3-_x"
            })
        );
        assert_eq!(
            Token::from_bearer("bearer pos_abc_s").map(|t| t.key_id),
            Some("abc")
        );
        assert_eq!(Token::from_bearer("Basic pos_abc_s"), None);
        assert_eq!(Token::from_bearer("pos_abc_s"), None);
    }
}
