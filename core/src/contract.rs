//! The OpenAPI contract at run time. Request bodies are checked against the request schemas of
//! the spec the server serves before they are turned into typed values, so the spec states every
//! rule on the shape of a body and the server enforces exactly those: a JSON array where an
//! object is expected, a number inside `members`, an unknown field, a pattern or a length
//! outside the documented range are all refused with the spec's words (serde alone would, for
//! instance, accept `[]` for a struct whose fields are all optional). Rules the schema cannot
//! state (meta depth and size, duplicates) stay in the domain and are documented in the spec.

use std::collections::HashMap;

use jsonschema::{Draft, Validator};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Most problems listed for one body.
const MAX_PROBLEMS: usize = 10;

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyError {
    /// Not JSON at all (or nested beyond what the parser accepts).
    Malformed(String),
    /// JSON that breaks the contract: a summary and, per problem, where and what.
    Invalid {
        /// The first problem, for humans.
        message: String,
        /// `[{"at": "/members/0/userId", "problem": "..."}]`.
        details: Value,
    },
}

/// The request-body schemas of one spec, compiled, by (METHOD, path template), and the query
/// parameters each operation documents.
pub struct Contract {
    bodies: HashMap<(String, String), (Validator, Value)>,
    queries: HashMap<(String, String), Vec<String>>,
}

impl std::fmt::Debug for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contract")
            .field("bodies", &self.bodies.len())
            .field("operations", &self.queries.len())
            .finish()
    }
}

impl Contract {
    /// Compiles the JSON request schemas of every operation of an OpenAPI 3.1 document.
    pub fn from_yaml(text: &str) -> anyhow::Result<Self> {
        let doc: Value = serde_yaml::from_str(text)?;
        let components = doc.get("components").cloned().unwrap_or(Value::Null);
        let mut bodies = HashMap::new();
        let mut queries = HashMap::new();
        let paths = doc.get("paths").and_then(Value::as_object);
        for (template, item) in paths.into_iter().flatten() {
            let shared = item.get("parameters");
            for (method, op) in item.as_object().into_iter().flatten() {
                if !HTTP_METHODS.contains(&method.as_str()) {
                    continue;
                }
                let names = [shared, op.get("parameters")]
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_array)
                    .flatten()
                    .filter_map(|p| resolve(&doc, p))
                    .filter(|p| p.get("in").and_then(Value::as_str) == Some("query"))
                    .filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_owned))
                    .collect();
                queries.insert((method.to_ascii_uppercase(), template.clone()), names);
                let Some(schema) = op.pointer("/requestBody/content/application~1json/schema")
                else {
                    continue;
                };
                // Embedded in a root that carries the components, so `#/components/...` resolve.
                let root = json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "components": components,
                    "allOf": [schema],
                });
                let validator = jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .build(&root)
                    .map_err(|e| anyhow::anyhow!("{method} {template}: {e}"))?;
                bodies.insert(
                    (method.to_ascii_uppercase(), template.clone()),
                    (validator, root),
                );
            }
        }
        Ok(Self { bodies, queries })
    }

    /// Checks that every parameter of `query` (a raw query string) is one the operation
    /// `method template` documents. Operations the spec does not describe are not checked (the
    /// router answers them). On refusal: the human text naming the parameter and the accepted
    /// ones.
    ///
    /// Operational endpoints (`/health`, `/ready`, `/metrics`, `/api-docs/...`) are not
    /// checked: probes and scrapers add parameters of their own (cache busters), and those
    /// endpoints have no parameters that could be misread.
    pub fn check_query(&self, method: &str, template: &str, query: &str) -> Result<(), String> {
        let operational = !(template.starts_with("/api/") || template == "/ws");
        if query.is_empty() || operational || template.starts_with("/api-docs/") {
            return Ok(());
        }
        let Some(known) = self.queries.get(&(method.to_owned(), template.to_owned())) else {
            return Ok(());
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let raw = pair.split_once('=').map_or(pair, |(k, _)| k);
            let name = decode_component(raw);
            if !known.contains(&name) {
                let accepted = if known.is_empty() {
                    "this route takes no query parameters".to_owned()
                } else {
                    format!("this route takes: {}", known.join(", "))
                };
                let shown: String = name.chars().take(100).collect();
                return Err(format!("unknown query parameter {shown:?}; {accepted}"));
            }
        }
        Ok(())
    }

    /// Parses `bytes` as the body of `method template` and checks it against the contract, then
    /// reads it as `T`. Operations without a request schema only parse.
    pub fn parse<T: DeserializeOwned>(
        &self,
        method: &str,
        template: &str,
        bytes: &[u8],
    ) -> Result<T, BodyError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| BodyError::Malformed(format!("malformed JSON: {e}")))?;
        if let Some((v, root)) = self.bodies.get(&(method.to_owned(), template.to_owned())) {
            let problems: Vec<(String, String)> = v
                .iter_errors(&value)
                .take(MAX_PROBLEMS)
                .map(|e| explain(root, &e))
                .collect();
            if let Some((at, problem)) = problems.first() {
                return Err(BodyError::Invalid {
                    message: format!("{at}: {}", shorten(problem)),
                    details: Value::Array(
                        problems
                            .iter()
                            .map(|(at, p)| json!({"at": at, "problem": shorten(p)}))
                            .collect(),
                    ),
                });
            }
        }
        serde_json::from_value(value).map_err(|e| BodyError::Invalid {
            message: e.to_string(),
            details: json!([{"at": "/", "problem": e.to_string()}]),
        })
    }
}

