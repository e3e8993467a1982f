//! An approved change request is applied exactly once, whatever instant
//! the Capstan process dies at: a real `capstan serve` aborts itself at a
//! fault point (the test-only setting `CAPSTAN_FAULT_POINT`: right after
//! the approval that reached the quorum committed, while applying, and
//! after the change committed but before the request recorded it), is
//! started again without it, and the alias history and audit log then hold
//! the move once. The same for creating an endpoint on SageMaker (AWS mode
//! against `moto_server`): killed after CreateModel or after
//! CreateEndpointConfig, the next process finishes it with one of each.

mod common;

use common::process::{PASSWORD, Replica, capstan, count, database_url, http};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A token for `email` (a new account), made with the CLI as an operator would.
fn account(db: &str, data: &std::path::Path, email: &str, site_admin: bool) -> String {
    let mut args = vec!["user", "create", "--email", email];
    if site_admin {
        args.push("--site-admin");
    }
    let mut create = capstan(db, data).args(&args).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().expect("user");
    std::io::Write::write_all(&mut create.stdin.take().expect("stdin"), PASSWORD.as_bytes()).expect("password");
    assert!(create.wait().expect("user create").success());
    let token = capstan(db, data).args(["token", "create", "--email", email, "--name", "t"]).output().expect("token");
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    String::from_utf8(token.stdout).expect("utf-8").trim().to_owned()
}

