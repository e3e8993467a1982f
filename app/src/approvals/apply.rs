//! The approvals worker: expires open requests past their time and applies
//! approved ones from the outbox, exactly once.
//!
//! An outbox row is written by the approval that reached the quorum, in its
//! transaction. The process holding a row's lease moves the request to
//! `applying`, then applies the change through the registry's or the
//! endpoints' own domain function on route [`Route::ChangeRequest`]: that function writes the
//! request's once-only key in the same transaction as the change. So after a
//! crash at any point the next attempt either finds the key (the change
//! committed: it only records the result) or applies the change (it did
//! not). A target that changed since the request was proposed makes it
//! `stale` instead.
//!
//! The change is made as its author, with the authority the approvals gave
//! it (the author's own role may not allow it directly); the reason names
//! the request and its approvers.

use crate::approvals::types::{Change, Event, State, next};
use crate::endpoints::domain as endpoints;
use crate::kernel::context::{Ctx, actor_by_id};
use crate::kernel::error::AppError;
use crate::kernel::state::AppState;
use crate::registry::aliases;
use crate::registry::gate::Route;
use crate::registry::types::{SetAlias, StatusChange};
use serde_json::{Value, json};
use uuid::Uuid;

/// How long a claimed outbox row is this process's (applying takes
/// milliseconds; a process that died mid-way delays its requests by this).
const LEASE_SECS: f64 = 30.0;

/// Moves open requests past their expiry to `expired`; returns how many.
pub async fn expire_due(state: &AppState) -> Result<u64, AppError> {
    let to = next(State::Open, Event::Expire).map_err(|_| AppError::Internal)?;
    let mut tx = state.pool.begin().await?;
    let expired = sqlx::query_scalar!(
        "update change_request set state = $1, updated_at = now()
         where request_id in (select request_id from change_request where state = 'open' and expires_at < now()
                              for update skip locked)
         returning request_id",
        to as State
    )
    .fetch_all(&mut *tx)
    .await?;
    for id in &expired {
        sqlx::query!(
            "insert into change_request_event (event_id, request_id, action, from_state, to_state)
             values ($1, $2, 'expire', 'open', $3)",
            Uuid::now_v7(),
            id,
            to as State
        )
        .execute(&mut *tx)
        .await?;
        worker_event(&mut tx, *id, to, Value::Null).await?;
    }
    tx.commit().await?;
    Ok(expired.len() as u64)
}

/// Applies the approved requests whose outbox rows no live process holds;
/// returns how many reached a final state.
pub async fn apply_due(state: &AppState) -> Result<usize, AppError> {
    let claimed = sqlx::query_scalar!(
        "update change_request_outbox set lease_owner = $1, lease_until = now() + make_interval(secs => $2),
                attempts = attempts + 1
         where request_id in (
             select request_id from change_request_outbox
             where next_attempt_at <= now() and (lease_until is null or lease_until < now())
             order by created_at limit 20 for update skip locked)
         returning request_id",
        state.instance,
        LEASE_SECS
    )
    .fetch_all(&state.pool)
    .await?;
    let mut done = 0;
    for id in claimed {
        match apply_one(state, id).await {
            Ok(()) => done += 1,
            Err(e) => {
                // a passing failure (the database): try again later
                tracing::warn!(request = %id, error = %e, "applying a change request failed; retrying");
                sqlx::query!(
                    "update change_request_outbox set lease_until = null,
                            next_attempt_at = now() + make_interval(secs => least(300, power(2, attempts))::double precision)
                     where request_id = $1",
                    id
                )
                .execute(&state.pool)
                .await?;
            }
        }
    }
    Ok(done)
}

struct Approved {
    team_id: Uuid,
    team: String,
    state: State,
    proposal: Value,
    base: Value,
    title: String,
    author_id: Uuid,
}

/// Moves the request on by `event`, records it, and drops its outbox row
/// when the state is final.
async fn step(
    state: &AppState,
    id: Uuid,
    from: State,
    event: Event,
    result: Value,
    error: Option<String>,
) -> Result<State, AppError> {
    let to = next(from, event).map_err(|m| AppError::Conflict { field: None, message: m })?;
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "update change_request set state = $2, result = coalesce($3, result), error = coalesce($4, error),
                applied_at = case when $2 = 'applied'::change_request_state then now() else applied_at end,
                updated_at = now()
         where request_id = $1",
        id,
        to as State,
        (!result.is_null()).then_some(&result),
        error
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "insert into change_request_event (event_id, request_id, action, from_state, to_state, comment)
         values ($1, $2, $3, $4, $5, $6)",
        Uuid::now_v7(),
        id,
        event.as_str(),
        from as State,
        to as State,
        error.as_deref().unwrap_or_default()
    )
    .execute(&mut *tx)
    .await?;
    if to.is_final() {
        sqlx::query!("delete from change_request_outbox where request_id = $1", id).execute(&mut *tx).await?;
        worker_event(&mut tx, id, to, json!({ "result": result, "error": error })).await?;
    }
    tx.commit().await?;
    Ok(to)
}

/// Records a transition the worker made in the team's audit log (where the
/// team's history and webhooks read it), as Capstan.
async fn worker_event(tx: &mut sqlx::PgConnection, id: Uuid, to: State, detail: Value) -> Result<(), AppError> {
    let team_id =
        sqlx::query_scalar!("select team_id from change_request where request_id = $1", id).fetch_one(&mut *tx).await?;
    let action = format!("change_request.{}", to.as_str());
    let actor = crate::kernel::audit::AuditActor { user_id: None, token_id: None, label: "capstan".into() };
    let event = crate::kernel::audit::NewEvent {
        team_id: Some(team_id),
        action: &action,
        target_type: "change_request",
        target_id: Some(id.to_string()),
        summary: json!({ "after": { "state": to.as_str() }, "detail": detail }),
    };
    crate::kernel::audit::record(tx, &actor, &Default::default(), event).await?;
    Ok(())
}

