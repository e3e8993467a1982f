//! Training jobs end to end: the local runner running `examples/train.py`
//! (a real Python process, channels from the local S3 endpoint, the
//! script-mode contract, metrics, model.tar.gz, cost), stop, bad input, and
//! the SageMaker backend's exactly-once launch and paged reconciliation
//! against the SageMaker stand-in (moto has no StopTrainingJob, does not
//! refuse a repeated name and completes every job at once).

mod common;

use app::training::types::TrainingStatus;
use common::{Auth, TestApp, drive, finished, launch_body, ready_version};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;

const TRAIN: &str = include_str!("../../examples/train.py");

struct Fixture {
    app: TestApp,
    member: Auth,
    viewer: Auth,
    outsider_version: String,
    version: String,
}

/// A team `ml` with a member and a viewer, a ready dataset version holding
/// the demo CSV, and a version of another team.
async fn fixture(app: TestApp) -> Fixture {
    let admin = app.user("admin@example.com", false).await;
    let member = app.user("member@example.com", false).await;
    let viewer = app.user("viewer@example.com", false).await;
    let outsider = app.user("outsider@example.com", false).await;
    let a = Auth::Bearer(admin.token.clone());
    app.team_with_members("ml", &a, &[("member@example.com", "member"), ("viewer@example.com", "viewer")]).await;
    let member = Auth::Bearer(member.token.clone());
    let version = ready_version(&app, &member, "ml", "churn").await;
    let o = Auth::Bearer(outsider.token.clone());
    app.team_with_members("other", &o, &[]).await;
    let outsider_version = ready_version(&app, &o, "other", "theirs").await;
    Fixture { app, member, viewer: Auth::Bearer(viewer.token.clone()), outsider_version, version }
}

/// Launches `launch_body(name, source, the team's version, hps)` as the
/// team's member and returns the new job.
async fn launch_as_member(f: &Fixture, name: &str, source: &str, hps: Value) -> Value {
    let body = launch_body(name, source, &f.version, hps);
    let res = f.app.call(Method::POST, "/api/v1/teams/ml/training-jobs", &f.member, Some(body)).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()
}

