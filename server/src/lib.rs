//! The `capstan` server: wiring of the web app, REST API, operational
//! endpoints and background workers. `main.rs` only reads config and calls in.
#![recursion_limit = "256"]

pub mod anchors;
pub mod api;
pub mod config;
pub mod engines;
pub mod gateway;
pub mod localdb;
pub mod metrics;
pub mod objects;
pub mod security;
pub mod workers;

use app::kernel::state::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, ResponseOptions, generate_route_list};
use std::sync::Arc;
use std::time::Duration;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

/// `examples/train.py`, served for the launch form's "where does a script come from".
const EXAMPLE_TRAIN: &str = include_str!("../../examples/train.py");

/// The embedded migrations (applied by `serve` and `migrate`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// How the HTTP layer behaves; filled from [`config::Config`].
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub secure_cookies: bool,
    pub session_idle: time::Duration,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// `CAPSTAN_PUBLIC_URL`'s origin, trusted by the CSRF check.
    pub public_origin: Option<String>,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>`.
    pub metrics_token: Option<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            session_idle: time::Duration::hours(12),
            max_body_bytes: 2 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            public_origin: None,
            metrics_token: None,
        }
    }
}

/// Builds application state around a migrated pool.
pub fn state(
    pool: sqlx::PgPool,
    site_root: &str,
    settings: app::kernel::state::Settings,
    storage: storage::Storage,
    training: Arc<dyn training::Backend>,
) -> AppState {
    // scripts/build.sh names the bundle files by content hash and lists them in hash.txt.
    let hash_file = std::path::Path::new(site_root).join("hash.txt");
    let leptos_options = LeptosOptions::builder()
        .output_name("capstan")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .hash_files(hash_file.exists())
        .hash_file(std::sync::Arc::from(hash_file.to_string_lossy().as_ref()))
        .build();
    AppState {
        pool,
        leptos_options: std::sync::Arc::new(leptos_options),
        settings: Arc::new(settings),
        setup_token: Arc::new(std::sync::Mutex::new(None)),
        storage: std::sync::Arc::new(storage),
        training,
        training_wake: Arc::new(tokio::sync::Notify::new()),
        packages: None,
        serving: None,
        serving_wake: Arc::new(tokio::sync::Notify::new()),
        rollouts_wake: Arc::new(tokio::sync::Notify::new()),
        traffic: Arc::default(),
        captures: Arc::default(),
        open_streams: Arc::default(),
        instance: uuid::Uuid::now_v7(),
        cache: Arc::default(),
    }
}

/// Creates the session table (tower-sessions' own schema) if missing.
pub async fn migrate_sessions(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    use anyhow::Context as _;
    PostgresStore::new(pool.clone()).migrate().await.context("failed to create the session table")
}

/// The whole HTTP application: pages, server functions, REST API, docs,
/// health and metrics, behind the security and observability layers.
pub fn router(state: AppState, opts: &HttpOptions) -> Router {
    let metrics = metrics::Metrics::default();
    let (api, openapi) = api::router();

    let leptos_options = state.leptos_options.clone();
    let store_origin = state.storage.browser_origin().to_owned();
    let routes = generate_route_list(app::App);
    // Every page, the 404 page included, carries a nonce for its scripts and the CSP that allows it.
    let shell = move |options: LeptosOptions| {
        if let (Some(nonce), Some(res)) = (leptos::nonce::use_nonce(), use_context::<ResponseOptions>())
            && let Ok(v) = http::HeaderValue::from_str(&security::page_csp(&nonce, &store_origin))
        {
            res.insert_header(http::header::CONTENT_SECURITY_POLICY, v);
        }
        app::shell(options)
    };
    let page_shell = shell.clone();
    let pages = Router::<AppState>::new()
        .leptos_routes_with_context(&state, routes, leptos::nonce::provide_nonce, move || {
            page_shell((*leptos_options).clone())
        })
        // static files (precompressed .br/.gz when the browser accepts them), else the 404 page
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(leptos::nonce::provide_nonce, shell))
        .layer(axum::middleware::from_fn(security::cache_control))
        .layer(axum::middleware::from_fn(server_fn_status));

    let session_store = PostgresStore::new(state.pool.clone());
    let sessions = SessionManagerLayer::new(session_store)
        .with_name("capstan_session")
        .with_secure(opts.secure_cookies)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(opts.session_idle));

    let ops = Router::<AppState>::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        // the example script the launch form offers (it runs as is, locally or on SageMaker)
        .route(
            "/examples/train.py",
            get(|| async { ([(http::header::CONTENT_TYPE, "text/x-python; charset=utf-8")], EXAMPLE_TRAIN) }),
        )
        .route(
            "/metrics",
            get({
                let metrics = metrics.clone();
                let token = opts.metrics_token.clone();
                move |State(state): State<AppState>, headers: http::HeaderMap| async move {
                    use axum::response::IntoResponse as _;
                    let allowed = token.as_deref().is_none_or(|t| {
                        matches!(app::kernel::context::credentials(&headers), app::kernel::context::Credentials::Bearer(s)
                            if app::accounts::domain::constant_time_eq(s.as_bytes(), t.as_bytes()))
                    });
                    if !allowed {
                        return app::kernel::error::AppError::Unauthenticated.into_response();
                    }
                    let text = metrics.render(&state.pool)
                        + &metrics::render_traffic(&state.traffic)
                        + &metrics::render_capture(&state.captures);
                    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
                }
            }),
        );

    // Serves the document at /api/v1/openapi.json and the reference UI at /api/docs.
    let docs: Router<AppState> =
        utoipa_swagger_ui::SwaggerUi::new("/api/docs").url("/api/v1/openapi.json", openapi).into();

    let request_id = http::HeaderName::from_static("x-request-id");
    let site = Router::new()
        .merge(ops)
        .merge(docs)
        .merge(api)
        .merge(api::mlflow::router())
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(security::PublicOrigin(opts.public_origin.clone()), security::csrf))
        .layer(sessions)
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(opts.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, opts.request_timeout));
    let https = security::Https(opts.public_origin.as_deref().is_some_and(|o| o.starts_with("https://")));
    let site = site
        .layer(axum::middleware::from_fn_with_state(https, security::headers))
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::track))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::from_fn(security::server_request_id));
    // the gateway keeps SageMaker's limits (6 MB, 60 s), needs no session, and
    // is the hot path: it has a lighter stack of its own (gateway::frame)
    Router::new().merge(site).merge(gateway::router(https)).with_state(state)
}

/// Server-function errors raised before our code runs (undecodable arguments)
/// leave `server_fn`'s blanket 500; give them the status their [`AppError`] names.
/// Plain form posts keep their redirect.
async fn server_fn_status(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    // a plain form post (no JavaScript) asks for HTML; the browser's script asks for JSON
    let form_post =
        req.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    let mut res = next.run(req).await;
    // A form posted without JavaScript is sent back to its page (with the
    // error in the URL, for the page to show); a status the function set must
    // not turn that redirect into a raw error body.
    if form_post && res.headers().contains_key(http::header::LOCATION) && !res.status().is_redirection() {
        *res.status_mut() = StatusCode::SEE_OTHER;
        return res;
    }
    // only a server function's own error (marked by server_fn's header) is
    // read; any other 500 (a page, a stream) passes through untouched
    let own_error = res.headers().contains_key(leptos::server_fn::error::SERVER_FN_ERROR_HEADER);
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR || !own_error {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    // our own serialized error: small, and never cut (a cut body would be lost)
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    };
    if let Ok(err) = serde_json::from_slice::<app::kernel::error::AppError>(&bytes)
        && let Ok(status) = StatusCode::from_u16(err.status())
    {
        parts.status = status;
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Ready when the database answers, every migration is applied, and the bucket answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if !state.storage.reachable().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "object storage unreachable");
    }
    let applied: Result<i64, _> =
        sqlx::query_scalar("select count(*) from _sqlx_migrations where success").fetch_one(&state.pool).await;
    match applied {
        Ok(n) if usize::try_from(n).unwrap_or(0) >= MIGRATOR.iter().count() => (StatusCode::OK, "ready"),
        Ok(_) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}