async fn apply_one(state: &AppState, id: Uuid) -> Result<(), AppError> {
    let Some(r) = sqlx::query_as!(
        Approved,
        r#"select r.team_id, t.slug as team, r.state as "state: State", r.proposal, r.base, r.title, r.author_id
           from change_request r join team t on t.team_id = r.team_id where r.request_id = $1"#,
        id
    )
    .fetch_optional(&state.pool)
    .await?
    else {
        return Ok(());
    };
    let mut current = r.state;
    if current == State::Approved {
        current = step(state, id, current, Event::Apply, Value::Null, None).await?;
    }
    if current != State::Applying {
        // final already: a crash after recording, before the outbox row went
        sqlx::query!("delete from change_request_outbox where request_id = $1", id).execute(&state.pool).await?;
        return Ok(());
    }
    crate::kernel::changes::fault_point("approvals:during-apply");
    if crate::kernel::changes::applied(&state.pool, id).await? {
        // the change committed before a crash: record it, do not apply it again
        step(state, id, current, Event::Succeed, json!({ "note": "applied before a restart" }), None).await?;
        return Ok(());
    }
    let change: Change = serde_json::from_value(r.proposal.clone()).map_err(anyhow::Error::from)?;
    {
        let mut conn = state.pool.acquire().await?;
        let now = crate::approvals::requests::current_base(&mut conn, &state.pool, r.team_id, &change).await?;
        if now.as_ref() != Some(&r.base) {
            let why = "The target changed after the request was approved: it was not applied.".to_owned();
            step(state, id, current, Event::Invalidate, Value::Null, Some(why)).await?;
            return Ok(());
        }
    }
    let Some(mut author) = actor_by_id(&state.pool, r.author_id).await? else {
        step(state, id, current, Event::Fail, Value::Null, Some("The author's account is gone.".into())).await?;
        return Ok(());
    };
    // the authority of the approvals, not of the author's own role
    author.is_site_admin = true;
    let approvers: Vec<String> = sqlx::query_scalar!(
        "select u.email from change_request_review v join app_user u on u.user_id = v.reviewer_id
         join change_request r on r.request_id = v.request_id
         where v.request_id = $1 and v.revision = r.revision and v.decision = 'approve' order by v.created_at",
        id
    )
    .fetch_all(&state.pool)
    .await?;
    let reason: String =
        format!("change request {id}: {} (approved by {})", r.title, approvers.join(", ")).chars().take(2000).collect();
    let ctx = Ctx { state: state.clone(), actor: Some(author), request_id: None, client_addr: "approvals".into() };
    let route = Route::ChangeRequest(id);
    let applied: Result<Value, AppError> = match &change {
        Change::AliasMove { model_id, alias, version_id } => {
            let input = SetAlias { version_id: *version_id, reason: reason.clone() };
            aliases::set(&ctx, *model_id, alias, input, route).await.map(|a| json!(a))
        }
        Change::AliasDelete { model_id, alias } => {
            aliases::delete(&ctx, *model_id, alias, route).await.map(|()| json!({ "deleted": alias }))
        }
        Change::AliasProtect { model_id, alias } => {
            aliases::protect(&ctx, *model_id, alias, true, route).await.map(|a| json!(a))
        }
        Change::AliasUnprotect { model_id, alias } => {
            aliases::protect(&ctx, *model_id, alias, false, route).await.map(|a| json!(a))
        }
        Change::VersionStatus { version_id, status } => {
            let input = StatusChange { status: *status, reason: reason.clone() };
            crate::registry::versions::set_status_via(&ctx, *version_id, input, route).await.map(|v| json!(v))
        }
        Change::EndpointCreate { endpoint } => {
            endpoints::create(&ctx, &r.team, endpoint.clone(), route).await.map(|e| json!(e))
        }
        Change::EndpointUpdate { endpoint_id, update } => {
            endpoints::update(&ctx, *endpoint_id, update.clone(), route).await.map(|e| json!(e))
        }
        Change::EndpointDelete { endpoint_id } => {
            endpoints::delete(&ctx, *endpoint_id, route).await.map(|()| json!({ "deleted": endpoint_id }))
        }
        Change::EndpointWeights { endpoint_id, weights } => {
            let input = crate::endpoints::types::Weights { weights: weights.clone() };
            endpoints::set_weights(&ctx, *endpoint_id, input, route).await.map(|e| json!(e))
        }
        Change::EndpointRollout { endpoint_id, rollout } => {
            crate::endpoints::rollouts::start(&ctx, *endpoint_id, rollout.clone(), route).await.map(|r| json!(r))
        }
        Change::EndpointBandit { endpoint_id, bandit } => {
            crate::endpoints::bandit::set(&ctx, *endpoint_id, bandit.clone(), route).await.map(|b| json!(b))
        }
    };
    crate::kernel::changes::fault_point("approvals:after-apply");
    match applied {
        Ok(result) => {
            step(state, id, current, Event::Succeed, result, None).await?;
        }
        // another attempt committed it meanwhile
        Err(_) if crate::kernel::changes::applied(&state.pool, id).await? => {
            step(state, id, current, Event::Succeed, json!({ "note": "applied by another attempt" }), None).await?;
        }
        Err(e @ (AppError::Internal | AppError::Transport(_) | AppError::Upstream(_))) => return Err(e),
        Err(e) => {
            let why = match &e {
                AppError::Validation(fields) => {
                    fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
                }
                other => other.to_string(),
            };
            step(state, id, current, Event::Fail, Value::Null, Some(why)).await?;
        }
    }
    Ok(())
}
