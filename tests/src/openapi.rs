//! Checks responses against the hand-written contract in `openapi/openapi.yaml` (and the BFF's
//! `openapi/bff.yaml`): find the operation whose path template matches a concrete path, pick the
//! documented response for the status, and validate the JSON body with its schema (JSON Schema
//! 2020-12, which OpenAPI 3.1 uses as is). `$ref`s into `#/components/...` resolve against the
//! spec itself. Response objects are closed (`additionalProperties: false`), so a field added to
//! or renamed in the wire types without the spec fails here.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use jsonschema::{Draft, Validator};
use serde_json::{json, Value};

/// The HTTP methods an OpenAPI path item may hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// At most this many schema violations are listed in one error.
const MAX_REPORTED: usize = 10;

/// One operation of the spec.
#[derive(Debug, Clone)]
struct Operation {
    /// Upper-case method.
    method: String,
    /// Path template, e.g. `/api/dialogs/{dialogId}`.
    template: String,
    /// `responses` of the operation.
    responses: Value,
}

/// A loaded OpenAPI document.
pub struct Spec {
    /// Where it came from, for messages.
    source: String,
    /// The whole document as JSON.
    doc: Value,
    /// Operations in document order.
    operations: Vec<Operation>,
    /// Compiled validators by schema key (a `$ref` or the inline schema's text).
    compiled: Mutex<HashMap<String, Arc<Validator>>>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("source", &self.source)
            .field("operations", &self.operations.len())
            .finish_non_exhaustive()
    }
}

