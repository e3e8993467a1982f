//! Endpoints in local mode: the serving runner starts each variant's
//! inference server in the sandbox, the gateway routes invocations by weight
//! (or to the pinned variant) with SageMaker Runtime's path, headers and
//! error shapes, copies a sample to the shadow without waiting for it, and
//! stops sending traffic to a crashed process until it is back.

mod common;

use common::{Auth, TestApp, source_archive};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Script-mode handlers: the model is a JSON file naming itself; a body
/// `{"crash": true}` kills the process, `{"fail": true}` raises.
const INFERENCE: &str = r#"
import json, os, random, sys, time

def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        return json.load(f)

def predict_fn(data, model):
    if model.get("sleep"):
        print("shadow request", flush=True)
        time.sleep(model["sleep"])
    if data == {"crash": True}:
        os._exit(3)
    if data == {"fail": True}:
        raise ValueError("this row is bad")
    if random.random() < model.get("fail_share", 0):
        raise ValueError("injected failure")
    return {"model": model["name"], "rows": len(data) if isinstance(data, list) else 1}
"#;

/// Registers version `name` of model `model` from a model.tar.gz holding
/// `code/inference.py`; its id.
async fn version(app: &TestApp, auth: &Auth, model: &str, name: &str, extra: Value) -> String {
    let bucket = app.state.storage.bucket.clone();
    let mut manifest = json!({"name": name});
    if let (Some(m), Some(e)) = (manifest.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    let archive =
        source_archive(&[("model.json", manifest.to_string().as_bytes()), ("code/inference.py", INFERENCE.as_bytes())]);
    app.put(&bucket, &format!("models/ml/{name}/model.tar.gz"), archive).await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/models/{model}/versions"),
            auth,
            Some(json!({"artifact_uri": format!("s3://{bucket}/models/ml/{name}/model.tar.gz")})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()["id"].as_str().expect("id").to_owned()
}

async fn model(app: &TestApp, auth: &Auth, name: &str) -> String {
    let res = app.call(Method::POST, "/api/v1/teams/ml/models", auth, Some(json!({"name": name}))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()["id"].as_str().expect("id").to_owned()
}

/// The serving worker of `capstan serve`, polling often.
struct Worker {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn start(app: &TestApp) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(server::workers::serving(app.state.clone(), Duration::from_millis(200), stop.clone()));
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn invoke(app: &TestApp, auth: &Auth, engine: &str, body: &str, pin: Option<&str>) -> common::Response {
    let mut req = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/endpoints/{engine}/invocations"))
        .header("content-type", "application/json");
    if let Auth::Bearer(t) = auth {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(variant) = pin {
        req = req.header("X-Amzn-SageMaker-Target-Variant", variant);
    }
    app.send(req.body(axum::body::Body::from(body.to_owned())).expect("request")).await
}

fn variant_of(res: &common::Response) -> String {
    res.headers
        .get("x-amzn-invoked-production-variant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no variant header: {} {}", res.status, res.text()))
        .to_owned()
}

async fn in_service(app: &TestApp, auth: &Auth, id: &str) -> Value {
    app.wait_for(&format!("/api/v1/endpoints/{id}"), auth, |e| {
        assert_ne!(e["status"], "Failed", "{e}");
        e["status"] == "InService"
    })
    .await
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn variants_share_traffic_by_weight_a_pinned_variant_answers_and_bad_calls_get_sagemakers_errors(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let People { admin, member, viewer, outsider } = people(&app).await;
    let model = model(&app, &member, "clf").await;
    let (a, b, c) = (
        version(&app, &member, &model, "a", json!({})).await,
        version(&app, &member, &model, "b", json!({})).await,
        version(&app, &member, &model, "c", json!({})).await,
    );
    let variant = |name: &str, version: &str, weight: f64| json!({"name": name, "version_id": version, "instance_type": "ml.m5.large", "instance_count": 1, "weight": weight});
    let body = json!({"name": "ab", "variants": [variant("a", &a, 1.0), variant("b", &b, 2.0), variant("c", &c, 7.0)]});
    let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", &viewer, Some(body.clone())).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "viewers do not create endpoints: {}", res.text());
    let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", &member, Some(body.clone())).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let created = res.json();
    assert_eq!((created["status"].as_str(), created["engine_name"].as_str()), (Some("Creating"), Some("ml-ab")));
    let shares: Vec<f64> =
        created["variants"].as_array().expect("variants").iter().map(|v| v["share"].as_f64().unwrap_or(-1.0)).collect();
    assert_eq!(shares, vec![0.1, 0.2, 0.7]);
    let id = created["id"].as_str().expect("id").to_owned();
    let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", &member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "the name is taken: {}", res.text());

    let worker = Worker::start(&app);
    let endpoint = in_service(&app, &viewer, &id).await;
    for v in endpoint["variants"].as_array().expect("variants") {
        assert_eq!(v["instances"][0]["status"], "Healthy", "{v}");
    }

    // by weight: 10 % / 20 % / 70 % over 2 000 requests (chi-square, 2 degrees of freedom, p = 0.001)
    let mut counts: HashMap<String, u32> = HashMap::new();
    let n = 2000;
    for _ in 0..n {
        let res = invoke(&app, &member, "ml-ab", "[[1, 2]]", None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let variant = variant_of(&res);
        assert_eq!(res.json()["model"], variant.as_str(), "the variant named in the header answered");
        *counts.entry(variant).or_default() += 1;
    }
    let chi2: f64 = [("a", 0.1), ("b", 0.2), ("c", 0.7)]
        .iter()
        .map(|(name, p)| {
            let expected = f64::from(n) * p;
            (f64::from(counts.get(*name).copied().unwrap_or(0)) - expected).powi(2) / expected
        })
        .sum();
    assert!(chi2 < 13.82, "traffic follows the weights: {counts:?} (chi-square {chi2:.2})");

    // each answer of the gateway (outside the site's middleware) has a request id of its own and the
    // security headers
    let one = invoke(&app, &member, "ml-ab", "[[1]]", None).await;
    let two = invoke(&app, &member, "ml-ab", "[[1]]", None).await;
    let request_id = |r: &common::Response| {
        r.headers.get("x-request-id").and_then(|v| v.to_str().ok()).and_then(|v| uuid::Uuid::parse_str(v).ok())
    };
    assert!(request_id(&one).is_some() && request_id(&one) != request_id(&two), "{:?}", one.headers);
    assert_eq!(one.headers.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]));
    *counts.entry(variant_of(&one)).or_default() += 1;
    *counts.entry(variant_of(&two)).or_default() += 1;

    // the gateway's counts reach the per-minute rollups and /metrics
    app::endpoints::metrics::flush(&app.state).await.expect("flush");
    let metrics = app.call(Method::GET, &format!("/api/v1/endpoints/{id}/metrics"), &viewer, None).await;
    assert_eq!(metrics.status, StatusCode::OK, "{}", metrics.text());
    let metrics = metrics.json();
    for (name, n) in &counts {
        let series = metrics["variants"].as_array().into_iter().flatten().find(|v| v["variant"] == name.as_str());
        let total: u64 =
            series.map(|v| v["requests"].as_array().into_iter().flatten().filter_map(Value::as_u64).sum()).unwrap_or(0);
        assert_eq!(total, u64::from(*n), "requests of {name} in the rollups: {metrics}");
        assert!(series.is_some_and(|v| v["p99_ms"].as_array().into_iter().flatten().any(Value::is_f64)), "{metrics}");
    }
    let res = app.call(Method::GET, &format!("/api/v1/endpoints/{id}/metrics?step=30"), &viewer, None).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "a step of 30 s: {}", res.text());
    let exported =
        app.send(http::Request::get("/metrics").body(axum::body::Body::empty()).expect("request")).await.text();
    let line = format!(
        "capstan_endpoint_invocations_total{{endpoint=\"ml-ab\",variant=\"c\",outcome=\"ok\"}} {}",
        counts["c"]
    );
    assert!(exported.contains(&line), "{line} in /metrics");

    // a pinned variant answers every time; an unknown one is named with the ones there are
    for _ in 0..20 {
        let res = invoke(&app, &member, "ml-ab", "[[1]]", Some("b")).await;
        assert_eq!((res.status, variant_of(&res)), (StatusCode::OK, "b".to_owned()), "{}", res.text());
    }
    let res = invoke(&app, &member, "ml-ab", "[[1]]", Some("zz")).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    assert_eq!(res.json()["__type"], "ValidationError");
    assert!(res.text().contains("a, b, c"), "{}", res.text());
    assert_eq!(res.headers.get("x-amzn-errortype").map(|v| v.as_bytes()), Some(&b"ValidationError"[..]));

    // the model's own error is a ModelError (424) with its status and answer
    let res = invoke(&app, &member, "ml-ab", r#"{"fail": true}"#, Some("a")).await;
    assert_eq!(res.status, StatusCode::FAILED_DEPENDENCY, "{}", res.text());
    assert_eq!(
        (res.json()["__type"].as_str(), res.json()["OriginalStatusCode"].as_u64()),
        (Some("ModelError"), Some(500))
    );
    assert!(res.json()["OriginalMessage"].as_str().is_some_and(|m| m.contains("this row is bad")), "{}", res.text());

    // who may invoke: members; viewers are refused; outsiders are told nothing exists
    let res = invoke(&app, &viewer, "ml-ab", "[[1]]", None).await;
    assert_eq!((res.status, res.json()["__type"].as_str()), (StatusCode::FORBIDDEN, Some("AccessDeniedException")));
    let res = invoke(&app, &outsider, "ml-ab", "[[1]]", None).await;
    assert_eq!((res.status, res.json()["__type"].as_str()), (StatusCode::BAD_REQUEST, Some("ValidationError")));
    assert!(res.text().contains("not found"), "{}", res.text());
    let res = invoke(&app, &Auth::None, "ml-ab", "[[1]]", None).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    let res = invoke(&app, &Auth::Bearer("cap_not-a-token".into()), "ml-ab", "[[1]]", None).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    // SageMaker's 6 MB limit
    let big = format!("[\"{}\"]", "x".repeat(6 * 1024 * 1024 + 10));
    let res = invoke(&app, &member, "ml-ab", &big, None).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.text());

    // new weights: bad ones change nothing; good ones route at once
    let events = app.audit_count("endpoint.weights_changed").await;
    let weights = format!("/api/v1/endpoints/{id}/weights");
    for (bad, field) in [
        (
            json!({"weights": [{"variant": "a", "weight": 0}, {"variant": "b", "weight": 0}, {"variant": "c", "weight": 0}]}),
            "weights",
        ),
        (json!({"weights": [{"variant": "a", "weight": -1}]}), "weights[0].weight"),
        (json!({"weights": [{"variant": "q", "weight": 1}]}), "weights[0].variant"),
    ] {
        let res = app.call(Method::PUT, &weights, &member, Some(bad.clone())).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], field, "{bad}: {}", res.text());
    }
    let res = app.call(Method::PUT, &weights, &viewer, Some(json!({"weights": [{"variant": "a", "weight": 0}]}))).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert_eq!(app.audit_count("endpoint.weights_changed").await, events, "nothing changed");
    let res = app
        .call(
            Method::PUT,
            &weights,
            &member,
            Some(json!({"weights": [{"variant": "a", "weight": 0}, {"variant": "c", "weight": 0}]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["variants"][1]["share"], 1.0);
    for _ in 0..50 {
        let res = invoke(&app, &member, "ml-ab", "[[1]]", None).await;
        assert_eq!(variant_of(&res), "b", "only b has weight now");
    }
    assert_eq!(app.audit_count("endpoint.weights_changed").await, events + 1);

    // sample traffic: members send a steady stream through the gateway, counted like any request
    let sample = format!("/api/v1/endpoints/{id}/sample-traffic");
    let stream = json!({"body": "[[1, 2]]", "content_type": "application/json", "rate": 20, "seconds": 2});
    let res = app.call(Method::POST, &sample, &viewer, Some(stream.clone())).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "viewers do not invoke: {}", res.text());
    for (bad, field) in [
        (json!({"body": "[[1]]", "rate": 0}), "rate"),
        (json!({"body": "[[1]]", "seconds": 901}), "seconds"),
        (json!({"body": " "}), "body"),
    ] {
        let res = app.call(Method::POST, &sample, &member, Some(bad.clone())).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], field, "{bad}: {}", res.text());
    }
    let served = || -> u64 {
        app.state.traffic.totals().iter().filter(|((e, _), _)| e == "ml-ab").map(|(_, c)| c.requests).sum()
    };
    let before = served();
    let res = app.call(Method::POST, &sample, &member, Some(stream.clone())).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.text());
    assert_eq!(res.json()["rate"], 20);
    let res = app.call(Method::POST, &sample, &member, Some(stream)).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "one stream at a time: {}", res.text());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let sent = served() - before;
    assert!((30..=45).contains(&sent), "about 20 requests/s for 2 s went through the gateway: {sent}");
    assert_eq!(app.audit_count("endpoint.sample_traffic").await, 1);

    // the timeline tells it all, newest first, in words, to viewers too
    let res = app.call(Method::GET, &format!("/api/v1/endpoints/{id}/events"), &viewer, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let events: Vec<(String, String)> = res
        .json()
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (e["action"].as_str().unwrap_or_default().to_owned(), e["text"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    assert!(events.iter().any(|(a, t)| a == "endpoint.in_service" && t == "In service"), "{events:?}");
    // (the worker's in-service events come whenever the processes are up)
    let events: Vec<_> = events.into_iter().filter(|(a, _)| a != "endpoint.in_service").collect();
    let actions: Vec<&str> = events.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["endpoint.sample_traffic", "endpoint.weights_changed", "endpoint.created"], "{events:?}");
    assert_eq!(events[0].1, "Sample traffic: 20 requests/s for 2 s (application/json)");
    assert_eq!(events[1].1, "Weights: a 1 → 0, c 7 → 0");
    assert_eq!(
        events[2].1,
        "Created with a (clf v1, 1 × ml.m5.large, weight 1); b (clf v2, 1 × ml.m5.large, weight 2); \
         c (clf v3, 1 × ml.m5.large, weight 7)"
    );
    let res = app.call(Method::GET, &format!("/api/v1/endpoints/{id}/events"), &outsider, None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "outsiders learn nothing: {}", res.text());

    // deleting: admins only; traffic stops at once; the rows go once the processes have
    let path = format!("/api/v1/endpoints/{id}");
    assert_eq!(app.call(Method::DELETE, &path, &member, None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.call(Method::DELETE, &path, &admin, None).await.status, StatusCode::NO_CONTENT);
    let res = invoke(&app, &member, "ml-ab", "[[1]]", None).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "a deleted endpoint takes no traffic: {}", res.text());
    for _ in 0..100 {
        if app.call(Method::GET, &path, &admin, None).await.status == StatusCode::NOT_FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.call(Method::GET, &path, &admin, None).await.status, StatusCode::NOT_FOUND);
    assert!(!app.work_dir.0.join("serving/ml-ab").exists(), "its folder is gone");
    worker.stop().await;
}

/// Inference code that comes with a `requirements.txt` runs in its team's
/// virtual environment, as SageMaker's framework containers install it; two
/// variants with the same requirements share one environment, built once.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn inference_code_with_requirements_runs_in_the_teams_virtual_environment(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[]).await;
    let model = model(&app, &admin, "env").await;
    let inference = "import sys\n\ndef model_fn(model_dir):\n    return None\n\n\
                     def predict_fn(data, model):\n    return {'prefix': sys.prefix, 'base': sys.base_prefix}\n";
    let archive = source_archive(&[
        ("code/inference.py", inference.as_bytes()),
        ("code/requirements.txt", b"# nothing to install\n".as_slice()),
    ]);
    let bucket = app.state.storage.bucket.clone();
    app.put(&bucket, "models/ml/env/model.tar.gz", archive).await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/models/{model}/versions"),
            &admin,
            Some(json!({"artifact_uri": format!("s3://{bucket}/models/ml/env/model.tar.gz")})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let version = res.json()["id"].as_str().expect("id").to_owned();
    let variant = |name: &str| json!({"name": name, "version_id": version, "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1.0});
    let body = json!({"name": "env", "variants": [variant("a"), variant("b")]});
    let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", &admin, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let id = res.json()["id"].as_str().expect("id").to_owned();
    let worker = Worker::start(&app);
    in_service(&app, &admin, &id).await;

    let mut prefixes = Vec::new();
    for pin in ["a", "b"] {
        let res = invoke(&app, &admin, "ml-env", "[[1]]", Some(pin)).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let answer = res.json();
        let prefix = answer["prefix"].as_str().expect("prefix").to_owned();
        assert_ne!(answer["prefix"], answer["base"], "variant {pin} runs in a virtual environment: {answer}");
        assert!(prefix.contains("/serving/.venvs/"), "the team's cached environment: {prefix}");
        prefixes.push(prefix);
    }
    assert_eq!(prefixes[0], prefixes[1], "the same requirements share one environment");
    let team = sqlx::query_scalar::<_, uuid::Uuid>("select team_id from team where slug = 'ml'")
        .fetch_one(&app.pool)
        .await
        .expect("team");
    assert!(prefixes[0].contains(&format!("/.venvs/{team}/")), "{} is the team's own", prefixes[0]);
    worker.stop().await;
}

/// Data capture in local mode writes what SageMaker's would: each captured
/// invocation as a JSON line (input and output, CSV and JSON as text) in an
/// object under `endpoints/<team>/<engine>/data-capture/<engine>/<variant>/`
/// of the bucket, written by the traffic worker, not on the request path.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn data_capture_writes_sagemakers_records_to_the_teams_area(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[]).await;
    let model = model(&app, &admin, "cap").await;
    let a = version(&app, &admin, &model, "a", json!({})).await;
    let body = json!({"name": "cap", "capture_percent": 100, "variants": [
        {"name": "a", "version_id": a, "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1.0}]});
    let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", &admin, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let id = res.json()["id"].as_str().expect("id").to_owned();
    let worker = Worker::start(&app);
    in_service(&app, &admin, &id).await;

    for rows in ["[[1]]", "[[1], [2]]"] {
        let res = invoke(&app, &admin, "ml-cap", rows, None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    }
    assert_eq!(app::endpoints::capture::flush(&app.state).await.expect("flush"), 2);
    let s3 = &app.state.storage.client;
    let prefix = "endpoints/ml/ml-cap/data-capture/ml-cap/a/";
    let listed =
        s3.list_objects_v2().bucket(&app.state.storage.bucket).prefix(prefix).send().await.expect("list capture");
    let keys: Vec<String> = listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
    assert_eq!(keys.len(), 1, "one object per variant and flush: {keys:?}");
    assert!(keys[0].ends_with(".jsonl"), "{keys:?}");
    let object = s3.get_object().bucket(&app.state.storage.bucket).key(&keys[0]).send().await.expect("get capture");
    let text = String::from_utf8(object.body.collect().await.expect("body").to_vec()).expect("utf-8");
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(records.len(), 2, "{text}");
    let input = &records[1]["captureData"]["endpointInput"];
    assert_eq!((input["mode"].as_str(), input["encoding"].as_str()), (Some("INPUT"), Some("JSON")), "{text}");
    assert_eq!(input["data"], "[[1], [2]]");
    let output = &records[1]["captureData"]["endpointOutput"];
    assert_eq!(output["mode"], "OUTPUT");
    let answer: Value = serde_json::from_str(output["data"].as_str().expect("output as text")).expect("the answer");
    assert_eq!(answer["rows"], 2, "{text}");
    assert!(records.iter().all(|r| r["eventMetadata"]["eventId"].is_string() && r["eventVersion"] == "0"), "{text}");
    // nothing waits: a second flush writes nothing
    assert_eq!(app::endpoints::capture::flush(&app.state).await.expect("flush"), 0);
    worker.stop().await;
}

/// The instances of `variant` in an endpoint: (ordinal, status, previous).
fn instances_of(endpoint: &Value, variant: &str) -> Vec<(i64, String, bool)> {
    endpoint["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["name"] == variant)
        .flat_map(|v| v["instances"].as_array().cloned().unwrap_or_default())
        .map(|i| {
            (
                i["ordinal"].as_i64().unwrap_or(-1),
                i["status"].as_str().unwrap_or_default().to_owned(),
                i["previous"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn variants_are_added_resized_and_removed_under_load_without_losing_a_request(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    let member = Auth::Bearer(app.user("member@example.com", false).await.token);
    let viewer = Auth::Bearer(app.user("viewer@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[("member@example.com", "member"), ("viewer@example.com", "viewer")]).await;
    let model = model(&app, &member, "clf").await;
    let (a, b) =
        (version(&app, &member, &model, "a", json!({})).await, version(&app, &member, &model, "b", json!({})).await);
    let variant = |name: &str, version: &str, count: u32, weight: f64| json!({"name": name, "version_id": version, "instance_type": "ml.m5.large", "instance_count": count, "weight": weight});
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/ml/endpoints",
            &member,
            Some(json!({"name": "live", "variants": [variant("a", &a, 1, 1.0)]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let id = res.json()["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/endpoints/{id}");
    let worker = Worker::start(&app);
    let created = in_service(&app, &viewer, &id).await;
    // it costs instance-hours × the price table, from now on
    let price: f64 = sqlx::query_scalar(
        "select usd_per_hour from instance_price where region = 'us-east-1' and instance_type = 'ml.m5.large'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("price");
    let close = |a: &Value, b: f64| a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9);
    assert!(close(&created["cost"]["usd_per_hour"], price), "{created}");
    assert!(close(&created["variants"][0]["usd_per_hour"], price), "{created}");
    assert!(created["cost"]["total_usd"].as_f64().is_some_and(|c| c >= 0.0 && c < price), "{created}");

    // bad changes are refused on their field and change nothing
    let res = app.call(Method::PATCH, &path, &viewer, Some(json!({"variants": [variant("a", &a, 2, 1.0)]}))).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "viewers change nothing: {}", res.text());
    let eleven: Vec<Value> = (0..11).map(|i| variant(&format!("v{i}"), &a, 1, 1.0)).collect();
    let mut odd_type = variant("b", &b, 1, 1.0);
    odd_type["instance_type"] = json!("ml.nope.large");
    for (bad, field) in [
        (json!({"variants": []}), "variants"),
        (json!({"variants": eleven}), "variants"),
        (json!({"variants": [variant("a", &a, 1, 1.0), variant("a", &b, 1, 1.0)]}), "variants[1].name"),
        (json!({"variants": [variant("a", &a, 1, 0.0)]}), "variants"),
        (json!({"variants": [variant("a", &a, 11, 1.0)]}), "variants[0].instance_count"),
        (json!({"variants": [variant("a", &a, 1, 1.0), odd_type]}), "variants[1].instance_type"),
        (
            json!({"shadow": {"name": "s", "version_id": b, "instance_type": "ml.m5.large", "instance_count": 1, "percent": 0}}),
            "shadow.percent",
        ),
        (json!({"capture_percent": 101}), "capture_percent"),
        // SageMaker's blue/green fleet replacement is AWS mode's
        (json!({"variants": [variant("a", &b, 1, 1.0)], "deployment": {"traffic": "all_at_once"}}), "deployment"),
    ] {
        let res = app.call(Method::PATCH, &path, &member, Some(bad.clone())).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], field, "{bad}: {}", res.text());
    }
    // the variants editor's blue/green fields name the API's fields
    let (version_b, endpoint_id) = (b.to_string(), id.to_string());
    for (fleet, field) in
        [(("canary", "x", "300"), "deployment.step_percent"), (("canary", "10", "soon"), "deployment.wait_seconds")]
    {
        let args = [
            ("id", endpoint_id.as_str()),
            ("variants[0][name]", "a"),
            ("variants[0][version_id]", version_b.as_str()),
            ("variants[0][instance_type]", "ml.m5.large"),
            ("variants[0][instance_count]", "1"),
            ("variants[0][weight]", "1"),
            ("fleet[traffic]", fleet.0),
            ("fleet[step_percent]", fleet.1),
            ("fleet[wait_seconds]", fleet.2),
            ("fleet[alarm_names]", ""),
        ];
        let res = app.server_fn("update_endpoint_form", &member, &args).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
        assert!(res.text().contains(field), "{field}: {}", res.text());
    }
    assert_eq!(app.audit_count("endpoint.updated").await, 0, "a refused update writes nothing");
    // asking for what is there already is no change
    let res = app.call(Method::PATCH, &path, &member, Some(json!({"variants": [variant("a", &a, 1, 1.0)]}))).await;
    assert_eq!((res.status, res.json()["status"].as_str()), (StatusCode::OK, Some("InService")), "{}", res.text());
    assert_eq!(app.audit_count("endpoint.updated").await, 0, "nothing changed");

    // requests keep coming while a variant is added, resized and removed
    let done = std::cell::Cell::new(false);
    let load = async {
        let mut seen: Vec<(StatusCode, String)> = Vec::new();
        while !done.get() {
            let res = invoke(&app, &member, "ml-live", "[[1, 2]]", None).await;
            let variant = res.headers.get("x-amzn-invoked-production-variant").and_then(|v| v.to_str().ok());
            seen.push((res.status, variant.map(str::to_owned).unwrap_or_else(|| res.text())));
        }
        seen
    };
    let changes = async {
        // add b beside a: Updating until b's process is healthy
        let res = app
            .call(
                Method::PATCH,
                &path,
                &member,
                Some(json!({"variants": [variant("a", &a, 1, 1.0), variant("b", &b, 1, 1.0)]})),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_eq!(res.json()["status"], "Updating");
        assert_eq!(res.json()["variants"][1]["share"], 0.5);
        let e = in_service(&app, &viewer, &id).await;
        assert_eq!(instances_of(&e, "b"), vec![(0, "Healthy".to_owned(), false)], "{e}");
        let res = invoke(&app, &member, "ml-live", "[[1]]", Some("b")).await;
        assert_eq!((res.status, variant_of(&res)), (StatusCode::OK, "b".to_owned()), "{}", res.text());
        // a to two processes: its first keeps serving until both new ones are healthy, then goes
        let res = app
            .call(
                Method::PATCH,
                &path,
                &member,
                Some(json!({"variants": [variant("a", &a, 2, 1.0), variant("b", &b, 1, 1.0)]})),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let e = app
            .wait_for(&path, &viewer, |e| {
                instances_of(e, "a") == vec![(0, "Healthy".to_owned(), false), (1, "Healthy".to_owned(), false)]
            })
            .await;
        assert_eq!(e["status"], "InService", "{e}");
        assert!(close(&e["cost"]["usd_per_hour"], 3.0 * price), "two processes of a, one of b: {e}");
        assert!(close(&e["variants"][0]["usd_per_hour"], 2.0 * price), "{e}");
        // b removed: the gateway stops sending it traffic at once, and its process stops
        let res = app.call(Method::PATCH, &path, &member, Some(json!({"variants": [variant("a", &a, 2, 1.0)]}))).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let res = invoke(&app, &member, "ml-live", "[[1]]", Some("b")).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "b is gone: {}", res.text());
        app.wait_for(&path, &viewer, |e| instances_of(e, "b").is_empty() && e["status"] == "InService").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        done.set(true);
    };
    let (seen, ()) = tokio::join!(load, changes);
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != StatusCode::OK).collect();
    assert!(failed.is_empty(), "no request failed while the variants changed: {failed:?}");
    assert!(seen.iter().any(|(_, v)| v == "b"), "b took traffic while it was there");
    assert!(seen.iter().rev().take(5).all(|(_, v)| v == "a"), "only a at the end");
    assert_eq!(app.audit_count("endpoint.updated").await, 3);
    let e = app.call(Method::GET, &path, &viewer, None).await.json();
    assert!(close(&e["cost"]["usd_per_hour"], 2.0 * price), "{e}");
    // each variant as it ran: a on one process, b, a on two (b's row closed when it went)
    assert_eq!(app.count("select count(*) from endpoint_usage").await, 3);
    assert_eq!(app.count("select count(*) from endpoint_usage where ended_at is null").await, 1);
    // the team's month: deleted endpoints count too, by endpoint and by version, training beside
    assert_eq!(app.call(Method::DELETE, &path, &admin, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.count("select count(*) from endpoint_usage where ended_at is null").await, 0, "it stopped costing");
    let spend = app.call(Method::GET, "/api/v1/teams/ml/endpoint-spend", &viewer, None).await;
    assert_eq!(spend.status, StatusCode::OK, "{}", spend.text());
    let spend = spend.json();
    assert!(spend["endpoints_usd"].as_f64().is_some_and(|usd| usd > 0.0), "{spend}");
    assert_eq!(spend["by_endpoint"][0]["name"], "live", "{spend}");
    let mut labels: Vec<&str> =
        spend["by_version"].as_array().into_iter().flatten().filter_map(|v| v["label"].as_str()).collect();
    labels.sort_unstable();
    assert_eq!(labels, vec!["clf v1", "clf v2"], "{spend}");
    assert_eq!(spend["training_usd"], 0.0, "{spend}");
    worker.stop().await;
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn bad_endpoints_are_refused_field_by_field_and_write_nothing(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    let member_user = app.user("member@example.com", false).await;
    let member = Auth::Bearer(member_user.token.clone());
    app.team_with_members("ml", &admin, &[("member@example.com", "member")]).await;
    app.team_with_members("other", &admin, &[]).await;
    let mine = model(&app, &member, "clf").await;
    let v = version(&app, &member, &mine, "a", json!({})).await;
    let res = app.call(Method::POST, "/api/v1/teams/other/models", &admin, Some(json!({"name": "theirs"}))).await;
    let theirs = res.json()["id"].as_str().expect("id").to_owned();
    let bucket = app.state.storage.bucket.clone();
    app.put(&bucket, "models/other/t/model.tar.gz", source_archive(&[("model.json", b"{}")])).await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/models/{theirs}/versions"),
            &admin,
            Some(json!({"artifact_uri": format!("s3://{bucket}/models/other/t/model.tar.gz")})),
        )
        .await;
    let other_version = res.json()["id"].as_str().expect("id").to_owned();
    let variant = |name: &str, version: &str, weight: f64| json!({"name": name, "version_id": version, "instance_type": "ml.m5.large", "instance_count": 1, "weight": weight});
    let eleven: Vec<Value> = (0..11).map(|i| variant(&format!("v{i}"), &v, 1.0)).collect();
    let events = app.count("select count(*) from audit_event").await;
    for (body, field, says) in [
        (json!({"name": "-bad", "variants": [variant("a", &v, 1.0)]}), "name", "letters, digits and hyphens"),
        (json!({"name": "x".repeat(61), "variants": [variant("a", &v, 1.0)]}), "name", "SageMaker allows 63"),
        (json!({"name": "e", "variants": eleven}), "variants", "1 to 10"),
        (json!({"name": "e", "variants": []}), "variants", "1 to 10"),
        (json!({"name": "e", "variants": [variant("a", &v, 1.0), variant("A", &v, 1.0)]}), "variants[1].name", "twice"),
        (json!({"name": "e", "variants": [variant("a", &v, 0.0)]}), "variants", "weight above 0"),
        (json!({"name": "e", "variants": [variant("a", &v, -2.0)]}), "variants[0].weight", "≥ 0"),
        (
            json!({"name": "e", "variants": [variant("a", &other_version, 1.0)]}),
            "variants[0].version_id",
            "No model version of this team",
        ),
        (
            json!({"name": "e", "variants": [{"name": "a", "version_id": v, "instance_type": "ml.nope.huge", "instance_count": 1, "weight": 1}]}),
            "variants[0].instance_type",
            "price table",
        ),
        (
            json!({"name": "e", "variants": [{"name": "a", "version_id": v, "instance_type": "ml.m5.large", "instance_count": 11, "weight": 1}]}),
            "variants[0].instance_count",
            "1 to 10",
        ),
        (
            json!({"name": "e", "variants": [variant("a", &v, 1.0)],
                "shadow": {"name": "s", "version_id": v, "instance_type": "ml.m5.large", "instance_count": 1, "percent": 0}}),
            "shadow.percent",
            "1 to 100",
        ),
        (
            json!({"name": "e", "variants": [variant("a", &v, 1.0)],
                "shadow": {"name": "a", "version_id": v, "instance_type": "ml.m5.large", "instance_count": 1, "percent": 5}}),
            "shadow.name",
            "twice",
        ),
        (
            json!({"name": "e", "variants": [variant("a", &v, 1.0)], "capture_percent": 101}),
            "capture_percent",
            "1 to 100",
        ),
    ] {
        let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", &member, Some(body.clone())).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", res.text());
        let errors = res.json()["errors"].clone();
        let hit = errors.as_array().into_iter().flatten().find(|e| e["field"] == field);
        assert!(hit.is_some_and(|e| e["message"].as_str().is_some_and(|m| m.contains(says))), "{body}: {}", res.text());
    }
    // an archived version is refused, naming the variant
    let res = app
        .call(Method::POST, &format!("/api/v1/model-versions/{v}/status"), &admin, Some(json!({"status": "Archived"})))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/ml/endpoints",
            &member,
            Some(json!({"name": "e", "variants": [variant("champ", &v, 1.0)]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert!(res.text().contains("Variant `champ`"), "{}", res.text());
    // the page's form: a row's number that does not parse is that field's error
    let form = Auth::Cookie(member_user.cookie.clone());
    for (field, value, expected) in [
        ("variants[0][weight]", "heavy", "variants[0].weight"),
        ("variants[0][instance_count]", "two", "variants[0].instance_count"),
    ] {
        let mut args = vec![
            ("team", "ml"),
            ("name", "e"),
            ("variants[0][name]", "a"),
            ("variants[0][version_id]", v.as_str()),
            ("variants[0][instance_type]", "ml.m5.large"),
            ("variants[0][instance_count]", "1"),
            ("variants[0][weight]", "1"),
        ];
        args.retain(|(k, _)| *k != field);
        args.push((field, value));
        let res = app.server_fn("create_endpoint_form", &form, &args).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {}", res.text());
        assert!(res.text().contains(expected), "{field}: {}", res.text());
    }
    assert_eq!(app.count("select count(*) from endpoint").await, 0, "nothing created");
    assert_eq!(app.count("select count(*) from audit_event where action like 'endpoint.%'").await, 0);
    assert!(app.count("select count(*) from audit_event").await >= events);
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_crashed_variant_gets_no_traffic_until_it_is_restarted_and_a_slow_shadow_never_delays_the_answer(
    pool: PgPool,
) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[]).await;
    let model = model(&app, &admin, "clf").await;
    let a = version(&app, &admin, &model, "a", json!({})).await;
    let b = version(&app, &admin, &model, "b", json!({})).await;
    let slow = version(&app, &admin, &model, "slow", json!({"sleep": 1})).await;
    let variant = |name: &str, version: &str| json!({"name": name, "version_id": version, "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1.0});
    let body = json!({"name": "live", "variants": [variant("a", &a), variant("b", &b)],
                      "shadow": {"name": "s", "version_id": slow, "instance_type": "ml.m5.large", "instance_count": 1, "percent": 100}});
    let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", &admin, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(res.json()["shadow"]["shadow_percent"], 100);
    let id = res.json()["id"].as_str().expect("id").to_owned();
    let worker = Worker::start(&app);
    in_service(&app, &admin, &id).await;

    // every request is copied to the shadow, which takes a second; the caller never waits for it
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let res = invoke(&app, &admin, "ml-live", "[[1]]", None).await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        assert_ne!(res.json()["model"], "slow", "the shadow's answer is never returned");
    }
    assert!(slowest < Duration::from_millis(900), "the shadow's second is not the caller's: {slowest:?}");
    let shadow_dir = std::fs::read_dir(app.work_dir.0.join("serving/ml-live"))
        .expect("endpoint folder")
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("s-"))
        .expect("the shadow's folder");
    let mut copies = 0;
    for _ in 0..50 {
        copies = std::fs::read_to_string(shadow_dir.path().join("instance-0.log"))
            .unwrap_or_default()
            .matches("shadow request")
            .count();
        if copies >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(copies >= 2, "the shadow received copies ({copies})");
    // the shadow's answers are counted under its name, and never agreed with production's
    let mut agreement = None;
    for _ in 0..50 {
        app::endpoints::metrics::flush(&app.state).await.expect("flush");
        let m = app.call(Method::GET, &format!("/api/v1/endpoints/{id}/metrics"), &admin, None).await.json();
        let shadow = m["variants"].as_array().into_iter().flatten().find(|v| v["variant"] == "s").cloned();
        agreement = shadow.and_then(|v| v["shadow_agreement"].as_array().into_iter().flatten().find_map(Value::as_f64));
        if agreement.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(agreement, Some(0.0), "the slow model answers differently from a and b");

    // b crashes: once Capstan sees it, all traffic goes to a until b is back
    let res = invoke(&app, &admin, "ml-live", r#"{"crash": true}"#, Some("b")).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.text());
    let down = app
        .wait_for(&format!("/api/v1/endpoints/{id}"), &admin, |e| {
            e["variants"][1]["instances"][0]["status"] != "Healthy"
        })
        .await;
    assert_eq!(down["variants"][1]["instances"][0]["status"], "Crashed", "{down}");
    assert!(down["variants"][1]["instances"][0]["message"].as_str().is_some_and(|m| m.contains("exited")), "{down}");
    // until b is back (after its back-off), every answer comes from a
    let mut to_a = 0;
    loop {
        let res = invoke(&app, &admin, "ml-live", "[[1]]", None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        if variant_of(&res) == "b" {
            break;
        }
        to_a += 1;
        assert!(to_a < 20_000, "b never came back");
    }
    assert!(to_a >= 10, "a took the traffic while b was down ({to_a} requests)");
    let back = app
        .wait_for(&format!("/api/v1/endpoints/{id}"), &admin, |e| {
            e["variants"][1]["instances"][0]["status"] == "Healthy"
        })
        .await;
    assert_eq!(back["variants"][1]["instances"][0]["restarts"], 1, "{back}");
    let res = invoke(&app, &admin, "ml-live", "[[1]]", Some("b")).await;
    assert_eq!((res.status, variant_of(&res)), (StatusCode::OK, "b".to_owned()), "{}", res.text());
    worker.stop().await;
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_demo_deploys_its_champion_a_later_one_its_challenger_and_examples_serve_py_answers(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let admin_user = app.user("admin@example.com", false).await;
    let admin = Auth::Bearer(admin_user.token.clone());
    app.team_with_members("demo", &admin, &[]).await;
    let dataset_version = common::ready_version(&app, &admin, "demo", "churn").await;
    let files = [("train.py", app::training::demo::TRAIN_SCRIPT), ("serve.py", app::training::demo::SERVE_SCRIPT)];
    let source = common::upload_source(&app, &admin, "demo", &files).await.json()["source_uri"]
        .as_str()
        .expect("uri")
        .to_owned();
    // a job the demo would launch: its name and tag mark it
    let mut body = common::launch_body("churn-demo-20261203-120000-000", &source, &dataset_version, json!([]));
    body["tags"] = json!([{"key": "purpose", "value": "demo"}]);
    let res = app.call(Method::POST, "/api/v1/teams/demo/training-jobs", &admin, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let job = res.json()["id"].as_str().expect("id").to_owned();
    let done = common::drive(&app, &admin, &job, common::finished).await;
    assert_eq!(done["status"], "completed", "{done}");

    // the worker's demo step: version 1 of churn, champion, deployed to endpoint churn
    assert_eq!(app::approvals::demo::step(&app.state).await.expect("demo step"), 1);
    let list = app.call(Method::GET, "/api/v1/teams/demo/endpoints", &admin, None).await.json();
    assert_eq!(list[0]["name"], "churn", "{list}");
    assert_eq!(list[0]["variants"][0]["name"], "champion", "{list}");
    let id = list[0]["id"].as_str().expect("id").to_owned();
    let worker = Worker::start(&app);
    in_service(&app, &admin, &id).await;

    // serve.py has no model_fn: the shim starts it as its own server and relays to it
    let mut req = http::Request::builder()
        .method(Method::POST)
        .uri("/endpoints/demo-churn/invocations")
        .header("content-type", "text/csv");
    if let Auth::Bearer(t) = &admin {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = app.send(req.body(axum::body::Body::from("24,70.5,3\n2,115,9\n")).expect("request")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(variant_of(&res), "champion");
    let predictions = res.json()["predictions"].as_array().cloned().unwrap_or_default();
    assert_eq!(predictions.len(), 2, "{}", res.text());
    assert!(
        predictions.iter().all(|p| p["probability"].as_f64().is_some_and(|x| (0.0..=1.0).contains(&x))),
        "{predictions:?}"
    );
    // serve.py's own 400 for a bad row is the model's error
    let res = invoke(&app, &admin, "demo-churn", r#"{"rows": 1}"#, None).await;
    assert_eq!(
        (res.status, res.json()["OriginalStatusCode"].as_u64()),
        (StatusCode::FAILED_DEPENDENCY, Some(400)),
        "{}",
        res.text()
    );
    // the version's lineage now ends in the endpoint serving it
    let version = list[0]["variants"][0]["version_id"].as_str().expect("version").to_owned();
    let lineage =
        app.call(Method::GET, &format!("/api/v1/model-versions/{version}/lineage"), &admin, None).await.json();
    let node = lineage["nodes"].as_array().into_iter().flatten().find(|n| n["kind"] == "endpoint").cloned();
    assert_eq!(node.as_ref().map(|n| n["label"].clone()), Some(json!("churn / champion")), "{lineage}");
    assert_eq!(node.map(|n| n["url"].clone()), Some(json!(format!("/teams/demo/endpoints/{id}"))));
    // a second demo step changes nothing
    assert_eq!(app::approvals::demo::step(&app.state).await.expect("demo step"), 0);
    assert_eq!(app.count("select count(*) from endpoint").await, 1);

    // a later demo's version joins as challenger with 10 % of the traffic
    let mut body = common::launch_body("churn-demo-20261203-130000-000", &source, &dataset_version, json!([]));
    body["tags"] = json!([{"key": "purpose", "value": "demo"}]);
    let res = app.call(Method::POST, "/api/v1/teams/demo/training-jobs", &admin, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let second = res.json()["id"].as_str().expect("id").to_owned();
    let done = common::drive(&app, &admin, &second, common::finished).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(app::approvals::demo::step(&app.state).await.expect("demo step"), 1);
    let endpoint = in_service(&app, &admin, &id).await;
    let split: Vec<(String, f64)> = endpoint["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (v["name"].as_str().unwrap_or_default().to_owned(), v["share"].as_f64().unwrap_or(-1.0)))
        .collect();
    assert_eq!(split, vec![("champion".to_owned(), 0.9), ("challenger".to_owned(), 0.1)], "{endpoint}");
    assert_ne!(endpoint["variants"][1]["version_id"], endpoint["variants"][0]["version_id"]);
    let mut req = http::Request::builder()
        .method(Method::POST)
        .uri("/endpoints/demo-churn/invocations")
        .header("content-type", "text/csv")
        .header("X-Amzn-SageMaker-Target-Variant", "challenger");
    if let Auth::Bearer(t) = &admin {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = app.send(req.body(axum::body::Body::from("24,70.5,3\n")).expect("request")).await;
    assert_eq!((res.status, variant_of(&res)), (StatusCode::OK, "challenger".to_owned()), "{}", res.text());

    // `capstan demo --traffic`: simulated customers, whose conversions fill the experiment in
    let actor = app::kernel::context::actor_by_id(&app.pool, admin_user.id).await.expect("actor").expect("the user");
    let ctx = app::kernel::context::Ctx {
        state: app.state.clone(),
        actor: Some(actor),
        request_id: None,
        client_addr: "test".into(),
    };
    let traffic = tokio::spawn(app::endpoints::demo::send_traffic_when_ready(ctx, "demo".into()));
    let experiment = format!("/api/v1/endpoints/{id}/experiment");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let filled = loop {
        app::endpoints::metrics::flush(&app.state).await.expect("flush");
        let res = app.call(Method::GET, &experiment, &admin, None).await;
        let x = res.json();
        let units = |i: usize| x["variants"][i]["units"].as_u64().unwrap_or(0);
        let conversions = app.count("select count(*) from endpoint_outcome where value = 1").await;
        if res.status == StatusCode::OK && units(0) > 0 && units(1) > 0 && conversions > 0 {
            break x;
        }
        assert!(std::time::Instant::now() < deadline, "the experiment did not fill in within a minute: {x}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    traffic.abort();
    assert_eq!((filled["metric"].as_str(), filled["baseline"].as_str()), (Some("conversion"), Some("champion")));
    assert_eq!(filled["variants"][1]["variant"], "challenger", "{filled}");
    worker.stop().await;
}

/// Runs boto3's SageMaker Runtime client (the tools venv, `TOOLS_PYTHON`)
/// against Capstan served on a port: one JSON answer per call.
fn boto3(url: &str, endpoint: &str, key: &str, secret: &str, calls: Value) -> Vec<Value> {
    let python = std::env::var("TOOLS_PYTHON")
        .expect("TOOLS_PYTHON: the tools venv's python with boto3 (scripts/test.sh sets it)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end/clients/sagemaker_runtime.py");
    let out = std::process::Command::new(python)
        .args([script, url, endpoint, key, secret, &calls.to_string()])
        .output()
        .expect("run boto3");
    assert!(out.status.success(), "boto3 client failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn boto3_sagemaker_runtime_invokes_with_an_invoke_key_and_a_revoked_key_is_refused(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    let viewer = Auth::Bearer(app.user("viewer@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[("viewer@example.com", "viewer")]).await;
    let model = model(&app, &admin, "clf").await;
    let a = version(&app, &admin, &model, "a", json!({})).await;
    let b = version(&app, &admin, &model, "b", json!({})).await;
    let variant = |name: &str, version: &str| json!({"name": name, "version_id": version, "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1.0});
    let mut ids = Vec::new();
    for name in ["sm", "other"] {
        let body = json!({"name": name, "variants": [variant("a", &a), variant("b", &b)]});
        let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", &admin, Some(body)).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        ids.push(res.json()["id"].as_str().expect("id").to_owned());
    }
    let worker = Worker::start(&app);
    in_service(&app, &admin, &ids[0]).await;

    let keys = format!("/api/v1/endpoints/{}/invoke-keys", ids[0]);
    let res = app.call(Method::POST, &keys, &viewer, Some(json!({"name": "ci"}))).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "viewers make no keys: {}", res.text());
    let res = app.call(Method::POST, &keys, &admin, Some(json!({"name": "batch scoring"}))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let key_id = res.json()["key"]["id"].as_str().expect("id").to_owned();
    let secret = res.json()["secret_access_key"].as_str().expect("secret").to_owned();
    for bad in [json!({"name": "  "}), json!({"name": "k".repeat(101)})] {
        let res = app.call(Method::POST, &keys, &admin, Some(bad.clone())).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", res.text());
        assert_eq!(res.json()["errors"][0]["field"], "name", "{bad}: {}", res.text());
    }
    assert_eq!(app.count("select count(*) from endpoint_invoke_key").await, 1, "bad names make no key");
    let listed = app.call(Method::GET, &keys, &admin, None).await;
    assert!(!listed.text().contains(&secret), "the secret is shown once: {}", listed.text());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let router = app.router.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .await
            .expect("serve");
    });
    let calls = json!([
        {"body": "[[1, 2]]", "content_type": "application/json"},
        {"body": "[[1, 2]]", "content_type": "application/json", "variant": "b"},
        {"body": "{\"fail\": true}", "content_type": "application/json", "variant": "a"},
        {"body": "[[1]]", "content_type": "application/json", "variant": "nope"},
    ]);
    let (u, k, s) = (url.clone(), key_id.clone(), secret.clone());
    let out = tokio::task::spawn_blocking(move || boto3(&u, "ml-sm", &k, &s, calls)).await.expect("boto3");
    let first: Value = serde_json::from_str(out[0]["body"].as_str().expect("body")).expect("json body");
    assert_eq!(first["model"], out[0]["variant"], "{out:?}");
    assert_eq!(out[0]["content_type"], "application/json");
    assert_eq!(out[1]["variant"], "b", "{out:?}");
    assert_eq!((out[2]["error"].as_str(), out[2]["status"].as_u64()), (Some("ModelError"), Some(424)), "{out:?}");
    assert_eq!(out[2]["original_status"], 500, "{out:?}");
    assert_eq!(out[3]["error"], "ValidationError", "{out:?}");

    // a key works for its own endpoint only; a wrong secret or a revoked key is refused
    let one = json!([{"body": "[[1]]", "content_type": "application/json"}]);
    let (u, k, s, c) = (url.clone(), key_id.clone(), secret.clone(), one.clone());
    let out = tokio::task::spawn_blocking(move || boto3(&u, "ml-other", &k, &s, c)).await.expect("boto3");
    assert_eq!(
        (out[0]["error"].as_str(), out[0]["status"].as_u64()),
        (Some("AccessDeniedException"), Some(403)),
        "{out:?}"
    );
    let (u, k, c) = (url.clone(), key_id.clone(), one.clone());
    let out = tokio::task::spawn_blocking(move || boto3(&u, "ml-sm", &k, "not-the-secret", c)).await.expect("boto3");
    assert_eq!(out[0]["status"], 403, "{out:?}");
    assert!(out[0]["message"].as_str().is_some_and(|m| m.contains("signature")), "{out:?}");
    let res = app.call(Method::DELETE, &format!("{keys}/{key_id}"), &admin, None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    let (u, k, s, c) = (url.clone(), key_id.clone(), secret.clone(), one);
    let out = tokio::task::spawn_blocking(move || boto3(&u, "ml-sm", &k, &s, c)).await.expect("boto3");
    assert_eq!(out[0]["error"], "UnrecognizedClientException", "a revoked key: {out:?}");
    assert_eq!(app.audit_count("endpoint.invoke_key_revoked").await, 1);
    server.abort();
    worker.stop().await;
}

/// The sampler itself, with a fixed seed: 20 000 picks over three variants
/// follow the weights (chi-square, 2 degrees of freedom, p = 0.001).
#[test]
fn the_weighted_pick_is_unbiased() {
    use app::endpoints::routes::{Route, RouteVariant};
    use rand::{Rng as _, SeedableRng as _};
    let addr: std::net::SocketAddr = "127.0.0.1:9".parse().expect("address");
    let weights = [("a", 0.5), ("b", 3.0), ("c", 1.5), ("off", 0.0)];
    let mut total = 0.0;
    let variants = weights
        .iter()
        .map(|(name, w)| {
            total += w;
            RouteVariant { name: (*name).into(), cumulative: total, weight: *w, addresses: vec![addr], fault: 0.0 }
        })
        .collect();
    let route = Route {
        endpoint_id: uuid::Uuid::nil(),
        team_id: uuid::Uuid::nil(),
        engine_name: "t-e".into(),
        backend: "local".into(),
        variants,
        total,
        shadow: None,
        names: weights.iter().map(|(n, _)| (*n).to_owned()).collect(),
        capture: None,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_203);
    let mut counts: HashMap<&str, f64> = HashMap::new();
    let n = 20_000.0;
    for _ in 0..20_000 {
        let v = app::endpoints::invoke::pick(&route, true, rng.random::<f64>()).expect("a variant");
        *counts.entry(weights.iter().find(|(w, _)| *w == v.name).map(|(w, _)| *w).unwrap_or("?")).or_default() += 1.0;
    }
    assert_eq!(counts.get("off"), None, "a variant of weight 0 gets nothing");
    let chi2: f64 = weights[..3]
        .iter()
        .map(|(name, w)| {
            let expected = n * w / 5.0;
            (counts.get(name).copied().unwrap_or(0.0) - expected).powi(2) / expected
        })
        .sum();
    assert!(chi2 < 13.82, "{counts:?}: chi-square {chi2:.2}");
    // a variant that is down gives its share to the others
    let mut down = route.clone();
    down.variants[1].addresses.clear();
    let mut b = 0;
    for _ in 0..2_000 {
        if app::endpoints::invoke::pick(&down, true, rng.random::<f64>()).expect("a variant").name == "b" {
            b += 1;
        }
    }
    assert_eq!(b, 0, "no traffic to a variant without a healthy process");
}

/// gbstats' figures (`end2end/clients/gbstats_check.py`, in the tools venv)
/// for each case.
fn gbstats(cases: &Value) -> Vec<Value> {
    let python = std::env::var("TOOLS_PYTHON")
        .expect("TOOLS_PYTHON: the tools venv's python with gbstats (scripts/test.sh sets it)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../end2end/clients/gbstats_check.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run gbstats");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), cases.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("gbstats");
    assert!(out.status.success(), "gbstats failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("gbstats' answer")
}

/// `a` and `b` agree to 1e-9, relative to their size.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The sample of the experiment's variant `name` as gbstats takes it.
fn sample_of(x: &Value, name: &str, sums: (f64, f64)) -> Value {
    let v = x["variants"].as_array().into_iter().flatten().find(|v| v["variant"] == name).expect("variant");
    json!({"n": v["units"], "sum": sums.0, "sum_squares": sums.1})
}

/// Who the tests call as: the admin, a member and a viewer of team `ml`,
/// and a user outside it.
struct People {
    admin: Auth,
    member: Auth,
    viewer: Auth,
    outsider: Auth,
}

/// Creates team `ml` and its people.
async fn people(app: &TestApp) -> People {
    let admin = Auth::Bearer(app.user("admin@example.com", false).await.token);
    let member = Auth::Bearer(app.user("member@example.com", false).await.token);
    let viewer = Auth::Bearer(app.user("viewer@example.com", false).await.token);
    let outsider = Auth::Bearer(app.user("outsider@example.com", false).await.token);
    app.team_with_members("ml", &admin, &[("member@example.com", "member"), ("viewer@example.com", "viewer")]).await;
    People { admin, member, viewer, outsider }
}

/// Creates endpoint `name` of team ml serving versions `a` and `b` of a
/// new model `clf`, weight 1 each; its id.
async fn ab_endpoint(app: &TestApp, member: &Auth, name: &str) -> String {
    let model = model(app, member, "clf").await;
    let (a, b) =
        (version(app, member, &model, "a", json!({})).await, version(app, member, &model, "b", json!({})).await);
    let variant = |name: &str, version: &str| json!({"name": name, "version_id": version, "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1.0});
    let body = json!({"name": name, "variants": [variant("a", &a), variant("b", &b)]});
    let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()["id"].as_str().expect("id").to_owned()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn outcomes_join_the_variant_that_served_them_and_the_experiment_matches_gbstats(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let People { admin: _, member, viewer, outsider } = people(&app).await;
    let id = ab_endpoint(&app, &member, "ab").await;
    let worker = Worker::start(&app);
    in_service(&app, &viewer, &id).await;

    // every answer names the invocation: its request id and the variant that served it
    let mut served: HashMap<String, Vec<String>> = HashMap::new();
    for _ in 0..300 {
        let res = invoke(&app, &member, "ml-ab", "[[1]]", None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let header = |name: &str| res.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let variant = variant_of(&res);
        assert_eq!(header("x-capstan-invocation-id"), format!("{}.{variant}", header("x-request-id")));
        served.entry(variant).or_default().push(header("x-capstan-invocation-id"));
    }
    app::endpoints::metrics::flush(&app.state).await.expect("flush");
    let outcomes_path = format!("/api/v1/endpoints/{id}/outcomes");
    let count = || app.count("select count(*) from endpoint_outcome");

    // conversions: every 10th invocation of a, every 4th of b; a few explicit zeros change nothing
    let mut batch = Vec::new();
    let mut conversions: HashMap<&str, f64> = HashMap::new();
    for name in ["a", "b"] {
        let every = if name == "a" { 10 } else { 4 };
        for (i, invocation) in served[name].iter().enumerate() {
            if i % every == 0 {
                batch.push(json!({"request_id": invocation, "metric": "conversion", "value": 1}));
                *conversions.entry(name).or_default() += 1.0;
            } else if i % 7 == 0 {
                batch.push(json!({"request_id": invocation, "metric": "conversion", "value": 0}));
            }
        }
    }
    let res = app.call(Method::POST, &outcomes_path, &viewer, Some(json!({"outcomes": batch.clone()}))).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "viewers report no outcomes: {}", res.text());
    let res = app.call(Method::POST, &outcomes_path, &outsider, Some(json!({"outcomes": batch.clone()}))).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
    let res = app.call(Method::POST, &outcomes_path, &member, Some(json!({"outcomes": batch.clone()}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json(), json!({"accepted": batch.len(), "duplicates": 0}));
    // reported again (a client's retry): duplicates, nothing changes
    let res = app.call(Method::POST, &outcomes_path, &member, Some(json!({"outcomes": batch.clone()}))).await;
    assert_eq!(res.json(), json!({"accepted": 0, "duplicates": batch.len()}), "{}", res.text());
    let res = app.call(Method::POST, &outcomes_path, &member, Some(batch[0].clone())).await;
    assert_eq!(res.json(), json!({"accepted": 0, "duplicates": 1}), "one outcome alone: {}", res.text());
    assert_eq!(count().await, i64::try_from(batch.len()).expect("len"));

    // one bad outcome refuses the batch, each named by its place
    let bad = json!({"outcomes": [
        {"request_id": "order-1", "variant": "a", "metric": "revenue", "value": 3.5},
        {"request_id": "order-2", "variant": "a", "metric": "bad metric", "value": 1},
        {"request_id": "order-3", "metric": "revenue", "value": 1},
        {"request_id": "order-4", "variant": "zz", "metric": "revenue", "value": 1},
        {"request_id": served["a"][1], "variant": "b", "metric": "revenue", "value": 1},
    ]});
    let res = app.call(Method::POST, &outcomes_path, &member, Some(bad)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    let fields: Vec<String> = res.json()["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(fields, ["outcomes[1].metric", "outcomes[2].variant", "outcomes[3].variant", "outcomes[4].variant"]);
    // a malformed outcome is named by its place
    let res = app
        .call(
            Method::POST,
            &outcomes_path,
            &member,
            Some(json!({"outcomes": [batch[0].clone(), {"request_id": "x", "value": 1}]})),
        )
        .await;
    assert!(matches!(res.status.as_u16(), 400 | 422), "{}", res.text());
    assert!(res.text().contains("outcomes[1]") && res.text().contains("metric"), "{}", res.text());
    let too_many: Vec<Value> =
        (0..1001).map(|i| json!({"request_id": format!("r{i}"), "variant": "a", "metric": "m", "value": 1})).collect();
    let res = app.call(Method::POST, &outcomes_path, &member, Some(json!({"outcomes": too_many}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(count().await, i64::try_from(batch.len()).expect("len"), "nothing written on refusal");

    // the experiment: none until one is started; bad settings are refused and write nothing
    let experiment_path = format!("/api/v1/endpoints/{id}/experiment");
    let res = app.call(Method::GET, &experiment_path, &viewer, None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
    let bad = json!({"metric": "conversion", "kind": "maybe", "baseline": "zz", "alpha": 0.9});
    let res = app.call(Method::PUT, &experiment_path, &member, Some(bad)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"].as_array().map(Vec::len), Some(3), "{}", res.text());
    let settings = json!({"metric": "conversion", "kind": "binary", "baseline": "a"});
    let res = app.call(Method::PUT, &experiment_path, &viewer, Some(settings.clone())).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    assert_eq!(app.count("select count(*) from endpoint_experiment").await, 0);
    let res = app.call(Method::PUT, &experiment_path, &member, Some(settings)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let x = app.call(Method::GET, &experiment_path, &viewer, None).await.json();
    let names: Vec<&str> =
        x["variants"].as_array().into_iter().flatten().filter_map(|v| v["variant"].as_str()).collect();
    assert_eq!(names, ["a", "b"], "the baseline first: {x}");
    for v in x["variants"].as_array().into_iter().flatten() {
        let name = v["variant"].as_str().expect("name");
        let n = served[name].len() as f64;
        assert_eq!(v["invocations"].as_f64(), Some(n), "every invocation is a unit of a binary metric: {x}");
        assert_eq!(v["units"].as_f64(), Some(n), "{x}");
        assert!(close(v["mean"].as_f64().unwrap_or(-1.0), conversions[name] / n), "{x}");
    }
    let users: Vec<usize> = ["a", "b"].iter().map(|n| served[*n].len()).collect();
    let case = |x: &Value, kind: &str, sums: HashMap<&str, (f64, f64)>| {
        json!({"kind": kind, "alpha": 0.05, "tuning": 5000, "a": sample_of(x, "a", sums["a"]),
               "b": sample_of(x, "b", sums["b"]), "users": users, "weights": [1.0, 1.0]})
    };
    let binary = case(&x, "binary", ["a", "b"].into_iter().map(|n| (n, (conversions[n], conversions[n]))).collect());

    // a real metric, for invocations that did not pass through the gateway: ids of the caller's own
    let mut revenue = Vec::new();
    let mut sums: HashMap<&str, (f64, f64)> = HashMap::new();
    for i in 0..200 {
        let (name, value) = if i % 2 == 0 { ("a", 20.0 + f64::from(i % 9)) } else { ("b", 21.0 + f64::from(i % 11)) };
        revenue.push(json!({"request_id": format!("order-{i}"), "variant": name, "metric": "revenue", "value": value}));
        let s = sums.entry(name).or_default();
        s.0 += value;
        s.1 += value * value;
    }
    let res = app.call(Method::POST, &outcomes_path, &member, Some(json!({"outcomes": revenue}))).await;
    assert_eq!(res.json()["accepted"], 200, "{}", res.text());
    let binary_x = x;
    let settings = json!({"metric": "revenue", "kind": "real", "baseline": "a", "alpha": 0.05});
    let res = app.call(Method::PUT, &experiment_path, &member, Some(settings)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let real_x = res.json();
    assert_eq!(real_x["variants"][1]["units"], 100, "the outcomes are the units of a real metric: {real_x}");
    let real = case(&real_x, "real", sums);

    // Capstan's figures are gbstats' figures
    let reference = gbstats(&json!([binary, real]));
    for (x, r) in [(&binary_x, &reference[0]), (&real_x, &reference[1])] {
        let lift = &x["variants"][1]["lift"];
        assert!(r["error"].is_null(), "{r}");
        for (ours, theirs) in [("estimate", "estimate"), ("low", "low"), ("high", "high"), ("p_value", "p_value")] {
            let (o, t) = (lift[ours].as_f64().unwrap_or(f64::NAN), r[theirs].as_f64().unwrap_or(f64::NAN));
            assert!(close(o, t), "{ours}: Capstan {o}, gbstats {t} ({x})");
        }
        let (o, t) = (x["srm_p_value"].as_f64().unwrap_or(f64::NAN), r["srm_p"].as_f64().unwrap_or(f64::NAN));
        assert!(close(o, t), "sample-ratio mismatch: Capstan {o}, gbstats {t}");
    }
    assert!(binary_x["variants"][1]["history"].as_array().is_some_and(|h| !h.is_empty()), "{binary_x}");

    // as it stood before anything happened: nothing to judge
    let before = app.call(Method::GET, &format!("{experiment_path}?as_of=2020-01-01T00:00:00Z"), &viewer, None).await;
    assert_eq!(before.json()["variants"][1]["units"], 0, "{}", before.text());
    let res = app.call(Method::GET, &format!("{experiment_path}?as_of=yesterday"), &viewer, None).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.text());
    // a change of the split starts a new window
    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/endpoints/{id}/weights"),
            &member,
            Some(json!({"weights": [{"variant": "b", "weight": 3.0}]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let after = app.call(Method::GET, &experiment_path, &viewer, None).await.json();
    assert!(after["window_from"].as_str() >= real_x["window_from"].as_str(), "{after}");
    assert_eq!(after["variants"][1]["weight"], 3.0, "{after}");
    assert_eq!(app.audit_count("endpoint.experiment_set").await, 2);
    worker.stop().await;
}

/// The rollouts' worker of `capstan serve` and the traffic rollups, both
/// often, beside the serving worker.
struct RolloutWorkers {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RolloutWorkers {
    fn start(app: &TestApp) -> Self {
        let stop = CancellationToken::new();
        let every = Duration::from_millis(200);
        let tasks = vec![
            tokio::spawn(server::workers::rollouts(app.state.clone(), every, stop.clone())),
            tokio::spawn(server::workers::traffic(app.state.clone(), every, stop.clone())),
        ];
        Self { stop, tasks }
    }

    async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Sends `n` invocations; how many failed with a model error.
async fn traffic(app: &TestApp, auth: &Auth, engine: &str, n: usize) -> usize {
    let mut failed = 0;
    for _ in 0..n {
        let res = invoke(app, auth, engine, "[[1]]", None).await;
        assert!(matches!(res.status.as_u16(), 200 | 424), "{}", res.text());
        failed += usize::from(res.status.as_u16() == 424);
    }
    failed
}

/// Sends traffic until the rollout's state is one of `states`; the rollout.
async fn drive_rollout(app: &TestApp, auth: &Auth, engine: &str, id: &str, states: &[&str]) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        traffic(app, auth, engine, 20).await;
        let r = app.call(Method::GET, &format!("/api/v1/rollouts/{id}"), auth, None).await.json();
        if states.contains(&r["state"].as_str().unwrap_or_default()) {
            return r;
        }
        assert!(std::time::Instant::now() < deadline, "the rollout did not reach {states:?}: {r}");
    }
}

fn weights_of(endpoint: &Value) -> Vec<(String, f64)> {
    endpoint["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (v["name"].as_str().unwrap_or_default().to_owned(), v["weight"].as_f64().unwrap_or(-1.0)))
        .collect()
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn rollouts_step_by_plan_and_a_failing_candidate_is_rolled_back_within_seconds(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let People { admin, member, viewer, outsider } = people(&app).await;
    let model = model(&app, &member, "clf").await;
    let a = version(&app, &member, &model, "a", json!({})).await;
    let b = version(&app, &member, &model, "b", json!({})).await;
    // c answers with an error one time in two
    let c = version(&app, &member, &model, "c", json!({"fail_share": 0.5})).await;
    let body = json!({"name": "ro", "variants": [{"name": "a", "version_id": a, "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1.0}]});
    let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", &member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let id = res.json()["id"].as_str().expect("id").to_owned();
    let serving = Worker::start(&app);
    let workers = RolloutWorkers::start(&app);
    in_service(&app, &viewer, &id).await;
    let path = format!("/api/v1/endpoints/{id}/rollouts");
    let rollouts = || app.count("select count(*) from rollout");

    // bad requests name their fields and write nothing; viewers and outsiders start none
    let bad = json!({"baseline": "zz", "candidate": "b", "strategy": "sideways", "step_percent": 0,
                     "interval_seconds": 5000, "guardrails": {"max_error_rate": 2}});
    let res = app.call(Method::POST, &path, &member, Some(bad)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    let mut fields: Vec<String> = res.json()["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["baseline", "candidate", "guardrails.max_error_rate", "interval_seconds", "step_percent", "strategy"]
    );
    let linear = json!({"baseline": "a", "candidate": "b", "candidate_version_id": b, "strategy": "linear",
                        "step_percent": 50, "interval_seconds": 1, "guardrails": {"min_requests": 10}});
    for (who, status) in [(&viewer, StatusCode::FORBIDDEN), (&outsider, StatusCode::NOT_FOUND)] {
        let res = app.call(Method::POST, &path, who, Some(linear.clone())).await;
        assert_eq!(res.status, status, "{}", res.text());
    }
    assert_eq!(rollouts().await, 0);

    // linear, 50 % a step: the rollout adds b, waits for it to serve, steps to 50 % and 100 %
    let res = app.call(Method::POST, &path, &member, Some(linear)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let rollout = res.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(res.json()["planned"], json!([50, 100]));
    let res = app
        .call(Method::POST, &path, &member, Some(json!({"baseline": "a", "candidate": "b", "strategy": "manual"})))
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "one rollout at a time: {}", res.text());
    let done = drive_rollout(&app, &member, "ml-ro", &rollout, &["completed", "rolled_back"]).await;
    assert_eq!(done["state"], "completed", "{done}");
    let steps: Vec<(i64, String)> = done["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (s["percent"].as_i64().unwrap_or(-1), s["result"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(steps, [(50, "passed".to_owned()), (100, "passed".to_owned())], "{done}");
    let checks = &done["steps"][0]["checks"];
    assert!(
        checks.as_array().is_some_and(|c| c.iter().any(|c| c["name"] == "error_rate" && c["status"] == "pass")),
        "{done}"
    );
    let endpoint = app.call(Method::GET, &format!("/api/v1/endpoints/{id}"), &viewer, None).await.json();
    assert_eq!(weights_of(&endpoint), [("a".to_owned(), 0.0), ("b".to_owned(), 1.0)]);
    assert_eq!(app.audit_count("endpoint.rollout_completed").await, 1);

    // a webhook of the team hears of a rollback
    let hook = json!({"url": "https://hooks.example.com/capstan", "event_types": ["endpoint.rollout_rolled_back"]});
    let res = app.call(Method::POST, "/api/v1/teams/ml/webhooks", &admin, Some(hook)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());

    // a canary of c, which fails one request in two: rolled back to b long before the bake time ends
    let canary = json!({"baseline": "b", "candidate": "c", "candidate_version_id": c, "strategy": "canary",
                        "step_percent": 20, "interval_seconds": 3600, "guardrails": {"min_requests": 20}});
    let res = app.call(Method::POST, &path, &member, Some(canary)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let rollout = res.json()["id"].as_str().expect("id").to_owned();
    let done = drive_rollout(&app, &member, "ml-ro", &rollout, &["completed", "rolled_back"]).await;
    assert_eq!(done["state"], "rolled_back", "{done}");
    let at = |v: &Value| {
        time::OffsetDateTime::parse(v.as_str().unwrap_or_default(), &time::format_description::well_known::Rfc3339)
            .expect("time")
    };
    let took = at(&done["finished_at"]) - at(&done["steps"][0]["started_at"]);
    println!("canary of a failing candidate: rolled back {:.1} s after its step began", took.as_seconds_f64());
    assert!(took < time::Duration::minutes(1), "rolled back {took} after the canary began: {done}");
    assert!(done["reason"].as_str().is_some_and(|r| r.contains("error rate")), "{done}");
    assert_eq!(done["steps"][0]["result"], "rolled_back", "{done}");
    let endpoint = app.call(Method::GET, &format!("/api/v1/endpoints/{id}"), &viewer, None).await.json();
    assert_eq!(weights_of(&endpoint), [("a".to_owned(), 0.0), ("b".to_owned(), 1.0), ("c".to_owned(), 0.0)]);
    assert_eq!(traffic(&app, &member, "ml-ro", 30).await, 0, "no request reaches c any more");
    assert_eq!(app.audit_count("endpoint.rollout_rolled_back").await, 1);
    assert_eq!(
        app.count("select count(*) from webhook_delivery where event_type = 'endpoint.rollout_rolled_back'").await,
        1
    );

    // manual: each step by a person; pause, resume, abort
    let manual =
        json!({"baseline": "b", "candidate": "a", "strategy": "manual", "step_percent": 25, "interval_seconds": 0});
    let res = app.call(Method::POST, &path, &member, Some(manual)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let rollout = res.json()["id"].as_str().expect("id").to_owned();
    let command = |what: &str| format!("/api/v1/rollouts/{rollout}/{what}");
    let first = drive_until(&app, &member, &rollout, |r| r["percent"] == 25).await;
    assert_eq!(first["steps"][0]["started_by"], "member@example.com", "{first}");
    let res = app.call(Method::POST, &command("promote"), &viewer, None).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    let res = app.call(Method::POST, &command("promote"), &member, None).await;
    assert_eq!(res.json()["percent"], 50, "{}", res.text());
    let endpoint = app.call(Method::GET, &format!("/api/v1/endpoints/{id}"), &viewer, None).await.json();
    assert_eq!(weights_of(&endpoint), [("a".to_owned(), 0.5), ("b".to_owned(), 0.5), ("c".to_owned(), 0.0)]);
    assert_eq!(app.call(Method::POST, &command("pause"), &member, None).await.json()["state"], "paused");
    let res = app.call(Method::POST, &command("promote"), &member, None).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "a paused rollout is not promoted: {}", res.text());
    assert_eq!(app.call(Method::POST, &command("resume"), &member, None).await.json()["state"], "running");
    let res = app.call(Method::POST, &command("abort"), &member, None).await;
    assert_eq!(res.json()["state"], "aborted", "{}", res.text());
    let endpoint = app.call(Method::GET, &format!("/api/v1/endpoints/{id}"), &viewer, None).await.json();
    assert_eq!(weights_of(&endpoint), [("a".to_owned(), 0.0), ("b".to_owned(), 1.0), ("c".to_owned(), 0.0)]);
    for action in
        ["endpoint.rollout_promoted", "endpoint.rollout_paused", "endpoint.rollout_resumed", "endpoint.rollout_aborted"]
    {
        assert_eq!(app.audit_count(action).await, 1, "{action}");
    }
    let list = app.call(Method::GET, &path, &viewer, None).await.json();
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");
    workers.stop().await;
    serving.stop().await;
}

/// Polls the rollout until `done` holds of it.
async fn drive_until(app: &TestApp, auth: &Auth, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    app.wait_for(&format!("/api/v1/rollouts/{id}"), auth, done).await
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_bandit_moves_traffic_to_the_better_variant_within_its_bounds_and_audits_each_change(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let People { admin, member, viewer, outsider } = people(&app).await;
    let id = ab_endpoint(&app, &member, "bandit").await;
    let worker = Worker::start(&app);
    in_service(&app, &viewer, &id).await;
    let path = format!("/api/v1/endpoints/{id}/bandit");
    let bandits = || app.count("select count(*) from endpoint_bandit");

    // bad settings name their fields; viewers and outsiders turn nothing on; nothing written
    let bad =
        json!({"metric": "bad metric", "kind": "ordinal", "interval_seconds": 0, "min_share": 0.7, "max_share": 0.2});
    let res = app.call(Method::PUT, &path, &member, Some(bad)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    let mut fields: Vec<String> = res.json()["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["field"].as_str().map(str::to_owned))
        .collect();
    fields.sort();
    assert_eq!(fields, ["interval_seconds", "kind", "max_share", "metric", "min_share"]);
    let settings =
        json!({"metric": "conversion", "kind": "binary", "interval_seconds": 1, "min_share": 0.1, "max_share": 0.9});
    for (who, status) in [(&viewer, StatusCode::FORBIDDEN), (&outsider, StatusCode::NOT_FOUND)] {
        let res = app.call(Method::PUT, &path, who, Some(settings.clone())).await;
        assert_eq!(res.status, status, "{}", res.text());
    }
    assert_eq!(app.call(Method::GET, &path, &outsider, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.call(Method::GET, &path, &viewer, None).await.status, StatusCode::NOT_FOUND, "none yet");
    assert_eq!(bandits().await, 0);

    // traffic, then outcomes: b converts one time in two, a one time in ten
    let mut served: HashMap<String, Vec<String>> = HashMap::new();
    for _ in 0..400 {
        let res = invoke(&app, &member, "ml-bandit", "[[1]]", None).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let invocation =
            res.headers.get("x-capstan-invocation-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        served.entry(variant_of(&res)).or_default().push(invocation);
    }
    app::endpoints::metrics::flush(&app.state).await.expect("flush");
    let split_changed_at =
        || app.count("select (extract(epoch from split_changed_at) * 1000000)::bigint from endpoint");
    let before_split = split_changed_at().await;

    // turned on by a member: one run moves the weights as far as the bounds allow
    let res = app.call(Method::PUT, &path, &member, Some(settings.clone())).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["settings"]["min_share"], 0.1, "{}", res.text());
    let batch: Vec<Value> = ["a", "b"]
        .iter()
        .flat_map(|name| {
            let every = if *name == "a" { 10 } else { 2 };
            served[*name]
                .iter()
                .enumerate()
                .filter(move |(i, _)| i % every == 0)
                .map(|(_, r)| json!({"request_id": r, "metric": "conversion", "value": 1}))
        })
        .collect();
    let res = app
        .call(Method::POST, &format!("/api/v1/endpoints/{id}/outcomes"), &member, Some(json!({"outcomes": batch})))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(app::endpoints::bandit::tick(&app.state).await.expect("tick"), 1);
    let endpoint = app.call(Method::GET, &format!("/api/v1/endpoints/{id}"), &viewer, None).await.json();
    assert_eq!(weights_of(&endpoint), [("a".to_owned(), 0.1), ("b".to_owned(), 0.9)], "{endpoint}");
    let bandit = app.call(Method::GET, &path, &viewer, None).await.json();
    let run = &bandit["runs"][0];
    assert_eq!(run["changed"], true, "{bandit}");
    assert_eq!(run["variants"][1]["variant"], "b", "{bandit}");
    assert!(run["variants"][1]["chance_best"].as_f64().is_some_and(|p| p > 0.99), "{bandit}");
    assert_eq!(run["variants"][1]["units"].as_u64(), Some(served["b"].len() as u64), "{bandit}");
    // audited as Capstan's bandit, for the member who turned it on; the experiment's window holds
    let audited = app
        .count(
            "select count(*) from audit_event where action = 'endpoint.weights_changed'
             and actor_label = 'capstan (bandit)' and (summary->>'bandit')::boolean",
        )
        .await;
    assert_eq!(audited, 1);
    assert_eq!(split_changed_at().await, before_split, "a bandit's change keeps the experiment's window");
    // not due again before its interval; a run that would move nothing changes nothing
    assert_eq!(app::endpoints::bandit::tick(&app.state).await.expect("tick"), 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app::endpoints::bandit::tick(&app.state).await.expect("tick"), 0, "still within a point");
    assert_eq!(app.count("select count(*) from endpoint_bandit_run").await, 2);

    // one hand on the weights: direct weights and rollouts are refused while it runs
    let weights = json!({"weights": [{"variant": "a", "weight": 1.0}]});
    let res = app.call(Method::PUT, &format!("/api/v1/endpoints/{id}/weights"), &member, Some(weights.clone())).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert!(res.text().contains("bandit"), "{}", res.text());
    let rollout = json!({"baseline": "a", "candidate": "b", "strategy": "manual"});
    let res = app.call(Method::POST, &format!("/api/v1/endpoints/{id}/rollouts"), &member, Some(rollout)).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());

    // stopped by a member (not a viewer): the weights stay, and are anyone's again
    assert_eq!(app.call(Method::DELETE, &path, &viewer, None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.call(Method::DELETE, &path, &member, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::DELETE, &path, &member, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("select count(*) from audit_event where action = 'endpoint.bandit_stopped'").await, 1);
    let endpoint = app.call(Method::GET, &format!("/api/v1/endpoints/{id}"), &viewer, None).await.json();
    assert_eq!(weights_of(&endpoint), [("a".to_owned(), 0.1), ("b".to_owned(), 0.9)], "{endpoint}");
    let res = app.call(Method::PUT, &format!("/api/v1/endpoints/{id}/weights"), &member, Some(weights)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    // on again directly; a policy that comes to cover the weights stops it at its next run
    assert_eq!(app.call(Method::PUT, &path, &member, Some(settings.clone())).await.status, StatusCode::OK);
    let policy = json!({"policies": [{"kind": "endpoint.weights", "approvals_required": 1, "min_role": "admin",
                                      "expires_after_hours": 24}]});
    let res = app.call(Method::PUT, "/api/v1/teams/ml/approval-policies", &admin, Some(policy)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(app::endpoints::bandit::tick(&app.state).await.expect("tick"), 0);
    assert_eq!(bandits().await, 0, "stopped");
    let reason = app
        .count("select count(*) from audit_event where action = 'endpoint.bandit_stopped' and summary->>'reason' like '%policy%'")
        .await;
    assert_eq!(reason, 1);
    let res = app.call(Method::PUT, &path, &member, Some(settings)).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert!(res.text().contains("endpoint.bandit"), "{}", res.text());
    worker.stop().await;
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn an_injected_fault_fails_its_share_of_a_variant_and_a_canary_under_it_is_rolled_back(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let People { admin, member, viewer, outsider } = people(&app).await;
    let id = ab_endpoint(&app, &member, "faulty").await;
    let serving = Worker::start(&app);
    let workers = RolloutWorkers::start(&app);
    in_service(&app, &viewer, &id).await;
    let path = format!("/api/v1/endpoints/{id}/faults");
    let faults = || app.count("select count(*) from endpoint_fault");

    // bad switches name their fields; viewers and outsiders set none
    let res = app.call(Method::PUT, &path, &member, Some(json!({"variant": "zz", "error_percent": 101}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    let body = res.json();
    let fields: Vec<&str> =
        body["errors"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["variant", "error_percent"]);
    let all = json!({"variant": "b", "error_percent": 100});
    for (who, status) in [(&viewer, StatusCode::FORBIDDEN), (&outsider, StatusCode::NOT_FOUND)] {
        assert_eq!(app.call(Method::PUT, &path, who, Some(all.clone())).await.status, status);
    }
    assert_eq!(faults().await, 0);

    // every request of b fails with SageMaker's ModelError, counted as b's; a answers
    let res = app.call(Method::PUT, &path, &member, Some(all)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let b = res.json()["variants"].as_array().and_then(|v| v.iter().find(|v| v["name"] == "b").cloned());
    assert_eq!(b.map(|b| b["fault_percent"].clone()), Some(json!(100)));
    for _ in 0..5 {
        let res = invoke(&app, &member, "ml-faulty", "[[1]]", Some("b")).await;
        assert_eq!(res.status.as_u16(), 424, "{}", res.text());
        assert!(res.text().contains("ModelError"), "{}", res.text());
        assert_eq!(invoke(&app, &member, "ml-faulty", "[[1]]", Some("a")).await.status, StatusCode::OK);
    }
    app::endpoints::metrics::flush(&app.state).await.expect("flush");
    assert_eq!(
        app.count("select coalesce(sum(model_errors), 0)::bigint from endpoint_metric where variant = 'b'").await,
        5
    );
    // cleared: b answers again; both switches audited
    let res = app.call(Method::PUT, &path, &member, Some(json!({"variant": "b", "error_percent": 0}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(invoke(&app, &member, "ml-faulty", "[[1]]", Some("b")).await.status, StatusCode::OK);
    assert_eq!(app.count("select count(*) from audit_event where action = 'endpoint.fault_set'").await, 2);

    // CloudWatch alarms are for AWS mode
    let alarms = json!({"baseline": "a", "candidate": "b", "strategy": "canary", "guardrails": {"alarm_names": ["x"]}});
    let res = app.call(Method::POST, &format!("/api/v1/endpoints/{id}/rollouts"), &member, Some(alarms)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "guardrails.alarm_names", "{}", res.text());

    // a canary of b, then half of b's requests fail: its guardrail rolls it back
    let canary = json!({"baseline": "a", "candidate": "b", "strategy": "canary", "step_percent": 50,
                        "interval_seconds": 3600, "guardrails": {"min_requests": 20, "max_error_rate": 0.2}});
    let res = app.call(Method::POST, &format!("/api/v1/endpoints/{id}/rollouts"), &member, Some(canary)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let rollout = res.json()["id"].as_str().expect("id").to_owned();
    drive_until(&app, &viewer, &rollout, |r| r["percent"] == 50).await;
    let res = app.call(Method::PUT, &path, &member, Some(json!({"variant": "b", "error_percent": 50}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let done = drive_rollout(&app, &member, "ml-faulty", &rollout, &["rolled_back", "completed"]).await;
    assert_eq!(done["state"], "rolled_back", "{done}");
    assert!(done["reason"].as_str().is_some_and(|r| r.contains("error rate")), "{done}");

    // where the team's changes need review, nobody may break traffic with a switch
    let policy = json!({"policies": [{"kind": "endpoint.update", "approvals_required": 1, "min_role": "admin",
                                      "expires_after_hours": 24}]});
    assert_eq!(
        app.call(Method::PUT, "/api/v1/teams/ml/approval-policies", &admin, Some(policy)).await.status,
        StatusCode::OK
    );
    let res = app.call(Method::PUT, &path, &member, Some(json!({"variant": "a", "error_percent": 10}))).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    workers.stop().await;
    serving.stop().await;
}

/// Sends the churn rows `rows` (features only) to endpoint `engine`, one
/// request each; how many answered.
async fn churn_traffic(app: &TestApp, auth: &Auth, engine: &str, rows: &[String]) -> usize {
    let mut answered = 0;
    for row in rows {
        let mut req = http::Request::builder()
            .method(Method::POST)
            .uri(format!("/endpoints/{engine}/invocations"))
            .header("content-type", "text/csv");
        if let Auth::Bearer(t) = auth {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = app.send(req.body(axum::body::Body::from(row.clone())).expect("request")).await;
        assert!(matches!(res.status.as_u16(), 200 | 424), "{}", res.text());
        answered += usize::from(res.status == StatusCode::OK);
    }
    answered
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_health_score_judges_errors_latency_drift_and_capacity_and_a_low_score_rolls_back(pool: PgPool) {
    let app = TestApp::new(pool).await.with_serving();
    let _listener = common::listen(&app.state).await;
    let People { admin: _, member, viewer, outsider } = people(&app).await;
    // a version trained by Capstan on the churn data (the demo's scripts)
    let dataset_version = common::ready_version(&app, &member, "ml", "churn").await;
    let files = [("train.py", app::training::demo::TRAIN_SCRIPT), ("serve.py", app::training::demo::SERVE_SCRIPT)];
    let source =
        common::upload_source(&app, &member, "ml", &files).await.json()["source_uri"].as_str().expect("uri").to_owned();
    let body = common::launch_body("churn-1", &source, &dataset_version, json!([]));
    let res = app.call(Method::POST, "/api/v1/teams/ml/training-jobs", &member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let job = res.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(common::drive(&app, &member, &job, common::finished).await["status"], "completed");
    let model = model(&app, &member, "churn").await;
    let res = app
        .call(Method::POST, &format!("/api/v1/models/{model}/versions"), &member, Some(json!({"training_job_id": job})))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let version = res.json()["id"].as_str().expect("id").to_owned();
    let variant = |name: &str, weight: f64| json!({"name": name, "version_id": version, "instance_type": "ml.m5.large", "instance_count": 1, "weight": weight});
    let body = json!({"name": "health", "variants": [variant("a", 1.0), variant("b", 0.0)], "capture_percent": 100});
    let res = app.call(Method::POST, "/api/v1/teams/ml/endpoints", &member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let id = res.json()["id"].as_str().expect("id").to_owned();
    let serving = Worker::start(&app);
    let workers = RolloutWorkers::start(&app);
    in_service(&app, &viewer, &id).await;
    let path = format!("/api/v1/endpoints/{id}/health");

    // settings: members set them, bad ones name their fields, viewers and outsiders set none
    let res = app.call(Method::PUT, &path, &member, Some(json!({"latency_slo_ms": 0, "threshold": 101}))).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    let settings = json!({"latency_slo_ms": 2000, "threshold": 85, "auto_rollback": true});
    for (who, status) in [(&viewer, StatusCode::FORBIDDEN), (&outsider, StatusCode::NOT_FOUND)] {
        assert_eq!(app.call(Method::PUT, &path, who, Some(settings.clone())).await.status, status);
    }
    assert_eq!(app.call(Method::GET, &path, &outsider, None).await.status, StatusCode::NOT_FOUND);
    let res = app.call(Method::PUT, &path, &member, Some(settings)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["score"], Value::Null, "no traffic yet: nothing to judge");

    // requests like the training data: healthy on every part
    let rows: Vec<String> = app::training::demo::churn_csv(600)
        .lines()
        .skip(201)
        .map(|l| l.rsplit_once(',').map(|(features, _)| features.to_owned()).unwrap_or_default())
        .collect();
    assert_eq!(churn_traffic(&app, &member, "ml-health", &rows).await, rows.len());
    app::endpoints::metrics::flush(&app.state).await.expect("flush");
    app::endpoints::capture::flush(&app.state).await.expect("capture");
    let h = app.call(Method::GET, &path, &viewer, None).await.json();
    let part =
        |h: &Value, name: &str| h["parts"].as_array().and_then(|p| p.iter().find(|p| p["name"] == name).cloned());
    assert_eq!(part(&h, "errors").map(|p| p["score"].clone()), Some(json!(100.0)), "{h}");
    assert_eq!(part(&h, "latency").map(|p| p["score"].clone()), Some(json!(100.0)), "{h}");
    assert_eq!(part(&h, "capacity").map(|p| p["score"].clone()), Some(json!(100.0)), "{h}");
    let psi = part(&h, "drift").and_then(|p| p["value"].as_f64()).expect("a PSI");
    assert!(psi < 0.25, "requests like the training data barely drift: {h}");
    assert!(h["score"].as_f64().is_some_and(|s| s >= 85.0) && h["below"] == false, "{h}");
    assert_eq!(app::endpoints::health::tick(&app.state).await.expect("tick"), 1);
    assert_eq!(app::endpoints::health::tick(&app.state).await.expect("tick"), 0, "one record a minute");
    // a minute passes (the records move a minute back)
    let back_a_minute = || async {
        sqlx::query("update endpoint_health set minute = minute - interval '1 minute'")
            .execute(&app.pool)
            .await
            .expect("update")
    };

    // a rollout of b completes
    let linear = json!({"baseline": "a", "candidate": "b", "strategy": "linear", "step_percent": 50,
                        "interval_seconds": 0, "guardrails": {"min_requests": 5}});
    let res = app.call(Method::POST, &format!("/api/v1/endpoints/{id}/rollouts"), &member, Some(linear)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let rollout = res.json()["id"].as_str().expect("id").to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while app.call(Method::GET, &format!("/api/v1/rollouts/{rollout}"), &viewer, None).await.json()["state"]
        != "completed"
    {
        churn_traffic(&app, &member, "ml-health", &rows[..20]).await;
        assert!(std::time::Instant::now() < deadline, "the rollout completes");
    }

    // then b fails every request: the score falls, the alert fires, b is rolled back
    let res = app
        .call(
            Method::PUT,
            &format!("/api/v1/endpoints/{id}/faults"),
            &member,
            Some(json!({"variant": "b", "error_percent": 100})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(churn_traffic(&app, &member, "ml-health", &rows[..100]).await, 0, "every request of b fails");
    app::endpoints::metrics::flush(&app.state).await.expect("flush");
    back_a_minute().await;
    assert_eq!(app::endpoints::health::tick(&app.state).await.expect("tick"), 1);
    let h = app.call(Method::GET, &path, &viewer, None).await.json();
    assert!(h["score"].as_f64().is_some_and(|s| s < 85.0) && h["below"] == true, "{h}");
    assert_eq!(app.count("select count(*) from audit_event where action = 'endpoint.health_low'").await, 1);
    let r = app.call(Method::GET, &format!("/api/v1/rollouts/{rollout}"), &viewer, None).await.json();
    assert_eq!(r["state"], "rolled_back", "{r}");
    assert!(r["reason"].as_str().is_some_and(|why| why.contains("health score")), "{r}");
    let endpoint = app.call(Method::GET, &format!("/api/v1/endpoints/{id}"), &viewer, None).await.json();
    assert_eq!(weights_of(&endpoint), [("a".to_owned(), 1.0), ("b".to_owned(), 0.0)], "{endpoint}");
    // the next minute still low: no second alert
    back_a_minute().await;
    app::endpoints::health::tick(&app.state).await.expect("tick");
    assert_eq!(app.count("select count(*) from audit_event where action = 'endpoint.health_low'").await, 1);
    assert!(app.count("select count(*) from endpoint_health").await >= 3);
    workers.stop().await;
    serving.stop().await;
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_rollout_whose_endpoint_never_serves_is_aborted_and_old_outcomes_are_pruned(pool: PgPool) {
    // no serving worker: the endpoint stays Creating
    let app = TestApp::new(pool).await.with_serving();
    let People { admin: _, member, viewer, outsider: _ } = people(&app).await;
    let id = ab_endpoint(&app, &member, "never").await;
    let body = json!({"baseline": "a", "candidate": "b", "strategy": "manual"});
    let res = app.call(Method::POST, &format!("/api/v1/endpoints/{id}/rollouts"), &member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let rollout = res.json()["id"].as_str().expect("id").to_owned();
    app::endpoints::rollouts::tick(&app.state).await.expect("tick");
    let read = || async { app.call(Method::GET, &format!("/api/v1/rollouts/{rollout}"), &viewer, None).await.json() };
    assert_eq!(read().await["state"], "running", "it waits for the endpoint");
    // half an hour on, it gives up, saying why
    sqlx::query("update rollout set created_at = created_at - interval '31 minutes'")
        .execute(&app.pool)
        .await
        .expect("age");
    app::endpoints::rollouts::tick(&app.state).await.expect("tick");
    let r = read().await;
    assert_eq!(r["state"], "aborted", "{r}");
    assert!(r["reason"].as_str().is_some_and(|why| why.contains("did not serve within 30 minutes")), "{r}");
    assert_eq!(app.count("select count(*) from audit_event where action = 'endpoint.rollout_aborted'").await, 1);

    // outcomes are kept 30 days for recognising duplicates; the per-minute sums stay
    let outcome =
        |n: usize| json!({"request_id": format!("order-{n}"), "variant": "a", "metric": "conversion", "value": 1});
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/endpoints/{id}/outcomes"),
            &member,
            Some(json!({"outcomes": [outcome(1), outcome(2)]})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    sqlx::query("update endpoint_outcome set received_at = now() - interval '31 days' where request_id = 'order-1'")
        .execute(&app.pool)
        .await
        .expect("age");
    assert_eq!(app::endpoints::outcomes::prune(&app.pool).await.expect("prune"), 1);
    assert_eq!(app.count("select count(*) from endpoint_outcome").await, 1);
    assert_eq!(app.count("select sum(n)::bigint from endpoint_outcome_minute").await, 2);
}
