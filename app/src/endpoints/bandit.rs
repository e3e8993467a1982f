//! Bandit allocation: an endpoint's production weights follow Thompson
//! sampling on an outcome metric ([`crate::endpoints::thompson`]),
//! recomputed every interval from the outcomes since the bandit started,
//! each variant's share kept within a least and a most share.
//!
//! Turning a bandit on (or changing it) is a change like a weight change:
//! where the team's approval policy covers `endpoint.bandit` or
//! `endpoint.weights`, a direct `PUT` answers 409 and a change request of
//! kind `endpoint.bandit` turns it on when approved; its automatic weight
//! changes then need no request each, as they keep within the bounds the
//! request approved (the standing request is recorded on the bandit). A
//! bandit turned on directly stops itself, audited, if a policy comes to
//! cover it later. Every weight change is audited as
//! `endpoint.weights_changed` by `capstan (bandit)` acting for the member
//! who turned it on. Stopping needs no approval, and leaves the weights as
//! they are. While a bandit runs, rollouts and direct weight changes of
//! the endpoint are refused (409): one hand on the weights at a time.
//!
//! The worker ([`tick`]) runs with the rollouts' worker, on every process;
//! a bandit's row is locked while it runs, so one process recomputes it.

use crate::endpoints::experiment::{minute_of, read_minutes};
use crate::endpoints::stats::{Kind, Sample};
use crate::endpoints::thompson::{DRAWS, Posterior, bounded_shares, chance_best};
use crate::endpoints::types::{Bandit, BanditRun, BanditSettings, BanditVariant, Endpoint, VariantWeight, Weights};
use crate::kernel::audit::NewEvent;
use crate::kernel::changes::kinds;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::kernel::state::AppState;
use crate::kernel::validate::Errors;
use crate::registry::gate::{Route, gate};
use serde_json::json;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// A share moved by less than this is left where it is.
const LEAST_MOVE: f64 = 0.01;

/// The kinds whose policy puts a bandit behind a change request.
const COVERING: [&str; 2] = [kinds::ENDPOINT_BANDIT, kinds::ENDPOINT_WEIGHTS];

/// How many runs of a bandit are kept.
const RUNS_KEPT: i64 = 500;

/// The settings checked against the endpoint, with the field to blame.
fn plan(endpoint: &Endpoint, input: &BanditSettings) -> Result<(), AppError> {
    let mut errors = Errors::new();
    errors.check("metric", crate::endpoints::outcomes::metric_name(input.metric.trim()));
    if !matches!(input.kind.as_str(), "binary" | "real") {
        errors.push("kind", "Give binary (a rate per invocation) or real (the mean of the values reported).");
    }
    if !matches!(input.goal.as_str(), "increase" | "decrease") {
        errors.push("goal", "Give increase or decrease: which way the metric is better.");
    }
    if !(1..=86_400).contains(&input.interval_seconds) {
        errors.push("interval_seconds", "Give 1 to 86 400 seconds.");
    }
    let k = endpoint.variants.len();
    if !(0.0..=0.5).contains(&input.min_share) {
        errors.push("min_share", "Give a least share of 0 to 0.5.");
    } else if input.min_share * k as f64 > 1.0 + 1e-9 {
        errors.push(
            "min_share",
            format!("{k} variants cannot each keep {}: give at most {:.3}.", input.min_share, 1.0 / k as f64),
        );
    }
    if !(0.5..=1.0).contains(&input.max_share) {
        errors.push("max_share", "Give a most share of 0.5 to 1.");
    }
    errors.finish()?;
    if k < 2 {
        return Err(AppError::Conflict {
            field: None,
            message: "The endpoint has one production variant: a bandit shares traffic between two or more.".into(),
        });
    }
    Ok(())
}

