//! The domain error: what went wrong, in terms a caller can act on. The API maps each variant to
//! an HTTP status and a stable snake_case code; storage and broker causes stay in the logs.

use serde_json::Value;

/// A domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The entity does not exist (for this tenant).
    #[error("{message}")]
    NotFound {
        /// Stable code, e.g. `dialog_not_found`.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// The request conflicts with stored state (duplicate id, ...).
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
        /// What it conflicts with (e.g. the original's id).
        details: Option<Value>,
    },
    /// The input is well-formed JSON but breaks a rule.
    #[error("{message}")]
    Invalid {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
        /// Per-field details.
        details: Option<Value>,
    },
    /// The caller may not do this (e.g. sender not a member).
    #[error("{message}")]
    Forbidden {
        /// Stable code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// The service cannot take this request now (over capacity, shutting down); retry later.
    #[error("{message}")]
    Unavailable {
        /// Stable code, e.g. `overloaded`.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// MongoDB failed.
    #[error("storage error: {0}")]
    Storage(#[from] mongodb::error::Error),
    /// Anything else that is our fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for results of domain operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A `NotFound` with the given code and text.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Error::NotFound {
            code,
            message: message.into(),
        }
    }

    /// A `Conflict` with the given code and text.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// An `Invalid` without details.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// A `Forbidden` with the given code and text.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Error::Forbidden {
            code,
            message: message.into(),
        }
    }

    /// Wraps a domain error so it can leave a MongoDB transaction callback (which must return a
    /// driver error) and be recovered by [`Error::from_txn`].
    pub fn into_txn(self) -> mongodb::error::Error {
        match self {
            Error::Storage(e) => e,
            other => mongodb::error::Error::custom(std::sync::Arc::new(other)),
        }
    }

    /// Recovers a domain error wrapped by [`Error::into_txn`], or wraps a plain driver error.
    pub fn from_txn(e: mongodb::error::Error) -> Self {
        if let Some(inner) = e.get_custom::<std::sync::Arc<Error>>() {
            return inner.shallow_clone();
        }
        Error::Storage(e)
    }

    /// A copy of this error for each of several callers that share one failure (a group
    /// commit that failed for all its requests).
    pub fn duplicate(&self) -> Self {
        self.shallow_clone()
    }

    fn shallow_clone(&self) -> Self {
        match self {
            Error::NotFound { code, message } => Error::not_found(code, message.clone()),
            Error::Conflict {
                code,
                message,
                details,
            } => Error::Conflict {
                code,
                message: message.clone(),
                details: details.clone(),
            },
            Error::Invalid {
                code,
                message,
                details,
            } => Error::Invalid {
                code,
                message: message.clone(),
                details: details.clone(),
            },
            Error::Forbidden { code, message } => Error::forbidden(code, message.clone()),
            Error::Unavailable { code, message } => Error::Unavailable {
                code,
                message: message.clone(),
            },
            Error::Storage(e) => Error::Storage(e.clone()),
            Error::Internal(m) => Error::Internal(m.clone()),
        }
    }
}

impl Error {
    /// True when the store could not be reached or could not serve the request for now (down,
    /// restarting, electing, timing out): worth retrying later, never the caller's fault. The API
    /// answers 503 with `Retry-After`; the update worker keeps retrying.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable { .. } => true,
            Error::Storage(e) => store_unavailable(e),
            _ => false,
        }
    }
}

/// Server codes meaning "not now": the node is recovering, shutting down, not (or no longer)
/// primary, unreachable, or the operation ran out of time.
const UNAVAILABLE_CODES: [i32; 14] = [
    6, 7, 50, 89, 91, 189, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436,
];

/// See [`Error::is_unavailable`].
pub fn store_unavailable(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    if e.contains_label("RetryableWriteError")
        || e.contains_label("TransientTransactionError")
        || e.contains_label("UnknownTransactionCommitResult")
    {
        return true;
    }
    match e.kind.as_ref() {
        ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::DnsResolve { .. } => true,
        ErrorKind::Command(c) => UNAVAILABLE_CODES.contains(&c.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => UNAVAILABLE_CODES.contains(&w.code),
        _ => false,
    }
}

/// True when a driver error is a unique-index violation (code 11000), however it is wrapped.
pub fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(we)) => we.code == 11000,
        ErrorKind::InsertMany(im) => im
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().any(|w| w.code == 11000)),
        ErrorKind::Command(ce) => ce.code == 11000,
        _ => false,
    }
}