/// The keys of a path item that are operations.
const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A parameter object, following one local `$ref` (`#/components/parameters/...`).
fn resolve<'a>(doc: &'a Value, p: &'a Value) -> Option<&'a Value> {
    match p.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(r.strip_prefix('#')?),
        None => Some(p),
    }
}

/// A query-string component with `+` and `%XX` decoded (invalid escapes kept as written).
fn decode_component(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where and what is wrong, for humans. A pattern says little to a reader, so a pattern failure
/// is told with the description of the schema that has it, when there is one. For an `anyOf`
/// (a value that may take several forms) the problem of the form that got furthest is told.
fn explain(root: &Value, e: &jsonschema::ValidationError<'_>) -> (String, String) {
    use jsonschema::error::ValidationErrorKind as K;
    if let K::AnyOf { context } = e.kind() {
        let furthest = context
            .iter()
            .flatten()
            .filter(|inner| !matches!(inner.kind(), K::Type { .. }))
            .max_by_key(|inner| inner.instance_path().as_str().len());
        if let Some(inner) = furthest {
            return explain(root, inner);
        }
    }
    let at = e.instance_path().to_string();
    let at = if at.is_empty() { "/".to_owned() } else { at };
    if let K::PropertyNames { error } = e.kind() {
        // A key of the object at `at` breaks the rule for keys.
        let (_, why) = explain(root, error);
        let key = error.instance().as_str().unwrap_or_default();
        return (at, format!("key {key:?}: {why}"));
    }
    if matches!(e.kind(), K::Pattern { .. }) {
        let described = description_of(root, e.schema_path().as_str());
        if let Some(d) = described {
            let flat = d.split_whitespace().collect::<Vec<_>>().join(" ");
            let first = flat.split_terminator(". ").next().unwrap_or(&flat).trim();
            return (
                at,
                format!(
                    "does not have the documented form: {}",
                    first.trim_end_matches('.')
                ),
            );
        }
        return (
            at,
            "does not have the documented form (see the pattern in the spec)".to_owned(),
        );
    }
    (at, e.to_string())
}

/// The description of the schema holding the keyword at `keyword_path`, looking up through
/// combinators (`anyOf/0`, `allOf/1`, ...) to the schema they belong to.
fn description_of<'a>(root: &'a Value, keyword_path: &str) -> Option<&'a str> {
    let mut owner = keyword_path
        .rsplit_once('/')
        .map_or("", |(parent, _)| parent);
    loop {
        if let Some(d) = root
            .pointer(owner)
            .and_then(|s| s.get("description"))
            .and_then(Value::as_str)
        {
            return Some(d);
        }
        let (parent, last) = owner.rsplit_once('/')?;
        let through_combinator =
            last.bytes().all(|b| b.is_ascii_digit()) || matches!(last, "anyOf" | "oneOf" | "allOf");
        if !through_combinator {
            return None;
        }
        owner = parent;
    }
}

