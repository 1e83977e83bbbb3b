//! Tenants: queue, schedule and cursor names are per tenant; another tenant's job answers 404;
//! lists, events and metrics show a tenant's key its own tenant only, with the tenant beside
//! every name; an operator reaches every tenant by full name (`acme:emails`); what existed
//! before keys belongs to the default tenant.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap
mod common;
use common::TestServer;
use common::keys::{call, create_key};

use serde_json::{Value, json};

/// An operator key and two tenants' keys with every scope.
struct Keys {
    op: String,
    acme: String,
    globex: String,
}

async fn keys(server: &TestServer) -> Keys {
    let (_, op) = create_key(server, None, json!({"tenant": "*", "scopes": ["*"]})).await;
    let tenant = |name: &'static str| {
        let op = op.clone();
        async move {
            let spec = json!({"tenant": name, "scopes": ["*"]});
            create_key(server, Some(&op), spec).await.1
        }
    };
    let acme = tenant("acme").await;
    let globex = tenant("globex").await;
    Keys { op, acme, globex }
}

/// Enqueues into `queue` as `key`; returns the job id.
async fn enqueue(server: &TestServer, key: &str, queue: &str, job: Value) -> String {
    let path = format!("/v1/queues/{queue}/jobs");
    let reply = call(server, Some(key), "POST", &path, Some(&job.to_string())).await;
    assert_eq!(reply.0, 201, "{}", reply.1);
    reply.1["id"].as_str().unwrap().to_owned()
}

