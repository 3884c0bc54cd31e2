//! The bad-input matrix: every operation of both specs (`openapi/openapi.yaml`,
//! `openapi/bff.yaml`) is called with hostile variants of a valid request — ids that are too
//! long in characters or bytes or carry NUL and control characters, numbers beyond 64 bits or
//! negative, wrong JSON types, extended-JSON objects, deep nesting, unknown fields — and must
//! answer a documented 4xx with the JSON error shape: never a 5xx, never a 2xx, and nothing
//! half-written (the store looks the same afterwards, nothing is dead-lettered).

use std::collections::BTreeMap;
use std::time::Duration;

use bson::doc;
use chat3_core::store::{coll, Store};
use chat3_sdk::client::{encode_path, Client};
use chat3_tests::fixtures::{dialog_of, text};
use chat3_tests::openapi::Spec;
use chat3_tests::ws::login;
use chat3_tests::{eventually, Stack};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;

/// Ids no path parameter accepts.
fn bad_ids() -> Vec<String> {
    vec![
        "a".repeat(101),
        "😀".repeat(33),
        "a\u{0}b".to_owned(),
        "a\u{7}b".to_owned(),
        "a b".to_owned(),
        "a.b".to_owned(),
        "x#y".to_owned(),
        "x".repeat(4096),
    ]
}

/// Values no query parameter (page, limit, since, beforeSeq, afterSeq) accepts.
const BAD_NUMBERS: [&str; 7] = [
    "-1",
    "18446744073709551616",
    "18446744073709551615",
    "9223372036854775808",
    "abc",
    "1.5",
    "%00",
];

fn deep(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!([v]);
    }
    v
}

/// Wrong values for one body property, by name (on top of wrong JSON types for every one).
fn bad_values(prop: &str) -> Vec<Value> {
    let meta_like = || {
        vec![
            json!({"k": {"$binary": {"base64": "AAAA", "subType": "00"}}}),
            json!({"k": {"$numberDecimal": "1.5"}}),
            json!({"a.b": 1}),
            json!({"k\u{0}": 1}),
            json!({"k": 18446744073709551615u64}),
            json!({ "k": deep(20) }),
            json!([]),
        ]
    };
    match prop {
        "meta" => meta_like(),
        "members" => vec![
            json!([]),
            json!([{"userId": "😀".repeat(33)}]),
            json!([{"userId": "a\u{0}b"}]),
            json!([{"userId": "ok", "type": "Bad Type"}]),
            json!([{"userId": "ok", "extra": 1}]),
        ],
        "scopes" => vec![json!([]), json!(["admin"]), json!("read")],
        "name" => vec![json!("x".repeat(201)), json!([])],
        "tenantId" => vec![json!("A.B"), json!("x".repeat(65)), json!("😀"), json!("")],
        "senderId" | "createdBy" | "userId" => bad_ids().into_iter().map(Value::String).collect(),
        "content" => vec![json!(""), json!("x".repeat(10_001))],
        "type" => vec![json!("Bad Type"), json!("x".repeat(65)), json!("")],
        "quotedMessageId" => vec![json!("msg_bad"), json!("dlg_0000000000aaaaaaaaaa")],
        "clientMessageId" => vec![json!(""), json!("x".repeat(129))],
        "phone" => vec![
            json!(""),
            json!("abc"),
            json!("+1"),
            json!(format!("+{}", "9".repeat(20))),
            json!("+1555\u{0}1234567"),
        ],
        "code" => vec![json!("12"), json!("abcdef"), json!("1234567"), json!("")],
        _ => Vec::new(),
    }
}

