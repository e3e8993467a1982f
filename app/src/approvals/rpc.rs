//! Server functions of change requests.

// `request_endpoint_change` takes every field an endpoint page may hand
// over, and the code the server macro generates for the browser does not
// carry an allow written on the function.
#![allow(clippy::too_many_arguments)]

#[cfg(feature = "ssr")]
use crate::approvals::types::RequestQuery;
use crate::approvals::types::{ChangeRequest, RequestSummary};
use crate::kernel::error::AppError;
use crate::kernel::page::Page;
use leptos::prelude::*;
use uuid::Uuid;

/// The team's requests for one tab of the inbox: `review` (waiting for the
/// caller's review), `mine` (the caller's own) or `all`.
#[server(prefix = "/rpc", endpoint = "list_change_requests", output = crate::kernel::codec::Json)]
pub async fn list_change_requests(team: String, tab: String) -> Result<Page<RequestSummary>, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    let query = RequestQuery { needs_my_review: tab == "review", mine: tab == "mine", ..RequestQuery::default() };
    let result = match tab.as_str() {
        "review" | "mine" | "all" => crate::approvals::requests::list(&ctx, &team, query).await,
        _ => Err(AppError::query("tab", "Use review, mine or all.")),
    };
    crate::kernel::context::finish(result)
}

#[server(prefix = "/rpc", endpoint = "get_change_request", output = crate::kernel::codec::Json)]
pub async fn get_change_request(id: Uuid) -> Result<ChangeRequest, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    crate::kernel::context::finish(crate::approvals::requests::get(&ctx, id).await)
}

/// How many open requests wait for the caller's review (the navigation badge).
#[server(prefix = "/rpc", endpoint = "reviews_waiting", output = crate::kernel::codec::Json)]
pub async fn reviews_waiting() -> Result<i64, AppError> {
    let ctx = crate::kernel::context::server_ctx().await?;
    if ctx.actor.is_none() {
        // visitors have nothing to review (and the sign-in page asks too)
        return Ok(0);
    }
    crate::kernel::context::finish(crate::approvals::requests::waiting_for_me(&ctx).await)
}

/// Approves, rejects or withdraws a request (`decision`: approve, reject, withdraw).
#[server(prefix = "/rpc", endpoint = "decide_change_request", output = crate::kernel::codec::Json)]
pub async fn decide_change_request(id: Uuid, decision: String, comment: String) -> Result<ChangeRequest, AppError> {
    use crate::approvals::requests;
    use crate::approvals::types::Decision;
    let ctx = crate::kernel::context::server_ctx().await?;
    let d = Decision { comment };
    let result = match decision.as_str() {
        "approve" => requests::approve(&ctx, id, d).await,
        "reject" => requests::reject(&ctx, id, d).await,
        "withdraw" => requests::withdraw(&ctx, id, d).await,
        _ => Err(AppError::field("decision", "Use approve, reject or withdraw.")),
    };
    crate::kernel::context::finish(result)
}

/// Opens a request to move `alias` of `model` to `version` (the model page's form for a protected alias).
#[server(prefix = "/rpc", endpoint = "request_alias_move", output = crate::kernel::codec::Json)]
pub async fn request_alias_move(
    team: String,
    model: Uuid,
    alias: String,
    version: Uuid,
    title: String,
    justification: String,
) -> Result<ChangeRequest, AppError> {
    use crate::approvals::types::{Change, NewRequest};
    let ctx = crate::kernel::context::server_ctx().await?;
    let change = Change::AliasMove { model_id: model, alias: alias.trim().to_owned(), version_id: version };
    let input = NewRequest { change, title, justification };
    crate::kernel::context::finish(crate::approvals::requests::create(&ctx, &team, input).await)
}

/// Opens a request for an endpoint change that an endpoint page handed
/// over (the new-request page posts its fields as they came): `kind` is
/// `endpoint.create` (`name`, `variants`, `shadow`, as the new-endpoint
/// form sends them), `endpoint.update` (`endpoint`, `variants`, as the
/// variants editor sends them), `endpoint.delete` (`endpoint`) or
/// `endpoint.weights` (`endpoint`, `variant`, `weight`, as the weights
/// editor sends them), `endpoint.rollout` (`endpoint`, `rollout[…]`, the
/// rollouts page's start form) or `endpoint.bandit` (`endpoint`,
/// `bandit[…]`, the experiment page's bandit form). On success, on to the
/// request's page.
#[server(prefix = "/rpc", endpoint = "request_endpoint_change", output = crate::kernel::codec::Json)]
pub async fn request_endpoint_change(
    team: String,
    kind: String,
    endpoint: Option<Uuid>,
    name: Option<String>,
    variants: Option<Vec<crate::endpoints::types::VariantRow>>,
    shadow: Option<crate::endpoints::types::VariantRow>,
    variant: Option<Vec<String>>,
    weight: Option<Vec<String>>,
    rollout: Option<crate::endpoints::types::RolloutRow>,
    bandit: Option<crate::endpoints::types::BanditRow>,
    title: String,
    justification: String,
) -> Result<ChangeRequest, AppError> {
    use crate::approvals::types::{Change, NewRequest};
    use crate::endpoints::domain::{from_form, weights_from_form};
    use crate::kernel::changes::kinds;
    let ctx = crate::kernel::context::server_ctx().await?;
    let done = async {
        let endpoint_id = || endpoint.ok_or_else(|| AppError::field("endpoint", "Name the endpoint."));
        let change = match kind.as_str() {
            kinds::ENDPOINT_CREATE => Change::EndpointCreate {
                endpoint: from_form(name.unwrap_or_default(), variants.unwrap_or_default(), shadow)?,
            },
            kinds::ENDPOINT_UPDATE => {
                let rows = from_form(String::new(), variants.unwrap_or_default(), None)?;
                let update =
                    crate::endpoints::types::EndpointUpdate { variants: Some(rows.variants), ..Default::default() };
                Change::EndpointUpdate { endpoint_id: endpoint_id()?, update }
            }
            kinds::ENDPOINT_DELETE => Change::EndpointDelete { endpoint_id: endpoint_id()? },
            kinds::ENDPOINT_WEIGHTS => {
                let weights = weights_from_form(variant.unwrap_or_default(), weight.unwrap_or_default())?.weights;
                Change::EndpointWeights { endpoint_id: endpoint_id()?, weights }
            }
            kinds::ENDPOINT_ROLLOUT => Change::EndpointRollout {
                endpoint_id: endpoint_id()?,
                rollout: crate::endpoints::rollouts::from_form(&rollout.unwrap_or_default())?,
            },
            kinds::ENDPOINT_BANDIT => Change::EndpointBandit {
                endpoint_id: endpoint_id()?,
                bandit: crate::endpoints::bandit::from_form(&bandit.unwrap_or_default())?,
            },
            _ => {
                return Err(AppError::field(
                    "kind",
                    "Use endpoint.create, endpoint.update, endpoint.delete, endpoint.weights, endpoint.rollout or endpoint.bandit.",
                ));
            }
        };
        crate::approvals::requests::create(&ctx, &team, NewRequest { change, title, justification }).await
    }
    .await;
    if let Ok(r) = &done {
        leptos_axum::redirect(&format!("/teams/{}/change-requests/{}", r.team, r.id));
    }
    crate::kernel::context::finish(done)
}