/// 409 while a rollout of the endpoint is under way.
async fn refuse_during_rollout(conn: &mut PgConnection, endpoint_id: Uuid) -> Result<(), AppError> {
    let live = sqlx::query_scalar!(
        "select rollout_id from rollout where endpoint_id = $1 and state in ('running', 'paused')",
        endpoint_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(live) = live {
        return Err(AppError::Conflict {
            field: None,
            message: format!("Rollout {live} of this endpoint is under way: let it finish, or abort it first."),
        });
    }
    Ok(())
}

/// Refuses, with the field to blame, settings that [`set`] would refuse
/// (what a change request checks when it is opened). The endpoint must be
/// team `team_id`'s.
pub(crate) async fn check(ctx: &Ctx, team_id: Uuid, endpoint_id: Uuid, input: &BanditSettings) -> Result<(), AppError> {
    let (endpoint, team) = crate::endpoints::domain::load(ctx, endpoint_id, Action::Contribute).await?;
    if team != team_id {
        return Err(AppError::NotFound("Endpoint".into()));
    }
    plan(&endpoint, input)?;
    refuse_during_rollout(&mut *ctx.pool().acquire().await?, endpoint_id).await
}

/// The bandit's settings as the experiment page's form gives them (shares
/// in percent); checked as the API's when set.
pub fn from_form(row: &crate::endpoints::types::BanditRow) -> Result<BanditSettings, AppError> {
    use crate::kernel::validate::{Errors, percent, whole};
    let mut errors = Errors::new();
    let min_share = errors.check("min_share", percent(&row.min_percent));
    let max_share = errors.check("max_share", percent(&row.max_percent));
    let interval = errors.check("interval_seconds", whole(&row.interval_seconds));
    errors.finish()?;
    Ok(BanditSettings {
        metric: row.metric.clone(),
        kind: row.metric_kind.clone(),
        goal: row.goal.clone(),
        interval_seconds: interval.unwrap_or_default(),
        min_share: min_share.unwrap_or_default(),
        max_share: max_share.unwrap_or_default(),
    })
}

/// Turns the endpoint's bandit on, or changes its settings (members and
/// up); audited as `endpoint.bandit_set`. Changing the metric, its kind or
/// its goal starts counting again. 409 where the team's policy covers
/// `endpoint.bandit` or `endpoint.weights` (open a change request of kind
/// `endpoint.bandit`, whose application calls this with its route), while
/// a rollout is under way, or on an endpoint with one production variant.
pub async fn set(ctx: &Ctx, id: Uuid, input: BanditSettings, route: Route) -> Result<Bandit, AppError> {
    let (endpoint, team_id) = crate::endpoints::domain::load(ctx, id, Action::Contribute).await?;
    let input = BanditSettings { metric: input.metric.trim().to_owned(), ..input };
    plan(&endpoint, &input)?;
    let actor = ctx.actor()?;
    let mut tx = ctx.pool().begin().await?;
    refuse_during_rollout(&mut tx, id).await?;
    match route {
        Route::Direct => {
            let team = (endpoint.team.as_str(), team_id);
            crate::kernel::changes::refuse_when_covered(&mut tx, team, &COVERING, kinds::ENDPOINT_BANDIT).await?
        }
        _ => gate(&mut tx, route, (&endpoint.team, team_id), kinds::ENDPOINT_BANDIT, (None, None), false).await?,
    }
    let before = sqlx::query!(
        "select metric, kind, goal, interval_seconds, min_share, max_share, request_id
         from endpoint_bandit where endpoint_id = $1 for update",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query!(
        "insert into endpoint_bandit (endpoint_id, metric, kind, goal, interval_seconds, min_share, max_share,
                                      request_id, started_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (endpoint_id) do update set interval_seconds = $5, min_share = $6, max_share = $7,
             request_id = $8, started_by = $9, next_at = now(), metric = $2, kind = $3, goal = $4,
             started_at = case when (endpoint_bandit.metric, endpoint_bandit.kind, endpoint_bandit.goal) = ($2, $3, $4)
                               then endpoint_bandit.started_at else now() end",
        id,
        input.metric,
        input.kind,
        input.goal,
        input.interval_seconds,
        input.min_share,
        input.max_share,
        route.request(),
        actor.user_id,
    )
    .execute(&mut *tx)
    .await?;
    let before = before.map(|b| {
        json!({ "metric": b.metric, "kind": b.kind, "goal": b.goal, "interval_seconds": b.interval_seconds,
                "min_share": b.min_share, "max_share": b.max_share, "request": b.request_id })
    });
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.bandit_set",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "request": route.request(), "before": before, "after": input }),
        },
    )
    .await?;
    tx.commit().await?;
    ctx.state.rollouts_wake.notify_one();
    get(ctx, id).await
}

