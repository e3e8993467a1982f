//! Two replicas, as a deployment runs them: two `capstan serve` processes
//! (the binary the run command builds) on one database and one data folder.
//! Dataset scans and local training jobs sent to either are each done once,
//! and when one process is killed (SIGKILL, mid-way through its work), the
//! other takes its scans and jobs over once their leases run out, and
//! finishes everything.

mod common;

use serde_json::{Value, json};
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";

/// The URL of the test's own database: `DATABASE_URL` with its database name.
async fn database_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("select current_database()").fetch_one(pool).await.expect("name");
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (base, query) = url.split_once('?').map_or((url.as_str(), None), |(b, q)| (b, Some(q)));
    let (server, _) = base.rsplit_once('/').expect("a database URL");
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `capstan <args>` against the test database and data folder.
fn capstan(db: &str, data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_capstan"));
    cmd.env("DATABASE_URL", db)
        .env("CAPSTAN_DATA_DIR", data)
        .env("CAPSTAN_MODE", "local")
        .env("CAPSTAN_LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        .env_remove("CAPSTAN_PUBLIC_URL");
    cmd
}

/// One `capstan serve` (or `capstan demo`) process and its log.
struct Replica {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Replica {
    async fn start(db: &str, data: &Path, name: &str, args: &[&str]) -> Self {
        let port = free_port();
        let log = data.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log");
        let child = capstan(db, data)
            .args(args)
            .env("CAPSTAN_ADDR", format!("127.0.0.1:{port}"))
            .env("CAPSTAN_LOCAL_S3_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("CAPSTAN_LOCAL_MAX_JOBS", "2")
            .env("CAPSTAN_TRAINING_POLL_SECS", "1")
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start capstan");
        let replica = Self { child, url: format!("http://127.0.0.1:{port}"), log };
        let deadline = Instant::now() + Duration::from_secs(120);
        while http(&replica.url, "GET", "/healthz", None, None).await.map(|(s, _)| s) != Some(200) {
            assert!(Instant::now() < deadline, "{name} did not start:\n{}", replica.log_text());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        replica
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, body) =
            http(&self.url, method, &format!("/api/v1{path}"), Some(token), body).await.expect("answer");
        assert!((200..300).contains(&status), "{method} {path}: {status} {body}");
        serde_json::from_str(&body).unwrap_or(Value::Null)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small HTTP/1.1 client (one request per connection): status and body.
async fn http(base: &str, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, rest) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(rest) } else { rest.to_owned() };
    Some((status, body))
}

fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

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

    // replica A also makes the demo (a team, a dataset, a job); B joins
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
        let running =
            count(&pool, "select count(*) from training_job where not training_status_is_final(status)").await;
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
    assert_eq!(outcomes.len(), 21);
    for (name, status, runs) in &outcomes {
        assert_eq!((status.as_str(), *runs), ("completed", 1), "job {name}: {outcomes:?}");
    }
    let b_log = b.log_text();
    assert!(!b_log.contains("panicked"), "{b_log}");
    let taken = count(&pool, "select count(*) from training_job where restarts > 0").await;
    eprintln!("jobs A was running when it was killed, run again by B: {taken}");
}