/// A valid body for each operation that takes one.
fn valid_body(method: &str, template: &str) -> Option<Value> {
    match (method, template) {
        ("POST", "/api/tenants") => Some(json!({"tenantId": "matrix-new"})),
        ("POST", "/api/tenants/{tenantId}/api-keys") => Some(json!({"name": "matrix"})),
        ("PATCH", "/api/tenants/{tenantId}") => Some(json!({"name": "matrix"})),
        ("PATCH", "/api/dialogs/{dialogId}") => Some(json!({"name": "matrix"})),
        ("POST", "/api/dialogs/{dialogId}/members/add") => {
            Some(json!({"members": [{"userId": "bob"}]}))
        }
        ("PUT", "/api/messages/{messageId}") => Some(json!({"content": "edited"})),
        ("POST", "/api/users") => Some(json!({"userId": "matrix-user", "type": "bot"})),
        ("PUT", "/api/users/{userId}") => Some(json!({"name": "Alice"})),
        ("POST", "/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/reactions/set")
        | ("POST", "/api/users/{userId}/dialogs/{dialogId}/messages/{messageId}/reactions/unset") => {
            Some(json!({"reaction": "👍"}))
        }
        ("PUT", "/api/meta/{entityType}/{entityId}") => Some(json!({"k": 1})),
        ("PUT", "/api/meta/{entityType}/{entityId}/{key}") => Some(json!({"value": 1})),
        ("POST", "/api/dialogs") => Some(json!({"members": [{"userId": "alice"}]})),
        ("POST", "/api/dialogs/{dialogId}/messages") => {
            Some(json!({"senderId": "alice", "content": "hi"}))
        }
        ("POST", "/api/auth/request-code") => Some(json!({"phone": "+15550003001"})),
        ("POST", "/api/auth/verify-code") => {
            Some(json!({"phone": "+15550003001", "code": "123456"}))
        }
        _ => None,
    }
}

/// One hostile request.
#[derive(Debug)]
struct Case {
    what: String,
    path: String,
    body: Option<Value>,
}

