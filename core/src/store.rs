//! The MongoDB store: connection, collection names, the tenant filter every query starts from,
//! indexes, and the transaction helper.

use std::time::Duration;

use bson::{doc, Document};
use chat3_sdk::TenantId;
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};

use crate::config::MongoArgs;

/// Collection names (DESIGN §4).
pub mod coll {
    /// Tenants.
    pub const TENANTS: &str = "tenants";
    /// Hashed API keys.
    pub const API_KEYS: &str = "api_keys";
    /// Users known to a tenant.
    pub const USERS: &str = "users";
    /// Dialogs with `lastSeq` and the running countable-message count.
    pub const DIALOGS: &str = "dialogs";
    /// Dialog membership with the read watermark.
    pub const MEMBERS: &str = "members";
    /// Messages with their per-dialog `seq`.
    pub const MESSAGES: &str = "messages";
    /// Per-message, per-user statuses.
    pub const MESSAGE_STATUSES: &str = "message_statuses";
    /// Reactions.
    pub const REACTIONS: &str = "reactions";
    /// The outbox and event journal.
    pub const EVENTS: &str = "events";
    /// Per-user sequenced updates.
    pub const UPDATES: &str = "updates";
    /// Stored responses of idempotent requests.
    pub const IDEMPOTENCY_KEYS: &str = "idempotency_keys";
    /// Leases of singleton background jobs (outbox sweeper).
    pub const LEASES: &str = "leases";

    /// Every collection of a tenant's data but its keys and its own document, in the order a
    /// tenant deletion empties them (what others point at goes last). Each but `events` (the
    /// journal, scanned by a deletion) has an index that starts with `tenantId`.
    pub const TENANT_DATA: &[&str] = &[
        UPDATES,
        EVENTS,
        IDEMPOTENCY_KEYS,
        REACTIONS,
        MESSAGE_STATUSES,
        MESSAGES,
        MEMBERS,
        DIALOGS,
        USERS,
    ];
}

/// The filter every tenant-scoped query starts from.
pub fn tenant_filter(tenant: &TenantId) -> Document {
    doc! { "tenantId": tenant.as_str() }
}

/// `tenant_filter(tenant)` extended with `extra`.
pub fn scoped(tenant: &TenantId, extra: Document) -> Document {
    let mut f = tenant_filter(tenant);
    f.extend(extra);
    f
}

/// A handle on one chat3 database.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    db: Database,
}

impl Store {
    /// Connects (lazily: the driver dials on first use) to `args.uri`, database `args.db`.
    pub async fn connect(args: &MongoArgs) -> anyhow::Result<Self> {
        let mut opts = ClientOptions::parse(&args.uri).await?;
        opts.app_name.get_or_insert_with(|| "chat3".to_owned());
        // Bounded waits, so that requests fail fast (503) while the store is down instead of
        // hanging; a URI that sets its own values wins.
        opts.server_selection_timeout.get_or_insert(args.timeout());
        opts.connect_timeout.get_or_insert(args.timeout());
        let client = Client::with_options(opts)?;
        Ok(Self::from_client(client, &args.db))
    }

    /// A store over an existing client.
    pub fn from_client(client: Client, db: &str) -> Self {
        let db = client.database(db);
        Self { client, db }
    }

    /// The driver client (for sessions).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The database.
    pub(crate) fn db(&self) -> &Database {
        &self.db
    }

    /// A collection of tenant data (`coll::*`): reached only through this crate's
    /// tenant-scoped functions.
    pub(crate) fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    /// A collection that a service keeps for itself, outside the tenant data of [`coll`]: the
    /// BFF's users and login codes (in its own database), the update workers' heartbeats.
    /// Tenant data ([`coll`]) is read and written only through this crate's tenant-scoped
    /// functions, never through this.
    pub fn own<T: Send + Sync>(&self, name: &'static str) -> Collection<T> {
        self.db.collection(name)
    }

    /// Round trip to the server, for readiness checks.
    pub async fn ping(&self) -> mongodb::error::Result<()> {
        self.db.run_command(doc! { "ping": 1 }).await.map(|_| ())
    }