#[sqlx::test(migrations = "../migrations")]
async fn local_runner_runs_the_example_script_end_to_end(pool: PgPool) {
    let f = fixture(TestApp::new(pool).await).await;
    let app = &f.app;
    let res = common::upload_source(app, &f.member, "ml", &[("train.py", TRAIN), ("lib/helper.py", "X = 1\n")]).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let source = res.json()["source_uri"].as_str().expect("uri").to_owned();
    assert!(source.starts_with("s3://capstan/jobs/ml/sources/") && source.ends_with("/sourcedir.tar.gz"));
    assert_eq!(res.json()["files"], json!(["lib/helper.py", "train.py"]));
    // The same folder gives the same URI (content-addressed).
    let again = common::upload_source(app, &f.member, "ml", &[("lib/helper.py", "X = 1\n"), ("train.py", TRAIN)]).await;
    assert_eq!(again.json()["source_uri"], source.as_str());

    let hps = json!([{"key": "epochs", "value": "6"}, {"key": "learning-rate", "value": "0.2"}]);
    let job = launch_as_member(&f, "churn-lr", &source, hps).await;
    assert_eq!(job["status"], "requested");
    assert_eq!(job["backend"], "local");
    let id = job["id"].as_str().expect("id").to_owned();
    assert_eq!(app.audit_count("training_job.launched").await, 1);

    let job = drive(app, &f.viewer, &id, finished).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let engine_name = job["engine_name"].as_str().expect("name");

    // The script-mode contract: config files and folders in the job's directory.
    let dir = app.work_dir.0.join("jobs").join(engine_name);
    let hp_file: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("input/config/hyperparameters.json")).expect("hps"))
            .expect("json");
    assert_eq!(hp_file, json!({"epochs": "6", "learning-rate": "0.2"}));
    assert!(dir.join("input/data/train/train.csv").is_file());
    assert!(dir.join("code/lib/helper.py").is_file());

    // The artifact: model.tar.gz in the output path, holding model.json.
    let artifact = job["artifact_uri"].as_str().expect("artifact");
    assert_eq!(artifact, format!("s3://capstan/jobs/ml/{engine_name}/output/model.tar.gz"));
    let key = artifact.trim_start_matches("s3://capstan/");
    let body = app.s3().get_object().bucket("capstan").key(key).send().await.expect("artifact exists");
    let bytes = body.body.collect().await.expect("read").into_bytes();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let names: Vec<String> = archive
        .entries()
        .expect("tar")
        .map(|e| e.expect("entry").path().expect("path").to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("model.json")), "{names:?}");

    // Timeline, times, cost: billable seconds × price.
    let transitions: Vec<&str> =
        job["transitions"].as_array().expect("timeline").iter().map(|t| t["status"].as_str().unwrap_or("")).collect();
    assert_eq!(transitions, ["Starting", "Downloading", "Training", "Uploading", "Completed"]);
    let billable = job["billable_seconds"].as_i64().expect("billable");
    assert!(billable >= 1);
    let price = job["cost"]["usd_per_hour"].as_f64().expect("price");
    assert!((price - 0.115).abs() < 1e-9);
    let actual = job["cost"]["actual_usd"].as_f64().expect("actual");
    assert!((actual - billable as f64 * price / 3600.0).abs() < 1e-9);
    assert!((job["cost"]["worst_case_usd"].as_f64().expect("worst") - price * 600.0 / 3600.0).abs() < 1e-9);
    assert_eq!(job["channels"][0]["name"], "train");
    assert_eq!(job["channels"][0]["version_id"], f.version.as_str());

    // Logs (the script's lines, searchable) and metric series from them.
    let logs = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}/logs?q=EPOCH=6"), &f.viewer, None).await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.text());
    let lines = logs.json()["items"].as_array().expect("items").clone();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0]["text"].as_str().expect("text").starts_with("epoch=6 loss="));
    let text = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}/logs?format=text"), &f.viewer, None).await;
    assert!(text.text().contains("model written to"), "{}", text.text());
    // The live stream: every line as an event, then `end` once the job is done.
    app::training::engine::follow_logs(&app.state).await.expect("logs");
    let Auth::Bearer(viewer_token) = &f.viewer else { unreachable!() };
    let req = http::Request::builder()
        .uri(format!("/api/v1/training-jobs/{id}/logs"))
        .header("accept", "text/event-stream")
        .header("authorization", format!("Bearer {viewer_token}"))
        .body(axum::body::Body::empty())
        .expect("request");
    let stream = app.send(req).await;
    assert_eq!(stream.status, StatusCode::OK);
    let events = stream.text();
    assert!(events.starts_with("event: status\ndata: completed"), "{events}");
    assert!(events.contains("\nid: 1\n"), "{events}");
    assert!(events.contains("epoch=6 loss="), "{events}");
    assert!(events.trim_end().ends_with("event: end\ndata: completed"), "{events}");
    let metrics = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}/metrics"), &f.viewer, None).await.json();
    let names: Vec<&str> =
        metrics.as_array().expect("series").iter().map(|s| s["name"].as_str().unwrap_or("")).collect();
    assert_eq!(names, ["accuracy", "loss"]);
    let loss: Vec<f64> =
        metrics[1]["points"].as_array().expect("points").iter().map(|p| p["value"].as_f64().unwrap_or(-1.0)).collect();
    assert_eq!(loss.len(), 6);
    assert!(loss[5] < loss[0], "loss should fall: {loss:?}");

    // The version that trained it cannot be deleted (lineage).
    let admin = Auth::Bearer(app.user("admin2@example.com", true).await.token);
    let res = app.call(Method::DELETE, &format!("/api/v1/dataset-versions/{}", f.version), &admin, None).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert!(res.text().contains("trained a job"), "{}", res.text());

    // Listed with its cost, and in the month's total.
    let list = app.call(Method::GET, "/api/v1/teams/ml/training-jobs?status=completed", &f.viewer, None).await.json();
    assert_eq!(list["items"][0]["id"], id.as_str());
    let month = app.call(Method::GET, "/api/v1/teams/ml/training-cost", &f.viewer, None).await.json();
    assert!((month["total_usd"].as_f64().expect("total") - actual).abs() < 1e-9);
}

