//! Invoking an endpoint: the gateway's one function, called by
//! `POST /endpoints/{name}/invocations` (SageMaker Runtime's path), its
//! `/api/v1` twin and the endpoint page's invoke panel. It checks that the
//! caller is a member of the endpoint's team, picks a production variant by
//! weight (or the pinned one), sends the request to it, and sends a sampled
//! copy to the shadow without waiting for it.

use crate::endpoints::routes::{Route, RouteVariant, route};
use crate::kernel::context::Ctx;
use crate::kernel::roles::{Action, authorize};
use bytes::Bytes;
use rand::Rng as _;
use std::time::Duration;

/// SageMaker Runtime's time limit for an invocation.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Invocation {
    pub body: Bytes,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    /// `X-Amzn-SageMaker-Target-Variant`.
    pub target_variant: Option<String>,
}

pub struct Invoked {
    /// The production variant that answered (`X-Amzn-Invoked-Production-Variant`).
    pub variant: String,
    pub answer: serving::Answer,
}

/// Why an invocation got no answer from the model, in SageMaker Runtime's
/// error shapes (`__type`, HTTP status).
#[derive(Debug)]
pub enum Failure {
    /// 400 `ValidationError`: unknown endpoint (or one the caller may not
    /// see), unknown target variant.
    Validation(String),
    /// 403 `AccessDeniedException`: a viewer, no credentials, a bad signature.
    AccessDenied(String),
    /// 403 `UnrecognizedClientException`: an unknown or revoked access key.
    UnrecognizedClient(String),
    /// 424 `ModelError`: the model answered with an error status.
    Model { variant: String, status: u16, body: Bytes },
    /// 503 `ServiceUnavailable`: no healthy process, or the model's server
    /// could not be reached.
    Unavailable(String),
    /// 500 `InternalFailure`.
    Internal(String),
}

impl Failure {
    pub fn status(&self) -> u16 {
        match self {
            Self::Validation(_) => 400,
            Self::AccessDenied(_) | Self::UnrecognizedClient(_) => 403,
            Self::Model { .. } => 424,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Validation(_) => "ValidationError",
            Self::AccessDenied(_) => "AccessDeniedException",
            Self::UnrecognizedClient(_) => "UnrecognizedClientException",
            Self::Model { .. } => "ModelError",
            Self::Unavailable(_) => "ServiceUnavailable",
            Self::Internal(_) => "InternalFailure",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Validation(m)
            | Self::AccessDenied(m)
            | Self::UnrecognizedClient(m)
            | Self::Unavailable(m)
            | Self::Internal(m) => m.clone(),
            Self::Model { variant, status, .. } => {
                format!("Received server error ({status}) from primary with message from variant {variant}")
            }
        }
    }
}

/// Checks the caller and routes one invocation of endpoint `name` (its
/// engine name).
pub async fn invoke(ctx: &Ctx, name: &str, invocation: Invocation) -> Result<Invoked, Failure> {
    let not_found = || Failure::Validation(format!("Endpoint {name} not found."));
    let actor =
        ctx.actor().map_err(|_| Failure::AccessDenied("Sign the request or send a Capstan API token.".into()))?;
    let route = route(&ctx.state, name).await.map_err(|e| Failure::Internal(e.to_string()))?.ok_or_else(not_found)?;
    let role = ctx.role_in(route.team_id).await.map_err(|e| Failure::Internal(e.to_string()))?;
    match authorize(&actor.principal(), Action::Contribute, role) {
        Ok(()) => {}
        Err(crate::kernel::error::AppError::Forbidden) => {
            return Err(Failure::AccessDenied(format!(
                "Invoking {name} needs the member role in its team; you are a viewer."
            )));
        }
        Err(_) => return Err(not_found()),
    }
    send(&ctx.state, &route, invocation).await
}

