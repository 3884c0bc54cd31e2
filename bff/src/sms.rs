//! Delivery of login codes by SMS behind one trait: `console` (prints; the default of
//! `bff serve`), `http` (POSTs JSON to a gateway) and an in-memory [`Outbox`] for tests.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::config::{Config, SmsKind};
use crate::phone::Phone;

/// The provider could not send a message.
#[derive(Debug, thiserror::Error)]
#[error("sms provider: {0}")]
pub struct SmsError(pub String);

/// Sends a text message to a phone.
#[async_trait]
pub trait SmsProvider: Send + Sync + 'static {
    /// Sends `text` to `to`.
    async fn send(&self, to: &Phone, text: &str) -> Result<(), SmsError>;
}

/// The text of a login SMS.
pub fn login_text(code: &str) -> String {
    format!("your chat3 code is {code}")
}

/// The provider named by the configuration.
pub fn from_config(config: &Config) -> anyhow::Result<Arc<dyn SmsProvider>> {
    Ok(match config.sms_provider {
        SmsKind::Console => Arc::new(ConsoleSms),
        SmsKind::Http => {
            let url = config
                .sms_http_url
                .clone()
                .ok_or_else(|| anyhow::anyhow!("BFF_SMS_PROVIDER=http needs BFF_SMS_HTTP_URL"))?;
            Arc::new(HttpSms::new(url))
        }
    })
}

/// Prints `SMS to +1555...: your chat3 code is 123456` to stdout and the log (development only).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleSms;

#[async_trait]
impl SmsProvider for ConsoleSms {
    async fn send(&self, to: &Phone, text: &str) -> Result<(), SmsError> {
        println!("SMS to {to}: {text}");
        tracing::info!(phone = %to.masked(), "login code printed to stdout");
        Ok(())
    }
}

/// POSTs `{"to": phone, "text": text}` to a gateway URL; any non-2xx answer is a failure.
#[derive(Debug, Clone)]
pub struct HttpSms {
    http: reqwest::Client,
    url: String,
}

impl HttpSms {
    /// A provider posting to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.into(),
        }
    }
}

#[async_trait]
impl SmsProvider for HttpSms {
    async fn send(&self, to: &Phone, text: &str) -> Result<(), SmsError> {
        let body = serde_json::json!({ "to": to.as_str(), "text": text });
        let resp = self
            .http
            .post(&self.url)
            .json(&body)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| SmsError(e.to_string()))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(SmsError(format!("gateway answered {}", resp.status())))
        }
    }
}

/// One message captured by the [`Outbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    /// Recipient.
    pub to: String,
    /// Text.
    pub text: String,
}

/// Keeps messages in memory instead of sending them (tests and demos). Cheap to clone; clones
/// share the same list.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    sent: Arc<Mutex<Vec<SentSms>>>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message so far, oldest first.
    pub fn messages(&self) -> Vec<SentSms> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The digits of the newest login code sent to `phone`.
    pub fn last_code(&self, phone: &str) -> Option<String> {
        self.messages()
            .into_iter()
            .rev()
            .find(|m| m.to == phone)
            .and_then(|m| m.text.rsplit(' ').next().map(str::to_owned))
    }
}

#[async_trait]
impl SmsProvider for Outbox {
    async fn send(&self, to: &Phone, text: &str) -> Result<(), SmsError> {
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| SmsError("outbox poisoned".to_owned()))?;
        sent.push(SentSms {
            to: to.to_string(),
            text: text.to_owned(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outbox_returns_the_newest_code_for_a_phone() {
        let outbox = Outbox::new();
        let phone: Phone = "+15550000001".parse().unwrap();
        outbox.send(&phone, &login_text("1111")).await.unwrap();
        outbox.send(&phone, &login_text("222222")).await.unwrap();
        assert_eq!(outbox.last_code("+15550000001").as_deref(), Some("222222"));
        assert_eq!(outbox.last_code("+15550000002"), None);
    }
}
