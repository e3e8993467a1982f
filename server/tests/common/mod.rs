//! Test harness: a router over a fresh database (from `#[sqlx::test]`),
//! users with sessions and tokens, and one-line requests.

#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt as _;
use uuid::Uuid;

pub mod process;

pub struct TestApp {
    pub router: Router,
    pub pool: PgPool,
    pub state: app::kernel::state::AppState,
    /// The local S3 endpoint behind `state.storage` (a fresh folder per test).
    pub s3: Option<storage::local::LocalS3>,
    s3_dir: TempDir,
    /// The local training runner's folder (jobs and virtual environments).
    pub work_dir: TempDir,
}

/// A second process of a [`TestApp`]: see [`TestApp::replica`].
#[allow(dead_code)]
pub struct Replica {
    pub router: axum::Router,
    pub state: app::kernel::state::AppState,
}

#[allow(dead_code)]
impl Replica {
    pub async fn call(&self, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> Response {
        send_to(&self.router, rest_request(method, path, auth, body)).await
    }
}

/// Starts the cache invalidation listener of `state`'s process, as `capstan
/// serve` does, and waits until it listens.
#[allow(dead_code)]
pub async fn listen(state: &app::kernel::state::AppState) -> tokio::task::JoinHandle<()> {
    let task = tokio::spawn(app::kernel::cache::listen(state.pool.clone(), state.cache.clone()));
    for _ in 0..500 {
        if state.cache.is_live() {
            return task;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the cache listener did not connect");
}

async fn send_to(router: &axum::Router, req: Request<Body>) -> Response {
    let res = router.clone().oneshot(req).await.expect("router is infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.expect("body").to_bytes().to_vec();
    Response { status, headers, body }
}

fn rest_request(method: Method, path: &str, auth: &Auth, body: Option<Value>) -> Request<Body> {
    let b = TestApp::builder(method, path, auth);
    match body {
        Some(v) => {
            b.header(header::CONTENT_TYPE, "application/json").body(Body::from(serde_json::to_vec(&v).expect("json")))
        }
        None => b.body(Body::empty()),
    }
    .expect("request")
}

/// A temporary folder removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let n = uuid::Uuid::now_v7();
        let p = std::env::temp_dir().join(format!("capstan-test-{n}"));
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A user with both kinds of credentials.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub password: String,
    pub token: String,
    pub cookie: String,
}

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Bearer(String),
    Cookie(String),
}

pub struct Response {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, String::from_utf8_lossy(&self.body))
    }
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    pub async fn new(pool: PgPool) -> Self {
        Self::with_settings(pool, app::kernel::state::Settings::default(), server::HttpOptions::default()).await
    }

    pub async fn with_settings(
        pool: PgPool,
        settings: app::kernel::state::Settings,
        opts: server::HttpOptions,
    ) -> Self {
        let s3_dir = TempDir::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let s3 = storage::local::LocalS3::start(&s3_dir.0, listener, ("test-key", "test-secret"), vec![])
            .await
            .expect("local S3");
        let config = storage::S3Config {
            endpoint: Some(s3.endpoint()),
            region: Some("us-east-1".into()),
            credentials: Some(("test-key".into(), "test-secret".into())),
            force_path_style: true,
        };
        let storage = storage::Storage::new(&config, None, "capstan").await;
        storage::ensure_bucket(&storage.client, "capstan").await.expect("bucket");
        let mut app = Self::with_storage(pool, settings, opts, storage).await;
        app.s3 = Some(s3);
        app.s3_dir = s3_dir;
        app
    }

    /// An app whose bucket is `storage` (AWS mode against an emulator).
    pub async fn with_storage(
        pool: PgPool,
        settings: app::kernel::state::Settings,
        opts: server::HttpOptions,
        storage: storage::Storage,
    ) -> Self {
        let work_dir = TempDir::new();
        let runner = training::local::LocalRunner::new(
            training::local::LocalConfig {
                root: work_dir.0.clone(),
                sandbox: sandbox().clone(),
                max_jobs: 1,
                stop_grace: std::time::Duration::from_secs(3),
            },
            storage.client.clone(),
        );
        let mut app = Self::with_backend(pool, settings, opts, storage, std::sync::Arc::new(runner)).await;
        app.work_dir = work_dir;
        app
    }

