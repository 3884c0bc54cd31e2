//! The BFF's own MongoDB collections (`users`, `login_codes`) and their indexes.

use bson::doc;
use chat3_core::store::Store;
use mongodb::options::IndexOptions;
use mongodb::IndexModel;

/// End users: `{userId, phone, name, createdAt}`, unique by phone and by id.
pub const USERS: &str = "users";
/// One pending login code per phone: `{phone, codeHash, attempts, expiresAt, expireAt, name?}`.
pub const LOGIN_CODES: &str = "login_codes";

/// Creates the indexes the BFF relies on (idempotent).
#[tracing::instrument(skip_all)]
pub async fn ensure_indexes(store: &Store) -> mongodb::error::Result<()> {
    let unique = |keys| {
        IndexModel::builder()
            .keys(keys)
            .options(IndexOptions::builder().unique(true).build())
            .build()
    };
    store
        .own::<bson::Document>(USERS)
        .create_indexes([unique(doc! {"phone": 1}), unique(doc! {"userId": 1})])
        .await?;
    // The TTL index only cleans up; expiry is decided by `expiresAt` in queries.
    let cleanup = IndexModel::builder()
        .keys(doc! {"expireAt": 1})
        .options(
            IndexOptions::builder()
                .expire_after(std::time::Duration::from_secs(3600))
                .build(),
        )
        .build();
    store
        .own::<bson::Document>(LOGIN_CODES)
        .create_indexes([unique(doc! {"phone": 1}), cleanup])
        .await?;
    Ok(())
}
