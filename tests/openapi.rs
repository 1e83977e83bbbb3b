//! The OpenAPI document: `docs/openapi.json` is the document the code generates, the broker
//! serves it at `GET /v1/openapi.json`, and it describes exactly the routes of the scope table
//! with the scope each needs, the query strings each takes, and every error code.
//!
//! When the API changes, regenerate the committed copy with
//! `WHARF_BLESS=1 cargo test --test openapi` and commit it with the change.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::TestServer;
use serde_json::Value;
use wharf::http::ErrorCode;
use wharf::http::access::{Needs, ROUTES, Takes};
use wharf::http::openapi::{ERRORS, document};

const COMMITTED: &str = "docs/openapi.json";

/// The document, as generated now, in its pretty, stable form.
fn generated() -> String {
    let mut json = document().to_pretty_json().unwrap();
    json.push('\n');
    json
}

fn generated_value() -> Value {
    serde_json::from_str(&generated()).unwrap()
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    let now = generated();
    if std::env::var_os("WHARF_BLESS").is_some() {
        std::fs::write(&path, &now).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == now,
        "{COMMITTED} is not the document the code generates: the API changed without it. \
         Regenerate it with `WHARF_BLESS=1 cargo test --test openapi`, review the diff and commit it."
    );
}

#[test]
fn the_document_is_openapi_3_1_and_its_references_resolve() {
    let doc = generated_value();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut refs = BTreeSet::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 20, "{refs:?}");
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{reference} is not a local schema"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{reference} names no schema"
        );
    }
    // Operation ids name each operation once.
    let ids: Vec<&str> = operations(&doc)
        .map(|(_, _, op)| op["operationId"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "{ids:?}");
    // Every link leads to an operation of the document.
    let mut links = 0;
    for (method, path, op) in operations(&doc) {
        for response in op["responses"].as_object().unwrap().values() {
            for link in response["links"]
                .as_object()
                .into_iter()
                .flat_map(|l| l.values())
            {
                let target = link["operationId"].as_str().unwrap();
                assert!(unique.contains(target), "{method} {path} links to {target}");
                links += 1;
            }
        }
    }
    assert!(links > 10, "{links}");
}

fn collect_refs(value: &Value, refs: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                refs.insert(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

/// Every operation of the document: its method (upper case), path and object.
fn operations(doc: &Value) -> impl Iterator<Item = (String, String, &Value)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(move |(method, op)| (method.to_uppercase(), path.clone(), op))
        })
}

