//! Webhooks, received by a receiver written in Python that verifies every
//! delivery with the Standard Webhooks reference library (`standardwebhooks`
//! from PyPI, in the tools venv: `TOOLS_PYTHON`): signed events, a retry
//! after a 500 with the same `webhook-id`, redelivery, a tampered and a
//! stale delivery refused by the receiver, and no delivery into the
//! deployment's own network unless the site allows it.

mod common;

use common::{Auth, TestApp};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};

struct Receiver {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
    _dir: common::TempDir,
}

impl Receiver {
    async fn start(secret: &str, fail_first: u32) -> Self {
        let python = std::env::var("TOOLS_PYTHON")
            .expect("TOOLS_PYTHON: the tools venv's python with standardwebhooks (scripts/test.sh sets it)");
        let dir = common::TempDir::new();
        let log = dir.0.join("received.jsonl");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end/clients/webhook_receiver.py");
        let child = std::process::Command::new(python)
            .args([script, &port.to_string(), log.to_str().expect("path")])
            .env("WEBHOOK_SECRET", secret)
            .env("FAIL_FIRST", fail_first.to_string())
            .spawn()
            .expect("start the receiver");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "the receiver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, port, log, _dir: dir }
    }

    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }

    /// Posts a delivery as Capstan would, with these headers and body.
    async fn post(&self, headers: &[(&str, String)], body: &str) -> u16 {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.expect("connect");
        let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let request = format!(
            "POST /hook HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn deliveries_are_signed_retried_redelivered_and_kept_out_of_private_networks(pool: PgPool) {
    let settings = app::kernel::state::Settings { webhooks_allow_private: true, ..Default::default() };
    let app = TestApp::with_settings(pool, settings, Default::default()).await;
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    let member = Auth::Bearer(app.user("member@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[("member@example.com", "member")]).await;

    // only admins manage endpoints; bad ones are refused field by field and write nothing
    let hooks = "/api/v1/teams/ml/webhooks";
    let body = json!({"url": "http://127.0.0.1:9/hook", "event_types": ["model.created"]});
    assert_eq!(app.call(Method::POST, hooks, &member, Some(body)).await.status, StatusCode::FORBIDDEN);
    for (bad, field) in [
        (json!({"url": "ftp://example.com/", "event_types": ["model.created"]}), "url"),
        (json!({"url": format!("https://example.com/{}", "a".repeat(2048)), "event_types": ["*"]}), "url"),
        (json!({"url": "https://example.com/", "event_types": ["model.exploded"]}), "event_types"),
        (json!({"url": "https://example.com/", "event_types": []}), "event_types"),
    ] {
        let res = app.call(Method::POST, hooks, &admin, Some(bad)).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], field);
    }
    assert_eq!(app.count("select count(*) from webhook").await, 0);

    // the receiver is made first with a placeholder, then told the secret Capstan chose
    let res = app
        .call(
            Method::POST,
            hooks,
            &admin,
            Some(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["model.created", "model_alias.set"]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let secret = res.json()["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = res.json()["webhook"]["id"].as_str().expect("id").to_owned();
    assert!(
        !app.call(Method::GET, &format!("/api/v1/webhooks/{id}"), &admin, None).await.text().contains(&secret),
        "shown once"
    );
    let receiver = Receiver::start(&secret, 1).await;
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let res = app.call(Method::PATCH, &format!("/api/v1/webhooks/{id}"), &admin, Some(json!({"url": url}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    // an event: the first attempt is answered 500, the retry is delivered, with the same webhook-id
    let model = app.call(Method::POST, "/api/v1/teams/ml/models", &admin, Some(json!({"name": "churn"}))).await;
    assert_eq!(model.status, StatusCode::CREATED);
    assert_eq!(app.count("select count(*) from webhook_delivery").await, 1, "one event, one subscribed endpoint");
    let deliver = || app::webhooks::deliver::deliver_due(&app.state);
    assert_eq!(deliver().await.expect("deliver"), 0);
    let log = app.call(Method::GET, &format!("/api/v1/webhooks/{id}/deliveries"), &admin, None).await.json();
    let delivery = &log["items"][0];
    assert_eq!((delivery["state"].as_str(), delivery["status_code"].as_i64()), (Some("pending"), Some(500)), "{log}");
    sqlx::query("update webhook_delivery set next_attempt_at = now()").execute(&app.pool).await.expect("due now");
    assert_eq!(deliver().await.expect("deliver"), 1);
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|r| r["verified"] == true && r["type"] == "model.created"), "{received:?}");
    assert_eq!(received[0]["headers"]["webhook-id"], received[1]["headers"]["webhook-id"]);
    let payload: Value = serde_json::from_str(received[1]["body"].as_str().expect("body")).expect("json");
    assert_eq!(
        (payload["data"]["team"].as_str(), payload["data"]["summary"]["after"]["name"].as_str()),
        (Some("ml"), Some("churn"))
    );
    // events it did not subscribe to are not sent
    let res = app.call(Method::PATCH, "/api/v1/teams/ml", &admin, Some(json!({"name": "Machine learning"}))).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(app.count("select count(*) from webhook_delivery").await, 1);

    // redelivery: a third copy, verified
    let delivery_id = delivery["id"].as_str().expect("id");
    let res =
        app.call(Method::POST, &format!("/api/v1/webhook-deliveries/{delivery_id}/redeliver"), &admin, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(deliver().await.expect("deliver"), 1);
    assert_eq!(receiver.received().len(), 3);
    assert_eq!(
        app.call(Method::POST, &format!("/api/v1/webhook-deliveries/{delivery_id}/redeliver"), &member, None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // the receiver's library refuses a tampered body and a delivery signed ten minutes ago
    let original = &receiver.received()[1];
    let header = |name: &str| original["headers"][name].as_str().expect("header").to_owned();
    let body = original["body"].as_str().expect("body");
    let signed = [
        ("webhook-id", header("webhook-id")),
        ("webhook-timestamp", header("webhook-timestamp")),
        ("webhook-signature", header("webhook-signature")),
    ];
    assert_eq!(receiver.post(&signed, &body.replace("churn", "churm")).await, 400, "tampered");
    let old = time::OffsetDateTime::now_utc().unix_timestamp() - 600;
    let signature = app::webhooks::deliver::sign(&secret, &header("webhook-id"), old, body).expect("sign");
    let stale = [
        ("webhook-id", header("webhook-id")),
        ("webhook-timestamp", old.to_string()),
        ("webhook-signature", signature),
    ];
    assert_eq!(receiver.post(&stale, body).await, 400, "replayed ten minutes later");
    assert_eq!(receiver.post(&signed, body).await, 200, "the genuine delivery still verifies");

    // without the site's permission, no delivery goes to a private address, saved or new
    let strict = app::kernel::state::Settings::default();
    let engine = std::sync::Arc::clone(&app.state.training);
    let app = app.with_engine(engine, strict);
    let res = app.call(Method::POST, hooks, &admin, Some(json!({"url": url, "event_types": ["*"]}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert!(res.text().contains("loopback"), "{}", res.text());
    let res = app
        .call(
            Method::POST,
            hooks,
            &admin,
            Some(json!({"url": "http://169.254.169.254/latest/meta-data", "event_types": ["*"]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "the cloud metadata address: {}", res.text());
    let res = app.call(Method::POST, "/api/v1/teams/ml/models", &admin, Some(json!({"name": "fraud"}))).await;
    assert_eq!(res.status, StatusCode::CREATED);
    let before = receiver.received().len();
    assert_eq!(app::webhooks::deliver::deliver_due(&app.state).await.expect("deliver"), 0);
    assert_eq!(receiver.received().len(), before, "nothing reached the loopback receiver");
    let log = app.call(Method::GET, &format!("/api/v1/webhooks/{id}/deliveries"), &admin, None).await.json();
    assert!(log["items"][0]["error"].as_str().is_some_and(|e| e.contains("loopback")), "{log}");
}
