//! Phone login against real SecantusDB and RabbitMQ: request a code, verify it, and every way
//! that can fail, with exact error bodies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{phone, spawn, spawn_with, test_config};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn requesting_then_verifying_a_code_logs_the_user_in() {
    let bff = spawn("login").await;
    let phone = phone();
    let (status, _, body) = bff
        .post(
            "/api/auth/request-code",
            json!({ "phone": phone, "name": "Ann" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "data": { "phone": phone, "expiresIn": 300 } })
    );
    let sms = bff.outbox.messages();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].to, phone);
    let code = bff.outbox.last_code(&phone).unwrap();
    assert!(sms[0].text == format!("your chat3 code is {code}"));
    assert_eq!(code.len(), 6);

    let (status, _, body) = bff
        .post(
            "/api/auth/verify-code",
            json!({ "phone": phone, "code": code }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let user = &body["data"]["user"];
    let user_id = user["userId"].as_str().unwrap();
    assert!(
        user_id.starts_with("usr_") && user_id.len() == 12,
        "{user_id}"
    );
    assert!(user_id[4..]
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    assert_eq!(user["phone"], phone);
    assert_eq!(user["name"], "Ann");
    assert!(body["data"]["token"].as_str().unwrap().split('.').count() == 3);

    // A code works once; logging in again yields the same user.
    let (status, _, body) = bff
        .post(
            "/api/auth/verify-code",
            json!({ "phone": phone, "code": code }),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let code = bff.request_code(&phone).await;
    let (_, _, again) = bff
        .post(
            "/api/auth/verify-code",
            json!({ "phone": phone, "code": code }),
        )
        .await;
    assert_eq!(again["data"]["user"]["userId"], user_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_code_is_refused_with_invalid_code() {
    let bff = spawn("wrongcode").await;
    let phone = phone();
    let code = bff.request_code(&phone).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, _, body) = bff
        .post(
            "/api/auth/verify-code",
            json!({ "phone": phone, "code": wrong }),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({ "error": "Unauthorized", "message": "The code is invalid.", "code": "invalid_code" })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verifying_a_phone_that_never_requested_a_code_is_invalid_code() {
    let bff = spawn("nocode").await;
    let (status, _, body) = bff
        .post(
            "/api/auth/verify-code",
            json!({ "phone": phone(), "code": "123456" }),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "invalid_code");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_code_is_refused_with_code_expired() {
    let mut config = test_config("expired");
    config.code_ttl_secs = 1;
    let bff = spawn_with(config).await;
    let phone = phone();
    let code = bff.request_code(&phone).await;
    // Expiry is decided by the stored deadline, not by the TTL monitor: waiting past it is
    // enough. Poll the clock in small steps, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1300);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, body) = bff
        .post(
            "/api/auth/verify-code",
            json!({ "phone": phone, "code": code }),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({
            "error": "Unauthorized",
            "message": "The code has expired; request a new one.",
            "code": "code_expired"
        })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn five_wrong_attempts_burn_the_code() {
    let bff = spawn("burn").await;
    let phone = phone();
    let code = bff.request_code(&phone).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for attempt in 1..=5 {
        let (status, _, body) = bff
            .post(
                "/api/auth/verify-code",
                json!({ "phone": phone, "code": wrong }),
            )
            .await;
        assert_eq!(status, 401, "attempt {attempt}");
        assert_eq!(body["code"], "invalid_code", "attempt {attempt}");
    }
    let (status, _, body) = bff
        .post(
            "/api/auth/verify-code",
            json!({ "phone": phone, "code": code }),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({
            "error": "Unauthorized",
            "message": "Too many wrong attempts; request a new code.",
            "code": "too_many_attempts"
        })
    );
    // A new code starts over.
    let code = bff.request_code(&phone).await;
    let (status, _, _) = bff
        .post(
            "/api/auth/verify-code",
            json!({ "phone": phone, "code": code }),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_code_requests_for_one_phone_are_rate_limited() {
    let mut config = test_config("ratelimit");
    config.phone_codes_per_hour = 2;
    let bff = spawn_with(config).await;
    let phone = phone();
    bff.request_code(&phone).await;
    bff.request_code(&phone).await;
    let (status, retry_after, body) = bff
        .post("/api/auth/request-code", json!({ "phone": phone }))
        .await;
    assert_eq!(status, 429, "{body}");
    let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=1800).contains(&secs), "{secs}");
    assert_eq!(body["error"], "Too Many Requests");
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(bff.outbox.messages().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_that_is_not_e164_is_a_validation_error() {
    let bff = spawn("badphone").await;
    let (status, _, body) = bff
        .post("/api/auth/request-code", json!({ "phone": "555-1234" }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({
            "error": "Bad Request",
            "message": "/phone: does not have the documented form: An international phone number as people type it, like `+1 (555) 123-4567`",
            "code": "validation_error",
            "details": [{
                "at": "/phone",
                "problem": "does not have the documented form: An international phone number as people type it, like `+1 (555) 123-4567`"
            }]
        })
    );
    assert!(bff.outbox.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_is_answered_with_a_json_400() {
    let bff = spawn("badjson").await;
    let resp = bff
        .http
        .post(format!("{}/api/auth/request-code", bff.url))
        .header("content-type", "application/json")
        .body("{\"phone\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "Bad Request");
    assert_eq!(body["code"], "invalid_json");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("The body is not valid JSON"));

    // Well-formed JSON missing a field is a validation error.
    let (status, _, body) = bff
        .post("/api/auth/verify-code", json!({ "phone": "+15551234567" }))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "validation_error");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let bff = spawn("routes").await;
    let resp = bff
        .http
        .get(format!("{}/nope", bff.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": "Not Found", "message": "No route for /nope.", "code": "not_found" })
    );
    let resp = bff
        .http
        .get(format!("{}/api/auth/request-code", bff.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "error": "Method Not Allowed",
            "message": "Method GET is not allowed here.",
            "code": "method_not_allowed"
        })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_ready_answer_ok() {
    let bff = spawn("health").await;
    let resp = bff
        .http
        .get(format!("{}/health", bff.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = bff
        .http
        .get(format!("{}/ready", bff.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "status": "ok", "checks": { "mongodb": "ok", "rabbitmq": "ok", "updatesConsumer": "ok" } })
    );
}

/// The stored attempt count of `phone`'s code (`None` when no code is stored).
async fn stored_attempts(bff: &common::TestBff, phone: &str) -> Option<i64> {
    let store = chat3_core::store::Store::connect(&bff.mongo).await.unwrap();
    let found = chat3_core::testing::collection(&store, chat3_bff::db::LOGIN_CODES)
        .find_one(bson::doc! {"phone": phone})
        .await
        .unwrap()?;
    found
        .get_i64("attempts")
        .ok()
        .or_else(|| found.get_i32("attempts").ok().map(i64::from))
}

#[tokio::test(flavor = "multi_thread")]
async fn guesses_fired_at_once_cannot_get_past_the_attempt_limit() {
    let mut config = test_config("burst");
    config.phone_codes_per_hour = 100;
    let bff = spawn_with(config).await;
    let phone = phone();
    for round in 0..5 {
        let code = bff.request_code(&phone).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let guesses = (0..39).map(|_| {
            bff.post(
                "/api/auth/verify-code",
                json!({ "phone": phone, "code": wrong }),
            )
        });
        let answers = futures_util::future::join_all(guesses).await;
        assert!(answers.iter().all(|(s, _, _)| *s == 401), "round {round}");
        assert_eq!(
            stored_attempts(&bff, &phone).await,
            Some(5),
            "round {round}"
        );
        let (status, _, body) = bff
            .post(
                "/api/auth/verify-code",
                json!({ "phone": phone, "code": code }),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("too_many_attempts")),
            "round {round}: the right code after 39 wrong ones must be refused"
        );
    }
    // The right code among concurrent wrong ones: it wins at most once, and only if it was
    // among the first five counted.
    let code = bff.request_code(&phone).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut bodies: Vec<_> = (0..9)
        .map(|_| json!({ "phone": phone, "code": wrong }))
        .collect();
    bodies.push(json!({ "phone": phone, "code": code }));
    bodies.push(json!({ "phone": phone, "code": code }));
    let answers = futures_util::future::join_all(
        bodies
            .into_iter()
            .map(|b| bff.post("/api/auth/verify-code", b)),
    )
    .await;
    let wins = answers.iter().filter(|(s, _, _)| *s == 200).count();
    assert!(wins <= 1, "{wins} logins with one code");
    assert!(stored_attempts(&bff, &phone).await.unwrap_or(0) <= 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_is_rate_limited_per_phone_and_per_ip() {
    let mut config = test_config("verifylimit");
    config.phone_verify_per_hour = 3;
    let bff = spawn_with(config).await;
    let phone = phone();
    bff.request_code(&phone).await;
    for _ in 0..3 {
        let (status, _, _) = bff
            .post(
                "/api/auth/verify-code",
                json!({ "phone": phone, "code": "999999" }),
            )
            .await;
        assert_ne!(status, 429);
    }
    let (status, retry_after, body) = bff
        .post(
            "/api/auth/verify-code",
            json!({ "phone": phone, "code": "999999" }),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")));
    assert!(retry_after.is_some());

    let mut config = test_config("verifyip");
    config.ip_verify_per_hour = 2;
    let bff = spawn_with(config).await;
    for i in 0..3 {
        let (status, _, body) = bff
            .post(
                "/api/auth/verify-code",
                json!({ "phone": common::phone(), "code": "123456" }),
            )
            .await;
        let expected = if i < 2 { 401 } else { 429 };
        assert_eq!(status, expected, "attempt {i}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_owner_can_still_log_in_after_someone_exhausts_request_code_for_their_number() {
    let mut config = test_config("victim");
    config.phone_codes_per_hour = 2;
    let bff = spawn_with(config).await;
    let phone = phone();
    // Someone floods request-code for the number: every code goes to the owner's phone.
    bff.request_code(&phone).await;
    bff.request_code(&phone).await;
    let (status, _, _) = bff
        .post("/api/auth/request-code", json!({ "phone": phone }))
        .await;
    assert_eq!(status, 429);
    // The refusal left the newest code valid: the owner signs in with the SMS they received.
    let received = bff.outbox.last_code(&phone).unwrap();
    let (status, _, body) = bff
        .post(
            "/api/auth/verify-code",
            json!({ "phone": phone, "code": received }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}
