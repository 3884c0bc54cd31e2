//! Phone login: issuing one-time codes (stored only as a peppered SHA-256), checking them with
//! a bounded number of attempts, creating the user on first login and signing the session.

use std::sync::Arc;
use std::time::Duration;

use bson::{doc, Document};
use chat3_core::error::is_duplicate_key;
use chat3_core::ids::{now_ms, random_base36};
use chat3_core::store::Store;
use chat3_sdk::{BffUser, CodeSent, Session, UserId};
use mongodb::options::ReturnDocument;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::{LOGIN_CODES, USERS};
use crate::error::ApiError;
use crate::phone::Phone;
use crate::sms::{login_text, SmsProvider};
use crate::token::Tokens;

/// Wrong attempts a code survives; the next one finds it burned.
pub const MAX_ATTEMPTS: i64 = 5;

/// Longest display name accepted.
const MAX_NAME_CHARS: usize = 100;

/// A stored end user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserDoc {
    user_id: String,
    phone: String,
    name: String,
    created_at: i64,
}

/// The login flow over the BFF database.
#[derive(Clone)]
pub struct Login {
    store: Store,
    sms: Arc<dyn SmsProvider>,
    tokens: Tokens,
    pepper: Arc<[u8]>,
    code_ttl: Duration,
    code_length: u32,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("code_ttl", &self.code_ttl)
            .field("code_length", &self.code_length)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// A login flow storing in `store`, sending through `sms`, hashing with `pepper`.
    pub fn new(
        store: Store,
        sms: Arc<dyn SmsProvider>,
        tokens: Tokens,
        pepper: &[u8],
        code_ttl: Duration,
        code_length: u32,
    ) -> Self {
        Self {
            store,
            sms,
            tokens,
            pepper: Arc::from(pepper),
            code_ttl,
            code_length: code_length.clamp(4, 6),
        }
    }

    /// The session token service.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Stores a fresh code for `phone` (replacing any earlier one) and sends it.
    #[tracing::instrument(name = "login.request_code", skip_all, fields(phone = %phone.masked()))]
    pub async fn request_code(
        &self,
        phone: &Phone,
        name: Option<String>,
    ) -> Result<CodeSent, ApiError> {
        let name = clean_name(name)?;
        let code = self.new_code();
        let hash = self.hash(phone, &code);
        let now = now_ms();
        let ttl_ms = i64::try_from(self.code_ttl.as_millis()).unwrap_or(i64::MAX);
        let mut record = doc! {
            "phone": phone.as_str(),
            "codeHash": &hash,
            "attempts": 0_i64,
            "expiresAt": now.saturating_add(ttl_ms),
            "expireAt": bson::DateTime::from_millis(now.saturating_add(ttl_ms)),
            "createdAt": now,
        };
        if let Some(n) = name {
            record.insert("name", n);
        }
        self.store
            .own::<Document>(LOGIN_CODES)
            .replace_one(doc! {"phone": phone.as_str()}, record)
            .upsert(true)
            .await?;
        if let Err(e) = self.sms.send(phone, &login_text(&code)).await {
            tracing::warn!(error = %e, "sending the login code failed");
            // A code nobody received must not stay valid.
            self.store
                .own::<Document>(LOGIN_CODES)
                .delete_one(doc! {"phone": phone.as_str(), "codeHash": &hash})
                .await?;
            return Err(ApiError::SmsFailed);
        }
        Ok(CodeSent {
            phone: phone.to_string(),
            expires_in: self.code_ttl.as_secs(),
        })
    }