    /// An app whose training engine is `backend` (SageMaker against an emulator or stand-in).
    pub async fn with_backend(
        pool: PgPool,
        settings: app::kernel::state::Settings,
        opts: server::HttpOptions,
        storage: storage::Storage,
        backend: std::sync::Arc<dyn training::Backend>,
    ) -> Self {
        server::migrate_sessions(&pool).await.expect("session table");
        app::training::prices::seed(&pool).await.expect("prices");
        let state = server::state(pool.clone(), "target/site", settings, storage, backend);
        let router = server::router(state.clone(), &opts);
        Self { router, pool, state, s3: None, s3_dir: TempDir::new(), work_dir: TempDir::new() }
    }

    /// The same app (database, bucket) with another training engine and settings.
    pub fn with_engine(
        mut self,
        backend: std::sync::Arc<dyn training::Backend>,
        settings: app::kernel::state::Settings,
    ) -> Self {
        let state = app::kernel::state::AppState {
            training: backend,
            settings: std::sync::Arc::new(settings),
            ..self.state.clone()
        };
        self.router = server::router(state.clone(), &server::HttpOptions::default());
        self.state = state;
        self
    }

    /// The same app with SageMaker's model registry mirrored (AWS mode).
    pub fn with_packages(mut self, packages: std::sync::Arc<dyn training::packages::ModelPackages>) -> Self {
        let state = app::kernel::state::AppState { packages: Some(packages), ..self.state.clone() };
        self.router = server::router(state.clone(), &server::HttpOptions::default());
        self.state = state;
        self
    }

    /// The same app with the local serving runner (its folder under the
    /// work folder), as `capstan serve` has in local mode.
    pub fn with_serving(mut self) -> Self {
        let local = serving::local::LocalServing::new(
            serving::local::LocalServingConfig { root: self.work_dir.0.join("serving"), sandbox: sandbox().clone() },
            self.state.storage.client.clone(),
        )
        .expect("local serving");
        let state = app::kernel::state::AppState { serving: Some(std::sync::Arc::new(local)), ..self.state.clone() };
        self.router = server::router(state.clone(), &server::HttpOptions::default());
        self.state = state;
        self
    }

    /// The same app with this serving backend (SageMaker's, in AWS-mode tests).
    pub fn with_serving_backend(mut self, backend: std::sync::Arc<dyn serving::Serving>) -> Self {
        let state = app::kernel::state::AppState { serving: Some(backend), ..self.state.clone() };
        self.router = server::router(state.clone(), &server::HttpOptions::default());
        self.state = state;
        self
    }

    /// The S3 client Capstan itself uses.
    pub fn s3(&self) -> &storage::aws_sdk_s3::Client {
        &self.state.storage.client
    }