async fn wait_exit(replica: &mut Replica) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while replica.child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "the fault point was not reached:\n{}", replica.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn an_approved_request_is_applied_once_when_the_process_dies_at_any_point(pool: PgPool) {
    let db = database_url(&pool).await;
    let data = common::TempDir::new();
    let admin = account(&db, &data.0, "admin@example.com", true);
    let member = account(&db, &data.0, "member@example.com", false);
    let approver = account(&db, &data.0, "approver@example.com", false);
    // the artifact the versions are registered from, in local mode's bucket
    let artifact = data.0.join("s3/data/capstan/models/ml/model.tar.gz");
    std::fs::create_dir_all(artifact.parent().expect("folder")).expect("mkdir");
    std::fs::write(&artifact, b"weights").expect("artifact");

    for (i, point) in ["approvals:after-quorum", "approvals:during-apply", "approvals:after-apply"].iter().enumerate() {
        let env = [("CAPSTAN_FAULT_POINT", *point)];
        let mut faulty = Replica::start_with(&db, &data.0, &format!("faulty-{i}"), &["serve"], &env).await;
        if i == 0 {
            faulty.call(&admin, "POST", "/teams", Some(json!({"slug": "ml", "name": "ML"}))).await;
            for (email, role) in [("member@example.com", "member"), ("approver@example.com", "approver")] {
                faulty.call(&admin, "POST", "/teams/ml/members", Some(json!({"email": email, "role": role}))).await;
            }
        }
        let model = faulty.call(&admin, "POST", "/teams/ml/models", Some(json!({"name": format!("churn-{i}")}))).await;
        let model = model["id"].as_str().expect("model").to_owned();
        let mut versions = Vec::new();
        for _ in 0..2 {
            let body = json!({"artifact_uri": "s3://capstan/models/ml/model.tar.gz"});
            let v = faulty.call(&member, "POST", &format!("/models/{model}/versions"), Some(body)).await;
            versions.push(v["id"].as_str().expect("version").to_owned());
        }
        let alias = format!("/models/{model}/aliases/champion");
        faulty.call(&admin, "PUT", &alias, Some(json!({"version_id": versions[0]}))).await;
        faulty.call(&admin, "POST", &format!("{alias}/protect"), None).await;
        let change = json!({"kind": "alias.move", "model_id": model, "alias": "champion", "version_id": versions[1]});
        let request = faulty
            .call(&member, "POST", "/teams/ml/change-requests", Some(json!({"change": change, "title": "promote"})))
            .await;
        let request = request["id"].as_str().expect("request").to_owned();
        // the approval reaches the quorum; the process dies at the fault point
        let approved = http(
            &faulty.url,
            "POST",
            &format!("/api/v1/change-requests/{request}/approve"),
            Some(&approver),
            Some(json!({"comment": "ok"})),
        )
        .await;
        wait_exit(&mut faulty).await;
        assert!(faulty.log_text().contains(&format!("fault point {point}")), "{}", faulty.log_text());
        eprintln!("{point}: died (the approval answered {:?})", approved.map(|(s, _)| s));
        drop(faulty);

        // started again without the fault: the change is applied, once
        let healthy = Replica::start(&db, &data.0, &format!("healthy-{i}"), &["serve"]).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        let state = loop {
            let r: Value = healthy.call(&admin, "GET", &format!("/change-requests/{request}"), None).await;
            let state = r["state"].as_str().unwrap_or_default().to_owned();
            if !["open", "approved", "applying"].contains(&state.as_str()) || Instant::now() > deadline {
                break state;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(state, "applied", "{point}:\n{}", healthy.log_text());
        let now = healthy.call(&member, "GET", &alias, None).await;
        assert_eq!(now["id"], json!(versions[1]), "{point}: the alias names the new version");
        let moves = count(
            &pool,
            &format!(
                "select count(*) from model_alias_history where model_id = '{model}' and alias = 'champion'
                 and to_version = '{}'",
                versions[1]
            ),
        )
        .await;
        assert_eq!(moves, 1, "{point}: one move in the alias history");
        let audited = count(
            &pool,
            &format!(
                "select count(*) from audit_event where action = 'model_alias.set' and target_id = '{model}'
                 and summary ->> 'after' = '{}'",
                versions[1]
            ),
        )
        .await;
        assert_eq!(audited, 1, "{point}: one move in the audit log");
        assert!(!healthy.log_text().contains("panicked"), "{}", healthy.log_text());
    }
}

/// Creating an endpoint on SageMaker (AWS mode, against `moto_server`, which
/// has every call a creation makes) is crash-safe: a real `capstan serve`
/// dies right after CreateModel, or right after CreateEndpointConfig, and
/// started again without the fault brings the endpoint into service with
/// one model and one endpoint configuration — the names are derived from
/// what they name, so the second process finds what the first made.
#[sqlx::test(migrator = "server::MIGRATOR")]
async fn an_endpoint_is_created_once_on_sagemaker_when_the_process_dies_mid_way(pool: PgPool) {
    let moto = storage::emulator::Moto::start().await;
    let storage = storage::Storage::new(&moto.config(), None, "capstan-aws").await;
    storage::ensure_bucket(&storage.client, "capstan-aws").await.expect("bucket");
    storage
        .client
        .put_object()
        .bucket("capstan-aws")
        .key("models/ml/clf/model.tar.gz")
        .body(b"weights".to_vec().into())
        .send()
        .await
        .expect("artifact");
    let shared =
        storage::sdk_config(Some("us-east-1"), Some(&("testing".to_owned(), "testing".to_owned())), Some(&moto.url))
            .await;
    let sagemaker = training::aws_sdk_sagemaker::Client::new(&shared);
    let db = database_url(&pool).await;
    let data = common::TempDir::new();
    let admin = account(&db, &data.0, "admin@example.com", true);
    let aws = |fault: &'static str| {
        let mut env = vec![
            ("CAPSTAN_MODE", "aws".to_owned()),
            ("CAPSTAN_S3_BUCKET", "capstan-aws".to_owned()),
            ("CAPSTAN_S3_ENDPOINT", moto.url.clone()),
            ("CAPSTAN_SAGEMAKER_ENDPOINT", moto.url.clone()),
            ("CAPSTAN_LOGS_ENDPOINT", moto.url.clone()),
            ("CAPSTAN_SAGEMAKER_ROLE_ARN", "arn:aws:iam::123456789012:role/SageMaker".to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ];
        if !fault.is_empty() {
            env.push(("CAPSTAN_FAULT_POINT", fault.to_owned()));
        }
        env
    };
    let start = async |name: &str, fault: &'static str| {
        let env = aws(fault);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Replica::start_with(&db, &data.0, name, &["serve"], &env).await
    };

    let mut version = String::new();
    for (i, point) in ["serving:after-models", "serving:after-config"].iter().enumerate() {
        let mut faulty = start(&format!("serving-faulty-{i}"), point).await;
        if i == 0 {
            faulty.call(&admin, "POST", "/teams", Some(json!({"slug": "ml", "name": "ML"}))).await;
            let model = faulty.call(&admin, "POST", "/teams/ml/models", Some(json!({"name": "clf"}))).await;
            let body = json!({"artifact_uri": "s3://capstan-aws/models/ml/clf/model.tar.gz",
                              "image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"});
            let path = format!("/models/{}/versions", model["id"].as_str().expect("id"));
            let v = faulty.call(&admin, "POST", &path, Some(body)).await;
            version = v["id"].as_str().expect("version").to_owned();
        }
        let name = format!("web{i}");
        let body = json!({"name": name, "variants": [{"name": "a", "version_id": version,
                          "instance_type": "ml.m5.large", "instance_count": 1, "weight": 1.0}]});
        // the serving worker deploys it at once and dies at the fault point (the answer may not get out)
        let created = http(&faulty.url, "POST", "/api/v1/teams/ml/endpoints", Some(&admin), Some(body)).await;
        wait_exit(&mut faulty).await;
        assert!(faulty.log_text().contains(&format!("fault point {point}")), "{}", faulty.log_text());
        eprintln!("{point}: died (the creation answered {:?})", created.map(|(s, _)| s));
        drop(faulty);

        // started again without the fault: in service, with one of each
        let healthy = start(&format!("serving-healthy-{i}"), "").await;
        let list = healthy.call(&admin, "GET", "/teams/ml/endpoints", None).await;
        let id = list.as_array().into_iter().flatten().find(|e| e["name"] == name.as_str()).map(|e| e["id"].clone());
        let id = id.and_then(|v| v.as_str().map(str::to_owned)).expect("the endpoint's row committed");
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            let e: Value = healthy.call(&admin, "GET", &format!("/endpoints/{id}"), None).await;
            let status = e["status"].as_str().unwrap_or_default().to_owned();
            if status == "InService" || status == "Failed" || Instant::now() > deadline {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(status, "InService", "{point}:\n{}", healthy.log_text());
        let engine = format!("ml-{name}");
        let models = sagemaker.list_models().send().await.expect("models");
        let models: Vec<&str> =
            models.models().iter().filter_map(|m| m.model_name()).filter(|n| n.starts_with(&engine)).collect();
        assert_eq!(models.len(), 1, "{point}: one model: {models:?}");
        let configs = sagemaker.list_endpoint_configs().send().await.expect("configs");
        let configs: Vec<&str> = configs
            .endpoint_configs()
            .iter()
            .filter_map(|c| c.endpoint_config_name())
            .filter(|n| n.starts_with(&engine))
            .collect();
        assert_eq!(configs.len(), 1, "{point}: one endpoint configuration: {configs:?}");
        let live = sagemaker.describe_endpoint().endpoint_name(&engine).send().await.expect("endpoint");
        assert_eq!(live.endpoint_config_name(), configs.first().copied());
        assert!(!healthy.log_text().contains("panicked"), "{}", healthy.log_text());
    }
}