impl Spec {
    /// The tenant API's contract, `openapi/openapi.yaml`. Panics when it is missing or invalid,
    /// which is a test failure by design.
    pub fn load() -> Spec {
        Self::load_or_panic(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../openapi/openapi.yaml"
        ))
    }

    /// The BFF's contract, `openapi/bff.yaml`. Panics when it is missing or invalid.
    pub fn load_bff() -> Spec {
        Self::load_or_panic(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/bff.yaml"))
    }

    fn load_or_panic(path: &str) -> Spec {
        match Self::from_file(Path::new(path)) {
            Ok(spec) => spec,
            Err(e) => panic!("{e}"),
        }
    }

    /// Reads and parses a spec file.
    pub fn from_file(path: &Path) -> Result<Spec, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_yaml(&path.display().to_string(), &text)
    }

    /// Parses a spec from YAML text; `source` names it in messages.
    pub fn from_yaml(source: &str, text: &str) -> Result<Spec, String> {
        // The YAML mapping keeps document order, which `operations()` reports.
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| format!("{source}: invalid YAML: {e}"))?;
        let doc: Value = serde_json::to_value(&yaml)
            .map_err(|e| format!("{source}: not representable as JSON: {e}"))?;
        let mut operations = Vec::new();
        if let Some(paths) = yaml.get("paths").and_then(serde_yaml::Value::as_mapping) {
            for (template, item) in paths {
                let Some(template) = template.as_str() else {
                    return Err(format!("{source}: a path key is not a string"));
                };
                let Some(item) = item.as_mapping() else {
                    continue;
                };
                for (method, op) in item {
                    let Some(method) = method.as_str().filter(|m| METHODS.contains(m)) else {
                        continue;
                    };
                    let responses = serde_json::to_value(op.get("responses"))
                        .map_err(|e| format!("{source}: {method} {template}: {e}"))?;
                    operations.push(Operation {
                        method: method.to_ascii_uppercase(),
                        template: template.to_owned(),
                        responses,
                    });
                }
            }
        }
        if operations.is_empty() {
            return Err(format!("{source}: no operations under `paths`"));
        }
        Ok(Spec {
            source: source.to_owned(),
            doc,
            operations,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    /// Every `(METHOD, template)` of the spec, in document order, e.g.
    /// `("GET", "/api/dialogs/{dialogId}")`.
    pub fn operations(&self) -> Vec<(String, String)> {
        self.operations
            .iter()
            .map(|op| (op.method.clone(), op.template.clone()))
            .collect()
    }

    /// The parameters of an operation (path-level ones included) as `(name, in)`, e.g.
    /// `("limit", "query")`.
    pub fn parameters(&self, method: &str, template: &str) -> Vec<(String, String)> {
        let Some(item) = self
            .doc
            .pointer(&format!("/paths/{}", pointer_escape(template)))
        else {
            return Vec::new();
        };
        let op = item.get(method.to_ascii_lowercase());
        [item.get("parameters"), op.and_then(|o| o.get("parameters"))]
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|p| {
                let p = self.deref(p).ok()?;
                Some((
                    p.get("name")?.as_str()?.to_owned(),
                    p.get("in")?.as_str()?.to_owned(),
                ))
            })
            .collect()
    }

    /// The top-level properties of an operation's JSON request body, `None` when it takes none.
    pub fn body_properties(&self, method: &str, template: &str) -> Option<Vec<String>> {
        let op = self
            .doc
            .pointer(&format!("/paths/{}", pointer_escape(template)))?
            .get(method.to_ascii_lowercase())?;
        let schema = op.pointer("/requestBody/content/application~1json/schema")?;
        let schema = self.deref(schema).ok()?;
        let props = schema.get("properties")?.as_object()?;
        Some(props.keys().cloned().collect())
    }

    /// Whether `body` matches the operation's JSON request-body schema (false when it takes
    /// none).
    pub fn request_accepts(&self, method: &str, template: &str, body: &Value) -> bool {
        let Some(schema) = self
            .doc
            .pointer(&format!("/paths/{}", pointer_escape(template)))
            .and_then(|p| p.get(method.to_ascii_lowercase()))
            .and_then(|op| op.pointer("/requestBody/content/application~1json/schema"))
        else {
            return false;
        };
        self.check_schema("request", schema, body).is_ok()
    }

    /// Checks a response: `path` is the concrete request path (a query string is ignored),
    /// `status` the HTTP status and `body` the parsed JSON body (`Value::Null` for none).
    ///
    /// Fails when no path template matches, the method or the status is not documented, or the
    /// body does not match the documented schema. A 405 on a known path is checked against the
    /// `Error` schema, since it belongs to no operation.
    pub fn validate(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        let method = method.to_ascii_uppercase();
        let path = strip_query(path);
        let what = format!("{method} {path} -> {status}");
        let candidates = self.matching(path);
        if candidates.is_empty() {
            return Err(format!("{what}: no path of {} matches {path}", self.source));
        }
        let Some(op) = candidates.iter().find(|op| op.method == method) else {
            if status == 405 {
                return self.check_schema(
                    &what,
                    &json!({"$ref": "#/components/schemas/Error"}),
                    body,
                );
            }
            let allowed: Vec<&str> = candidates.iter().map(|op| op.method.as_str()).collect();
            return Err(format!(
                "{what}: {} documents only {} for {}",
                self.source,
                allowed.join(", "),
                candidates[0].template
            ));
        };
        let what = format!("{method} {} -> {status}", op.template);
        let Some(response) = pick_response(&op.responses, status) else {
            let documented: Vec<&String> = op
                .responses
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            return Err(format!(
                "{what}: status {status} is not documented (documented: {documented:?}); body: {}",
                snippet(body)
            ));
        };
        let response = self.deref(response)?;
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            // No body documented (e.g. 101, 204): nothing to check.
            return Ok(());
        };
        let Some(schema) = content
            .iter()
            .find(|(mime, _)| mime.starts_with("application/json"))
            .and_then(|(_, media)| media.get("schema"))
        else {
            // Only non-JSON bodies documented (e.g. the YAML document itself).
            return Ok(());
        };
        self.check_schema(&what, schema, body)
    }

    /// Checks `body` against the component schema `name` (e.g. `Error`, `Dialog`,
    /// `EventEnvelope`), for bodies that are not HTTP responses of an operation.
    pub fn validate_schema(&self, name: &str, body: &Value) -> Result<(), String> {
        if self
            .doc
            .pointer(&format!("/components/schemas/{name}"))
            .is_none()
        {
            return Err(format!("{}: no schema named {name}", self.source));
        }
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        self.check_schema(name, &schema, body)
    }

    /// The operations of the template that matches `path`; when several do, the one with the
    /// most literal segments (so `/a/fixed` wins over `/a/{param}`).
    fn matching(&self, path: &str) -> Vec<&Operation> {
        let best = self
            .operations
            .iter()
            .filter_map(|op| template_matches(&op.template, path).map(|lits| (lits, op)))
            .max_by_key(|(lits, _)| *lits)
            .map(|(_, op)| op.template.as_str());
        // Every operation of the best template: they share one path item.
        self.operations
            .iter()
            .filter(|op| Some(op.template.as_str()) == best)
            .collect()
    }

    /// Follows a local `$ref` (`#/components/responses/...`) to the object it names.
    fn deref<'a>(&'a self, value: &'a Value) -> Result<&'a Value, String> {
        let mut current = value;
        // Bounded, so a reference cycle cannot hang a test.
        for _ in 0..8 {
            let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
                return Ok(current);
            };
            let pointer = reference.strip_prefix('#').ok_or_else(|| {
                format!(
                    "{}: only local refs are supported: {reference}",
                    self.source
                )
            })?;
            current = self
                .doc
                .pointer(pointer)
                .ok_or_else(|| format!("{}: unresolved $ref {reference}", self.source))?;
        }
        Err(format!("{}: $ref chain too long at {value}", self.source))
    }

    /// Validates `body` with `schema`, whose `$ref`s point into this document.
    fn check_schema(&self, what: &str, schema: &Value, body: &Value) -> Result<(), String> {
        let validator = self.validator(schema)?;
        let errors: Vec<String> = validator
            .iter_errors(body)
            .take(MAX_REPORTED)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("  at {}: {e}", if at.is_empty() { "/" } else { &at })
            })
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{what}: body does not match {} ({}):\n{}\n  body: {}",
            schema_name(schema),
            self.source,
            errors.join("\n"),
            snippet(body)
        ))
    }

    /// The compiled validator for `schema`, cached. The schema is embedded in a root document
    /// that also carries the spec's `components`, so `#/components/...` refs resolve.
    fn validator(&self, schema: &Value) -> Result<Arc<Validator>, String> {
        let key = schema.to_string();
        if let Ok(cache) = self.compiled.lock() {
            if let Some(v) = cache.get(&key) {
                return Ok(Arc::clone(v));
            }
        }
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc.get("components").cloned().unwrap_or(Value::Null),
            "allOf": [schema],
        });
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(&root)
            .map_err(|e| {
                format!(
                    "{}: schema {} does not compile: {e}",
                    self.source,
                    schema_name(schema)
                )
            })?;
        let validator = Arc::new(validator);
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(key, Arc::clone(&validator));
        }
        Ok(validator)
    }
}

