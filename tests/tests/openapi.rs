//! The API against its contract: every served route is in `openapi/openapi.yaml` (and the
//! reverse), and every response of a realistic session, errors included, matches its schema.

use std::collections::BTreeSet;

use chat3_api::routes::ROUTES;
use chat3_sdk::client::{Client, RawResponse};
use chat3_tests::openapi::Spec;
use chat3_tests::TestApi;
use serde_json::{json, Value};

async fn checked(
    spec: &Spec,
    c: &Client,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> RawResponse {
    let r = c
        .raw(method, path, body.as_ref(), &[])
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    if let Err(problem) = spec.validate(method, path, r.status, &r.body) {
        panic!(
            "{method} {path} -> {} does not match the spec: {problem}\nbody: {}",
            r.status, r.body
        );
    }
    r
}

#[tokio::test]
async fn every_served_route_is_in_the_spec_and_every_spec_route_is_served() {
    let spec = Spec::load();
    let documented: BTreeSet<(String, String)> = spec.operations().into_iter().collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served, "spec and route table differ");

    // ROUTES itself matches what the server answers: no entry is an unknown route or method.
    let api = TestApi::start("routes").await;
    let admin = api.admin().with_tenant("nobody");
    for (method, template) in ROUTES {
        let path = template
            .replace("{tenantId}", "nobody")
            .replace("{keyId}", "key_x")
            .replace("{dialogId}", "dlg_0000000000aaaaaaaaaa")
            .replace("{userId}", "alice")
            .replace("{messageId}", "msg_0000000000aaaaaaaaaa")
            .replace("{status}", "read");
        let r = admin
            .raw(method, &path, Some(&json!({})), &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let code = r
            .body
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(
            code != "route_not_found" && code != "method_not_allowed",
            "{method} {path} is listed in ROUTES but not served ({code})"
        );
    }
    api.stop().await;
}

#[tokio::test]
async fn responses_of_a_whole_session_match_the_spec() {
    let spec = Spec::load();
    let api = TestApi::start("spec").await;
    let admin = api.admin();
    let anon = api.anonymous();
    checked(&spec, &anon, "GET", "/health", None).await;
    checked(&spec, &anon, "GET", "/ready", None).await;

    let tenant = chat3_core::testing::unique_name("spec");
    checked(
        &spec,
        &admin,
        "POST",
        "/api/tenants",
        Some(json!({"tenantId": tenant, "name": "Spec Inc"})),
    )
    .await;
    let dup = checked(
        &spec,
        &admin,
        "POST",
        "/api/tenants",
        Some(json!({"tenantId": tenant})),
    )
    .await;
    assert_eq!(dup.status, 409);
    checked(&spec, &admin, "GET", "/api/tenants?page=1&limit=5", None).await;
    let key = checked(
        &spec,
        &admin,
        "POST",
        &format!("/api/tenants/{tenant}/api-keys"),
        Some(json!({"name": "ci"})),
    )
    .await;
    let secret = key.body["data"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let key_id = key.body["data"]["keyId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    checked(
        &spec,
        &admin,
        "GET",
        &format!("/api/tenants/{tenant}/api-keys"),
        None,
    )
    .await;

    let c = Client::new(&api.url, &secret);
    let d = checked(
        &spec,
        &c,
        "POST",
        "/api/dialogs",
        Some(json!({"members": [{"userId": "alice"}, {"userId": "bob", "type": "bot"}], "name": "Spec", "meta": {"topic": "x"}})),
    )
    .await;
    assert_eq!(d.status, 201);
    let dialog = d.body["data"]["dialogId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    checked(&spec, &c, "GET", "/api/dialogs", None).await;
    checked(&spec, &c, "GET", &format!("/api/dialogs/{dialog}"), None).await;
    let msg =
        json!({"senderId": "alice", "content": "hi", "clientMessageId": "c1", "meta": {"k": 1}});
    let first = checked(
        &spec,
        &c,
        "POST",
        &format!("/api/dialogs/{dialog}/messages"),
        Some(msg.clone()),
    )
    .await;
    let again = checked(
        &spec,
        &c,
        "POST",
        &format!("/api/dialogs/{dialog}/messages"),
        Some(msg),
    )
    .await;
    assert_eq!((first.status, again.status), (201, 200));
    checked(
        &spec,
        &c,
        "GET",
        &format!("/api/dialogs/{dialog}/messages?limit=10"),
        None,
    )
    .await;
    checked(
        &spec,
        &c,
        "GET",
        &format!("/api/dialogs/{dialog}/messages?afterSeq=0"),
        None,
    )
    .await;
    checked(&spec, &c, "GET", "/api/users/bob/dialogs", None).await;
    checked(
        &spec,
        &c,
        "POST",
        &format!("/api/users/bob/dialogs/{dialog}/markAllRead"),
        Some(json!({})),
    )
    .await;
    checked(
        &spec,
        &c,
        "GET",
        "/api/users/bob/updates?since=0&limit=10",
        None,
    )
    .await;

    // Errors are documented too.
    let missing = checked(
        &spec,
        &c,
        "GET",
        "/api/dialogs/dlg_0000000000aaaaaaaaaa",
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
    let bad = checked(
        &spec,
        &c,
        "POST",
        "/api/dialogs",
        Some(json!({"members": "nope"})),
    )
    .await;
    assert_eq!(bad.status, 400);
    let forbidden = checked(
        &spec,
        &c,
        "POST",
        &format!("/api/dialogs/{dialog}/messages"),
        Some(json!({"senderId": "eve", "content": "x"})),
    )
    .await;
    assert_eq!(forbidden.status, 403);
    let unauth = checked(&spec, &anon, "GET", "/api/dialogs", None).await;
    assert_eq!(unauth.status, 401);
    let revoked = checked(
        &spec,
        &admin,
        "DELETE",
        &format!("/api/tenants/{tenant}/api-keys/{key_id}"),
        None,
    )
    .await;
    assert_eq!(revoked.status, 200);
    api.stop().await;
}

#[tokio::test]
async fn the_spec_lists_every_status_the_server_can_answer() {
    // What every operation can answer, whatever it does: the middleware's answers.
    let spec = Spec::load();
    let doc: Value =
        serde_yaml::from_str(chat3_api::OPENAPI_YAML).unwrap_or_else(|e| panic!("{e}"));
    let public = ["/health", "/ready", "/api-docs/openapi.yaml"];
    for (method, template) in spec.operations() {
        if public.contains(&template.as_str()) {
            continue;
        }
        let pointer = format!(
            "/paths/{}/{}/responses",
            template.replace('~', "~0").replace('/', "~1"),
            method.to_ascii_lowercase()
        );
        let responses = doc
            .pointer(&pointer)
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("{method} {template}: no responses"));
        let params = spec.parameters(&method, &template);
        let mut must = vec!["400", "401", "403", "429", "500", "503"];
        if params.iter().any(|(n, _)| n == "X-Tenant-ID") {
            // The operator naming a tenant that does not exist.
            must.push("404");
        }
        if method != "GET" {
            // Idempotency: in use (409), body over the limit (413), key reused (422).
            must.extend(["409", "413", "422"]);
        }
        for status in must {
            assert!(
                responses.contains_key(status),
                "{method} {template} does not document {status}"
            );
        }
    }
}
