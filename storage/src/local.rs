//! Local mode's S3-compatible endpoint: `s3s` + `s3s-fs` serving a folder on
//! loopback, with CORS for the Capstan UI so browsers can upload directly.

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode};
use s3s::service::{S3Service, S3ServiceBuilder};
use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// A running local endpoint; stops when [`LocalS3::stop`] is called or it is dropped.
pub struct LocalS3 {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl LocalS3 {
    /// Serves `root` as S3 on `listener`, accepting requests signed with
    /// `credentials`, and allowing browser calls from `allowed_origins`.
    pub async fn start(
        root: &Path,
        listener: TcpListener,
        credentials: (&str, &str),
        allowed_origins: Vec<String>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).with_context(|| format!("failed to create {}", root.display()))?;
        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("failed to open {}: {e:?}", root.display()))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(credentials.0, credentials.1));
        let service = builder.build();
        let origins: Vec<HeaderValue> = allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::PUT, Method::POST, Method::HEAD, Method::DELETE])
            .allow_headers(tower_http::cors::Any)
            .expose_headers([http::header::ETAG]);
        let app = Router::new().fallback(handle).with_state(service).layer(cors);
        let addr = listener.local_addr().context("local S3 listener has no address")?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "local S3 endpoint failed");
            }
        });
        tracing::info!(%addr, root = %root.display(), "local S3 endpoint started");
        Ok(Self { addr, stop: Some(tx), task: Some(task) })
    }

    /// `http://host:port` of the endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests and waits for in-flight ones.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn handle(State(service): State<S3Service>, req: Request) -> Response {
    use tower::ServiceExt as _;
    match service.oneshot(req).await {
        Ok(res) => res.map(axum::body::Body::new).into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "local S3 request failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