/// A path template as a JSON pointer segment (`/` is `~1`, `~` is `~0`).
fn pointer_escape(template: &str) -> String {
    template.replace('~', "~0").replace('/', "~1")
}

/// `path` without `?query` and `#fragment`.
fn strip_query(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// `Some(number of literal segments)` when `path` fits `template`, segment by segment; a
/// `{param}` segment matches any non-empty segment.
fn template_matches(template: &str, path: &str) -> Option<usize> {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut literals = 0;
    for (ts, ps) in t.iter().zip(&p) {
        if ts.starts_with('{') && ts.ends_with('}') {
            if ps.is_empty() {
                return None;
            }
        } else if ts == ps {
            literals += 1;
        } else {
            return None;
        }
    }
    Some(literals)
}

/// The documented response for `status`: exact code, then a range like `4XX`, then `default`.
fn pick_response(responses: &Value, status: u16) -> Option<&Value> {
    let responses = responses.as_object()?;
    let range = format!("{}XX", status / 100);
    responses
        .get(&status.to_string())
        .or_else(|| {
            responses
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&range))
                .map(|(_, v)| v)
        })
        .or_else(|| responses.get("default"))
}

/// A short name for a schema in messages: the `$ref` target or `inline schema`.
fn schema_name(schema: &Value) -> String {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r.rsplit('/').next().unwrap_or(r).to_owned(),
        None => "inline schema".to_owned(),
    }
}