    /// Writes an object into a bucket.
    pub async fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.s3()
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(storage::aws_sdk_s3::primitives::ByteStream::from(body.into()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }

    /// Polls `path` (REST, as `auth`) until `done` holds for its JSON, for up to a minute.
    pub async fn wait_for(&self, path: &str, auth: &Auth, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..600 {
            let res = self.call(Method::GET, path, auth, None).await;
            assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.text());
            let body = res.json();
            if done(&body) {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("{path} did not reach the expected state");
    }

    /// Creates a user directly (as the CLI would), then signs in through the
    /// login server function and creates a token through the REST API.
    pub async fn user(&self, email: &str, site_admin: bool) -> TestUser {
        let input = app::accounts::domain::NewUser::parse(email, email, PASSWORD, site_admin).expect("valid user");
        let actor = app::kernel::audit::AuditActor { user_id: None, token_id: None, label: "test".into() };
        let id = app::accounts::domain::create_user(&self.pool, &actor, &Default::default(), input)
            .await
            .expect("create user");
        let cookie = self.login(email, PASSWORD).await.expect("login succeeds");
        let res = self
            .call(
                Method::POST,
                "/api/v1/tokens",
                &Auth::Cookie(cookie.clone()),
                Some(serde_json::json!({"name": "test"})),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "token create: {}", res.text());
        let token = res.json()["secret"].as_str().expect("secret").to_owned();
        TestUser { id, email: email.to_owned(), password: PASSWORD.to_owned(), token, cookie }
    }

    /// Signs in; returns the session cookie, or the failed response.
    pub async fn login(&self, email: &str, password: &str) -> Result<String, Response> {
        let res = self.server_fn("login", &Auth::None, &[("email", email), ("password", password)]).await;
        if !res.status.is_success() && !res.status.is_redirection() {
            return Err(res);
        }
        let cookie = res
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("capstan_session="))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        cookie.ok_or(res)
    }

    pub async fn send(&self, req: Request<Body>) -> Response {
        send_to(&self.router, req).await
    }

    /// Another Capstan process on the same database and bucket, with its own
    /// cache and instance id.
    #[allow(dead_code)]
    pub fn replica(&self) -> Replica {
        let state = app::kernel::state::AppState {
            instance: uuid::Uuid::now_v7(),
            cache: std::sync::Arc::default(),
            ..self.state.clone()
        };
        Replica { router: server::router(state.clone(), &server::HttpOptions::default()), state }
    }

    fn builder(method: Method, path: &str, auth: &Auth) -> http::request::Builder {
        let b = Request::builder().method(method).uri(path);
        match auth {
            Auth::None => b,
            Auth::Bearer(t) => b.header(header::AUTHORIZATION, format!("Bearer {t}")),
            Auth::Cookie(c) => b.header(header::COOKIE, c.as_str()),
        }
    }

    /// A REST call with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> Response {
        self.send(rest_request(method, path, auth, body)).await
    }

    /// Calls a server function as the browser's JavaScript does (form-encoded POST).
    pub async fn server_fn(&self, name: &str, auth: &Auth, args: &[(&str, &str)]) -> Response {
        let body = args.iter().map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))).collect::<Vec<_>>().join("&");
        let req = Self::builder(Method::POST, &format!("/rpc/{name}"), auth)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Body::from(body))
            .expect("request");
        self.send(req).await
    }

    pub async fn audit_count(&self, action: &str) -> i64 {
        sqlx::query_scalar("select count(*) from audit_event where action = $1")
            .bind(action)
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.expect("count")
    }

    /// Creates team `slug` (named as its slug) as `admin`, who becomes its
    /// admin, and adds each `(email, role)` member. Every test that needs a
    /// team makes it here.
    pub async fn team_with_members(&self, slug: &str, admin: &Auth, members: &[(&str, &str)]) {
        let res = self
            .call(Method::POST, "/api/v1/teams", admin, Some(serde_json::json!({"slug": slug, "name": slug})))
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        for (email, role) in members {
            self.add_member(slug, admin, email, role).await;
        }
    }

    /// Adds `email` to team `slug` with `role`, as the team's `admin`.
    pub async fn add_member(&self, slug: &str, admin: &Auth, email: &str, role: &str) {
        let path = format!("/api/v1/teams/{slug}/members");
        let res = self.call(Method::POST, &path, admin, Some(serde_json::json!({"email": email, "role": role}))).await;
        assert_eq!(res.status, StatusCode::CREATED, "adding {email}: {}", res.text());
    }
}

/// A source folder packed as SageMaker's `sourcedir.tar.gz`: each `(path, body)`.
#[allow(dead_code)] // not every test file packs sources
pub fn source_archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, body) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, *body).expect("tar");
    }
    tar.into_inner().expect("tar").finish().expect("gzip")
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Sends `body` with a raw HTTP/1.1 PUT to a presigned URL, as a browser
/// would; returns the status and the ETag header.
pub async fn presigned_put(url: &str, body: &[u8]) -> (u16, Option<String>) {
    let (status, head, _) = presigned("PUT", url, body).await;
    let etag = head.lines().find_map(|l| {
        l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("etag")).map(|(_, v)| v.trim().to_owned())
    });
    (status, etag)
}