/// Routes an invocation of an endpoint the caller may invoke.
pub async fn send(
    state: &crate::kernel::state::AppState,
    route: &Route,
    invocation: Invocation,
) -> Result<Invoked, Failure> {
    let serving =
        state.serving.clone().ok_or_else(|| Failure::Unavailable("This process serves no endpoints.".into()))?;
    let local = route.backend == "local";
    let variant = match &invocation.target_variant {
        Some(pinned) => route.variant(pinned).ok_or_else(|| {
            Failure::Validation(format!(
                "Endpoint {} has no production variant {pinned}: it has {}.",
                route.engine_name,
                route.names.join(", ")
            ))
        })?,
        None => pick(route, local, rand::rng().random::<f64>()).ok_or_else(|| {
            Failure::Unavailable(format!("No variant of endpoint {} is ready to take traffic.", route.engine_name))
        })?,
    };
    let address = if local {
        let n = variant.addresses.len();
        if n == 0 {
            return Err(Failure::Unavailable(format!("Variant {} has no healthy instance right now.", variant.name)));
        }
        Some(variant.addresses[if n == 1 { 0 } else { rand::rng().random_range(0..n) }])
    } else {
        None
    };
    let endpoint_id = route.endpoint_id.to_string();
    // a fault injected on the variant: a model error instead of an answer, counted as one
    if variant.fault > 0.0 && rand::rng().random::<f64>() < variant.fault {
        state.traffic.record(
            &endpoint_id,
            &route.engine_name,
            &variant.name,
            serving::traffic::Outcome::ModelError,
            0.0,
        );
        return Err(Failure::Model {
            variant: variant.name.clone(),
            status: 500,
            body: Bytes::from_static(
                b"Capstan answered with this error instead of the model: a fault is injected on this variant.",
            ),
        });
    }
    let request =
        serving::Request { body: invocation.body, content_type: invocation.content_type, accept: invocation.accept };
    // (SageMaker captures on its own; the gateway captures what it serves)
    let capture = route
        .capture
        .as_ref()
        .filter(|(fraction, _)| local && rand::rng().random::<f64>() < *fraction)
        .map(|(_, destination)| (format!("{destination}{}/", variant.name), request.clone()));
    // the shadow hears production's answer to say whether it agreed
    let mut production = None;
    // (SageMaker copies to its own shadow beside a single production variant)
    if let Some((shadow, fraction)) = &route.shadow
        && serving::gateway_copies_shadow(&route.backend, route.variants.len())
        && rand::rng().random::<f64>() < *fraction
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        production = Some(tx);
        shadow_copy(state, serving.clone(), route, shadow, request.clone(), rx);
    }
    let target = serving::Target { endpoint: &route.engine_name, variant: &variant.name, address };
    let started = std::time::Instant::now();
    let answered = serving.invoke(&target, request, TIMEOUT).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let record = |outcome| state.traffic.record(&endpoint_id, &route.engine_name, &variant.name, outcome, latency_ms);
    let answer = match answered {
        Ok(answer) => answer,
        Err(e) => {
            record(serving::traffic::Outcome::ServerError);
            return Err(match e {
                serving::InvokeError::Unavailable(m) => Failure::Unavailable(m),
                serving::InvokeError::Timeout(_) => Failure::Model {
                    variant: variant.name.clone(),
                    status: 408,
                    body: Bytes::from(format!("The model did not answer within {} seconds.", TIMEOUT.as_secs())),
                },
                serving::InvokeError::TooLarge => Failure::Internal("The model's answer is larger than 6 MB.".into()),
            });
        }
    };
    if let Some(tx) = production {
        let _ = tx.send((answer.status, answer.body.clone()));
    }
    if answer.status >= 400 {
        record(serving::traffic::Outcome::ModelError);
        return Err(Failure::Model { variant: variant.name.clone(), status: answer.status, body: answer.body });
    }
    record(serving::traffic::Outcome::Ok);
    if let Some((destination, request)) = capture {
        state.captures.push(&destination, crate::endpoints::capture::record(&request, &answer));
    }
    Ok(Invoked { variant: variant.name.clone(), answer })
}

/// The production variant for a uniform `x` in [0, 1): by weight, among the
/// variants that can take traffic (in local mode, those with a healthy
/// process; a variant that is down gives its share to the others).
pub fn pick(route: &Route, local: bool, x: f64) -> Option<&RouteVariant> {
    let picked = route.pick(x)?;
    if !local || !picked.addresses.is_empty() {
        return Some(picked);
    }
    let up: Vec<&RouteVariant> = route.variants.iter().filter(|v| v.weight > 0.0 && !v.addresses.is_empty()).collect();
    let total: f64 = up.iter().map(|v| v.weight).sum();
    let mut target = x * total;
    for v in &up {
        if target < v.weight {
            return Some(v);
        }
        target -= v.weight;
    }
    up.last().copied()
}

/// Sends a copy to the shadow in the background: its answer is never
/// returned and its time never counts against the caller. Its outcome and
/// latency are counted under its name, and whether its answer equalled
/// production's (`production`, sent once production answered).
fn shadow_copy(
    state: &crate::kernel::state::AppState,
    serving: std::sync::Arc<dyn serving::Serving>,
    route: &Route,
    shadow: &RouteVariant,
    request: serving::Request,
    production: tokio::sync::oneshot::Receiver<(u16, Bytes)>,
) {
    let address = if route.backend == "local" {
        if shadow.addresses.is_empty() {
            return;
        }
        Some(shadow.addresses[rand::rng().random_range(0..shadow.addresses.len())])
    } else {
        None
    };
    let (endpoint, variant) = (route.engine_name.clone(), shadow.name.clone());
    let (endpoint_id, traffic) = (route.endpoint_id.to_string(), state.traffic.clone());
    tokio::spawn(async move {
        let target = serving::Target { endpoint: &endpoint, variant: &variant, address };
        let started = std::time::Instant::now();
        let answered = serving.invoke(&target, request, TIMEOUT).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (outcome, mine) = match &answered {
            Ok(a) if a.status >= 400 => (serving::traffic::Outcome::ModelError, Some((a.status, a.body.clone()))),
            Ok(a) => (serving::traffic::Outcome::Ok, Some((a.status, a.body.clone()))),
            Err(_) => (serving::traffic::Outcome::ServerError, None),
        };
        let theirs = tokio::time::timeout(TIMEOUT, production).await.ok().and_then(Result::ok);
        let agreed = mine.is_some() && mine == theirs;
        traffic.record_shadow(&endpoint_id, &endpoint, &variant, outcome, latency_ms, agreed);
    });
}