/// The hostile variants of one operation, given valid path values.
fn cases(spec: &Spec, method: &str, template: &str, valid: &BTreeMap<&str, String>) -> Vec<Case> {
    let fill = |over: Option<(&str, &str)>| {
        let mut path = template.to_owned();
        for (name, value) in valid {
            let v = match over {
                Some((n, bad)) if n == *name => bad.to_owned(),
                _ => encode_path(value),
            };
            path = path.replace(&format!("{{{name}}}"), &v);
        }
        path
    };
    let body = valid_body(method, template);
    let mut out = Vec::new();
    for (name, location) in spec.parameters(method, template) {
        match location.as_str() {
            "path" => {
                for bad in bad_ids() {
                    out.push(Case {
                        what: format!("path {name}={:?}", truncate(&bad)),
                        path: fill(Some((&name, &encode_path(&bad)))),
                        body: body.clone(),
                    });
                }
            }
            "query" => {
                for bad in BAD_NUMBERS {
                    out.push(Case {
                        what: format!("query {name}={bad}"),
                        path: format!("{}?{name}={bad}", fill(None)),
                        body: body.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    // A parameter the operation does not document is refused, never ignored (operational
    // endpoints outside `/api` take whatever probes add).
    let unknowns = if template.starts_with("/api/") {
        &["zzz=1", "%24where=1", "filter[x]=1", "Page=1"][..]
    } else {
        &[]
    };
    for unknown in unknowns {
        out.push(Case {
            what: format!("unknown query {unknown}"),
            path: format!("{}?{unknown}", fill(None)),
            body: body.clone(),
        });
    }
    if let (Some(props), Some(valid_body)) = (spec.body_properties(method, template), &body) {
        for whole in [json!([]), json!("x"), json!(null), json!(5), deep(200)] {
            out.push(Case {
                what: format!("body {}", truncate(&whole.to_string())),
                path: fill(None),
                body: Some(whole),
            });
        }
        let mut unknown = valid_body.clone();
        unknown["zzz"] = json!(1);
        out.push(Case {
            what: "body with an unknown field".to_owned(),
            path: fill(None),
            body: Some(unknown),
        });
        for prop in props {
            let wrong_types = [
                json!(5),
                json!(true),
                json!({"$oid": "5f0000000000000000000000"}),
            ];
            // A type is wrong only where the spec says so: a meta `value` takes any JSON.
            let wrong_types = wrong_types.into_iter().filter(|bad| {
                let mut b = valid_body.clone();
                b[prop.as_str()] = bad.clone();
                !spec.request_accepts(method, template, &b)
            });
            for bad in wrong_types.chain(bad_values(&prop)) {
                let mut b = valid_body.clone();
                b[prop.as_str()] = bad.clone();
                out.push(Case {
                    what: format!("body {prop}={}", truncate(&bad.to_string())),
                    path: fill(None),
                    body: Some(b),
                });
            }
        }
    }
    out
}

fn truncate(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    if short.len() < s.len() {
        format!("{short}...")
    } else {
        short
    }
}

/// What the matrix must leave untouched.
async fn snapshot(store: &Store, tenant: &str) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    for name in [coll::DIALOGS, coll::MEMBERS, coll::MESSAGES, coll::EVENTS] {
        let n = chat3_core::testing::collection(store, name)
            .count_documents(doc! {"tenantId": tenant})
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        out.push((name, n));
    }
    for name in [coll::TENANTS, coll::API_KEYS] {
        let n = chat3_core::testing::collection(store, name)
            .count_documents(doc! {})
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        out.push((name, n));
    }
    out
}

/// Sends `case`; fails the test unless the answer is a documented 4xx JSON error.
async fn expect_refused(spec: &Spec, client: &Client, method: &str, case: &Case) {
    let r = client
        .raw(method, &case.path, case.body.as_ref(), &[])
        .await
        .unwrap_or_else(|e| panic!("{method} {}: {e}", case.what));
    assert!(
        (400..500).contains(&r.status),
        "{method} {} ({}): {} {}",
        truncate(&case.path),
        case.what,
        r.status,
        r.body
    );
    if let Err(p) = spec.validate(method, &case.path, r.status, &r.body) {
        panic!("{method} {} ({}): {p}", truncate(&case.path), case.what);
    }
}

#[tokio::test]
async fn every_route_of_both_specs_answers_hostile_input_with_a_documented_4xx() {
    let (api_spec, bff_spec) = (Spec::load(), Spec::load_bff());
    let stack = Stack::start("matrix").await;
    let c = &stack.client;
    let admin = stack.api.admin();
    let d = c
        .create_dialog(&dialog_of(&["alice", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let m = c
        .send_message(&d.dialog_id, &text("alice", "hi"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let keys = admin
        .list_api_keys(&stack.tenant)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let valid = BTreeMap::from([
        ("tenantId", stack.tenant.to_string()),
        ("keyId", keys[0].key_id.clone()),
        ("dialogId", d.dialog_id.to_string()),
        ("userId", "alice".to_owned()),
        ("messageId", m.message_id.to_string()),
        ("status", "read".to_owned()),
        ("entityType", "user".to_owned()),
        ("entityId", "alice".to_owned()),
        ("key", "k".to_owned()),
    ]);
    let store = Store::connect(&stack.api.mongo)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eventually(
        Duration::from_secs(20),
        "the setup's events to be published",
        || async {
            let n = chat3_core::testing::collection(&store, coll::EVENTS)
                .count_documents(doc! {"published": false})
                .await
                .ok()?;
            (n == 0).then_some(())
        },
    )
    .await;
    let before = snapshot(&store, stack.tenant.as_str()).await;

    let mut total = 0;
    for (method, template) in api_spec.operations() {
        let client = if template.starts_with("/api/tenants") {
            &admin
        } else {
            c
        };
        for case in cases(&api_spec, &method, &template, &valid) {
            expect_refused(&api_spec, client, &method, &case).await;
            total += 1;
        }
    }

    let bff = Client::anonymous(&stack.bff_url);
    for (method, template) in bff_spec.operations() {
        if template == "/ws" {
            continue;
        }
        for case in cases(&bff_spec, &method, &template, &valid) {
            expect_refused(&bff_spec, &bff, &method, &case).await;
            total += 1;
        }
    }
    // `/ws` refuses before the upgrade, with the same JSON errors.
    let session = login(&stack, "+15550003002").await;
    let ws = stack.bff_url.replace("http://", "ws://");
    let mut ws_cases: Vec<String> = BAD_NUMBERS
        .iter()
        .map(|bad| format!("{ws}/ws?token={}&since={bad}", session.token))
        .collect();
    ws_cases.extend(["x", "a.b.c", "", "%00"].map(|t| format!("{ws}/ws?token={t}")));
    for url in ws_cases {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Err(tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let body: Value =
                    serde_json::from_slice(resp.body().as_deref().unwrap_or_default())
                        .unwrap_or(Value::Null);
                assert!((400..500).contains(&status), "{url}: {status}");
                bff_spec
                    .validate("GET", "/ws", status, &body)
                    .unwrap_or_else(|p| panic!("{url}: {p}"));
            }
            other => panic!("{url}: expected a refusal, got {:?}", other.map(|_| ())),
        }
        total += 1;
    }
    assert!(total > 300, "the matrix shrank to {total} cases");

    // Nothing half-written, nothing poisoned downstream.
    assert_eq!(snapshot(&store, stack.tenant.as_str()).await, before);
    let dlq = stack.worker().dead_letter_queue();
    assert_eq!(
        chat3_tests::amqp::queue_depth(&stack.api.amqp.url, &dlq).await,
        0
    );
    stack.stop().await;
}