    /// Creates every index the services rely on (idempotent).
    pub async fn ensure_indexes(&self, event_retention: Duration) -> mongodb::error::Result<()> {
        let unique = || IndexOptions::builder().unique(true).build();
        let idx = |keys: Document, opts: Option<IndexOptions>| {
            IndexModel::builder().keys(keys).options(opts).build()
        };
        let plan: Vec<(&str, Vec<IndexModel>)> = vec![
            (
                coll::TENANTS,
                vec![idx(doc! {"tenantId": 1}, Some(unique()))],
            ),
            (
                coll::API_KEYS,
                vec![
                    idx(doc! {"keyHash": 1}, Some(unique())),
                    idx(doc! {"tenantId": 1, "keyId": 1}, Some(unique())),
                ],
            ),
            (
                coll::USERS,
                vec![
                    idx(doc! {"tenantId": 1, "userId": 1}, Some(unique())),
                    // `GET /api/users?sort=(createdAt,...)` and filters on it.
                    idx(doc! {"tenantId": 1, "createdAt": 1}, None),
                ],
            ),
            (
                coll::DIALOGS,
                vec![
                    idx(doc! {"tenantId": 1, "dialogId": 1}, Some(unique())),
                    // Covers the sends' conditional write (`lastSeq` as read); see
                    // `docs/write-path.md`, "Every filter on an index".
                    idx(doc! {"tenantId": 1, "dialogId": 1, "lastSeq": 1}, None),
                    // `GET /api/dialogs`: most recently active first, and sorts on it.
                    idx(doc! {"tenantId": 1, "updatedAt": -1, "dialogId": -1}, None),
                    idx(doc! {"tenantId": 1, "createdAt": -1}, None),
                ],
            ),
            (
                coll::MEMBERS,
                vec![
                    idx(
                        doc! {"tenantId": 1, "dialogId": 1, "userId": 1},
                        Some(unique()),
                    ),
                    // The inbox: a user's memberships by their dialog's last activity.
                    idx(
                        doc! {"tenantId": 1, "userId": 1, "lastActivityAt": -1, "dialogId": -1},
                        None,
                    ),
                ],
            ),
            (
                coll::MESSAGES,
                vec![
                    idx(doc! {"tenantId": 1, "messageId": 1}, Some(unique())),
                    idx(
                        doc! {"tenantId": 1, "dialogId": 1, "seq": 1},
                        Some(unique()),
                    ),
                    // `GET /api/messages`: the tenant's messages by time, and by sender.
                    idx(doc! {"tenantId": 1, "createdAt": -1, "messageId": -1}, None),
                    idx(doc! {"tenantId": 1, "senderId": 1, "createdAt": -1}, None),
                    idx(
                        doc! {"tenantId": 1, "dialogId": 1, "senderId": 1, "clientMessageId": 1},
                        Some(
                            IndexOptions::builder()
                                .unique(true)
                                .partial_filter_expression(
                                    doc! {"clientMessageId": {"$exists": true}},
                                )
                                .build(),
                        ),
                    ),
                ],
            ),
            (
                coll::IDEMPOTENCY_KEYS,
                vec![
                    idx(
                        doc! {"tenantId": 1, "key": 1, "method": 1, "path": 1},
                        Some(unique()),
                    ),
                    // Covers the claim's conditional writes (owner and state as held).
                    idx(
                        doc! {"tenantId": 1, "key": 1, "method": 1, "path": 1, "state": 1, "owner": 1},
                        None,
                    ),
                    idx(
                        doc! {"createdAt": 1},
                        Some(
                            IndexOptions::builder()
                                .expire_after(crate::idempotency::RETENTION)
                                .build(),
                        ),
                    ),
                ],
            ),
            (
                coll::MESSAGE_STATUSES,
                vec![
                    idx(
                        doc! {"tenantId": 1, "messageId": 1, "userId": 1, "status": 1},
                        Some(unique()),
                    ),
                    // The dialog's receipts, removed with it.
                    idx(doc! {"tenantId": 1, "dialogId": 1}, None),
                ],
            ),
            (
                coll::REACTIONS,
                vec![
                    idx(
                        doc! {"tenantId": 1, "messageId": 1, "userId": 1, "reaction": 1},
                        Some(unique()),
                    ),
                    idx(doc! {"tenantId": 1, "dialogId": 1}, None),
                ],
            ),
            (
                coll::EVENTS,
                vec![
                    idx(doc! {"published": 1, "createdAt": 1}, None),
                    idx(
                        doc! {"publishedAt": 1},
                        Some(
                            IndexOptions::builder()
                                .expire_after(event_retention)
                                .build(),
                        ),
                    ),
                ],
            ),
            (
                coll::UPDATES,
                vec![
                    idx(doc! {"tenantId": 1, "userId": 1, "seq": 1}, Some(unique())),
                    idx(
                        doc! {"tenantId": 1, "userId": 1, "eventId": 1},
                        Some(unique()),
                    ),
                ],
            ),
        ];
        for (name, models) in plan {
            self.coll(name).create_indexes(models).await?;
        }
        Ok(())
    }
}