/// The routes the document leaves out, with why: they are not routes of the v1 JSON API.
/// `POST /` is the SQS-compatible endpoint, which speaks AWS's own protocol (docs/sqs.md);
/// `GET /` (a redirect to `/ui/`) and `/ui...` serve the dashboard's page and files.
fn left_out(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

#[test]
fn the_document_has_every_route_of_the_scope_table_and_nothing_else() {
    let doc = generated_value();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .map(|(method, path, _)| (method, path))
        .collect();
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .filter(|(_, path, ..)| !left_out(path))
        .map(|(method, path, ..)| (method.to_string(), (*path).to_owned()))
        .collect();
    assert_eq!(documented, routes);
    // What is left out is what the document's description says is left out.
    let out: Vec<_> = ROUTES
        .iter()
        .filter(|(_, path, ..)| left_out(path))
        .map(|(method, path, ..)| format!("{method} {path}"))
        .collect();
    assert_eq!(
        out,
        ["POST /", "GET /", "GET /ui", "GET /ui/", "GET /ui/{asset}"]
    );
    // The errors table names routes of the scope table only, each once.
    for (method, path, _) in ERRORS {
        assert!(
            routes.contains(&(method.to_string(), (*path).to_owned())),
            "{method} {path} of ERRORS is not a route"
        );
        assert_eq!(
            ERRORS
                .iter()
                .filter(|(m, p, _)| m == method && p == path)
                .count(),
            1,
            "{method} {path} is in ERRORS twice"
        );
    }
}

#[test]
fn each_operation_names_the_scope_of_its_route() {
    let doc = generated_value();
    for (method, path, op) in operations(&doc) {
        let (_, _, needs, _) = ROUTES
            .iter()
            .find(|(m, p, ..)| m.as_str() == method && *p == path)
            .unwrap();
        match needs {
            Needs::Scope(scope) => {
                assert_eq!(op["x-wharf-scope"], scope.as_str(), "{method} {path}");
                assert_eq!(
                    op["security"],
                    serde_json::json!([{"bearer": [scope.as_str()]}]),
                    "{method} {path}"
                );
                for status in ["401", "403", "429"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
            Needs::Open => {
                assert!(op.get("security").is_none(), "{method} {path}");
                assert!(op.get("x-wharf-scope").is_none(), "{method} {path}");
                assert!(op["responses"].get("401").is_none(), "{method} {path}");
            }
            Needs::Signed => panic!("{method} {path}: the SQS endpoint is not in the document"),
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn query_parameters_are_on_the_routes_that_take_a_query_string_only() {
    let doc = generated_value();
    for (method, path, op) in operations(&doc) {
        let (.., takes) = ROUTES
            .iter()
            .find(|(m, p, ..)| m.as_str() == method && *p == path)
            .unwrap();
        let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
        let query = parameters.iter().filter(|p| p["in"] == "query").count();
        match takes {
            Takes::Query => assert!(query > 0, "{method} {path} takes a query string"),
            Takes::NoQuery => assert_eq!(query, 0, "{method} {path} takes no query string"),
        }
        // Every `{param}` of the path is a path parameter, and nothing else is.
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let declared: BTreeSet<&str> = parameters
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(in_path, declared, "{method} {path}");
    }
}

#[test]
fn every_error_code_is_in_the_error_body_and_every_status_is_answered() {
    let doc = generated_value();
    let schemas = &doc["components"]["schemas"];
    let object = &schemas["ErrorObject"];
    assert_eq!(
        object["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
    assert_eq!(
        schemas["ErrorBody"]["required"],
        serde_json::json!(["error"])
    );
    let codes: BTreeSet<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let ours: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, ours);
    // Every operation documents every status wharf can send: its own, and 4XX and 5XX for
    // the rest (but /healthz, which never fails), each with the error body.
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.contains_key("4XX"), "{method} {path}");
        assert_eq!(
            responses.contains_key("5XX"),
            path != "/healthz",
            "{method} {path}"
        );
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_broker_serves_the_document_without_a_key() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(body, generated_value());
    // Like every route that takes no query string.
    common::assert_error(
        &server.get("/v1/openapi.json?x=1").await,
        422,
        "invalid_value",
    );
}

#[test]
fn the_documented_bounds_are_the_brokers_rules() {
    use wharf::broker::MAX_AUDIT_PAGE;
    use wharf::broker::limits::*;
    let doc = generated_value();
    let schemas = &doc["components"]["schemas"];
    let as_u64 = |n: usize| n as u64;
    let fields: [(&str, &str, u64, u64); 17] = [
        ("JobInput", "delay_ms", 0, MAX_DELAY_MS),
        ("JobInput", "max_attempts", 1, MAX_ATTEMPTS.into()),
        ("JobInput", "lease_ms", 1, MAX_LEASE_MS),
        ("PollBody", "max", 1, as_u64(MAX_POLL)),
        ("PollBody", "wait_ms", 0, MAX_WAIT_MS),
        ("PollBody", "lease_ms", 1, MAX_LEASE_MS),
        ("NackBody", "delay_ms", 0, MAX_DELAY_MS),
        ("ExtendBody", "lease_ms", 1, MAX_LEASE_MS),
        ("PatchBody", "lease_ms", 1, MAX_LEASE_MS),
        ("PatchBody", "max_attempts", 1, MAX_ATTEMPTS.into()),
        ("PatchBody", "retention_ms", 0, MAX_RETENTION_MS),
        ("PatchBody", "dead_retention_ms", 0, MAX_RETENTION_MS),
        ("PatchBody", "idempotency_window_ms", 1, MAX_RETENTION_MS),
        ("PatchBody", "max_depth", 1, MAX_DEPTH),
        (
            "PatchBody",
            "group_max_in_flight",
            1,
            MAX_GROUP_IN_FLIGHT.into(),
        ),
        ("BackoffPatch", "base_ms", 0, MAX_DELAY_MS),
        ("BackoffPatch", "cap_ms", 0, MAX_DELAY_MS),
    ];
    for (schema, field, min, max) in fields {
        let property = &schemas[schema]["properties"][field];
        assert_eq!(
            (&property["minimum"], &property["maximum"]),
            (&Value::from(min), &Value::from(max)),
            "{schema}.{field}"
        );
    }
    let parameters: [(&str, &str, u64, u64); 5] = [
        ("/v1/queues", "limit", 1, as_u64(MAX_POLL)),
        ("/v1/queues/{queue}/jobs", "limit", 1, as_u64(MAX_POLL)),
        ("/v1/events", "limit", 1, as_u64(MAX_POLL)),
        ("/v1/events", "wait_ms", 0, MAX_WAIT_MS),
        ("/v1/audit", "limit", 1, as_u64(MAX_AUDIT_PAGE)),
    ];
    for (path, name, min, max) in parameters {
        let parameter = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap();
        let schema = &parameter["schema"];
        let found_min = schema.get("minimum").cloned().unwrap_or(Value::from(0));
        assert_eq!(
            (found_min, &schema["maximum"]),
            (Value::from(min), &Value::from(max)),
            "{path} {name}"
        );
    }
}

#[tokio::test]
async fn the_document_is_served_while_the_broker_recovers() {
    // A router whose broker is not there yet: the API answers 503 `recovering`.
    let app = wharf::http::router(wharf::http::AppState::new(), 1 << 20);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (status, body) = common::request(addr, "GET", "/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, generated_value());
    common::assert_error(
        &common::request(addr, "GET", "/v1/queues", None).await,
        503,
        "recovering",
    );
}
