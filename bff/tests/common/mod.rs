//! Shared setup of the BFF integration tests: a BFF on port 0 with its own database and
//! updates exchange on the real servers, an in-memory SMS outbox, and small HTTP/WS helpers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chat3_bff::{Config, Outbox, SmsKind};
use chat3_core::bus::Bus;
use chat3_core::config::{AmqpArgs, LogArgs, LogFormat};
use chat3_core::service::Running;
use chat3_core::testing::{amqp_args, mongo_args, unique_name};
use chat3_sdk::{Session, TenantId, Update, UpdateType, UserId, WsFrame};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// A running BFF and what tests need to talk to it.
pub struct TestBff {
    pub url: String,
    pub ws_url: String,
    pub outbox: Outbox,
    pub amqp: AmqpArgs,
    pub mongo: chat3_core::config::MongoArgs,
    pub tenant: TenantId,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub running: Option<Running>,
}

impl Drop for TestBff {
    fn drop(&mut self) {
        self.shutdown.cancel();
        // Remove the test's exchanges from the shared broker (Drop cannot await: a short-lived
        // runtime on its own thread does it).
        let amqp = self.amqp.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(conn) =
                    lapin::Connection::connect(&amqp.url, lapin::ConnectionProperties::default())
                        .await
                else {
                    return;
                };
                if let Ok(ch) = conn.create_channel().await {
                    for x in [&amqp.events_exchange, &amqp.updates_exchange] {
                        let _ = ch
                            .exchange_delete(x, lapin::options::ExchangeDeleteOptions::default())
                            .await;
                    }
                }
                let _ = conn.close(200, "test done").await;
            });
        });
        let _ = cleanup.join();
    }
}

/// A configuration for tests: unique names, an unreachable API unless changed.
pub fn test_config(prefix: &str) -> Config {
    let mongo = mongo_args(prefix);
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        api_url: "http://127.0.0.1:9".to_owned(),
        api_key: Some("c3k_test".to_owned()),
        tenant_id: unique_name("bff").parse().unwrap(),
        jwt_secret: format!("test-secret-{}", unique_name("jwt")),
        token_ttl_secs: 48 * 3600,
        sms_provider: SmsKind::Console,
        sms_http_url: None,
        code_ttl_secs: 300,
        code_length: 6,
        phone_codes_per_hour: 5,
        phone_codes_total_per_hour: 1000,
        ip_codes_per_hour: 1000,
        phone_verify_per_hour: 1000,
        ip_verify_per_hour: 1000,
        mongodb_uri: mongo.uri,
        mongodb_db: mongo.db,
        mongodb_timeout_ms: mongo.timeout_ms,
        amqp: amqp_args(prefix),
        ws_heartbeat_secs: 20,
        ws_client_timeout_secs: 50,
        ws_buffer: 64,
        log: LogArgs {
            log_format: LogFormat::Text,
            log_level: "warn,pinky_swear=error".to_owned(),
        },
    }
}

/// Starts a BFF with `config` and an outbox, and waits until `/ready` answers 200.
pub async fn spawn_with(config: Config) -> TestBff {
    chat3_core::telemetry::init(&config.log);
    let outbox = Outbox::new();
    let shutdown = CancellationToken::new();
    let amqp = config.amqp.clone();
    let mongo = config.mongo();
    let tenant = config.tenant_id.clone();
    let running = chat3_bff::start_with_sms(
        config,
        std::sync::Arc::new(outbox.clone()),
        shutdown.clone(),
    )
    .await
    .expect("bff starts");
    let addr = running.addr.unwrap();
    let bff = TestBff {
        url: format!("http://{addr}"),
        ws_url: format!("ws://{addr}/ws"),
        outbox,
        amqp,
        mongo,
        tenant,
        http: reqwest::Client::new(),
        shutdown,
        running: Some(running),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ready = bff.http.get(format!("{}/ready", bff.url)).send().await;
        if matches!(&ready, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bff not ready: {ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bff
}

/// Starts a BFF with the default test configuration.
pub async fn spawn(prefix: &str) -> TestBff {
    spawn_with(test_config(prefix)).await
}

/// A fresh E.164 number.
pub fn phone() -> String {
    use rand::Rng;
    let n: u32 = rand::rng().random_range(0..10_000_000);
    format!("+1555{n:07}")
}

impl TestBff {
    /// POSTs a JSON body; returns status, `Retry-After` and the JSON answer.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Option<String>, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, retry, resp.json().await.unwrap_or(Value::Null))
    }

    /// Requests a code and returns it from the outbox.
    pub async fn request_code(&self, phone: &str) -> String {
        let (status, _, body) = self
            .post("/api/auth/request-code", json!({ "phone": phone }))
            .await;
        assert_eq!(status, 200, "{body}");
        self.outbox.last_code(phone).expect("a code was sent")
    }

    /// Logs a fresh phone in.
    pub async fn login(&self) -> Session {
        let phone = phone();
        let code = self.request_code(&phone).await;
        let (status, _, body) = self
            .post(
                "/api/auth/verify-code",
                json!({ "phone": phone, "code": code }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body["data"].clone()).unwrap()
    }

    /// Publishes `update` on the test updates exchange with its real routing key.
    pub async fn publish(&self, update: &Update) {
        let bus = Bus::connect(self.amqp.clone()).await.unwrap();
        let key = format!(
            "update.{}.{}.{}.{}",
            update.tenant_id,
            update.user_type,
            update.user_id,
            update.update_type.as_str()
        );
        let body = serde_json::to_vec(update).unwrap();
        bus.publish_json(bus.updates_exchange(), &key, &update.update_id, &body)
            .await
            .unwrap();
        bus.close().await;
    }

    /// Cancels the token and waits for the service to stop.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let running = self.running.take().unwrap();
        tokio::time::timeout(Duration::from_secs(20), running.task)
            .await
            .expect("bff stops in time")?
    }
}

/// A `message.create` update for `user` with `seq`.
pub fn message_update(tenant: &TenantId, user: &UserId, seq: u64) -> Update {
    Update {
        update_id: format!("upd_{}", unique_name("u")),
        tenant_id: tenant.clone(),
        user_id: user.clone(),
        user_type: Default::default(),
        seq: Some(seq),
        update_type: UpdateType::Message,
        event_type: chat3_sdk::EventType::MessageCreate,
        event_id: format!("evt_{}", unique_name("e")),
        dialog_id: None,
        created_at: 1,
        data: json!({
            "message": { "content": format!("hello {seq}"), "seq": seq },
            "dialog": { "dialogId": "dlg_0123456789abcdefghij", "name": "chat",
                        "lastSeq": seq, "unreadCount": 1, "lastReadSeq": 0 }
        }),
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a socket with `query` (e.g. `token=...`).
pub async fn connect(bff: &TestBff, query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("{}?{query}", bff.ws_url))
        .await
        .expect("websocket connects");
    ws
}

/// The next JSON frame (skipping pings), within 10 s.
pub async fn next_frame(ws: &mut Ws) -> WsFrame {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .expect("frame readable");
        match msg {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Sends a JSON frame.
pub async fn send_frame(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}
