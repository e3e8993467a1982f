//! The cache of hot reads across processes: two Capstan processes on one
//! database, each with its own cache and invalidation listener (as two
//! `capstan serve` replicas). A change made through one reaches the other's
//! cache through the database's notifications, not by expiry; a process
//! whose notification channel drops reads from the database until the
//! channel is back. (The staleness itself, in milliseconds, is measured by
//! `bench/registry.sh`.)

mod common;

use common::{Auth, Replica, TestApp};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// Asks `replica` until `done` holds for the answer; how long it took.
async fn until(replica: &Replica, path: &str, auth: &Auth, done: impl Fn(StatusCode, &Value) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let res = replica.call(Method::GET, path, auth, None).await;
        let body = serde_json::from_slice(&res.body).unwrap_or(Value::Null);
        if done(res.status, &body) {
            return start.elapsed();
        }
        // far below the cache's own expiry: only a notification explains a change in time
        assert!(start.elapsed() < Duration::from_secs(10), "{path} never changed: {} {body}", res.status);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn changes_through_one_process_reach_the_others_cache_and_a_dropped_channel_falls_back_to_the_database(
    pool: PgPool,
) {
    let a = TestApp::new(pool).await;
    let b = a.replica();
    let _listeners = (common::listen(&a.state).await, common::listen(&b.state).await);
    let admin = Auth::Bearer(a.user("admin@example.com", false).await.token);
    let viewer = a.user("viewer@example.com", false).await;
    let viewer_auth = Auth::Bearer(viewer.token.clone());
    a.team_with_members("ml", &admin, &[("viewer@example.com", "viewer")]).await;
    a.put("capstan", "models/ml/model.tar.gz", b"w".to_vec()).await;
    let model = a.call(Method::POST, "/api/v1/teams/ml/models", &admin, Some(json!({"name": "churn"}))).await;
    let model = model.json()["id"].as_str().expect("id").to_owned();
    let mut versions = Vec::new();
    for _ in 0..2 {
        let body = json!({"artifact_uri": "s3://capstan/models/ml/model.tar.gz"});
        let res = a.call(Method::POST, &format!("/api/v1/models/{model}/versions"), &admin, Some(body)).await;
        versions.push(res.json()["id"].as_str().expect("id").to_owned());
    }
    let alias = format!("/api/v1/models/{model}/aliases/champion");
    let by_name = "/api/v1/teams/ml/models/churn/aliases/champion";
    let res = a.call(Method::PUT, &alias, &admin, Some(json!({"version_id": versions[0]}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    // B serves the alias from its cache once it has read it
    for path in [alias.as_str(), by_name, alias.as_str(), by_name] {
        let res = b.call(Method::GET, path, &viewer_auth, None).await;
        assert_eq!((res.status, res.json()["number"].as_i64()), (StatusCode::OK, Some(1)), "{path}");
    }
    let (hits, _) = b.state.cache.stats();
    assert!(hits >= 3, "the second reads were cache hits (token, membership, alias): {hits}");

    // a move through A reaches B's cache by notification
    let res = a.call(Method::PUT, &alias, &admin, Some(json!({"version_id": versions[1], "reason": "better"}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let took = until(&b, by_name, &viewer_auth, |s, v| s == StatusCode::OK && v["number"] == 2).await;
    println!("alias move seen by the other process after {took:?}");
    // A reads its own write at once
    assert_eq!(a.call(Method::GET, &alias, &viewer_auth, None).await.json()["number"], 2);
    // so does a change of the version the alias serves
    let status = format!("/api/v1/model-versions/{}/status", versions[1]);
    let res = a.call(Method::POST, &status, &admin, Some(json!({"status": "Approved"}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    until(&b, &alias, &viewer_auth, |_, v| v["status"] == "Approved").await;
    // versions by id are cached too: a change through A reaches B, and A reads its own write at once
    let version_path = format!("/api/v1/model-versions/{}", versions[1]);
    for _ in 0..2 {
        assert_eq!(b.call(Method::GET, &version_path, &viewer_auth, None).await.json()["status"], "Approved");
    }
    let res = a.call(Method::PATCH, &version_path, &admin, Some(json!({"description": "retrained"}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(a.call(Method::GET, &version_path, &viewer_auth, None).await.json()["description"], "retrained");
    until(&b, &version_path, &viewer_auth, |_, v| v["description"] == "retrained").await;

    // removing the viewer from the team closes B's door to them
    let res = a.call(Method::DELETE, &format!("/api/v1/teams/ml/members/{}", viewer.id), &admin, None).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.text());
    until(&b, &alias, &viewer_auth, |s, _| s == StatusCode::NOT_FOUND).await;
    a.add_member("ml", &admin, "viewer@example.com", "viewer").await;
    until(&b, &alias, &viewer_auth, |s, _| s == StatusCode::OK).await;

    // a revoked token stops working on B too
    let tokens = a.call(Method::GET, "/api/v1/tokens", &viewer_auth, None).await.json();
    let token = tokens["items"][0]["id"].as_str().expect("token id").to_owned();
    let res = a.call(Method::DELETE, &format!("/api/v1/tokens/{token}"), &viewer_auth, None).await;
    assert!(res.status.is_success(), "{}", res.text());
    until(&b, &alias, &viewer_auth, |s, _| s == StatusCode::UNAUTHORIZED).await;

    // the channel drops (the database ends the listeners' sessions): nothing stale is served
    let read = b.call(Method::GET, &alias, &admin, None).await;
    assert_eq!(read.json()["number"], 2);
    sqlx::query(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'capstan-cache-listener'",
    )
    .execute(&a.pool)
    .await
    .expect("terminate");
    let res = a.call(Method::PUT, &alias, &admin, Some(json!({"version_id": versions[0]}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    until(&b, &alias, &admin, |s, v| s == StatusCode::OK && v["number"] == 1).await;
    // and the listener comes back by itself; later moves arrive as before
    let start = Instant::now();
    while !b.state.cache.is_live() {
        assert!(start.elapsed() < Duration::from_secs(10), "the listener reconnects");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.call(Method::GET, &alias, &admin, None).await;
    let res = a.call(Method::PUT, &alias, &admin, Some(json!({"version_id": versions[1]}))).await;
    assert_eq!(res.status, StatusCode::OK);
    until(&b, &alias, &admin, |s, v| s == StatusCode::OK && v["number"] == 2).await;

    // a renamed model: the versions B has cached carry the new name
    let version_path = format!("/api/v1/model-versions/{}", versions[0]);
    assert_eq!(b.call(Method::GET, &version_path, &admin, None).await.json()["model"], "churn");
    let rename = json!({"name": "ml/churn", "new_name": "ml/churn-2"});
    let res = a.call(Method::POST, "/api/2.0/mlflow/registered-models/rename", &admin, Some(rename)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    until(&b, &version_path, &admin, |_, v| v["model"] == "churn-2").await;

    // whole pages of lists are cached too: a version registered through A shows in B's list, and in A's at once
    let list = format!("/api/v1/models/{model}/versions?limit=50");
    let models = "/api/v1/teams/ml/models";
    for _ in 0..2 {
        assert_eq!(b.call(Method::GET, &list, &admin, None).await.json()["items"].as_array().map(Vec::len), Some(2));
        assert_eq!(b.call(Method::GET, models, &admin, None).await.json()["items"][0]["version_count"], 2);
    }
    let body = json!({"artifact_uri": "s3://capstan/models/ml/model.tar.gz"});
    let res = a.call(Method::POST, &format!("/api/v1/models/{model}/versions"), &admin, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    assert_eq!(a.call(Method::GET, &list, &admin, None).await.json()["items"].as_array().map(Vec::len), Some(3));
    until(&b, &list, &admin, |_, v| v["items"].as_array().map(Vec::len) == Some(3)).await;
    until(&b, models, &admin, |_, v| v["items"][0]["version_count"] == 3).await;
    // and an edit of the model itself (its pages' trigger fires for what a page shows, not for the counters)
    let res = a
        .call(Method::PATCH, &format!("/api/v1/models/{model}"), &admin, Some(json!({"description": "churn risk"})))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    until(&b, models, &admin, |_, v| v["items"][0]["description"] == "churn risk").await;

    // the MLflow API's lookups (the caller's teams, a model's name, a version's number, the aliases
    // naming a version) are cached as well, and a change through A reaches them on B
    let get = |name: &str| format!("/api/2.0/mlflow/model-versions/get?name={name}&version=1");
    for _ in 0..2 {
        let res = b.call(Method::GET, &get("churn-2"), &admin, None).await;
        assert_eq!((res.status, res.json()["model_version"]["aliases"].clone()), (StatusCode::OK, json!([])));
    }
    let staging = format!("/api/v1/models/{model}/aliases/staging");
    let res = a.call(Method::PUT, &staging, &admin, Some(json!({"version_id": versions[0]}))).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    until(&b, &get("churn-2"), &admin, |_, v| v["model_version"]["aliases"] == json!(["staging"])).await;
    // a second team: the bare name no longer says which team's model
    let res = a.call(Method::POST, "/api/v1/teams", &admin, Some(json!({"slug": "two", "name": "Two"}))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    until(&b, &get("churn-2"), &admin, |s, _| s == StatusCode::BAD_REQUEST).await;
    assert_eq!(b.call(Method::GET, &get("ml/churn-2"), &admin, None).await.status, StatusCode::OK);
    // a renamed model's old name is gone on B
    let rename = json!({"name": "ml/churn-2", "new_name": "ml/churn-3"});
    let res = a.call(Method::POST, "/api/2.0/mlflow/registered-models/rename", &admin, Some(rename)).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    until(&b, &get("ml/churn-2"), &admin, |s, _| s == StatusCode::NOT_FOUND).await;
    assert_eq!(b.call(Method::GET, &get("ml/churn-3"), &admin, None).await.status, StatusCode::OK);
}
