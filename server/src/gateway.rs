//! The gateway: `POST /endpoints/{name}/invocations`, SageMaker Runtime's
//! path and headers on Capstan's port, so SageMaker Runtime clients work
//! against Capstan unchanged, and `POST /api/v1/endpoints/{id}/invocations`
//! for scripts that address an endpoint by id. Both take a Capstan API
//! token; the first also an AWS Signature Version 4 by an invoke key. The request body may be up to 6 MB and the model has 60 seconds
//! (SageMaker's limits), whatever the site's limits for other routes.
//!
//! The gateway is the hot path: it sits outside the site's middleware stack
//! (sessions, CSRF, HTTP metrics, tracing spans) under one middleware of its
//! own ([`frame`]) that gives each invocation its request id and the
//! security headers. Its traffic is counted per endpoint and variant
//! (`capstan_endpoint_*` on `/metrics`, and the rollups).

use app::endpoints::invoke::{Failure, Invocation, Invoked};
use app::kernel::context::Ctx;
use app::kernel::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, HeaderValue, StatusCode};

const TARGET_VARIANT: &str = "x-amzn-sagemaker-target-variant";
const INVOKED_VARIANT: &str = "x-amzn-invoked-production-variant";

/// The gateway's routes, under [`frame`]; `https` as the site's.
pub fn router(https: crate::security::Https) -> Router<AppState> {
    Router::new()
        .route("/endpoints/{name}/invocations", post(by_name))
        .route("/api/v1/endpoints/{id}/invocations", post(by_id))
        // the body limit answers 413 before the body is read past 6 MB
        .layer(DefaultBodyLimit::max(serving::MAX_PAYLOAD))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(serving::MAX_PAYLOAD))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            app::endpoints::invoke::TIMEOUT + std::time::Duration::from_secs(5),
        ))
        .layer(axum::middleware::from_fn_with_state(https, frame))
}

/// What the site's stack does for every answer, in one step: a request id
/// made here (a client's own kept as `x-client-request-id`), sent back as
/// `x-request-id`, and the security headers. The id comes from the thread's
/// random generator, not a system call per request.
async fn frame(
    State(https): State<crate::security::Https>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use rand::Rng as _;
    crate::security::keep_client_request_id(req.headers_mut());
    // a UUIDv7: the time it was served travels in the invocation id
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or_default())
        .unwrap_or_default();
    let id =
        uuid::Builder::from_unix_timestamp_millis(millis, &rand::rng().random()).into_uuid().hyphenated().to_string();
    let header = HeaderValue::from_str(&id).ok();
    if let Some(h) = &header {
        req.headers_mut().insert(REQUEST_ID, h.clone());
    }
    let mut res = next.run(req).await;
    if let Some(h) = header {
        res.headers_mut().insert(REQUEST_ID, h);
    }
    // the id to report outcomes of this invocation with
    let invocation = res
        .headers()
        .get(INVOKED_VARIANT)
        .and_then(|v| v.to_str().ok())
        .and_then(|variant| HeaderValue::from_str(&app::endpoints::outcomes::invocation_id(&id, variant)).ok());
    if let Some(invocation) = invocation {
        res.headers_mut().insert(INVOCATION_ID, invocation);
    }
    crate::security::set_headers(res.headers_mut(), https);
    res
}

const REQUEST_ID: &str = "x-request-id";
/// `<request id>.<variant>`: what `POST /api/v1/endpoints/{id}/outcomes` takes as `request_id`.
const INVOCATION_ID: &str = "x-capstan-invocation-id";

fn invocation(headers: &HeaderMap, body: Bytes) -> Invocation {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Invocation {
        body,
        content_type: text("content-type"),
        accept: text("accept"),
        target_variant: text(TARGET_VARIANT),
    }
}

async fn by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
    mut parts: http::request::Parts,
    body: Bytes,
) -> Response {
    // the AWS SDKs sign with an invoke key (Signature Version 4)
    let sigv4 = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("AWS4-HMAC-SHA256"))
        .map(str::to_owned);
    if let Some(authorization) = sigv4 {
        let (path, query) = (parts.uri.path(), parts.uri.query().unwrap_or(""));
        let method = parts.method.as_str();
        let signed = match app::endpoints::keys::verify(
            &state,
            &authorization,
            method,
            path,
            query,
            &parts.headers,
            &body,
        )
        .await
        {
            Ok(signed) => signed,
            Err(f) => return failure(&f),
        };
        let invocation = invocation(&parts.headers, body);
        return answer(app::endpoints::keys::invoke_signed(&state, &name, &signed, invocation).await);
    }
    let ctx = match Ctx::from_parts(&mut parts, &state).await {
        Ok(ctx) => ctx,
        Err(e) => return failure(&Failure::AccessDenied(e.to_string())),
    };
    answer(app::endpoints::invoke::invoke(&ctx, &name, invocation(&parts.headers, body)).await)
}

async fn by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
    mut parts: http::request::Parts,
    body: Bytes,
) -> Response {
    let ctx = match Ctx::from_parts(&mut parts, &state).await {
        Ok(ctx) => ctx,
        Err(e) => return failure(&Failure::AccessDenied(e.to_string())),
    };
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return failure(&Failure::Validation(format!("Endpoint {id} not found.")));
    };
    let name = match app::endpoints::domain::engine_name(&ctx, id).await {
        Ok(name) => name,
        Err(app::kernel::error::AppError::Forbidden) => {
            return failure(&Failure::AccessDenied("Your role does not allow this.".into()));
        }
        Err(app::kernel::error::AppError::Unauthenticated) => {
            return failure(&Failure::AccessDenied("Send a Capstan API token.".into()));
        }
        Err(_) => return failure(&Failure::Validation(format!("Endpoint {id} not found."))),
    };
    answer(app::endpoints::invoke::invoke(&ctx, &name, invocation(&parts.headers, body)).await)
}

fn answer(result: Result<Invoked, Failure>) -> Response {
    match result {
        Ok(invoked) => {
            let mut res = (StatusCode::OK, invoked.answer.body).into_response();
            let headers = res.headers_mut();
            if let Some(ct) = invoked.answer.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                headers.insert(http::header::CONTENT_TYPE, ct);
            }
            if let Ok(v) = HeaderValue::from_str(&invoked.variant) {
                headers.insert(INVOKED_VARIANT, v);
            }
            res
        }
        Err(f) => failure(&f),
    }
}

/// An error in SageMaker Runtime's shape: the type in `x-amzn-ErrorType`
/// and `__type`, the message in `message` (and for a model error the
/// model's own status and answer, as `OriginalStatusCode` and `OriginalMessage`).
fn failure(f: &Failure) -> Response {
    let status = StatusCode::from_u16(f.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = serde_json::json!({ "__type": f.kind(), "message": f.message() });
    if let Failure::Model { status, body: original, variant } = f {
        body["OriginalStatusCode"] = (*status).into();
        body["OriginalMessage"] = String::from_utf8_lossy(original).into_owned().into();
        body["Variant"] = variant.clone().into();
    }
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(f.kind()));
    if let Failure::Model { variant, .. } = f
        && let Ok(v) = HeaderValue::from_str(variant)
    {
        res.headers_mut().insert(INVOKED_VARIANT, v);
    }
    res
}