/// The names (tenant, name) of a list reply's items under `field`.
fn names(list: &Value, field: &str) -> Vec<(String, String)> {
    list[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["tenant"].as_str().unwrap().to_owned(),
                item["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(tenant: &str, name: &str) -> (String, String) {
    (tenant.to_owned(), name.to_owned())
}

#[tokio::test]
async fn two_tenants_queues_of_one_name_are_two_queues() {
    let server = TestServer::start().await;
    // Made before any key: the default tenant's.
    let old = server.enqueue("emails", r#"{"payload":"old"}"#).await;
    let k = keys(&server).await;
    let a = enqueue(&server, &k.acme, "emails", json!({"payload": "a"})).await;
    let g = enqueue(&server, &k.globex, "emails", json!({"payload": "g"})).await;

    // Each tenant polls its own job from its own "emails".
    for (key, id, payload, tenant) in [(&k.acme, &a, "a", "acme"), (&k.globex, &g, "g", "globex")] {
        let (status, polled) = call(
            &server,
            Some(key),
            "POST",
            "/v1/queues/emails/poll",
            Some(r#"{"max":10}"#),
        )
        .await;
        assert_eq!(status, 200, "{polled}");
        let jobs = polled["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 1, "{polled}");
        assert_eq!(
            (
                &jobs[0]["id"],
                &jobs[0]["payload"],
                &jobs[0]["queue"],
                &jobs[0]["tenant"]
            ),
            (
                &json!(id),
                &json!(payload),
                &json!("emails"),
                &json!(tenant)
            )
        );
        let (_, list) = call(&server, Some(key), "GET", "/v1/queues", None).await;
        assert_eq!(names(&list, "queues"), [pair(tenant, "emails")]);
    }
    // The default tenant's job is still where it was, and untouched.
    let (_, job) = call(
        &server,
        Some(&k.op),
        "GET",
        &format!("/v1/jobs/{old}"),
        None,
    )
    .await;
    assert_eq!(
        (&job["state"], &job["tenant"]),
        (&json!("ready"), &json!("default"))
    );

    // The operator sees all three queues, by full name in requests, split in replies.
    let (_, list) = call(&server, Some(&k.op), "GET", "/v1/queues", None).await;
    assert_eq!(
        names(&list, "queues"),
        [
            pair("acme", "emails"),
            pair("default", "emails"),
            pair("globex", "emails")
        ]
    );
    let (status, queue) = call(&server, Some(&k.op), "GET", "/v1/queues/acme:emails", None).await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["counts"]["leased"], 1);
    // The default tenant's names have one spelling: without a prefix.
    let reply = call(
        &server,
        Some(&k.op),
        "GET",
        "/v1/queues/default:emails",
        None,
    )
    .await;
    assert_eq!(reply.0, 400, "{}", reply.1);
    assert!(
        reply.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("full name is tenant:name"),
        "{}",
        reply.1
    );
    let (_, job) = call(&server, Some(&k.op), "GET", &format!("/v1/jobs/{g}"), None).await;
    assert_eq!(
        (&job["tenant"], &job["queue"]),
        (&json!("globex"), &json!("emails"))
    );

    // A restart keeps the namespaces.
    let server = server.restart().await;
    let (_, list) = call(&server, Some(&k.acme), "GET", "/v1/queues", None).await;
    assert_eq!(names(&list, "queues"), [pair("acme", "emails")]);
    server.shutdown().await;
}

#[tokio::test]
async fn another_tenants_resources_answer_404_and_change_nothing() {
    let server = TestServer::start().await;
    let k = keys(&server).await;
    let id = enqueue(&server, &k.acme, "emails", json!({"payload": 1})).await;
    let (_, polled) = call(
        &server,
        Some(&k.acme),
        "POST",
        "/v1/queues/emails/poll",
        Some("{}"),
    )
    .await;
    let lease = polled["jobs"][0]["lease"].clone();
    let schedule = json!({"cron": "0 0 1 1 *", "queue": "emails", "job": {"payload": 1}});
    let (status, _) = call(
        &server,
        Some(&k.acme),
        "PUT",
        "/v1/schedules/nightly",
        Some(&schedule.to_string()),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &server,
        Some(&k.acme),
        "PUT",
        "/v1/cursors/reader",
        Some(r#"{"seq":1}"#),
    )
    .await;
    assert_eq!(status, 201);
    // Refusals of admin routes leave audit records: the change log is compared without them.
    let before = common::last_change(&server, Some(&k.op)).await;

    let lease_body = json!({"lease": lease}).to_string();
    let extend = json!({"lease": lease, "lease_ms": 1000}).to_string();
    let batch = json!({"acks": [{"id": id, "lease": lease}]}).to_string();
    let job = format!("/v1/jobs/{id}");
    let cases: Vec<(&str, String, Option<&str>, u16, &str)> = vec![
        ("GET", job.clone(), None, 404, "job_not_found"),
        ("DELETE", job.clone(), None, 404, "job_not_found"),
        (
            "POST",
            format!("{job}/ack"),
            Some(&lease_body),
            404,
            "job_not_found",
        ),
        (
            "POST",
            format!("{job}/nack"),
            Some(&lease_body),
            404,
            "job_not_found",
        ),
        (
            "POST",
            format!("{job}/extend"),
            Some(&extend),
            404,
            "job_not_found",
        ),
        (
            "GET",
            "/v1/queues/emails".into(),
            None,
            404,
            "queue_not_found",
        ),
        (
            "GET",
            "/v1/schedules/nightly".into(),
            None,
            404,
            "schedule_not_found",
        ),
        (
            "DELETE",
            "/v1/schedules/nightly".into(),
            None,
            404,
            "schedule_not_found",
        ),
        (
            "POST",
            "/v1/schedules/nightly/trigger".into(),
            None,
            404,
            "schedule_not_found",
        ),
        (
            "GET",
            "/v1/cursors/reader".into(),
            None,
            404,
            "cursor_not_found",
        ),
        (
            "DELETE",
            "/v1/cursors/reader".into(),
            None,
            404,
            "cursor_not_found",
        ),
        // A tenant's key cannot even spell another tenant's names.
        (
            "GET",
            "/v1/queues/acme:emails".into(),
            None,
            400,
            "invalid_queue_name",
        ),
        (
            "POST",
            "/v1/queues/acme:emails/poll".into(),
            Some("{}"),
            400,
            "invalid_queue_name",
        ),
        (
            "GET",
            "/v1/schedules/acme:nightly".into(),
            None,
            400,
            "invalid_schedule_name",
        ),
        (
            "GET",
            "/v1/cursors/acme:reader".into(),
            None,
            400,
            "invalid_cursor_name",
        ),
        (
            "GET",
            "/v1/events?queue=acme:emails".into(),
            None,
            400,
            "invalid_queue_name",
        ),
        (
            "GET",
            "/v1/events?cursor=acme:reader".into(),
            None,
            400,
            "invalid_cursor_name",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let reply = call(&server, Some(&k.globex), method, &path, body).await;
        assert_eq!(reply.0, status, "{method} {path}: {}", reply.1);
        assert_eq!(reply.1["error"]["code"], code, "{method} {path}");
        if status == 400 {
            let message = reply.1["error"]["message"].as_str().unwrap();
            assert!(message.contains("operator keys"), "{message}");
        }
    }
    // A batch ack answers that item 404, like an unknown job.
    let reply = call(&server, Some(&k.globex), "POST", "/v1/ack", Some(&batch)).await;
    assert_eq!(reply.1["acks"][0]["status"], 404, "{}", reply.1);
    // Lists hold none of acme's.
    for (path, field) in [
        ("/v1/queues", "queues"),
        ("/v1/schedules", "schedules"),
        ("/v1/cursors", "cursors"),
    ] {
        let (_, list) = call(&server, Some(&k.globex), "GET", path, None).await;
        assert_eq!(list[field], json!([]), "{path}");
    }
    // Nothing changed: acme's job is still leased and the log did not move.
    let (_, job) = call(&server, Some(&k.acme), "GET", &job, None).await;
    assert_eq!(job["state"], "leased");
    assert_eq!(before, common::last_change(&server, Some(&k.op)).await);
    server.shutdown().await;
}

#[tokio::test]
async fn schedules_cursors_and_follow_ups_stay_in_their_tenant() {
    let server = TestServer::start().await;
    let k = keys(&server).await;
    let schedule = |payload: &str| {
        json!({"cron": "0 0 1 1 *", "queue": "reports", "job": {"payload": payload}}).to_string()
    };
    for (key, payload) in [(&k.acme, "a"), (&k.globex, "g")] {
        let reply = call(
            &server,
            Some(key),
            "PUT",
            "/v1/schedules/nightly",
            Some(&schedule(payload)),
        )
        .await;
        assert_eq!(reply.0, 201, "{}", reply.1);
        assert_eq!(
            (&reply.1["name"], &reply.1["queue"]),
            (&json!("nightly"), &json!("reports"))
        );
        let reply = call(
            &server,
            Some(key),
            "POST",
            "/v1/schedules/nightly/trigger",
            None,
        )
        .await;
        assert_eq!(reply.0, 201, "{}", reply.1);
    }
    // Each trigger went to its own tenant's "reports".
    for (key, payload) in [(&k.acme, "a"), (&k.globex, "g")] {
        let (_, polled) = call(
            &server,
            Some(key),
            "POST",
            "/v1/queues/reports/poll",
            Some(r#"{"max":5}"#),
        )
        .await;
        let payloads: Vec<&Value> = polled["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| &j["payload"])
            .collect();
        assert_eq!(payloads, [&json!(payload)]);
        // An ack's follow-up job lands in the acker's tenant too.
        let job = &polled["jobs"][0];
        let ack =
            json!({"lease": job["lease"], "enqueue": [{"queue": "next", "payload": payload}]});
        let path = format!("/v1/jobs/{}/ack", job["id"].as_str().unwrap());
        let reply = call(&server, Some(key), "POST", &path, Some(&ack.to_string())).await;
        assert_eq!(reply.0, 200, "{}", reply.1);
    }
    let (_, op_list) = call(&server, Some(&k.op), "GET", "/v1/schedules", None).await;
    assert_eq!(
        names(&op_list, "schedules"),
        [pair("acme", "nightly"), pair("globex", "nightly")]
    );
    let (_, next) = call(&server, Some(&k.op), "GET", "/v1/queues/globex:next", None).await;
    assert_eq!(next["counts"]["ready"], 1, "{next}");
    // A follow-up into another tenant's queue is refused, changing nothing.
    let id = enqueue(&server, &k.acme, "reports", json!({"payload": 1})).await;
    let (_, polled) = call(
        &server,
        Some(&k.acme),
        "POST",
        "/v1/queues/reports/poll",
        Some("{}"),
    )
    .await;
    let ack = json!({"lease": polled["jobs"][0]["lease"], "enqueue": [{"queue": "globex:next", "payload": 1}]});
    let reply = call(
        &server,
        Some(&k.acme),
        "POST",
        &format!("/v1/jobs/{id}/ack"),
        Some(&ack.to_string()),
    )
    .await;
    assert_eq!(reply.0, 422, "{}", reply.1);
    let (_, next) = call(&server, Some(&k.op), "GET", "/v1/queues/globex:next", None).await;
    assert_eq!(next["counts"]["ready"], 1);
    // Cursors of one name, one per tenant.
    for (key, seq) in [(&k.acme, 1), (&k.globex, 2)] {
        let body = json!({ "seq": seq }).to_string();
        let reply = call(&server, Some(key), "PUT", "/v1/cursors/reader", Some(&body)).await;
        assert_eq!(reply.0, 201, "{}", reply.1);
    }
    for (key, seq, tenant) in [(&k.acme, 1, "acme"), (&k.globex, 2, "globex")] {
        let (_, cursor) = call(&server, Some(key), "GET", "/v1/cursors/reader", None).await;
        assert_eq!(
            (&cursor["seq"], &cursor["tenant"]),
            (&json!(seq), &json!(tenant))
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn events_and_messages_carry_their_tenant_and_a_tenant_reads_its_own() {
    let server = TestServer::start().await;
    let k = keys(&server).await;
    enqueue(&server, &k.acme, "emails", json!({"payload": "a"})).await;
    enqueue(&server, &k.globex, "emails", json!({"payload": "g"})).await;
    let messages = json!({"messages": [{"topic": "billing:paid", "payload": 1}]}).to_string();
    for key in [&k.acme, &k.globex, &k.op] {
        let reply = call(&server, Some(key), "POST", "/v1/outbox", Some(&messages)).await;
        assert_eq!(reply.0, 201, "{}", reply.1);
    }
    // Only wharf names a message's tenant.
    let forged =
        json!({"messages": [{"topic": "t", "payload": 1, "headers": {"wharf-tenant": "globex"}}]});
    let reply = call(
        &server,
        Some(&k.acme),
        "POST",
        "/v1/outbox",
        Some(&forged.to_string()),
    )
    .await;
    assert_eq!(reply.0, 422, "{}", reply.1);

    let tenants = |page: &Value| -> Vec<(String, String)> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["tenant"].as_str().unwrap().to_owned(),
                    e["type"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    // (The audit records of the keys' creation are checked in tests/audit.rs.)
    let changes = format!("/v1/events?types={}", common::CHANGES);
    let (_, page) = call(&server, Some(&k.acme), "GET", &changes, None).await;
    assert_eq!(
        tenants(&page),
        [
            pair("acme", "queue.created"),
            pair("acme", "job.enqueued"),
            pair("acme", "message")
        ]
    );
    assert_eq!(page["events"][1]["queue"], "emails");
    assert_eq!(page["events"][2]["data"]["topic"], "billing:paid");
    assert_eq!(page["events"][2]["data"]["headers"]["wharf-tenant"], "acme");
    let (_, all) = call(&server, Some(&k.op), "GET", &changes, None).await;
    let seen: Vec<String> = tenants(&all).into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        seen,
        [
            "acme", "acme", "globex", "globex", "acme", "globex", "default"
        ]
    );

    // Metrics: a tenant's key sees its own queue series, labelled with the tenant.
    let metrics = |key: &str| {
        let key = key.to_owned();
        let server = &server;
        async move {
            let (status, text) = call(server, Some(&key), "GET", "/metrics", None).await;
            assert_eq!(status, 200);
            text.as_str().unwrap().to_owned()
        }
    };
    let acme = metrics(&k.acme).await;
    assert!(
        acme.contains(r#"wharf_jobs{tenant="acme",queue="emails",state="ready"} 1"#),
        "{acme}"
    );
    assert!(
        !acme.contains("globex") && !acme.contains("wharf_disk"),
        "{acme}"
    );
    let op = metrics(&k.op).await;
    assert!(op.contains(r#"wharf_jobs{tenant="globex",queue="emails",state="ready"} 1"#));
    assert!(op.contains("wharf_disk_available_bytes"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_tenant_key_admin_makes_keys_of_its_own_tenant_only() {
    let server = TestServer::start().await;
    let k = keys(&server).await;
    let (_, admin) = create_key(
        &server,
        Some(&k.op),
        json!({"tenant": "acme", "scopes": ["keys:admin", "jobs:enqueue", "jobs:read"]}),
    )
    .await;
    let (status, made) = call(
        &server,
        Some(&admin),
        "POST",
        "/v1/keys",
        Some(r#"{"scopes":["jobs:enqueue"]}"#),
    )
    .await;
    assert_eq!((status, &made["tenant"]), (201, &json!("acme")), "{made}");
    for tenant in ["globex", "default", "*"] {
        let spec = json!({"tenant": tenant, "scopes": ["jobs:enqueue"]}).to_string();
        let reply = call(&server, Some(&admin), "POST", "/v1/keys", Some(&spec)).await;
        assert_eq!(reply.0, 403, "{tenant}: {}", reply.1);
    }
    for tenant in ["", "a:b", "Acme Inc", &"t".repeat(65)] {
        let spec = json!({"tenant": tenant, "scopes": ["jobs:enqueue"]}).to_string();
        let reply = call(&server, Some(&k.op), "POST", "/v1/keys", Some(&spec)).await;
        assert_eq!(reply.0, 422, "{tenant:?}: {}", reply.1);
    }
    let (_, list) = call(&server, Some(&admin), "GET", "/v1/keys", None).await;
    let tenants: Vec<&Value> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| &key["tenant"])
        .collect();
    assert_eq!(tenants, [&json!("acme"); 3], "{list}");
    server.shutdown().await;
}