/// Stops the endpoint's bandit (members and up; no approval needed): the
/// weights stay as they are. Audited as `endpoint.bandit_stopped`.
pub async fn stop(ctx: &Ctx, id: Uuid) -> Result<(), AppError> {
    let (_, team_id) = crate::endpoints::domain::load(ctx, id, Action::Contribute).await?;
    let mut tx = ctx.pool().begin().await?;
    halt(ctx, &mut tx, id, team_id, "stopped").await?.ok_or_else(not_on)?;
    tx.commit().await?;
    Ok(())
}

fn not_on() -> AppError {
    AppError::NotFound("Bandit of this endpoint (turn one on: PUT …/bandit)".into())
}

/// Deletes the bandit and audits why; its settings, if there was one.
async fn halt(
    ctx: &Ctx,
    tx: &mut PgConnection,
    id: Uuid,
    team_id: Uuid,
    reason: &str,
) -> Result<Option<serde_json::Value>, AppError> {
    let gone = sqlx::query!(
        "delete from endpoint_bandit where endpoint_id = $1
         returning metric, kind, goal, interval_seconds, min_share, max_share, request_id",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(b) = gone else { return Ok(None) };
    let before = json!({ "metric": b.metric, "kind": b.kind, "goal": b.goal, "interval_seconds": b.interval_seconds,
                         "min_share": b.min_share, "max_share": b.max_share, "request": b.request_id });
    ctx.record(
        tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.bandit_stopped",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "before": before, "reason": reason }),
        },
    )
    .await?;
    Ok(Some(before))
}

/// The endpoint's bandit (viewers and up); 404 while it has none.
pub async fn get(ctx: &Ctx, id: Uuid) -> Result<Bandit, AppError> {
    find(ctx, id).await?.ok_or_else(not_on)
}

/// The endpoint's bandit, if it has one, with its last 50 runs.
pub async fn find(ctx: &Ctx, id: Uuid) -> Result<Option<Bandit>, AppError> {
    crate::endpoints::domain::load(ctx, id, Action::ReadTeam).await?;
    let row = sqlx::query!(
        "select b.metric, b.kind, b.goal, b.interval_seconds, b.min_share, b.max_share, b.request_id,
                u.email, b.started_at, b.next_at
         from endpoint_bandit b join app_user u on u.user_id = b.started_by where b.endpoint_id = $1",
        id
    )
    .fetch_optional(ctx.pool())
    .await?;
    let Some(b) = row else { return Ok(None) };
    let runs = sqlx::query!(
        "select at, changed, variants from endpoint_bandit_run where endpoint_id = $1 and at >= $2
         order by at desc limit 50",
        id,
        b.started_at
    )
    .fetch_all(ctx.pool())
    .await?
    .into_iter()
    .map(|r| BanditRun {
        at: r.at,
        changed: r.changed,
        variants: serde_json::from_value(r.variants).unwrap_or_default(),
    })
    .collect();
    Ok(Some(Bandit {
        endpoint_id: id,
        settings: BanditSettings {
            metric: b.metric,
            kind: b.kind,
            goal: b.goal,
            interval_seconds: b.interval_seconds,
            min_share: b.min_share,
            max_share: b.max_share,
        },
        request_id: b.request_id,
        started_by: b.email,
        started_at: b.started_at,
        next_at: b.next_at,
        runs,
    }))
}

/// The worker's pass over the bandits whose time has come: each recomputes
/// its endpoint's weights. Returns how many changed the weights.
pub async fn tick(state: &AppState) -> Result<usize, AppError> {
    let due = sqlx::query_scalar!("select endpoint_id from endpoint_bandit where next_at <= now()")
        .fetch_all(&state.pool)
        .await?;
    let mut changed = 0;
    for id in due {
        match run(state, id).await {
            Ok(true) => changed += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(endpoint = %id, error = %e, "could not run an endpoint's bandit"),
        }
    }
    Ok(changed)
}

