//! Session tokens: HS256 JWTs whose `sub` is the user id, issued by `verify-code` and checked
//! by the WebSocket (and, later, the end-user routes).

use std::time::Duration;

use chat3_core::ids::now_ms;
use chat3_sdk::UserId;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Issuer claim of every token.
const ISSUER: &str = "chat3-bff";

/// The claims of a session token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (`usr_` + 8).
    pub sub: String,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expires at (seconds since the epoch).
    pub exp: u64,
    /// Always `chat3-bff`.
    pub iss: String,
}

/// Signs and checks session tokens with one secret.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("ttl", &self.ttl).finish()
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, expired, malformed.
    #[error("jwt: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    /// `sub` is not a valid user id.
    #[error("bad subject")]
    Subject,
}

impl Tokens {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// A fresh token for `user`.
    pub fn issue(&self, user: &UserId) -> Result<String, TokenError> {
        let iat = (now_ms() / 1000).max(0) as u64;
        let claims = Claims {
            sub: user.to_string(),
            iat,
            exp: iat + self.ttl.as_secs(),
            iss: ISSUER.to_owned(),
        };
        Ok(encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The user a valid token was issued to.
    pub fn verify(&self, token: &str) -> Result<UserId, TokenError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)?;
        data.claims.sub.parse().map_err(|_| TokenError::Subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_forged_ones_do_not() {
        let t = Tokens::new(b"0123456789abcdef", Duration::from_secs(60));
        let user: UserId = "usr_abcd1234".parse().unwrap();
        let token = t.issue(&user).unwrap();
        assert_eq!(t.verify(&token).unwrap(), user);
        let other = Tokens::new(b"another-secret-0000", Duration::from_secs(60));
        assert!(other.verify(&token).is_err());
        assert!(t.verify("not.a.jwt").is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let t = Tokens::new(b"0123456789abcdef", Duration::from_secs(60));
        let now = (now_ms() / 1000) as u64;
        let claims = Claims {
            sub: "usr_abcd1234".into(),
            iat: now - 3600,
            exp: now - 600,
            iss: ISSUER.into(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &t.encoding).unwrap();
        assert!(t.verify(&token).is_err());
    }
}