    /// Checks `code` for `phone`; on success the code is consumed, the user is found or
    /// created, and a session token is issued.
    ///
    /// The attempt is counted before the code is compared, in one conditional update: only the
    /// first [`MAX_ATTEMPTS`] attempts on a code are ever compared, however many arrive at once
    /// (on any number of instances), and a correct code consumes the record once.
    #[tracing::instrument(name = "login.verify_code", skip_all, fields(phone = %phone.masked()))]
    pub async fn verify_code(&self, phone: &Phone, code: &str) -> Result<Session, ApiError> {
        if !(4..=6).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::validation("code must be 4-6 digits"));
        }
        let codes = self.store.own::<Document>(LOGIN_CODES);
        let now = now_ms();
        let counted = codes
            .find_one_and_update(
                doc! {
                    "phone": phone.as_str(),
                    "attempts": {"$lt": MAX_ATTEMPTS},
                    "expiresAt": {"$gt": now},
                },
                doc! {"$inc": {"attempts": 1_i64}},
            )
            .return_document(ReturnDocument::After)
            .await?;
        let Some(record) = counted else {
            return Err(self.why_refused(phone, now).await?);
        };
        let stored = record.get_str("codeHash").unwrap_or_default();
        if !same_hash(stored, &self.hash(phone, code)) {
            return Err(ApiError::InvalidCode);
        }
        // Consume it: of concurrent correct attempts, one deletes the record and wins.
        let consumed = codes
            .delete_one(doc! {"_id": record.get("_id"), "codeHash": stored})
            .await?;
        if consumed.deleted_count != 1 {
            return Err(ApiError::InvalidCode);
        }
        let name = record.get_str("name").ok().map(str::to_owned);
        let user = self.find_or_create_user(phone, name).await?;
        let token = self
            .tokens
            .issue(&user.user_id)
            .map_err(ApiError::internal)?;
        tracing::info!(user_id = %user.user_id, "login");
        Ok(Session { token, user })
    }

    /// Why no attempt could be counted: no code, an expired one, or one burned by attempts.
    async fn why_refused(&self, phone: &Phone, now: i64) -> Result<ApiError, ApiError> {
        let codes = self.store.own::<Document>(LOGIN_CODES);
        let Some(found) = codes.find_one(doc! {"phone": phone.as_str()}).await? else {
            return Ok(ApiError::InvalidCode);
        };
        if int_field(&found, "expiresAt") <= now {
            codes.delete_one(doc! {"_id": found.get("_id")}).await?;
            return Ok(ApiError::CodeExpired);
        }
        Ok(ApiError::TooManyAttempts)
    }

    async fn find_or_create_user(
        &self,
        phone: &Phone,
        name: Option<String>,
    ) -> Result<BffUser, ApiError> {
        let users = self.store.own::<UserDoc>(USERS);
        // Two tries cover a concurrent first login of the same phone and a (rare) id clash.
        for _ in 0..3 {
            if let Some(existing) = users.find_one(doc! {"phone": phone.as_str()}).await? {
                return to_wire(existing);
            }
            let fresh = UserDoc {
                user_id: format!("usr_{}", random_base36(8)),
                phone: phone.to_string(),
                name: name.clone().unwrap_or_else(|| phone.to_string()),
                created_at: now_ms(),
            };
            match users.insert_one(&fresh).await {
                Ok(_) => return to_wire(fresh),
                Err(e) if is_duplicate_key(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::internal(anyhow::anyhow!(
            "could not create a user for a phone after 3 tries"
        )))
    }

    fn new_code(&self) -> String {
        let n = self.code_length as usize;
        let max = 10u32.pow(self.code_length);
        format!("{:0n$}", rand::rng().random_range(0..max))
    }

    fn hash(&self, phone: &Phone, code: &str) -> String {
        let mut h = Sha256::new();
        h.update(&self.pepper);
        h.update(b"\0");
        h.update(phone.as_str().as_bytes());
        h.update(b"\0");
        h.update(code.as_bytes());
        hex::encode(h.finalize())
    }
}

/// Constant-time equality of two hex digests, so timing does not tell how much of a guess
/// matched.
fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Reads an integer field stored as int32 or int64.
fn int_field(d: &Document, key: &str) -> i64 {
    d.get_i64(key)
        .or_else(|_| d.get_i32(key).map(i64::from))
        .unwrap_or(0)
}

fn to_wire(u: UserDoc) -> Result<BffUser, ApiError> {
    let user_id: UserId = u.user_id.parse().map_err(ApiError::internal)?;
    Ok(BffUser {
        user_id,
        phone: u.phone,
        name: u.name,
    })
}

fn clean_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(name) = name else { return Ok(None) };
    // Checked as sent (the contract's rule), then trimmed.
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::Validation {
            message: "name must be at most 100 printable characters".to_owned(),
            details: Some(serde_json::json!({"name": "too long or not printable"})),
        });
    }
    let name = name.trim();
    Ok((!name.is_empty()).then(|| name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            clean_name(Some("  Ann ".into())).unwrap().as_deref(),
            Some("Ann")
        );
        assert_eq!(clean_name(Some("   ".into())).unwrap(), None);
        assert!(clean_name(Some("x".repeat(101))).is_err());
    }
}
