//! `filter=` and `sort=` on the lists, end to end (every response checked against the spec):
//! each resource's whitelist, values typed by the field, `regex` as literal contains-text,
//! `$` in values staying data, and malformed input refused with its position.

use chat3_sdk::ListParams;
use chat3_tests::checked::Checked;
use chat3_tests::TestApi;
use serde_json::{json, Value};

fn ids(page: &Value, key: &str) -> Vec<String> {
    page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x[key].as_str().map(str::to_owned))
        .collect()
}

/// `filter` / `sort` percent-encoded for a query string.
fn q(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn users_filter_by_field_and_meta_and_sort_by_index() {
    let api = TestApi::start("filters_users").await;
    let (_, client) = api.tenant("tnt").await;
    let c = Checked::new(client);
    for (id, t, name, meta) in [
        (
            "u1",
            "user",
            "Ann Lee",
            json!({"plan": "pro", "age": 31, "vip": true}),
        ),
        (
            "u2",
            "bot",
            "Helper (v2), beta",
            json!({"plan": "free", "age": 5}),
        ),
        ("u3", "user", "bob", json!({"plan": "team", "age": "31"})),
        ("u4", "contact", "$gt", json!({})),
    ] {
        c.expect(
            "POST",
            "/api/users",
            Some(json!({"userId": id, "type": t, "name": name, "meta": meta})),
            201,
        )
        .await;
    }
    let list = |filter: &str| {
        let c = c.clone();
        let path = format!("/api/users?filter={}", q(filter));
        async move { ids(&c.expect("GET", &path, None, 200).await, "userId") }
    };
    assert_eq!(list("(type,eq,user)").await, ["u1", "u3"]);
    assert_eq!(list("(type,in,[bot,contact])").await, ["u2", "u4"]);
    assert_eq!(
        list("(type,ne,user)&(name,exists,true)").await,
        ["u2", "u4"]
    );
    // Meta values are typed by quoting: 31 the number, "31" the string.
    assert_eq!(list("(meta.age,eq,31)").await, ["u1"]);
    assert_eq!(list("(meta.age,eq,\"31\")").await, ["u3"]);
    assert_eq!(list("(meta.age,gte,5)&(meta.age,lt,31)").await, ["u2"]);
    assert_eq!(list("(meta.vip,eq,true)").await, ["u1"]);
    assert_eq!(list("(meta.plan,exists,false)").await, ["u4"]);
    // Mixed `&` / `|` with parentheses.
    assert_eq!(
        list("((type,eq,bot)|(meta.plan,eq,team))&(userId,ne,u9)").await,
        ["u2", "u3"]
    );
    // regex is literal, case-insensitive contains-text with optional anchors.
    assert_eq!(list("(name,regex,LEE)").await, ["u1"]);
    assert_eq!(list("(name,regex,^b)").await, ["u3"]);
    assert_eq!(list("(name,regex,\"(v2), b\")").await, ["u2"]);
    assert_eq!(list("(name,regex,.*)").await, Vec::<String>::new());
    // A value that looks like an operator is only data.
    assert_eq!(list("(name,eq,$gt)").await, ["u4"]);
    // A string field compares as a string.
    assert_eq!(list("(name,eq,31)").await, Vec::<String>::new());

    let sorted = c
        .expect(
            "GET",
            &format!("/api/users?sort={}&limit=3", q("(createdAt,desc)")),
            None,
            200,
        )
        .await;
    assert_eq!(ids(&sorted, "userId"), ["u4", "u3", "u2"]);
    assert_eq!(sorted["pagination"]["total"], 4);
    let filtered = c
        .expect(
            "GET",
            &format!("/api/users?filter={}&limit=1&page=2", q("(type,eq,user)")),
            None,
            200,
        )
        .await;
    assert_eq!(ids(&filtered, "userId"), ["u3"]);
    assert_eq!(
        filtered["pagination"],
        json!({"page": 2, "limit": 1, "total": 2, "pages": 2})
    );

    // Refused, with the position and the allowed fields.
    for (filter, position) in [
        ("(type,eq,user)&(type,eq,bot)|(type,eq,x)", 28),
        ("(tenantId,eq,x)", 0),
        ("(type,eq,user", 13),
        ("(type,like,x)", 6),
        ("(createdAt,gt,yesterday)", 0),
        ("(meta.a.b,eq,1)", 0),
        ("($where,eq,1)", 1),
        ("{\"type\":\"user\"}", 0),
    ] {
        let b = c
            .expect_error(
                "GET",
                &format!("/api/users?filter={}", q(filter)),
                None,
                400,
                "invalid_filter",
            )
            .await;
        assert_eq!(b["details"]["position"], position, "{filter}: {b}");
        assert!(
            b["message"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("at position {position}")),
            "{b}"
        );
    }
    let b = c
        .expect_error(
            "GET",
            &format!("/api/users?filter={}", q("(nope,eq,1)")),
            None,
            400,
            "invalid_filter",
        )
        .await;
    assert!(
        b["message"].as_str().unwrap_or_default().contains("userId"),
        "the allowed fields are named: {b}"
    );
    assert!(b["details"]["allowed"].is_string(), "{b}");
    let grammar = c
        .expect_error(
            "GET",
            &format!("/api/users?filter={}", q("(type,eq")),
            None,
            400,
            "invalid_filter",
        )
        .await;
    assert!(
        grammar["details"].get("allowed").is_none(),
        "a grammar error only names the position: {grammar}"
    );
    c.expect_error(
        "GET",
        &format!("/api/users?sort={}", q("(name,asc)")),
        None,
        400,
        "invalid_sort",
    )
    .await;
    c.expect_error(
        "GET",
        &format!("/api/users?sort={}", q("(createdAt,up)")),
        None,
        400,
        "invalid_sort",
    )
    .await;
    api.stop().await;
}

#[tokio::test]
async fn dialogs_and_messages_filter_within_their_own_scope() {
    let api = TestApi::start("filters_dialogs").await;
    let (_, client) = api.tenant("tnt").await;
    let c = Checked::new(client);
    let mut dialogs = Vec::new();
    for (name, topic) in [("Alpha", "sales"), ("Beta", "support"), ("Gamma", "sales")] {
        let d = c
            .expect(
                "POST",
                "/api/dialogs",
                Some(json!({"members": [{"userId": "alice"}, {"userId": "bob"}], "name": name, "meta": {"topic": topic}})),
                201,
            )
            .await;
        dialogs.push(
            d["data"]["dialogId"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let names = |filter: &str, sort: Option<&str>| {
        let c = c.clone();
        let mut path = format!("/api/dialogs?filter={}", q(filter));
        if let Some(s) = sort {
            path.push_str(&format!("&sort={}", q(s)));
        }
        async move { ids(&c.expect("GET", &path, None, 200).await, "name") }
    };
    assert_eq!(
        names("(meta.topic,eq,sales)", Some("(createdAt,asc)")).await,
        ["Alpha", "Gamma"]
    );
    assert_eq!(
        names("(meta.topic,eq,sales)", None).await,
        ["Gamma", "Alpha"],
        "most recently active first by default"
    );
    assert_eq!(names("(name,regex,^b)", None).await, ["Beta"]);
    // The SDK encodes the parameters.
    let found = c
        .client
        .find_dialogs(&ListParams {
            filter: Some("(meta.topic,in,[sales,\"a, (b)\"])&(name,ne,\"x&y\")".to_owned()),
            sort: Some("(createdAt,asc)".to_owned()),
            limit: Some(1),
            page: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.data[0].name.as_deref(), Some("Alpha"));
    assert_eq!(found.pagination.total, 2);
    assert_eq!(
        names("(membersCount,eq,2)&(messageCount,eq,0)", None)
            .await
            .len(),
        3
    );

    let d = &dialogs[0];
    for (from, text) in [
        ("alice", "invoice 1"),
        ("bob", "hello"),
        ("alice", "Invoice #2"),
    ] {
        c.send(d, from, text).await;
    }
    let contents = |path: String| {
        let c = c.clone();
        async move { ids(&c.expect("GET", &path, None, 200).await, "content") }
    };
    let base = format!("/api/dialogs/{d}/messages");
    assert_eq!(
        contents(format!("{base}?filter={}", q("(content,regex,invoice)"))).await,
        ["Invoice #2", "invoice 1"]
    );
    assert_eq!(
        contents(format!(
            "{base}?filter={}&sort={}",
            q("(senderId,eq,alice)"),
            q("(seq,asc)")
        ))
        .await,
        ["invoice 1", "Invoice #2"]
    );
    // A client condition on seq narrows the seq window; it cannot widen it.
    assert_eq!(
        contents(format!("{base}?afterSeq=1&filter={}", q("(seq,gte,0)"))).await,
        ["hello", "Invoice #2"]
    );
    // The user's view takes the same filter.
    assert_eq!(
        contents(format!(
            "/api/users/bob/dialogs/{d}/messages?filter={}",
            q("(senderId,eq,bob)")
        ))
        .await,
        ["hello"]
    );
    c.expect_error(
        "GET",
        &format!("{base}?afterSeq=1&sort={}", q("(seq,asc)")),
        None,
        400,
        "invalid_sort",
    )
    .await;
    c.expect_error(
        "GET",
        &format!("{base}?filter={}", q("(dialogId,eq,x)")),
        None,
        400,
        "invalid_filter",
    )
    .await;

    // Members of one dialog.
    c.expect(
        "POST",
        &format!("/api/dialogs/{d}/members/add"),
        Some(json!({"members": [{"userId": "zed", "type": "bot"}, {"userId": "amy"}]})),
        201,
    )
    .await;
    let members = |filter: &str, sort: &str| {
        let c = c.clone();
        let path = format!(
            "/api/dialogs/{d}/members?filter={}&sort={}",
            q(filter),
            q(sort)
        );
        async move { ids(&c.expect("GET", &path, None, 200).await, "userId") }
    };
    assert_eq!(
        members("(type,eq,user)", "(userId,desc)").await,
        ["bob", "amy", "alice"]
    );
    assert_eq!(
        members("(lastReadSeq,gte,3)", "(userId,asc)").await,
        ["alice", "amy", "zed"]
    );

    // Tenants (operator).
    let admin = Checked::new(api.admin());
    let tenants = admin
        .expect(
            "GET",
            &format!("/api/tenants?filter={}", q("(tenantId,regex,^tnt)")),
            None,
            200,
        )
        .await;
    assert!(!ids(&tenants, "tenantId").is_empty());
    admin
        .expect_error(
            "GET",
            &format!("/api/tenants?filter={}", q("(meta.x,eq,1)")),
            None,
            400,
            "invalid_filter",
        )
        .await;
    api.stop().await;
}

#[tokio::test]
async fn tenant_wide_message_search_filters_by_sender_time_type_content_and_meta() {
    let api = TestApi::start("filters_search").await;
    let (_, client) = api.tenant("tnt").await;
    let (_, other) = api.tenant("other").await;
    let c = Checked::new(client);
    let o = c.with_client(other);
    let d1 = c.dialog_of(&["alice", "bob"]).await;
    let d2 = c.dialog_of(&["alice", "carol"]).await;
    let od = o.dialog_of(&["alice", "bob"]).await;
    o.send(&od, "alice", "invoice from another tenant").await;
    let mut sent = Vec::new();
    for (d, body) in [
        (&d1, json!({"senderId": "alice", "content": "invoice 1"})),
        (&d2, json!({"senderId": "carol", "content": "hello"})),
        (
            &d1,
            json!({"senderId": "bob", "content": "Invoice #2", "meta": {"priority": 2}}),
        ),
        (
            &d2,
            json!({"senderId": "alice", "content": "pic", "type": "image", "meta": {"url": "https://x/y.png"}}),
        ),
    ] {
        let m = c
            .expect(
                "POST",
                &format!("/api/dialogs/{d}/messages"),
                Some(body),
                201,
            )
            .await["data"]
            .clone();
        // Each message in a millisecond of its own, so that newest-first is one order (ties
        // within a millisecond are ordered by id, whose random part is not time).
        let at = m["createdAt"].as_i64().unwrap_or_default();
        while chat3_core::ids::now_ms() <= at {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        sent.push(m);
    }
    let contents = |filter: Option<&str>, sort: Option<&str>| {
        let c = c.clone();
        let mut path = "/api/messages?limit=100".to_owned();
        if let Some(f) = filter {
            path.push_str(&format!("&filter={}", q(f)));
        }
        if let Some(s) = sort {
            path.push_str(&format!("&sort={}", q(s)));
        }
        async move { ids(&c.expect("GET", &path, None, 200).await, "content") }
    };
    // Newest first over every dialog of the tenant, and only of this tenant.
    assert_eq!(
        contents(None, None).await,
        ["pic", "Invoice #2", "hello", "invoice 1"]
    );
    assert_eq!(
        contents(Some("(senderId,eq,alice)"), Some("(createdAt,asc)")).await,
        ["invoice 1", "pic"]
    );
    let t = sent[1]["createdAt"].as_i64().unwrap_or_default();
    assert_eq!(
        contents(
            Some(&format!("(createdAt,gte,{t})&(senderId,in,[bob,carol])")),
            None
        )
        .await,
        ["Invoice #2", "hello"]
    );
    assert_eq!(
        contents(Some("(content,regex,invoice)"), None).await,
        ["Invoice #2", "invoice 1"]
    );
    assert_eq!(contents(Some("(type,eq,image)"), None).await, ["pic"]);
    assert_eq!(
        contents(Some("(meta.priority,gte,2)"), None).await,
        ["Invoice #2"]
    );
    assert_eq!(
        contents(Some(&format!("(dialogId,eq,{d2})")), None).await,
        ["pic", "hello"]
    );
    // Pages do not overlap.
    let page = |n: u32| {
        let c = c.clone();
        async move {
            c.expect("GET", &format!("/api/messages?limit=3&page={n}"), None, 200)
                .await
        }
    };
    let (p1, p2) = (page(1).await, page(2).await);
    assert_eq!(p1["pagination"]["total"], 4);
    assert_eq!(
        [ids(&p1, "messageId"), ids(&p2, "messageId")]
            .concat()
            .len(),
        4
    );
    // The SDK, and the refusals.
    let found = c
        .client
        .search_messages(&ListParams {
            filter: Some("(senderId,eq,carol)".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.data.len(), 1);
    let e = c
        .expect_error(
            "GET",
            &format!("/api/messages?filter={}", q("(tenantId,eq,x)")),
            None,
            400,
            "invalid_filter",
        )
        .await;
    assert!(
        e["details"]["allowed"]
            .as_str()
            .is_some_and(|a| a.contains("senderId")),
        "{e}"
    );
    c.expect_error(
        "GET",
        &format!("/api/messages?sort={}", q("(seq,asc)")),
        None,
        400,
        "invalid_sort",
    )
    .await;
}

#[tokio::test]
async fn the_inbox_filters_on_unread_and_dialog_fields_and_receipts_and_reactions_filter_too() {
    let api = TestApi::start("filters_inbox").await;
    let (_, client) = api.tenant("tnt").await;
    let (_, other) = api.tenant("other").await;
    let c = Checked::new(client);
    let o = c.with_client(other);
    let mut dialogs = Vec::new();
    for (name, topic) in [("Alpha", "sales"), ("Beta", "support"), ("Gamma", "sales")] {
        let d = c
            .expect(
                "POST",
                "/api/dialogs",
                Some(json!({"members": [{"userId": "alice"}, {"userId": "bob"}], "name": name, "meta": {"topic": topic}})),
                201,
            )
            .await["data"]["dialogId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        dialogs.push(d);
    }
    // Another tenant's dialog with the same member ids is never joined in.
    let od = o.dialog_of(&["alice", "bob"]).await;
    o.send(&od, "bob", "elsewhere").await;
    // Alpha: 2 unread for alice; Beta: 1; Gamma: none (alice wrote).
    c.send(&dialogs[0], "bob", "a1").await;
    let m = c.send(&dialogs[0], "bob", "a2").await["messageId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    c.send(&dialogs[1], "bob", "b1").await;
    c.send(&dialogs[2], "alice", "g1").await;

    let inbox = |filter: &str, sort: Option<&str>| {
        let c = c.clone();
        let mut path = format!("/api/users/alice/dialogs?filter={}", q(filter));
        if let Some(s) = sort {
            path.push_str(&format!("&sort={}", q(s)));
        }
        async move {
            let page = c.expect("GET", &path, None, 200).await;
            let unread: Vec<i64> = page["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["unreadCount"].as_i64())
                .collect();
            (
                ids(&page, "name"),
                unread,
                page["pagination"]["total"].clone(),
            )
        }
    };
    assert_eq!(
        inbox("(unreadCount,gt,0)", None).await,
        (
            vec!["Beta".to_owned(), "Alpha".to_owned()],
            vec![1, 2],
            json!(2)
        ),
        "most recent activity first"
    );
    assert_eq!(
        inbox("(unreadCount,gte,0)", Some("(unreadCount,desc)"))
            .await
            .0,
        ["Alpha", "Beta", "Gamma"]
    );
    assert_eq!(
        inbox("(meta.topic,eq,sales)&(unreadCount,eq,0)", None)
            .await
            .0,
        ["Gamma"]
    );
    assert_eq!(inbox("(name,regex,^al)", None).await.0, ["Alpha"]);
    assert_eq!(
        inbox(&format!("(dialogId,in,[{},{od}])", dialogs[1]), None)
            .await
            .0,
        ["Beta"]
    );
    // Reading moves a dialog out of the unread filter.
    c.expect(
        "POST",
        &format!("/api/users/alice/dialogs/{}/markAllRead", dialogs[0]),
        None,
        200,
    )
    .await;
    assert_eq!(inbox("(unreadCount,gt,0)", None).await.0, ["Beta"]);
    let sdk = c
        .client
        .find_user_dialogs(
            &chat3_tests::fixtures::user("alice"),
            &ListParams {
                sort: Some("(joinedAt,asc)".to_owned()),
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (sdk.data.len(), sdk.pagination.total),
        (2, 3),
        "a sort alone takes the joined path too"
    );
    c.expect_error(
        "GET",
        &format!("/api/users/alice/dialogs?filter={}", q("(readCount,gt,0)")),
        None,
        400,
        "invalid_filter",
    )
    .await;

    // Receipts and reactions of one message.
    let base = format!("/api/users/alice/dialogs/{}/messages/{m}", dialogs[0]);
    c.expect("POST", &format!("{base}/status/delivered"), None, 201)
        .await;
    c.expect("POST", &format!("{base}/status/read"), None, 201)
        .await;
    for (who, r) in [("alice", "👍"), ("bob", "🎉")] {
        // Each reaction in a millisecond of its own, so that the order by time is one order.
        let before = chat3_core::ids::now_ms();
        while chat3_core::ids::now_ms() <= before {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        c.expect(
            "POST",
            &format!(
                "/api/users/{who}/dialogs/{}/messages/{m}/reactions/set",
                dialogs[0]
            ),
            Some(json!({"reaction": r})),
            200,
        )
        .await;
    }
    let statuses = c
        .expect(
            "GET",
            &format!("{base}/statuses?filter={}", q("(status,eq,read)")),
            None,
            200,
        )
        .await;
    assert_eq!(ids(&statuses, "status"), ["read"]);
    let reactions = c
        .expect(
            "GET",
            &format!(
                "{base}/reactions?filter={}&sort={}",
                q("(reaction,in,[👍,🎉])"),
                q("(createdAt,desc)")
            ),
            None,
            200,
        )
        .await;
    assert_eq!(ids(&reactions, "userId"), ["bob", "alice"]);
    c.expect_error(
        "GET",
        &format!("{base}/statuses?filter={}", q("(meta.x,eq,1)")),
        None,
        400,
        "invalid_filter",
    )
    .await;
}