/// Validator messages quote the offending value; a huge value is cut.
fn shorten(problem: &str) -> String {
    const MAX: usize = 300;
    if problem.chars().count() <= MAX {
        return problem.to_owned();
    }
    let cut: String = problem.chars().take(MAX).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r##"
openapi: 3.1.0
paths:
  /things:
    post:
      requestBody:
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Thing" }
components:
  schemas:
    Thing:
      type: object
      additionalProperties: false
      properties:
        name: { type: string, maxLength: 3 }
        tags: { type: array, items: { type: string } }
        code:
          description: Two letters. Then more.
          type: string
          pattern: "^[a-z]{2}$"
        labels:
          type: object
          propertyNames:
            description: A label is lowercase.
            pattern: "^[a-z]+$"
"##;

    #[test]
    fn query_parameters_are_the_documented_ones() {
        let spec = r##"
openapi: 3.1.0
paths:
  /health:
    get: {}
  /api/things:
    parameters:
      - { name: X-Tenant-ID, in: header }
    get:
      parameters:
        - $ref: "#/components/parameters/Page"
        - { name: filter, in: query }
    delete: {}
components:
  parameters:
    Page: { name: page, in: query }
"##;
        let c = Contract::from_yaml(spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.check_query("GET", "/api/things", ""), Ok(()));
        assert_eq!(
            c.check_query("GET", "/api/things", "page=2&filter=(a%2Ceq%2C1)"),
            Ok(())
        );
        assert_eq!(c.check_query("GET", "/api/things", "%70age=2"), Ok(()));
        assert_eq!(
            c.check_query("GET", "/api/things", "page=1&sort=x"),
            Err("unknown query parameter \"sort\"; this route takes: page, filter".to_owned())
        );
        assert_eq!(
            c.check_query("GET", "/api/things", "X-Tenant-ID=a"),
            Err(
                "unknown query parameter \"X-Tenant-ID\"; this route takes: page, filter"
                    .to_owned()
            )
        );
        assert_eq!(
            c.check_query("DELETE", "/api/things", "x"),
            Err("unknown query parameter \"x\"; this route takes no query parameters".to_owned())
        );
        assert_eq!(c.check_query("GET", "/api/other", "x=1"), Ok(()));
        assert_eq!(c.check_query("GET", "/health", "_=1"), Ok(()));
        assert!(c.check_query("GET", "/api/things", "%zz=1").is_err());
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Thing {
        name: Option<String>,
        tags: Option<Vec<String>>,
        code: Option<String>,
        labels: Option<serde_json::Map<String, Value>>,
    }

    #[test]
    fn bodies_are_checked_against_the_schema_before_serde() {
        let c = Contract::from_yaml(SPEC).unwrap_or_else(|e| panic!("{e}"));
        let ok: Result<Thing, _> = c.parse("POST", "/things", br#"{"name": "abc"}"#);
        assert_eq!(
            ok,
            Ok(Thing {
                name: Some("abc".into()),
                tags: None,
                code: None,
                labels: None,
            })
        );
        // serde alone would read `[]` as a Thing with no fields.
        for bad in [
            &b"[]"[..],
            b"{\"name\": \"abcd\"}",
            b"{\"x\": 1}",
            b"{\"tags\": [1]}",
        ] {
            let r: Result<Thing, _> = c.parse("POST", "/things", bad);
            assert!(
                matches!(r, Err(BodyError::Invalid { .. })),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let r: Result<Thing, _> = c.parse("POST", "/things", b"{\"name\": ");
        assert!(matches!(r, Err(BodyError::Malformed(_))));
        let r: Result<Thing, _> = c.parse("POST", "/things", b"{\"code\": \"x1\"}");
        match r {
            Err(BodyError::Invalid { message, .. }) => {
                assert_eq!(
                    message,
                    "/code: does not have the documented form: Two letters"
                )
            }
            other => panic!("{other:?}"),
        }
        let r: Result<Thing, _> = c.parse("POST", "/things", br#"{"labels": {"Big": 1}}"#);
        match r {
            Err(BodyError::Invalid { message, .. }) => assert_eq!(
                message,
                "/labels: key \"Big\": does not have the documented form: A label is lowercase"
            ),
            other => panic!("{other:?}"),
        }
    }
}
