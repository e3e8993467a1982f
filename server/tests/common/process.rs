//! Real `capstan` processes for tests: the binary the run command builds,
//! started on the test's database and data folder, spoken to over HTTP.

#![allow(dead_code)] // not every test file uses every helper

use serde_json::Value;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "correct horse battery staple";

/// The URL of the test's own database: `DATABASE_URL` with its database name.
pub async fn database_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("select current_database()").fetch_one(pool).await.expect("name");
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (base, query) = url.split_once('?').map_or((url.as_str(), None), |(b, q)| (b, Some(q)));
    let (server, _) = base.rsplit_once('/').expect("a database URL");
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `capstan <args>` against the test database and data folder.
pub fn capstan(db: &str, data: &Path) -> Command {
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
pub struct Replica {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Replica {
    pub async fn start(db: &str, data: &Path, name: &str, args: &[&str]) -> Self {
        Self::start_with(db, data, name, args, &[]).await
    }

    /// [`Replica::start`] with extra environment settings.
    pub async fn start_with(db: &str, data: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = data.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log");
        let child = capstan(db, data)
            .args(args)
            .env("CAPSTAN_ADDR", format!("127.0.0.1:{port}"))
            .env("CAPSTAN_LOCAL_S3_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("CAPSTAN_LOCAL_MAX_JOBS", "2")
            .env("CAPSTAN_TRAINING_POLL_SECS", "1")
            .envs(env.iter().copied())
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

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
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
pub async fn http(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Option<(u16, String)> {
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

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}
