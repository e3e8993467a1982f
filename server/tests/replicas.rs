//! Two replicas, as a deployment runs them: two `capstan serve` processes
//! (the binary the run command builds) on one database and one data folder.
//! Dataset scans and local training jobs sent to either are each done once,
//! and when one process is killed (SIGKILL, mid-way through its work), the
//! other takes its scans and jobs over once their leases run out, and
//! finishes everything.

mod common;

use common::process::{PASSWORD, Replica, capstan, count, database_url};
use serde_json::json;
use sqlx::PgPool;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn a_replica_killed_mid_way_leaves_its_scans_and_jobs_to_the_other(pool: PgPool) {
    let began = Instant::now();
    let db = database_url(&pool).await;
    let data = common::TempDir::new();
    // an admin and an API token, made with the CLI as an operator would
    let mut create = capstan(&db, &data.0)
        .args(["user", "create", "--email", "admin@example.com", "--site-admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("user create");
    std::io::Write::write_all(&mut create.stdin.take().expect("stdin"), PASSWORD.as_bytes()).expect("password");
    assert!(create.wait().expect("user create").success());
    let token = capstan(&db, &data.0)
        .args(["token", "create", "--email", "admin@example.com", "--name", "replicas"])
        .output()
        .expect("token create");
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).expect("utf-8").trim().to_owned();

    // replica A also makes the demo (a team, a dataset, two jobs); B joins
    let a = Replica::start(&db, &data.0, "a", &["demo", "--email", "admin@example.com"]).await;
    let b = Replica::start(&db, &data.0, "b", &["serve"]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let demo_job = loop {
        let jobs = a.call(&token, "GET", "/teams/demo/training-jobs", None).await;
        if let Some(job) = jobs["items"].as_array().and_then(|items| items.first()).cloned() {
            break job;
        }
        assert!(Instant::now() < deadline, "the demo did not launch its job:\n{}", a.log_text());
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let demo_job =
        a.call(&token, "GET", &format!("/training-jobs/{}", demo_job["id"].as_str().expect("id")), None).await;
    eprintln!("{:?}: the demo job is launched", began.elapsed());
    let version_id = demo_job["channels"][0]["version_id"].as_str().expect("version").to_owned();
    let version = a.call(&token, "GET", &format!("/dataset-versions/{version_id}"), None).await;
    let dataset = version["dataset_id"].as_str().expect("dataset").to_owned();
    let source = version["source_uri"].as_str().expect("source").to_owned();

    // 20 scans and 20 jobs, sent to both replicas in turn
    for i in 0..20 {
        let to = if i % 2 == 0 { &a } else { &b };
        to.call(&token, "POST", &format!("/datasets/{dataset}/versions"), Some(json!({"source_uri": source}))).await;
        let mut request = demo_job["request"].clone();
        request["name"] = json!(format!("replica-{i}"));
        // two seconds of training each, so that A dies in the middle of some
        request["hyperparameters"] =
            json!([{"key": "epochs", "value": "4"}, {"key": "seconds-per-epoch", "value": "0.5"}]);
        to.call(&token, "POST", "/teams/demo/training-jobs", Some(request)).await;
    }
    // once both replicas run jobs, A is killed mid-way (its scripts die with it)
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&pool, "select count(distinct lease_owner) from training_job where status <> 'requested'").await < 2 {
        assert!(Instant::now() < deadline, "both replicas should run jobs:\n{}\n{}", a.log_text(), b.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut a = a;
    a.child.kill().expect("kill -9");
    a.child.wait().expect("killed");
    eprintln!("{:?}: replica A killed", began.elapsed());

    // B finishes everything: A's leases run out after a minute
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let scanning = count(&pool, "select count(*) from dataset_version where status <> 'ready'").await;
        // a job is done once it is final and its whole log is stored
        let running = count(
            &pool,
            "select count(*) from training_job where not (training_status_is_final(status) and logs_done)",
        )
        .await;
        if scanning == 0 && running == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{scanning} scans and {running} jobs left after 5 minutes:\n{}",
            b.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("{:?}: B finished everything", began.elapsed());
    // every scan found the same objects, and every job completed with one whole run in its log
    let objects: Vec<i64> =
        sqlx::query_scalar("select distinct object_count from dataset_version").fetch_all(&pool).await.expect("counts");
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(count(&pool, "select count(*) from dataset_version").await, 21);
    let outcomes: Vec<(String, String, i64)> = sqlx::query_as(
        "select name, status::text,
                (select count(*) from training_log l where l.job_id = j.job_id and l.line like 'model written to%')
         from training_job j order by name",
    )
    .fetch_all(&pool)
    .await
    .expect("outcomes");
    assert_eq!(outcomes.len(), 22, "20 jobs and the demo's two");
    for (name, status, runs) in &outcomes {
        assert_eq!((status.as_str(), *runs), ("completed", 1), "job {name}: {outcomes:?}");
    }
    let b_log = b.log_text();
    assert!(!b_log.contains("panicked"), "{b_log}");
    let taken = count(&pool, "select count(*) from training_job where restarts > 0").await;
    eprintln!("jobs A was running when it was killed, run again by B: {taken}");
}
