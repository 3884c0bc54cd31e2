//! Support for integration tests: every test gets its own database and exchange names on the
//! real servers. The test script (`scripts/test.sh`) starts SecantusDB on a free port and exports
//! `CHAT3_TEST_MONGODB_URI`; `RABBITMQ_URL` defaults to the local broker.

use crate::config::{AmqpArgs, MongoArgs};
use crate::ids::random_base36;

/// Environment variable naming the MongoDB-compatible server for tests.
pub const TEST_MONGODB_URI: &str = "CHAT3_TEST_MONGODB_URI";

/// `prefix` + `_` + 8 random characters, valid as a database, exchange or queue name.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", random_base36(8))
}

/// Storage settings for a test: the test server, a fresh database named after `prefix`.
pub fn mongo_args(prefix: &str) -> MongoArgs {
    let uri = std::env::var(TEST_MONGODB_URI)
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27817/?directConnection=true".to_owned());
    MongoArgs::new(uri, unique_name(&format!("t_{prefix}")))
}

/// Broker settings for a test: the local broker, fresh exchange names.
pub fn amqp_args(prefix: &str) -> AmqpArgs {
    let url = std::env::var("RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let base = unique_name(&format!("t_{prefix}"));
    AmqpArgs {
        url,
        events_exchange: format!("{base}.events"),
        updates_exchange: format!("{base}.updates"),
    }
}

/// Environment variable that turns on logs in tests (a `RUST_LOG`-style filter, e.g. `debug`).
pub const TEST_LOG: &str = "CHAT3_TEST_LOG";

/// Logs to stderr when `CHAT3_TEST_LOG` is set (once per process; later calls do nothing).
pub fn init_logging() {
    if let Ok(filter) = std::env::var(TEST_LOG) {
        crate::telemetry::init(&crate::config::LogArgs {
            log_format: crate::config::LogFormat::Text,
            log_level: filter,
        });
    }
}

/// Tests only: a collection as stored, to inspect or seed documents directly (services reach
/// tenant data only through this crate's tenant-scoped functions).
pub fn collection(store: &crate::store::Store, name: &str) -> mongodb::Collection<bson::Document> {
    store.coll(name)
}

/// Tests only: drops the store's whole database.
pub async fn drop_database(store: &crate::store::Store) -> mongodb::error::Result<()> {
    store.db().drop().await
}