/// GETs a presigned URL as a browser would: the status and the body.
#[allow(dead_code)]
pub async fn presigned_get(url: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = presigned("GET", url, b"").await;
    (status, body)
}

/// One HTTP/1.1 request to a presigned URL, sent as it is (no client that
/// could re-encode it): the status, the response head and the body.
async fn presigned(method: &str, url: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("path");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let head = format!(
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").map_or(out.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, out[split..].to_vec())
}

/// Local runs go through the same sandbox as in `capstan serve` (detected
/// once per test binary: bubblewrap must be installed, as the setup does).
pub fn sandbox() -> &'static training::sandbox::Sandbox {
    static SANDBOX: std::sync::OnceLock<training::sandbox::Sandbox> = std::sync::OnceLock::new();
    SANDBOX.get_or_init(|| {
        let python = std::env::var("CAPSTAN_PYTHON").unwrap_or_else(|_| "python3".into());
        training::sandbox::Sandbox::detect(&python, false).expect("the training sandbox (bubblewrap)")
    })
}

/// A dataset `name` of `team` with one ready version holding the demo CSV; its id.
#[allow(dead_code)] // not every test file trains
pub async fn ready_version(app: &TestApp, auth: &Auth, team: &str, name: &str) -> String {
    let res =
        app.call(Method::POST, &format!("/api/v1/teams/{team}/datasets"), auth, Some(json!({"name": name}))).await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let dataset = res.json()["id"].as_str().expect("id").to_owned();
    app.put("capstan", &format!("datasets/{team}/{name}/raw/train.csv"), app::training::demo::churn_csv(200)).await;
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/datasets/{dataset}/versions"),
            auth,
            Some(json!({"source_uri": format!("s3://capstan/datasets/{team}/{name}/raw/")})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let id = res.json()["id"].as_str().expect("id").to_owned();
    app.wait_for(&format!("/api/v1/dataset-versions/{id}"), auth, |v| v["status"] == "ready").await;
    id
}

/// Uploads a source folder of `team` through the REST multipart route.
#[allow(dead_code)]
pub async fn upload_source(app: &TestApp, auth: &Auth, team: &str, files: &[(&str, &str)]) -> Response {
    let boundary = "capstan-test-boundary";
    let mut body = Vec::new();
    for (path, content) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path}\"\r\nContent-Type: application/octet-stream\r\n\r\n{content}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut req = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/teams/{team}/training-sources"))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"));
    if let Auth::Bearer(t) = auth {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    app.send(req.body(axum::body::Body::from(body)).expect("request")).await
}

/// A script-mode launch of `examples/train.py` on `version`.
#[allow(dead_code)]
pub fn launch_body(name: &str, source: &str, version: &str, hps: Value) -> Value {
    json!({
        "name": name,
        "entry_point": "train.py",
        "source_uri": source,
        "instance_type": "ml.m5.large",
        "max_runtime_seconds": 600,
        "hyperparameters": hps,
        "metric_definitions": [
            {"name": "loss", "regex": "loss=([0-9.]+)"},
            {"name": "accuracy", "regex": "accuracy=([0-9.]+)"}
        ],
        "channels": [{"name": "train", "version_id": version}],
        "tags": [{"key": "project", "value": "churn"}]
    })
}

/// Whether a job as the API returns it has finished.
#[allow(dead_code)]
pub fn finished(job: &Value) -> bool {
    job["status"]
        .as_str()
        .and_then(|s| s.parse::<app::training::types::TrainingStatus>().ok())
        .is_some_and(app::training::types::TrainingStatus::is_final)
}

/// Runs the worker's steps until `done` holds for the job (up to 90 s).
#[allow(dead_code)]
pub async fn drive(app: &TestApp, auth: &Auth, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..900 {
        app::training::engine::launch_due(&app.state).await.expect("launch");
        app::training::engine::reconcile(&app.state).await.expect("reconcile");
        app::training::engine::follow_logs(&app.state).await.expect("logs");
        let job = app.call(Method::GET, &format!("/api/v1/training-jobs/{id}"), auth, None).await.json();
        if done(&job) {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("job {id} did not get there");
}
