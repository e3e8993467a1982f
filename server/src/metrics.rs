//! A small Prometheus registry: request counts by route and status, a latency
//! histogram per route, and database pool gauges. Kept in the router's state
//! (no global recorder), so every test router has its own.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

#[derive(Clone, Default)]
pub struct Metrics(Arc<Mutex<Inner>>);

impl Metrics {
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let Ok(mut inner) = self.0.lock() else { return };
        *inner.requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        let h = inner.latency.entry(route.to_owned()).or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
    }

    /// Prometheus text exposition format.
    pub fn render(&self, pool: &sqlx::PgPool) -> String {
        let mut out = String::new();
        let Ok(inner) = self.0.lock() else { return out };
        out.push_str("# HELP capstan_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE capstan_http_requests_total counter\n");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "capstan_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP capstan_http_request_duration_seconds HTTP request latency by route.\n");
        out.push_str("# TYPE capstan_http_request_duration_seconds histogram\n");
        for (route, h) in &inner.latency {
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "capstan_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "capstan_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "capstan_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "capstan_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
        }
        out.push_str("# HELP capstan_db_pool_connections Database pool connections by state.\n");
        out.push_str("# TYPE capstan_db_pool_connections gauge\n");
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
        let _ = writeln!(out, "capstan_db_pool_connections{{state=\"idle\"}} {idle}");
        let _ = writeln!(out, "capstan_db_pool_connections{{state=\"in_use\"}} {}", size.saturating_sub(idle));
        let _ = writeln!(out, "capstan_db_pool_max_connections {}", pool.options().get_max_connections());
        out
    }
}

/// Middleware recording every request under its route template (never the raw
/// path, so ids do not explode the label set).
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| if req.uri().path().starts_with("/pkg/") { "/pkg/*".into() } else { "other".into() });
    let method = method_label(req.method()).to_owned();
    let start = Instant::now();
    let res = next.run(req).await;
    metrics.observe(&method, &route, res.status().as_u16(), start.elapsed().as_secs_f64());
    res
}

/// The method as a label: the standard ones by name, anything a client
/// invents as `other` (each new label would be a new series kept forever).
fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Data capture records this process's gateway dropped because too many
/// waited to be written (the bucket was unreachable for long).
pub fn render_capture(captures: &serving::capture::Captures) -> String {
    format!(
        "# HELP capstan_data_capture_dropped_total Data capture records dropped while too many waited to be written.\n\
         # TYPE capstan_data_capture_dropped_total counter\ncapstan_data_capture_dropped_total {}\n",
        captures.dropped()
    )
}

/// Endpoint traffic through this process's gateway since it started, per
/// endpoint (engine name) and variant, in Prometheus' text format.
pub fn render_traffic(recorder: &serving::traffic::Recorder) -> String {
    let totals = recorder.totals();
    let mut out = String::new();
    out.push_str("# HELP capstan_endpoint_invocations_total Invocations through this process's gateway.\n");
    out.push_str("# TYPE capstan_endpoint_invocations_total counter\n");
    for ((endpoint, variant), c) in &totals {
        let ok = c.requests.saturating_sub(c.errors_4xx + c.errors_5xx + c.model_errors);
        for (outcome, n) in [
            ("ok", ok),
            ("client_error", c.errors_4xx),
            ("server_error", c.errors_5xx),
            ("model_error", c.model_errors),
        ] {
            let _ = writeln!(
                out,
                "capstan_endpoint_invocations_total{{endpoint=\"{endpoint}\",variant=\"{variant}\",outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    out.push_str("# HELP capstan_endpoint_latency_seconds Time to the model's answer, as the gateway saw it.\n");
    out.push_str("# TYPE capstan_endpoint_latency_seconds histogram\n");
    for ((endpoint, variant), c) in &totals {
        let mut cumulative = 0;
        for (i, n) in c.latency.iter().enumerate() {
            cumulative += n;
            let le = serving::traffic::LATENCY_BOUNDS_MS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| format!("{}", b / 1000.0));
            let _ = writeln!(
                out,
                "capstan_endpoint_latency_seconds_bucket{{endpoint=\"{endpoint}\",variant=\"{variant}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let labels = format!("endpoint=\"{endpoint}\",variant=\"{variant}\"");
        let _ = writeln!(out, "capstan_endpoint_latency_seconds_sum{{{labels}}} {}", c.latency_ms_sum / 1000.0);
        let _ = writeln!(out, "capstan_endpoint_latency_seconds_count{{{labels}}} {}", c.requests);
    }
    out.push_str(
        "# HELP capstan_endpoint_shadow_agreements_total Shadow answers equal to production's, of shadow requests.\n",
    );
    out.push_str("# TYPE capstan_endpoint_shadow_agreements_total counter\n");
    for ((endpoint, variant), c) in totals.iter().filter(|(_, c)| c.shadow_requests > 0) {
        let labels = format!("endpoint=\"{endpoint}\",variant=\"{variant}\"");
        let _ = writeln!(out, "capstan_endpoint_shadow_agreements_total{{{labels}}} {}", c.shadow_agree);
        let _ = writeln!(out, "capstan_endpoint_shadow_requests_total{{{labels}}} {}", c.shadow_requests);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn invented_methods_share_one_label() {
        let made_up = http::Method::from_bytes(b"BREWCOFFEE").expect("method");
        assert_eq!(super::method_label(&made_up), "other");
        assert_eq!(super::method_label(&http::Method::PATCH), "PATCH");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = super::Metrics::default();
        m.observe("GET", "/x", 200, 0.003);
        m.observe("GET", "/x", 500, 0.2);
        let inner = m.0.lock().expect("lock");
        let h = &inner.latency["/x"];
        assert_eq!(h.count, 2);
        assert_eq!(h.counts[0], 0); // 1ms
        assert_eq!(h.counts[2], 1); // 5ms
        assert_eq!(h.counts[7], 2); // 250ms
        assert_eq!(inner.requests.len(), 2);
    }
}