/// The body for an error message, cut to a readable length.
fn snippet(body: &Value) -> String {
    let text = body.to_string();
    if text.chars().count() > 600 {
        let cut: String = text.chars().take(600).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chat3_sdk::{
        ApiKeyInfo, CreatedApiKey, Data, DeletionCount, Dialog, ErrorBody, InboxDialog, Member,
        Message, Page, Pagination, ReadState, Readiness, Scope, Tenant, TenantDeletion,
        TenantStatus, Update, UpdateType, UpdatesPage,
    };
    use std::collections::BTreeMap;

    const DLG: &str = "dlg_0123456789abcdefghij";
    const MSG: &str = "msg_0123456789abcdefghij";

    fn spec() -> Spec {
        Spec::load()
    }

    fn to_json<T: serde::Serialize>(v: &T) -> Value {
        serde_json::to_value(v).expect("serializable")
    }

    fn message(full: bool) -> Message {
        Message {
            message_id: MSG.parse().expect("id"),
            tenant_id: "acme".parse().expect("id"),
            dialog_id: DLG.parse().expect("id"),
            seq: 1,
            sender_id: "alice".parse().expect("id"),
            content: "hi".into(),
            message_type: "text".into(),
            meta: BTreeMap::from([("k".to_owned(), json!(1))]),
            quoted_message_id: full.then(|| MSG.parse().expect("id")),
            client_message_id: full.then(|| "c-1".to_owned()),
            quoted_message: full.then(|| chat3_sdk::QuotedMessage {
                message_id: MSG.parse().expect("id"),
                sender_id: "bob".parse().expect("id"),
                content: "quoted".into(),
                message_type: "text".into(),
                created_at: 1_700_000_000_000,
            }),
            created_at: 1_700_000_000_000,
            edited_at: full.then_some(1_700_000_000_001),
            deleted_at: full.then_some(1_700_000_000_002),
            statuses: BTreeMap::from([("read".to_owned(), 1), ("delivered".to_owned(), 0)]),
            reactions: if full {
                vec![chat3_sdk::ReactionCount {
                    reaction: "👍".into(),
                    count: 2,
                    me: true,
                }]
            } else {
                Vec::new()
            },
        }
    }

    fn dialog(full: bool) -> Dialog {
        Dialog {
            dialog_id: DLG.parse().expect("id"),
            tenant_id: "acme".parse().expect("id"),
            name: full.then(|| "Lunch".to_owned()),
            meta: BTreeMap::new(),
            created_by: "alice".parse().expect("id"),
            last_seq: 0,
            message_count: 0,
            members: vec![Member {
                user_id: "alice".parse().expect("id"),
                user_type: Default::default(),
                last_read_seq: 0,
                unread_count: 0,
                joined_at: 1_700_000_000_000,
                meta: BTreeMap::from([("role".to_owned(), serde_json::json!("owner"))]),
            }],
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_000,
        }
    }

    fn key_info(revoked: bool) -> ApiKeyInfo {
        ApiKeyInfo {
            key_id: "key_1".into(),
            tenant_id: "acme".parse().expect("id"),
            name: "ci".into(),
            scopes: Scope::ALL.to_vec(),
            prefix: "c3k_abcd".into(),
            created_at: 1,
            revoked_at: revoked.then_some(2),
        }
    }

    fn update(stored: bool) -> Update {
        Update {
            update_id: "upd_1".into(),
            tenant_id: "acme".parse().expect("id"),
            user_id: "bob".parse().expect("id"),
            user_type: Default::default(),
            seq: stored.then_some(1),
            update_type: if stored {
                UpdateType::Message
            } else {
                UpdateType::Typing
            },
            event_type: chat3_sdk::EventType::MessageCreate,
            event_id: "evt_1".into(),
            dialog_id: stored.then(|| DLG.parse().expect("id")),
            created_at: 1,
            data: json!({"message": {}}),
        }
    }

    fn data<T>(v: T) -> Data<T> {
        Data {
            data: v,
            message: None,
        }
    }

    #[test]
    fn a_documented_error_body_is_valid() {
        let body =
            json!({"error": "Not Found", "message": "no such dialog", "code": "dialog_not_found"});
        spec()
            .validate("GET", &format!("/api/dialogs/{DLG}"), 404, &body)
            .expect("valid");
        let with_details = json!({"error": "Bad Request", "message": "bad", "code": "validation_error",
            "details": {"content": "too long"}});
        spec()
            .validate(
                "POST",
                &format!("/api/dialogs/{DLG}/messages?x=1"),
                400,
                &with_details,
            )
            .expect("valid");
    }

    #[test]
    fn an_error_body_without_code_or_with_extra_fields_is_rejected() {
        let missing = json!({"error": "Not Found", "message": "no such dialog"});
        let err = spec()
            .validate("GET", &format!("/api/dialogs/{DLG}"), 404, &missing)
            .expect_err("invalid");
        assert!(err.contains("code"), "{err}");
        assert!(err.contains("Error"), "{err}");

        let extra = json!({"error": "Not Found", "message": "m", "code": "x", "status": 404});
        let err = spec()
            .validate("GET", &format!("/api/dialogs/{DLG}"), 404, &extra)
            .expect_err("invalid");
        assert!(err.contains("status"), "{err}");
    }

    #[test]
    fn an_unknown_route_is_reported() {
        let err = spec()
            .validate("GET", "/api/nothing/here", 404, &json!({}))
            .expect_err("unknown");
        assert!(err.contains("no path"), "{err}");
    }

    #[test]
    fn an_undocumented_method_or_status_is_reported() {
        let err = spec()
            .validate("PUT", "/api/dialogs", 200, &json!({}))
            .expect_err("undocumented method");
        assert!(err.contains("documents only"), "{err}");

        let err = spec()
            .validate("GET", "/health", 418, &json!({}))
            .expect_err("undocumented status");
        assert!(err.contains("418"), "{err}");
    }

    #[test]
    fn a_405_on_a_known_path_is_checked_against_the_error_schema() {
        let body =
            json!({"error": "Method Not Allowed", "message": "m", "code": "method_not_allowed"});
        spec()
            .validate("PATCH", "/api/dialogs", 405, &body)
            .expect("valid");
        assert!(spec()
            .validate("PATCH", "/api/dialogs", 405, &json!({}))
            .is_err());
    }

    #[test]
    fn templates_match_segment_by_segment() {
        assert_eq!(
            template_matches("/api/dialogs/{dialogId}", &format!("/api/dialogs/{DLG}")),
            Some(2)
        );
        assert_eq!(
            template_matches("/api/dialogs/{dialogId}", "/api/dialogs/"),
            None
        );
        assert_eq!(
            template_matches("/api/dialogs/{dialogId}", "/api/dialogs/a/b"),
            None
        );
        assert_eq!(strip_query("/a/b?x=1#f"), "/a/b");
    }

    #[test]
    fn operations_list_every_route_with_its_template() {
        let ops = spec().operations();
        for (m, t) in [
            ("GET", "/health"),
            ("GET", "/ready"),
            ("POST", "/api/tenants"),
            ("DELETE", "/api/tenants/{tenantId}/api-keys/{keyId}"),
            ("POST", "/api/dialogs/{dialogId}/messages"),
            ("POST", "/api/users/{userId}/dialogs/{dialogId}/markAllRead"),
            ("GET", "/api/users/{userId}/updates"),
        ] {
            assert!(
                ops.contains(&(m.to_owned(), t.to_owned())),
                "{m} {t} missing from {ops:?}"
            );
        }
    }

    #[test]
    fn every_documented_json_schema_compiles() {
        for spec in [spec(), Spec::load_bff()] {
            for op in &spec.operations {
                for (status, response) in op.responses.as_object().expect("responses") {
                    let response = spec.deref(response).expect("ref");
                    let Some(content) = response.get("content").and_then(Value::as_object) else {
                        continue;
                    };
                    for schema in content.values().filter_map(|media| media.get("schema")) {
                        spec.validator(schema).unwrap_or_else(|e| {
                            panic!("{} {} {status}: {e}", op.method, op.template)
                        });
                    }
                }
            }
        }
    }

    #[test]
    fn bff_responses_are_checked_against_the_bff_spec() {
        let bff = Spec::load_bff();
        assert!(bff
            .operations()
            .contains(&("GET".to_owned(), "/ws".to_owned())));
        let session = chat3_sdk::Session {
            token: "jwt".into(),
            user: chat3_sdk::BffUser {
                user_id: "usr_abcd1234".parse().expect("id"),
                phone: "+15551234567".into(),
                name: "Alice".into(),
            },
        };
        bff.validate(
            "POST",
            "/api/auth/verify-code",
            200,
            &to_json(&data(session)),
        )
        .expect("valid");
        let sent = chat3_sdk::CodeSent {
            phone: "+15551234567".into(),
            expires_in: 300,
        };
        bff.validate("POST", "/api/auth/request-code", 200, &to_json(&data(sent)))
            .expect("valid");
        bff.validate("GET", "/ws?token=x&since=3", 101, &Value::Null)
            .expect("no body to check");
        let err = json!({"error": "Unauthorized", "message": "m", "code": "invalid_token"});
        bff.validate("GET", "/ws", 401, &err).expect("valid");
    }

    #[test]
    fn sdk_response_types_match_the_spec() {
        let spec = spec();
        let ok = |method: &str, path: &str, status: u16, body: Value| {
            spec.validate(method, path, status, &body)
                .unwrap_or_else(|e| panic!("{e}"));
        };
        let page = Pagination::new(1, 20, 1);
        for full in [false, true] {
            ok("POST", "/api/dialogs", 201, to_json(&data(dialog(full))));
            ok(
                "GET",
                "/api/dialogs",
                200,
                to_json(&Page {
                    data: vec![dialog(full)],
                    pagination: page,
                }),
            );
            ok(
                "POST",
                &format!("/api/dialogs/{DLG}/messages"),
                201,
                to_json(&data(message(full))),
            );
            ok(
                "POST",
                &format!("/api/dialogs/{DLG}/messages"),
                200,
                to_json(&data(message(full))),
            );
            ok(
                "GET",
                &format!("/api/dialogs/{DLG}/messages?limit=5"),
                200,
                to_json(&Page {
                    data: vec![message(full)],
                    pagination: page,
                }),
            );
            let inbox = InboxDialog {
                dialog_id: DLG.parse().expect("id"),
                name: full.then(|| "Lunch".to_owned()),
                meta: BTreeMap::new(),
                unread_count: 1,
                last_read_seq: 0,
                last_seq: 1,
                last_message: full.then(|| message(true)),
                last_interaction_at: 1,
                members_count: 2,
                context: chat3_sdk::InboxContext {
                    user_id: "bob".parse().expect("id"),
                    unread_count: 1,
                    last_seen_at: full.then_some(1),
                    last_message_at: full.then_some(1),
                    joined_at: 1,
                },
            };
            ok(
                "GET",
                "/api/users/bob/dialogs",
                200,
                to_json(&Page {
                    data: vec![inbox],
                    pagination: page,
                }),
            );
            ok(
                "DELETE",
                "/api/tenants/acme/api-keys/key_1",
                200,
                to_json(&data(key_info(full))),
            );
            ok(
                "GET",
                "/api/tenants/acme/api-keys",
                200,
                to_json(&Page {
                    data: vec![key_info(full)],
                    pagination: page,
                }),
            );
            let created = CreatedApiKey {
                info: key_info(false),
                key: "c3k_secret".into(),
            };
            ok(
                "POST",
                "/api/tenants/acme/api-keys",
                201,
                to_json(&data(created)),
            );
            let updates = UpdatesPage {
                data: vec![update(full)],
                has_more: full,
                resync_required: false,
                head_seq: 1,
            };
            ok(
                "GET",
                "/api/users/bob/updates?since=0",
                200,
                to_json(&updates),
            );
        }
        let tenant = Tenant {
            tenant_id: "acme".parse().expect("id"),
            name: "Acme".into(),
            created_at: 1,
            meta: BTreeMap::from([("plan".to_owned(), serde_json::json!({"seats": 5}))]),
            status: TenantStatus::Active,
            deletion: None,
        };
        ok("POST", "/api/tenants", 201, to_json(&data(tenant.clone())));
        let deleting = Tenant {
            status: TenantStatus::Deleting,
            deletion: Some(TenantDeletion {
                started_at: 2,
                total: 3,
                deleted: 1,
                collections: BTreeMap::from([(
                    "users".to_owned(),
                    DeletionCount {
                        total: 3,
                        deleted: 1,
                    },
                )]),
            }),
            ..tenant.clone()
        };
        ok(
            "DELETE",
            "/api/tenants/acme",
            202,
            to_json(&data(deleting.clone())),
        );
        ok("GET", "/api/tenants/acme", 200, to_json(&data(deleting)));
        ok(
            "GET",
            "/api/tenants",
            200,
            to_json(&Page {
                data: vec![tenant],
                pagination: page,
            }),
        );
        let read = ReadState {
            dialog_id: DLG.parse().expect("id"),
            user_id: "bob".parse().expect("id"),
            last_read_seq: 1,
            unread_count: 0,
        };
        ok(
            "POST",
            &format!("/api/users/bob/dialogs/{DLG}/markAllRead"),
            200,
            to_json(&data(read)),
        );
        let ready = Readiness {
            status: "ok".into(),
            checks: BTreeMap::from([("mongodb".to_owned(), "ok".to_owned())]),
        };
        ok("GET", "/ready", 200, to_json(&ready));
        ok("GET", "/health", 200, json!({"status": "ok"}));
        let error = ErrorBody {
            error: "Conflict".into(),
            message: "m".into(),
            code: "tenant_exists".into(),
            details: None,
        };
        ok("POST", "/api/tenants", 409, to_json(&error));
    }

    #[test]
    fn a_drifted_field_is_caught() {
        let mut body = to_json(&data(dialog(false)));
        body["data"]["lastSeqNo"] = json!(0);
        let err = spec()
            .validate("POST", "/api/dialogs", 201, &body)
            .expect_err("drift");
        assert!(err.contains("lastSeqNo"), "{err}");
    }

    #[test]
    fn component_schemas_validate_by_name() {
        let spec = spec();
        let event = json!({"eventId": "evt_1", "tenantId": "acme", "eventType": "message.create",
            "entityType": "message", "entityId": MSG, "dialogId": DLG, "actorId": "alice",
            "actorType": "user", "occurredAt": 1, "data": {}});
        spec.validate_schema("EventEnvelope", &event)
            .expect("valid");
        assert!(spec.validate_schema("EventEnvelope", &json!({})).is_err());
        assert!(spec.validate_schema("NoSuchSchema", &json!({})).is_err());
    }
}