/// One bandit's run; whether it changed the weights.
async fn run(state: &AppState, id: Uuid) -> Result<bool, AppError> {
    let mut tx = state.pool.begin().await?;
    let b = sqlx::query!(
        r#"select b.metric, b.kind, b.goal, b.interval_seconds, b.min_share, b.max_share, b.request_id,
                  b.started_by, b.started_at, e.team_id, e.status
           from endpoint_bandit b join endpoint e on e.endpoint_id = b.endpoint_id
           where b.endpoint_id = $1 and b.next_at <= now()
           for update of b skip locked"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(b) = b else { return Ok(false) };
    let ctx = crate::endpoints::domain::system_ctx(state, b.started_by, "bandit");
    // turned on directly, and a policy has come to cover it since: it stops
    if b.request_id.is_none()
        && let Some(kind) = crate::kernel::changes::covered_kind(&mut tx, b.team_id, &COVERING).await?
    {
        let reason =
            format!("the team's approval policy now covers {kind}: open a change request of kind endpoint.bandit");
        halt(&ctx, &mut tx, id, b.team_id, &reason).await?;
        tx.commit().await?;
        tracing::info!(endpoint = %id, %reason, "bandit stopped");
        return Ok(false);
    }
    if b.status != "InService" {
        schedule(&mut tx, id).await?;
        tx.commit().await?;
        return Ok(false);
    }
    let (endpoint, _) = crate::endpoints::domain::load(&ctx, id, Action::Contribute).await?;
    let kind = if b.kind == "binary" { Kind::Binary } else { Kind::Real };
    let now = OffsetDateTime::now_utc();
    let rows = read_minutes(&state.pool, id, &b.metric, minute_of(b.started_at), now).await?;
    let mut totals: BTreeMap<&str, (f64, Sample)> =
        endpoint.variants.iter().map(|v| (v.name.as_str(), (0.0, Sample::default()))).collect();
    for r in &rows {
        if let Some((invocations, sample)) = totals.get_mut(r.variant.as_str()) {
            r.add_to(invocations, sample, kind);
        }
    }
    let samples: Vec<(&str, Sample)> =
        endpoint.variants.iter().map(|v| (v.name.as_str(), totals[v.name.as_str()].1)).collect();
    let chances = allocate_chances(&samples, kind, b.goal == "increase");
    let shares: Vec<f64> =
        bounded_shares(&chances, b.min_share, b.max_share).iter().map(|s| (s * 10_000.0).round() / 10_000.0).collect();
    let total: f64 = endpoint.variants.iter().map(|v| v.weight).sum();
    let moved = endpoint
        .variants
        .iter()
        .zip(&shares)
        .any(|(v, s)| (if total > 0.0 { v.weight / total } else { 0.0 } - s).abs() >= LEAST_MOVE);
    let variants: Vec<BanditVariant> = samples
        .iter()
        .zip(chances.iter().zip(&shares))
        .map(|((name, sample), (chance, share))| BanditVariant {
            variant: (*name).to_owned(),
            units: if sample.n > 0.0 { sample.n.round() as u64 } else { 0 },
            mean: sample.mean(),
            chance_best: *chance,
            share: *share,
        })
        .collect();
    if moved {
        let weights = Weights {
            weights: variants.iter().map(|v| VariantWeight { variant: v.variant.clone(), weight: v.share }).collect(),
        };
        crate::endpoints::domain::set_weights(&ctx, id, weights, Route::Bandit(id)).await?;
    }
    sqlx::query!(
        "insert into endpoint_bandit_run (endpoint_id, variants, changed) values ($1, $2, $3)",
        id,
        json!(variants),
        moved
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "delete from endpoint_bandit_run where endpoint_id = $1 and at < (
             select at from endpoint_bandit_run where endpoint_id = $1 order by at desc offset $2 limit 1)",
        id,
        RUNS_KEPT - 1
    )
    .execute(&mut *tx)
    .await?;
    schedule(&mut tx, id).await?;
    tx.commit().await?;
    Ok(moved)
}

/// Sets the bandit's next run an interval from now.
async fn schedule(tx: &mut PgConnection, id: Uuid) -> Result<(), AppError> {
    sqlx::query!(
        "update endpoint_bandit set next_at = now() + make_interval(secs => interval_seconds) where endpoint_id = $1",
        id
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Each variant's chance of being the best; even chances while a variant
/// has no posterior yet (a real metric with under two outcomes).
fn allocate_chances(samples: &[(&str, Sample)], kind: Kind, higher_is_better: bool) -> Vec<f64> {
    let posteriors: Option<Vec<Posterior>> = samples.iter().map(|(_, s)| Posterior::of(s, kind)).collect();
    match posteriors {
        Some(p) => chance_best(&p, higher_is_better, DRAWS, &mut rand::rng()),
        None => vec![1.0 / samples.len().max(1) as f64; samples.len()],
    }
}
