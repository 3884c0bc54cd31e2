//! The operator's tenant routes: one tenant, PATCH with `tenant.changed`; deleting a tenant
//! (keys revoked at once, the operator refused for it, progress while the background job
//! removes every document of the tenant, nothing of another tenant touched, the id reusable
//! afterwards; a deletion interrupted by a restart resumes; the CLI command).

use std::collections::BTreeMap;
use std::time::Duration;

use bson::doc;
use chat3_api::config::TenantCommand;
use chat3_core::store::{coll, Store};
use chat3_core::testing::collection;
use chat3_sdk::client::Client;
use chat3_tests::amqp::TestQueue;
use chat3_tests::checked::Checked;
use chat3_tests::{eventually, Stack, TestApi, ADMIN_KEY};
use serde_json::json;

/// Documents of `tenant` in every collection of tenant data, keys and the tenant included.
async fn census(store: &Store, tenant: &str) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for name in coll::TENANT_DATA
        .iter()
        .chain(&[coll::API_KEYS, coll::TENANTS])
    {
        let n = collection(store, name)
            .count_documents(doc! {"tenantId": tenant})
            .await
            .unwrap_or_else(|e| panic!("count {name}: {e}"));
        out.insert(*name, n);
    }
    out
}

/// A dialog of alice and bob with messages, a receipt, a reaction and an idempotent write:
/// something in every collection once the worker has written the updates.
async fn seed(c: &Checked) -> String {
    let d = c.dialog_of(&["alice", "bob"]).await;
    let m = c.send(&d, "alice", "hello").await["messageId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    c.send(&d, "bob", "hi").await;
    c.expect(
        "POST",
        &format!("/api/users/bob/dialogs/{d}/messages/{m}/status/read"),
        None,
        201,
    )
    .await;
    c.expect(
        "POST",
        &format!("/api/users/bob/dialogs/{d}/messages/{m}/reactions/set"),
        Some(json!({"reaction": "👍"})),
        200,
    )
    .await;
    let r = c
        .client
        .raw(
            "POST",
            "/api/users",
            Some(&json!({"userId": "carol"})),
            &[("X-Idempotency-Key", "seed-carol")],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status, 201, "{}", r.body);
    d
}

#[tokio::test]
async fn a_tenant_is_read_and_patched_by_the_operator_with_its_change_event() {
    let api = TestApi::start("tpatch").await;
    let (tenant, key) = api.tenant("acme").await;
    let mut events = TestQueue::bind(&api.amqp.url, &api.amqp.events_exchange, &["tenant.#"]).await;
    let admin = Checked::new(api.admin());
    let path = format!("/api/tenants/{tenant}");
    let got = admin.expect("GET", &path, None, 200).await["data"].clone();
    assert_eq!(got["status"], "active");
    assert!(got.get("deletion").is_none(), "{got}");

    let patched = admin
        .expect(
            "PATCH",
            &path,
            Some(json!({"name": "  Acme Inc  ", "meta": {"plan": "pro", "none": null}})),
            200,
        )
        .await["data"]
        .clone();
    assert_eq!(
        (patched["name"].clone(), patched["meta"].clone()),
        (json!("Acme Inc"), json!({"plan": "pro"}))
    );
    let e = events.next_body().await;
    assert_eq!(
        (e["eventType"].clone(), e["data"]["changed"].clone()),
        (json!("tenant.changed"), json!(["name", "meta.plan"])),
        "{e}"
    );
    assert_eq!(admin.expect("GET", &path, None, 200).await["data"], patched);
    // Nothing changed: no event (the next one seen is the one after).
    admin
        .expect("PATCH", &path, Some(json!({"name": "Acme Inc"})), 200)
        .await;
    admin
        .expect("PATCH", &path, Some(json!({"meta": {"plan": null}})), 200)
        .await;
    assert_eq!(
        events.next_body().await["data"]["changed"],
        json!(["meta.plan"])
    );

    admin
        .expect_error(
            "PATCH",
            &path,
            Some(json!({"name": " "})),
            400,
            "validation_error",
        )
        .await;
    admin
        .expect_error("GET", "/api/tenants/nobody", None, 404, "tenant_not_found")
        .await;
    admin
        .expect_error(
            "PATCH",
            "/api/tenants/nobody",
            Some(json!({})),
            404,
            "tenant_not_found",
        )
        .await;
    let as_tenant = admin.with_client(key);
    as_tenant
        .expect_error("GET", &path, None, 403, "operator_required")
        .await;
    as_tenant
        .expect_error("DELETE", &path, None, 403, "operator_required")
        .await;
    api.stop().await;
}

#[tokio::test]
async fn deleting_a_tenant_revokes_its_keys_at_once_and_removes_all_its_data_and_nothing_else() {
    let stack = Stack::start("tdel").await;
    let store = Store::connect(&stack.api.mongo)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let doomed = stack.tenant.to_string();
    let c = Checked::new(stack.client.clone());
    let (other_id, other) = stack.api.tenant("keep").await;
    let other_id = other_id.to_string();
    let o = Checked::new(other.clone());
    seed(&c).await;
    let other_dialog = seed(&o).await;
    // Both feeds written (alice: dialog.create, two messages, her receipt and reaction news).
    for who in [&c, &o] {
        eventually(Duration::from_secs(20), "updates", || async {
            (who.all_updates_of("alice", 4).await.len() >= 4).then_some(())
        })
        .await;
    }
    let before = census(&store, &doomed).await;
    for name in coll::TENANT_DATA {
        assert!(before[name] > 0, "nothing seeded in {name}: {before:?}");
    }
    let others = census(&store, &other_id).await;

    let admin = Checked::new(stack.api.admin());
    let path = format!("/api/tenants/{doomed}");
    let accepted = admin.expect("DELETE", &path, None, 202).await["data"].clone();
    assert_eq!(accepted["status"], "deleting");
    // Counted by the background job as it starts, not by the request.
    let expected_total: u64 = coll::TENANT_DATA.iter().map(|n| before[n]).sum();

    // The tenant's key is refused at once; the operator cannot act on it or change it.
    c.expect_error("GET", "/api/dialogs", None, 401, "invalid_api_key")
        .await;
    let as_operator = admin.with_client(stack.api.admin().with_tenant(doomed.clone()));
    as_operator
        .expect_error("GET", "/api/dialogs", None, 404, "tenant_deleting")
        .await;
    admin
        .expect_error(
            "PATCH",
            &path,
            Some(json!({"name": "x"})),
            409,
            "tenant_deleting",
        )
        .await;
    admin
        .expect_error(
            "POST",
            &format!("{path}/api-keys"),
            Some(json!({})),
            409,
            "tenant_deleting",
        )
        .await;
    // Asking again answers the progress so far.
    let again = admin.expect("DELETE", &path, None, 202).await["data"].clone();
    assert_eq!(
        again["deletion"]["startedAt"],
        accepted["deletion"]["startedAt"]
    );

    // Progress is visible until the tenant is gone (the first sweep is done within the grace
    // period before the second); then 404.
    let most_deleted = std::cell::Cell::new(0);
    let counted = std::cell::Cell::new(None);
    eventually(Duration::from_secs(60), "the tenant to be gone", || async {
        let r = admin.call("GET", &path, None).await;
        match r.status {
            404 => Some(()),
            200 => {
                assert_eq!(r.body["data"]["status"], "deleting");
                let deletion = &r.body["data"]["deletion"];
                let deleted = deletion["deleted"].as_u64().unwrap_or(0);
                most_deleted.set(most_deleted.get().max(deleted));
                if deletion["total"].as_u64() > Some(0) {
                    counted.set(Some((
                        deletion["total"].as_u64(),
                        deletion["collections"]["messages"]["total"].as_u64(),
                    )));
                }
                None
            }
            s => panic!("GET {path} -> {s}: {}", r.body),
        }
    })
    .await;
    assert_eq!(
        counted.get(),
        Some((Some(expected_total), Some(before[coll::MESSAGES]))),
        "the counts shown while deleting"
    );
    assert!(
        most_deleted.get() >= expected_total,
        "progress never showed the first sweep: {} of {expected_total}",
        most_deleted.get()
    );
    let after = census(&store, &doomed).await;
    assert!(after.values().all(|n| *n == 0), "left over: {after:?}");
    assert_eq!(
        census(&store, &other_id).await,
        others,
        "another tenant was touched"
    );
    assert_eq!(
        o.expect(
            "GET",
            &format!("/api/dialogs/{other_dialog}/messages"),
            None,
            200
        )
        .await["pagination"]["total"],
        2
    );

    // The id can be used again, from nothing.
    admin
        .expect(
            "POST",
            "/api/tenants",
            Some(json!({"tenantId": doomed})),
            201,
        )
        .await;
    assert_eq!(
        as_operator.expect("GET", "/api/dialogs", None, 200).await["pagination"]["total"],
        0
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_deletion_interrupted_by_a_restart_resumes_when_the_api_starts_again() {
    let api = TestApi::start("tdelr").await;
    let (tenant, client) = api.tenant("gone").await;
    let c = Checked::new(client);
    c.dialog_of(&["alice", "bob"]).await;
    let store = Store::connect(&api.mongo)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mongo = api.mongo.clone();
    let amqp = api.amqp.clone();
    api.stop().await;

    // Accepted, then the process died before removing anything.
    let marked = chat3_core::tenant_deletion::begin(&store, &tenant)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(marked.deletion.is_some());

    let api = TestApi::start_with(mongo, amqp).await;
    let admin = Checked::new(api.admin());
    let path = format!("/api/tenants/{tenant}");
    eventually(Duration::from_secs(60), "the resumed deletion", || async {
        (admin.call("GET", &path, None).await.status == 404).then_some(())
    })
    .await;
    let left = census(&store, tenant.as_str()).await;
    assert!(left.values().all(|n| *n == 0), "left over: {left:?}");
    api.stop().await;
}

#[tokio::test]
async fn the_cli_counts_without_yes_and_deletes_with_it() {
    let api = TestApi::start("tdelc").await;
    let (tenant, client) = api.tenant("cli").await;
    let c = Checked::new(client.clone());
    c.dialog_of(&["alice", "bob"]).await;
    let store = Store::connect(&api.mongo)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let command = |yes| TenantCommand::Delete {
        tenant_id: tenant.to_string(),
        yes,
        key_cache_seconds: 0,
        request_timeout_secs: 0,
        mongo: api.mongo.clone(),
    };

    let refused = chat3_api::cli::tenant(command(false)).await;
    assert!(
        refused.is_err_and(|e| e.to_string().contains("--yes")),
        "deleted without --yes"
    );
    let before = census(&store, tenant.as_str()).await;
    assert!(
        before[coll::DIALOGS] == 1 && before[coll::TENANTS] == 1,
        "{before:?}"
    );
    c.expect("GET", "/api/dialogs", None, 200).await;

    chat3_api::cli::tenant(command(true))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let after = census(&store, tenant.as_str()).await;
    assert!(after.values().all(|n| *n == 0), "left over: {after:?}");
    // Another instance's cache may trust the key for CHAT3_KEY_CACHE_SECONDS (1 s here).
    eventually(Duration::from_secs(10), "the key refused", || async {
        (client.list_dialogs(1, 1).await.err()?.status() == Some(401)).then_some(())
    })
    .await;
    let admin = Client::new(&api.url, ADMIN_KEY);
    let e = admin
        .get_tenant(&tenant)
        .await
        .err()
        .unwrap_or_else(|| panic!("the tenant is still there"));
    assert_eq!(e.code(), Some("tenant_not_found"));
    api.stop().await;
}