#[sqlx::test(migrations = "../migrations")]
async fn stopping_a_running_local_job_terminates_the_script(pool: PgPool) {
    let f = fixture(TestApp::new(pool).await).await;
    let app = &f.app;
    let source = common::upload_source(app, &f.member, "ml", &[("train.py", TRAIN)]).await.json()["source_uri"]
        .as_str()
        .expect("uri")
        .to_owned();
    let hps = json!([{"key": "epochs", "value": "1000"}, {"key": "seconds-per-epoch", "value": "0.2"}]);
    let id = launch_as_member(&f, "long", &source, hps).await["id"].as_str().expect("id").to_owned();
    drive(app, &f.member, &id, |j| j["status"] == "training" && j["log_lines"].as_i64().unwrap_or(0) > 3).await;
    let viewer_stop = app.call(Method::POST, &format!("/api/v1/training-jobs/{id}/stop"), &f.viewer, None).await;
    assert_eq!(viewer_stop.status, StatusCode::FORBIDDEN);
    let res = app.call(Method::POST, &format!("/api/v1/training-jobs/{id}/stop"), &f.member, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["status"], "stopping");
    let job = drive(app, &f.member, &id, |j| j["status"] == "stopped" && j["log_lines"].as_i64().is_some()).await;
    assert!(job["billable_seconds"].as_i64().is_some());
    // Give the log reader its last pass, then look for the script's own goodbye.
    drive(app, &f.member, &id, |_| true).await;
    let logs =
        app.call(Method::GET, &format!("/api/v1/training-jobs/{id}/logs?q=SIGTERM"), &f.member, None).await.json();
    assert_eq!(logs["items"].as_array().map(Vec::len), Some(1), "{logs}");
    assert_eq!(app.audit_count("training_job.stop_requested").await, 1);
    let again = app.call(Method::POST, &format!("/api/v1/training-jobs/{id}/stop"), &f.member, None).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

/// A script that tries what a hostile one would: read Capstan's files and
/// another job's input, plant a file outside its folder, reach the local S3
/// endpoint and the private PostgreSQL, and see Capstan's processes.
const ESCAPE: &str = r#"
import argparse, json, os, socket
p = argparse.ArgumentParser()
for name in ("secret", "other-job", "plant", "s3-port", "pg", "host-pid"):
    p.add_argument("--" + name)
a, _ = p.parse_known_args()
leaks = []
for path in (a.secret, a.other_job):
    try:
        open(path).read()
        leaks.append("read " + path)
    except OSError:
        pass
try:
    # (the sandbox may offer an empty stand-in folder there: the test looks on the host)
    open(a.plant, "w").write("planted")
except OSError:
    pass
try:
    socket.create_connection(("127.0.0.1", int(a.s3_port)), timeout=2).close()
    leaks.append("connected to the S3 endpoint")
except OSError:
    pass
if a.pg:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(a.pg)
        leaks.append("connected to PostgreSQL at " + a.pg)
    except OSError:
        pass
if os.path.exists("/proc/%s" % a.host_pid):
    leaks.append("sees Capstan's process")
job = os.path.dirname(os.environ["SM_MODEL_DIR"])
for own in ("state.json", "logs.jsonl"):
    try:
        open(os.path.join(job, own), "a").write("forged")
    except OSError:
        pass
print("uid=%d" % os.getuid())
print("leaks=" + json.dumps(leaks))
os.makedirs(os.environ["SM_MODEL_DIR"], exist_ok=True)
open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w").write("{}")
"#;

#[sqlx::test(migrations = "../migrations")]
async fn a_local_job_cannot_reach_capstan_or_other_jobs(pool: PgPool) {
    let f = fixture(TestApp::new(pool).await).await;
    let app = &f.app;
    assert!(common::sandbox().is_sandboxed(), "the test command installs bubblewrap");
    let root = &app.work_dir.0;
    std::fs::write(root.join("secret.txt"), "capstan's own file").expect("secret");
    let other = root.join("jobs/someone-elses-job/input/data/train");
    std::fs::create_dir_all(&other).expect("other job");
    std::fs::write(other.join("train.csv"), "their,data").expect("other data");
    let s3 = app.s3.as_ref().expect("local S3").endpoint();
    let port = s3.rsplit(':').next().expect("port");
    // the private PostgreSQL's socket, when the tests run against one
    let pg = std::env::var("DATABASE_URL")
        .ok()
        .and_then(|u| u.split("host=").nth(1).map(|h| h.split('&').next().unwrap_or_default().replace("%2F", "/")))
        .map(|dir| format!("{dir}/.s.PGSQL.5432"))
        .unwrap_or_default();
    // with a requirements file, so the script runs from its team's own virtual environment
    let source = common::upload_source(
        app,
        &f.member,
        "ml",
        &[("train.py", ESCAPE), ("requirements.txt", "# nothing to install\n")],
    )
    .await
    .json()["source_uri"]
        .as_str()
        .expect("uri")
        .to_owned();
    let hps = json!([
        {"key": "secret", "value": root.join("secret.txt").to_string_lossy()},
        {"key": "other-job", "value": other.join("train.csv").to_string_lossy()},
        {"key": "plant", "value": root.join("planted.txt").to_string_lossy()},
        {"key": "s3-port", "value": port},
        {"key": "pg", "value": pg},
        {"key": "host-pid", "value": std::process::id().to_string()},
    ]);
    let id = launch_as_member(&f, "escape", &source, hps).await["id"].as_str().expect("id").to_owned();
    let job = drive(app, &f.member, &id, finished).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    drive(app, &f.member, &id, |_| true).await;
    let text =
        app.call(Method::GET, &format!("/api/v1/training-jobs/{id}/logs?format=text"), &f.member, None).await.text();
    assert!(text.contains("uid=65534"), "the script runs as an unprivileged user:\n{text}");
    assert!(text.contains("leaks=[]"), "nothing outside the job's folder is reachable:\n{text}");
    assert!(!root.join("planted.txt").exists());
    assert!(text.contains("Installing requirements.txt"), "{text}");
    let team = app.call(Method::GET, "/api/v1/teams/ml", &f.member, None).await.json();
    let venvs = root.join("venvs").join(team["id"].as_str().expect("team id"));
    assert!(venvs.is_dir(), "virtual environments are kept per team");
    // the runner's own files of the job are out of the script's reach
    let job_dir = root.join("jobs").join(job["engine_name"].as_str().expect("engine name"));
    for own in ["state.json", "logs.jsonl"] {
        let text = std::fs::read_to_string(job_dir.join(own)).expect("runner file");
        assert!(!text.contains("forged"), "{own} was changed by the script");
    }
}

/// Each open live log stream holds a server task polling the database: one
/// user may hold a few, not thousands.
#[sqlx::test(migrations = "../migrations")]
async fn live_log_streams_are_capped_per_user(pool: PgPool) {
    use tower::ServiceExt as _;
    let f = fixture(TestApp::new(pool).await).await;
    let app = &f.app;
    let source = common::upload_source(app, &f.member, "ml", &[("train.py", TRAIN)]).await.json()["source_uri"]
        .as_str()
        .expect("uri")
        .to_owned();
    let id = launch_as_member(&f, "s", &source, json!([])).await["id"].as_str().expect("id").to_owned();
    let open = |auth: &Auth| {
        let Auth::Bearer(token) = auth else { unreachable!() };
        let req = http::Request::builder()
            .uri(format!("/api/v1/training-jobs/{id}/logs"))
            .header("accept", "text/event-stream")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("request");
        app.router.clone().oneshot(req)
    };
    let mut held = Vec::new();
    for _ in 0..8 {
        let res = open(&f.member).await.expect("response");
        assert_eq!(res.status(), StatusCode::OK);
        held.push(res);
    }
    assert_eq!(open(&f.member).await.expect("response").status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(open(&f.viewer).await.expect("response").status(), StatusCode::OK, "other users have their own");
    held.pop();
    assert_eq!(open(&f.member).await.expect("response").status(), StatusCode::OK, "a closed stream frees its slot");
    // who may open one: not a visitor, not another team (who learns nothing)
    let stranger = Auth::Bearer(app.user("stranger@example.com", false).await.token);
    assert_eq!(open(&stranger).await.expect("response").status(), StatusCode::NOT_FOUND);
    let anonymous = http::Request::builder()
        .uri(format!("/api/v1/training-jobs/{id}/logs"))
        .header("accept", "text/event-stream")
        .body(axum::body::Body::empty())
        .expect("request");
    assert_eq!(app.router.clone().oneshot(anonymous).await.expect("response").status(), StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn bad_launches_name_each_field_and_write_nothing(pool: PgPool) {
    let f = fixture(TestApp::new(pool).await).await;
    let app = &f.app;
    let source = common::upload_source(app, &f.member, "ml", &[("train.py", TRAIN)]).await.json()["source_uri"]
        .as_str()
        .expect("uri")
        .to_owned();
    let bad = json!({
        "name": "-bad name-",
        "entry_point": "train.py",
        "source_uri": source,
        "instance_type": "ml.huge.unknown",
        "instance_count": 0,
        "max_runtime_seconds": 3600,
        "spot": true,
        "max_wait_seconds": 60,
        "hyperparameters": [{"key": "", "value": "1"}, {"key": "a", "value": "1"}, {"key": "a", "value": "2"}],
        "metric_definitions": [{"name": "loss", "regex": "loss=("}, {"name": "acc", "regex": "acc=[0-9]+"}],
        "channels": [{"name": "1train", "version_id": f.version}],
        "output_uri": "s3://capstan/jobs/other/",
    });
    let res = app.call(Method::POST, "/api/v1/teams/ml/training-jobs", &f.member, Some(bad)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    let fields: Vec<String> = res.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    for field in [
        "name",
        "instance_type",
        "instance_count",
        "max_wait_seconds",
        "hyperparameters[0].key",
        "hyperparameters[2].key",
        "metric_definitions[0].regex",
        "metric_definitions[1].regex",
        "channels[0].name",
        "output_uri",
    ] {
        assert!(fields.iter().any(|f| f == field), "no error for {field}: {fields:?}");
    }
    // Another team's version: not found. A missing entry point: named.
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/ml/training-jobs",
            &f.member,
            Some(launch_body("x", &source, &f.outsider_version, json!([]))),
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.text());
    // Dot segments stepped from the team's own area into another team's.
    let mut body = launch_body("x", &source, &f.version, json!([]));
    body["output_uri"] = json!("s3://capstan/jobs/ml/../other/");
    body["spot"] = json!(true);
    body["max_wait_seconds"] = json!(600);
    body["checkpoint_uri"] = json!("s3://capstan/jobs/ml/../../models/other/");
    let res = app.call(Method::POST, "/api/v1/teams/ml/training-jobs", &f.member, Some(body)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    let mut fields: Vec<String> = res.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    fields.sort();
    assert_eq!(fields, ["checkpoint_uri", "output_uri"], "both locations refused, nothing else");
    // ... and another team's source archive through `..`
    let mut body = launch_body("x", &source, &f.version, json!([]));
    body["source_uri"] = json!(source.replacen("/jobs/ml/", "/jobs/ml/../other/", 1));
    let res = app.call(Method::POST, "/api/v1/teams/ml/training-jobs", &f.member, Some(body)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.text());
    assert_eq!(res.json()["errors"][0]["field"], "source_uri");
    let mut body = launch_body("x", &source, &f.version, json!([]));
    body["entry_point"] = json!("missing.py");
    let res = app.call(Method::POST, "/api/v1/teams/ml/training-jobs", &f.member, Some(body)).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.json()["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("missing.py is not in the source folder")
    );
    // The local runner runs script mode only.
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/ml/training-jobs",
            &f.member,
            Some(json!({"name": "img", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/t:1", "instance_type": "ml.m5.large"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Viewers can neither store sources nor launch.
    let res = common::upload_source(app, &f.viewer, "ml", &[("train.py", TRAIN)]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.text());
    let res = app
        .call(
            Method::POST,
            "/api/v1/teams/ml/training-jobs",
            &f.viewer,
            Some(launch_body("v", &source, &f.version, json!([]))),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("select count(*) from training_job").await, 0);
    assert_eq!(app.audit_count("training_job.launched").await, 0);
    // A used name is a conflict on `name`.
    let ok = launch_body("dup", &source, &f.version, json!([]));
    let res = app.call(Method::POST, "/api/v1/teams/ml/training-jobs", &f.member, Some(ok.clone())).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let res = app.call(Method::POST, "/api/v1/teams/ml/training-jobs", &f.member, Some(ok)).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.text());
    assert_eq!(app.count("select count(*) from training_job").await, 1);
}

/// An app whose engine is SageMaker, reached at the stand-in.
async fn sagemaker_app(pool: PgPool, standin: &training::standin::StandIn) -> Fixture {
    let shared =
        storage::sdk_config(Some("us-east-1"), Some(&("testing".to_owned(), "testing".to_owned())), None).await;
    let backend = Arc::new(training::sagemaker::SageMaker::new(&shared, Some(&standin.url), Some(&standin.url)));
    let settings = app::kernel::state::Settings {
        sagemaker_role_arn: Some("arn:aws:iam::123456789012:role/SageMakerTraining".into()),
        ..Default::default()
    };
    let app = TestApp::new(pool).await.with_engine(backend, settings);
    fixture(app).await
}

fn image_job(name: &str) -> Value {
    json!({"name": name, "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1", "instance_type": "ml.m5.xlarge",
           "max_runtime_seconds": 3600})
}

/// A member launches `image_job(name)`; returns the job's id.
async fn launch_image_job(f: &Fixture, name: &str) -> String {
    let res = f.app.call(Method::POST, "/api/v1/teams/ml/training-jobs", &f.member, Some(image_job(name))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    res.json()["id"].as_str().expect("id").to_owned()
}

#[sqlx::test(migrations = "../migrations")]
async fn a_worker_killed_after_the_create_call_launches_exactly_one_job(pool: PgPool) {
    let standin = training::standin::StandIn::start().await.expect("stand-in");
    let f = sagemaker_app(pool, &standin).await;
    let app = &f.app;
    let id = launch_image_job(&f, "once").await;
    // The worker dies after SageMaker created the job, before it recorded that.
    let created = standin.hold_next_create();
    let state = app.state.clone();
    let worker = tokio::spawn(async move { app::training::engine::launch_due(&state).await });
    created.await.expect("the create call reached SageMaker");
    worker.abort();
    assert!(worker.await.is_err(), "the worker was killed mid-call");
    let row = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}"), &f.member, None).await.json();
    assert_eq!(row["status"], "requested", "nothing recorded yet");
    // Restart: the next worker retries, hits "already exists", sees our tag.
    let launched = app::training::engine::launch_due(&app.state).await.expect("launch");
    assert_eq!(launched, 1);
    assert_eq!(standin.job_names().len(), 1);
    assert_eq!(standin.calls("CreateTrainingJob"), 2);
    assert_eq!(standin.calls("ListTags"), 1);
    let row = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}"), &f.member, None).await.json();
    assert_eq!(row["status"], "starting");
    let engine_name = row["engine_name"].as_str().expect("name");
    let request = standin.request(engine_name).expect("created");
    assert_eq!(request["Tags"][0], json!({"Key": "capstan:job-id", "Value": id}));
    assert_eq!(request["RoleArn"], "arn:aws:iam::123456789012:role/SageMakerTraining");
    // Further passes change nothing.
    app::training::engine::launch_due(&app.state).await.expect("launch");
    assert_eq!(standin.calls("CreateTrainingJob"), 2);
}

/// SageMaker refusing a job (quota, access, validation) ends it as failed
/// with the AWS code and message on the job, and no SageMaker job exists.
#[sqlx::test(migrations = "../migrations")]
async fn an_aws_error_on_create_is_shown_on_the_job_and_creates_nothing(pool: PgPool) {
    let standin = training::standin::StandIn::start().await.expect("stand-in");
    let f = sagemaker_app(pool, &standin).await;
    let app = &f.app;
    let id = launch_image_job(&f, "quota").await;
    let message = "The account-level service limit 'ml.m5.xlarge for training job usage' is 0 Instances";
    standin.fail_next_create("ResourceLimitExceeded", message);
    app::training::engine::launch_due(&app.state).await.expect("launch pass");
    let job = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}"), &f.member, None).await.json();
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error_code"], "ResourceLimitExceeded", "{job}");
    assert!(job["failure_reason"].as_str().is_some_and(|r| r.contains(message)), "{job}");
    assert!(standin.job_names().is_empty(), "nothing half-created");
    // a failed launch is final: later passes do not retry it
    app::training::engine::launch_due(&app.state).await.expect("launch pass");
    assert_eq!(standin.calls("CreateTrainingJob"), 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn reconciling_250_jobs_costs_calls_per_page_not_per_job(pool: PgPool) {
    let standin = training::standin::StandIn::start().await.expect("stand-in");
    let f = sagemaker_app(pool, &standin).await;
    let app = &f.app;
    for i in 0..250 {
        let res = app
            .call(Method::POST, "/api/v1/teams/ml/training-jobs", &f.member, Some(image_job(&format!("job-{i}"))))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    }
    while app::training::engine::launch_due(&app.state).await.expect("launch") > 0 {}
    assert_eq!(standin.job_names().len(), 250);
    // The first cycle learns every job's LastModifiedTime.
    let first = app::training::engine::reconcile(&app.state).await.expect("reconcile");
    assert_eq!((first.in_flight, first.list_calls), (250, 3));
    // Nothing changed: three pages of 100, no describes.
    standin.reset_calls();
    let quiet = app::training::engine::reconcile(&app.state).await.expect("reconcile");
    assert_eq!((quiet.list_calls, quiet.describe_calls), (3, 0));
    assert_eq!(standin.total_calls(), 3);
    // Five jobs move on: five describes on top of the pages.
    let names = standin.job_names();
    for name in names.iter().take(4) {
        standin.set_status(name, "InProgress", "Training", None);
    }
    standin.set_status(&names[4], "Failed", "Failed", Some("AlgorithmError: out of memory"));
    standin.reset_calls();
    let busy = app::training::engine::reconcile(&app.state).await.expect("reconcile");
    assert_eq!((busy.list_calls, busy.describe_calls, busy.updated), (3, 5, 5));
    assert_eq!(standin.total_calls(), 8);
    assert_eq!(app.count("select count(*) from training_job where status = 'training'").await, 4);
    let failed = sqlx::query_scalar::<_, String>("select failure_reason from training_job where status = 'failed'")
        .fetch_one(&app.pool)
        .await
        .expect("failed job");
    assert_eq!(failed, "AlgorithmError: out of memory");
    // Throttling is reported so the worker backs off.
    standin.throttle(10);
    assert!(matches!(
        app::training::engine::reconcile(&app.state).await,
        Err(app::training::engine::StepError::Throttled(_))
    ));
    // Stop goes to SageMaker's StopTrainingJob.
    let id = sqlx::query_scalar::<_, uuid::Uuid>("select job_id from training_job where status = 'training' limit 1")
        .fetch_one(&app.pool)
        .await
        .expect("job");
    standin.throttle(0);
    let res = app.call(Method::POST, &format!("/api/v1/training-jobs/{id}/stop"), &f.member, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(standin.calls("StopTrainingJob"), 1);
    app::training::engine::reconcile(&app.state).await.expect("reconcile");
    let row = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}"), &f.member, None).await.json();
    assert_eq!(row["status"], "stopped");
}

#[sqlx::test(migrator = "server::MIGRATOR")]
async fn the_database_and_the_app_agree_on_which_statuses_are_final(pool: PgPool) {
    for status in TrainingStatus::ALL {
        let sql: bool = sqlx::query_scalar("select training_status_is_final($1::text::training_status)")
            .bind(status.as_str())
            .fetch_one(&pool)
            .await
            .expect("query");
        assert_eq!(sql, status.is_final(), "{status}");
    }
    // and every status the database knows is one the app knows
    let known: Vec<String> = sqlx::query_scalar("select unnest(enum_range(null::training_status))::text")
        .fetch_all(&pool)
        .await
        .expect("query");
    let ours: Vec<String> = TrainingStatus::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    assert_eq!(known, ours);
}

/// Another Capstan process on the same database and bucket as `app`: its
/// own instance id and its own local runner (its own machine's folder).
fn second_local_process(app: &TestApp, root: &std::path::Path, max_jobs: usize) -> app::kernel::state::AppState {
    let runner = training::local::LocalRunner::new(
        training::local::LocalConfig {
            root: root.to_owned(),
            sandbox: common::sandbox().clone(),
            max_jobs,
            stop_grace: std::time::Duration::from_secs(3),
        },
        app.s3().clone(),
    );
    app::kernel::state::AppState { instance: uuid::Uuid::now_v7(), training: Arc::new(runner), ..app.state.clone() }
}

/// Jobs by status, as in the database.
async fn statuses(app: &TestApp) -> std::collections::BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>("select status::text, count(*) from training_job group by 1")
        .fetch_all(&app.pool)
        .await
        .expect("statuses")
        .into_iter()
        .collect()
}

/// Two processes share the queue: each launches only what its runner can
/// run, no job runs twice, and when one dies the other runs its job again
/// from the start (a local job dies with its process) and finishes the rest.
#[sqlx::test(migrations = "../migrations")]
async fn two_processes_run_each_local_job_once_and_run_a_dead_ones_job_again(pool: PgPool) {
    let f = fixture(TestApp::new(pool).await).await;
    let app = &f.app;
    let res = common::upload_source(app, &f.member, "ml", &[("train.py", TRAIN)]).await;
    let source = res.json()["source_uri"].as_str().expect("uri").to_owned();
    let here = app.state.clone(); // one slot (TestApp's runner)
    let there_dir = common::TempDir::new();
    let there = second_local_process(app, &there_dir.0, 2);
    for i in 0..20 {
        launch_as_member(&f, &format!("job-{i}"), &source, json!([{"key": "epochs", "value": "2"}])).await;
    }
    // both look for work at once: each takes what it has room for, no job twice
    let (a, b) = tokio::join!(app::training::engine::launch_due(&here), app::training::engine::launch_due(&there));
    assert_eq!((a.expect("here"), b.expect("there")), (1, 2));
    let owners: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "select lease_owner, engine_name from training_job where status <> 'requested' order by lease_owner",
    )
    .fetch_all(&app.pool)
    .await
    .expect("owners");
    assert_eq!(owners.iter().filter(|(o, _)| *o == here.instance).count(), 1, "{owners:?}");
    assert_eq!(owners.iter().filter(|(o, _)| *o == there.instance).count(), 2, "{owners:?}");
    let killed = owners.iter().find(|(o, _)| *o == here.instance).map(|(_, n)| n.clone()).expect("here's job");

    // `here` dies: its script dies with it, and its lease runs out
    here.training.stop(&killed).await.expect("stop the script");
    sqlx::query("update training_job set lease_until = now() - interval '1 second' where lease_owner = $1")
        .bind(here.instance)
        .execute(&app.pool)
        .await
        .expect("lapse");
    // `there` takes the job over and runs everything
    for _ in 0..1800 {
        app::training::engine::reconcile(&there).await.expect("reconcile");
        app::training::engine::launch_due(&there).await.expect("launch");
        app::training::engine::follow_logs(&there).await.expect("logs");
        if statuses(app).await.get("completed") == Some(&20) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(statuses(app).await, [("completed".to_owned(), 20)].into(), "every job completed");
    // each job ran once in `there`'s folder; `here` ran only the one it was killed on
    assert_eq!(std::fs::read_dir(there_dir.0.join("jobs")).expect("jobs").count(), 20);
    let here_jobs: Vec<String> = std::fs::read_dir(app.work_dir.0.join("jobs"))
        .expect("jobs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(here_jobs, std::slice::from_ref(&killed));
    // the job taken over says so in its log, then holds one whole run
    let (id, restarts): (uuid::Uuid, i32) =
        sqlx::query_as("select job_id, restarts from training_job where engine_name = $1")
            .bind(&killed)
            .fetch_one(&app.pool)
            .await
            .expect("job");
    assert_eq!(restarts, 1);
    assert_eq!(app.count("select count(*) from training_job where restarts > 0").await, 1);
    let text = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}/logs?format=text"), &f.viewer, None).await;
    let text = text.text();
    assert_eq!(text.matches("runs again from the start").count(), 1, "{text}");
    assert_eq!(text.matches("model written to").count(), 1, "{text}");
    let job = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}"), &f.viewer, None).await.json();
    assert!(job["artifact_uri"].as_str().is_some_and(|u| u.ends_with("/output/model.tar.gz")), "{job}");
}

/// On SageMaker, jobs outlive the process that launched them: two processes
/// create each job once, and when one dies the other follows its jobs on
/// without creating anything again.
#[sqlx::test(migrations = "../migrations")]
async fn two_processes_create_each_sagemaker_job_once_and_follow_a_dead_ones_jobs(pool: PgPool) {
    let standin = training::standin::StandIn::start().await.expect("stand-in");
    let f = sagemaker_app(pool, &standin).await;
    let app = &f.app;
    for i in 0..20 {
        launch_image_job(&f, &format!("job-{i}")).await;
    }
    let here = app.state.clone();
    let there = app::kernel::state::AppState { instance: uuid::Uuid::now_v7(), ..here.clone() };
    let (a, b) = tokio::join!(app::training::engine::launch_due(&here), app::training::engine::launch_due(&there));
    let (a, b) = (a.expect("here"), b.expect("there"));
    assert_eq!(a + b, 20, "each job launched once: {a} here, {b} there");
    assert_eq!(standin.calls("CreateTrainingJob"), 20, "one create call per job");
    assert_eq!(standin.job_names().len(), 20);
    // each follows only its own jobs
    let (x, y) = tokio::join!(app::training::engine::reconcile(&here), app::training::engine::reconcile(&there));
    assert_eq!(x.expect("here").in_flight + y.expect("there").in_flight, 20);
    // `here` dies; once its leases run out, `there` follows every job
    sqlx::query("update training_job set lease_until = now() - interval '1 second' where lease_owner = $1")
        .bind(here.instance)
        .execute(&app.pool)
        .await
        .expect("lapse");
    for name in standin.job_names() {
        standin.set_status(&name, "Completed", "Completed", None);
    }
    let stats = app::training::engine::reconcile(&there).await.expect("reconcile");
    assert_eq!((stats.in_flight, stats.updated), (20, 20));
    assert_eq!(statuses(app).await, [("completed".to_owned(), 20)].into());
    assert_eq!(standin.calls("CreateTrainingJob"), 20, "nothing was created again");
    assert_eq!(app.count("select count(*) from training_job where restarts > 0").await, 0);
}
