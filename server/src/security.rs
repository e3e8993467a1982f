//! Browser-facing protections: security headers on every response and a
//! CSRF check for cookie-authenticated mutations.

use app::kernel::context::{Credentials, credentials};
use app::kernel::error::AppError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, header};

/// The policy for pages that carry no inline script (API docs, JSON, assets).
/// Swagger UI (`/api/docs`) sets inline styles, hence `'unsafe-inline'` for
/// styles here; Capstan's own pages do without it (see [`page_csp`]).
pub const DEFAULT_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The policy for Leptos pages: their hydration script is allowed by nonce,
/// and they may call the object store (browser uploads go straight to it).
pub fn page_csp(nonce: &str, store_origin: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; img-src 'self' data:; \
         style-src 'self'; connect-src 'self' {store_origin}; object-src 'none'; base-uri 'self'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Whether users reach Capstan over https (its public URL says so).
#[derive(Clone, Copy, Default)]
pub struct Https(pub bool);

pub async fn headers(State(https): State<Https>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    set_headers(res.headers_mut(), https);
    res
}

/// The security headers of every answer (HSTS only over HTTPS).
pub fn set_headers(h: &mut http::HeaderMap, https: Https) {
    if https.0 {
        // browsers then refuse plain http to this host for a year
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    }
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DEFAULT_CSP));
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

/// Request ids are made here, never taken from the client: they end up in
/// the audit chain. A client's own id is kept as `x-client-request-id`
/// (visible ASCII, at most 128 bytes) for correlating with its logs.
pub async fn server_request_id(mut req: Request, next: Next) -> Response {
    keep_client_request_id(req.headers_mut());
    next.run(req).await
}

/// Moves a client's `x-request-id` to `x-client-request-id` (dropped unless
/// visible ASCII of at most 128 bytes).
pub fn keep_client_request_id(h: &mut http::HeaderMap) {
    if let Some(theirs) = h.remove("x-request-id")
        && theirs.len() <= 128
        && theirs.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        h.insert("x-client-request-id", theirs);
    }
}

/// Caching for the site's files: a bundle file named by its content hash
/// (`capstan.<16 hex>.wasm`) never changes, so browsers keep it for a year
/// without asking; every other file is revalidated on each use.
pub async fn cache_control(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    let is_file = res.status() == http::StatusCode::OK || res.status() == http::StatusCode::NOT_MODIFIED;
    if !is_file || res.headers().contains_key(header::CACHE_CONTROL) {
        return res;
    }
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let value = if html {
        "no-store"
    } else if content_hashed(&path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    res
}

/// Whether a file name carries a content hash as written by `scripts/build.sh`.
fn content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    name.split('.').any(|part| part.len() == 16 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The origin (`scheme://host[:port]`) users reach Capstan at, if configured,
/// accepted by the CSRF check besides the request's own `Host`.
#[derive(Clone, Default)]
pub struct PublicOrigin(pub Option<String>);

/// Refuses state-changing requests that a browser sent from another site.
/// Bearer-token calls carry no ambient credentials and pass untouched; any
/// other `Authorization` scheme (a proxy's Basic or Negotiate, which browsers
/// add to cross-site posts) is checked like a cookie.
pub async fn csrf(State(public): State<PublicOrigin>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || matches!(credentials(req.headers()), Credentials::Bearer(_))
    {
        return next.run(req).await;
    }
    let h = req.headers();
    let allowed = match h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => matches!(site, "same-origin" | "none"),
        None => match (
            h.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
            h.get(header::HOST).and_then(|v| v.to_str().ok()),
        ) {
            (Some(origin), host) => {
                public.0.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(origin))
                    || host.is_some_and(|host| {
                        origin.split_once("://").is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
                    })
            }
            // Not a browser (no Origin, no Fetch Metadata): nothing ambient to abuse.
            (None, _) => true,
        },
    };
    if allowed {
        next.run(req).await
    } else {
        tracing::warn!(method = %req.method(), path = %req.uri().path(), "cross-site request refused");
        let mut res = AppError::Forbidden.into_response();
        if let Ok(v) = HeaderValue::from_str("cross-site request refused") {
            res.headers_mut().insert("x-capstan-reason", v);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_build_hashed_names_count_as_immutable() {
        assert!(super::content_hashed("/pkg/capstan.0123456789abcdef.wasm"));
        assert!(super::content_hashed("/pkg/capstan.0123456789abcdef.js"));
        assert!(!super::content_hashed("/pkg/capstan.wasm"));
        assert!(!super::content_hashed("/favicon.svg"));
        assert!(!super::content_hashed("/pkg/capstan.0123456789abcdeg.css"));
    }
}
