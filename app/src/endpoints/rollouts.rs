//! Rollouts: the traffic of a baseline variant moved to a candidate step by
//! step on a live endpoint — `canary` (a share for a bake time, then all),
//! `linear` (a share more every interval) or `manual` (a share more each
//! time someone promotes) — through the endpoint's own weight path
//! ([`crate::endpoints::domain::set_weights`]: the local gateway at once;
//! `UpdateEndpointWeightsAndCapacities` in AWS mode). Other variants keep
//! their weights: the steps share out the baseline's and the candidate's
//! weights together (`pair_weight`).
//!
//! Each step is judged by guardrails over the window since it began (the
//! traffic rollups, whole minutes): the candidate's error rate against a
//! ceiling and against the baseline's, its p99 latency against the
//! baseline's, optionally an outcome metric with the experiments'
//! always-valid test, once the candidate has served enough requests. A
//! failed guardrail sends the traffic back to the baseline at once: the
//! worker ([`tick`], every few seconds on every process; a rollout is
//! stepped by one process at a time) judges each step as the rollups
//! arrive (every 10 s), so a breach is rolled back within seconds and never
//! later than a minute. The rollback is audited
//! (`endpoint.rollout_rolled_back`, with the reason and the figures), which
//! fires the team's webhooks.

use crate::endpoints::experiment::minute_of;
use crate::endpoints::metrics::{Served, served};
use crate::endpoints::stats::{self, Kind, Sample};
use crate::endpoints::types::{
    EndpointUpdate, GuardrailCheck, Guardrails, NewRollout, NewVariant, Rollout, RolloutRow, RolloutStep,
    VariantWeight, Weights,
};
use crate::kernel::audit::NewEvent;
use crate::kernel::changes::kinds;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::kernel::state::AppState;
use crate::kernel::validate::Errors;
use crate::registry::gate::{Route, gate};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

/// The shares the candidate is taken to, step by step.
pub fn planned(strategy: &str, step: i32) -> Vec<i32> {
    let step = step.clamp(1, 100);
    if strategy == "canary" {
        return if step >= 100 { vec![100] } else { vec![step, 100] };
    }
    let mut shares: Vec<i32> = (1..).map(|k| k * step).take_while(|p| *p < 100).collect();
    shares.push(100);
    shares
}

fn check_guardrails(g: &Guardrails, errors: &mut Errors) {
    if !(g.max_error_rate.is_finite() && (0.0..=1.0).contains(&g.max_error_rate)) {
        errors.push("guardrails.max_error_rate", "Give a rate between 0 and 1 (0.05 is 5 %).");
    }
    if !(g.max_error_ratio.is_finite() && g.max_error_ratio >= 1.0 && g.max_error_ratio <= 100.0) {
        errors.push("guardrails.max_error_ratio", "Give a ratio between 1 and 100.");
    }
    if !(g.max_p99_ratio.is_finite() && g.max_p99_ratio >= 1.0 && g.max_p99_ratio <= 100.0) {
        errors.push("guardrails.max_p99_ratio", "Give a ratio between 1 and 100.");
    }
    if !(1..=1_000_000).contains(&g.min_requests) {
        errors.push("guardrails.min_requests", "Give 1 to 1 000 000 requests.");
    }
    crate::endpoints::domain::check_alarm_names("guardrails.alarm_names", &g.alarm_names, errors);
    if let Some(m) = &g.outcome_metric
        && let Err(e) = crate::endpoints::outcomes::metric_name(m)
    {
        errors.push("guardrails.outcome_metric", e);
    }
}

/// A rollout as the rollouts page's form gives it (the error rate in
/// percent); the fields are checked as the API's when it starts.
pub fn from_form(row: &RolloutRow) -> Result<NewRollout, AppError> {
    use crate::kernel::validate::{percent, whole};
    let mut errors = Errors::new();
    let step = errors.check("step_percent", whole(&row.step_percent));
    let interval = errors.check("interval_seconds", whole(&row.interval_seconds));
    let min = errors.check("guardrails.min_requests", whole(&row.min_requests));
    let rate = errors.check("guardrails.max_error_rate", percent(&row.max_error_rate));
    let version = match row.candidate_version_id.trim() {
        "" => None,
        v => errors.check("candidate_version_id", Uuid::parse_str(v).map_err(|_| "Pick a version.".to_owned())),
    };
    errors.finish()?;
    Ok(NewRollout {
        baseline: row.baseline.clone(),
        candidate: row.candidate.trim().to_owned(),
        candidate_version_id: version,
        strategy: row.strategy.clone(),
        step_percent: step.unwrap_or_default(),
        interval_seconds: interval.unwrap_or_default(),
        guardrails: Guardrails {
            max_error_rate: rate.unwrap_or_default(),
            min_requests: i64::from(min.unwrap_or_default()),
            ..Default::default()
        },
    })
}

/// The request's fields checked against the endpoint; whether the
/// candidate is to be added (a version given for a variant it lacks).
fn plan(endpoint: &crate::endpoints::types::Endpoint, input: &NewRollout) -> Result<bool, AppError> {
    let mut errors = Errors::new();
    if !matches!(input.strategy.as_str(), "canary" | "linear" | "manual") {
        errors.push("strategy", "Give canary, linear or manual.");
    }
    if !(1..=50).contains(&input.step_percent) {
        errors.push("step_percent", "Give a step of 1 to 50 %.");
    }
    if !(0..=3600).contains(&input.interval_seconds) {
        errors.push("interval_seconds", "Give 0 to 3600 seconds.");
    }
    check_guardrails(&input.guardrails, &mut errors);
    if !input.guardrails.alarm_names.is_empty() && endpoint.backend == "local" {
        errors.push("guardrails.alarm_names", "CloudWatch alarms are watched in AWS mode only.");
    }
    let names: Vec<&str> = endpoint.variants.iter().map(|v| v.name.as_str()).collect();
    let list = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    if !names.contains(&input.baseline.as_str()) {
        errors.push("baseline", format!("Name a production variant of the endpoint ({list})."));
    }
    let existing = endpoint.variants.iter().find(|v| v.name == input.candidate);
    if input.candidate == input.baseline {
        errors.push("candidate", "The candidate must be another variant than the baseline.");
    } else if let (Some(v), Some(version)) = (existing, input.candidate_version_id)
        && v.version_id != version
    {
        errors.push("candidate_version_id", format!("`{}` exists already: leave the version out.", input.candidate));
    } else if existing.is_none() && input.candidate_version_id.is_none() {
        errors.push(
            "candidate",
            format!("Name a production variant ({list}), or give candidate_version_id to add `{}`.", input.candidate),
        );
    }
    errors.finish()?;
    Ok(existing.is_none())
}

/// The candidate variant a rollout adds: weight 0, the baseline's instances.
fn with_candidate(endpoint: &crate::endpoints::types::Endpoint, input: &NewRollout, version: Uuid) -> EndpointUpdate {
    let base = endpoint.variants.iter().find(|v| v.name == input.baseline);
    let mut variants: Vec<NewVariant> = endpoint
        .variants
        .iter()
        .map(|v| NewVariant {
            name: v.name.clone(),
            version_id: v.version_id,
            instance_type: v.instance_type.clone(),
            instance_count: v.instance_count,
            weight: v.weight,
        })
        .collect();
    variants.push(NewVariant {
        name: input.candidate.clone(),
        version_id: version,
        instance_type: base.map_or_else(|| "ml.m5.large".to_owned(), |b| b.instance_type.clone()),
        instance_count: base.map_or(1, |b| b.instance_count),
        weight: 0.0,
    });
    EndpointUpdate { variants: Some(variants), ..Default::default() }
}

/// The candidate's version as a field of the rollout request.
fn as_candidate_field(e: AppError) -> AppError {
    match e {
        AppError::Validation(fields) => AppError::Validation(
            fields
                .into_iter()
                .map(|mut f| {
                    if f.field.ends_with("version_id") {
                        f.field = "candidate_version_id".into();
                    }
                    f
                })
                .collect(),
        ),
        other => other,
    }
}

/// Refuses, with the field to blame, a rollout that [`start`] would refuse
/// for its fields or its candidate (what a change request checks when it is
/// opened). The endpoint must be team `team_id`'s.
pub(crate) async fn check(ctx: &Ctx, team_id: Uuid, endpoint_id: Uuid, input: &NewRollout) -> Result<(), AppError> {
    let (endpoint, team) = crate::endpoints::domain::load(ctx, endpoint_id, Action::Contribute).await?;
    if team != team_id {
        return Err(AppError::NotFound("Endpoint".into()));
    }
    if plan(&endpoint, input)?
        && let Some(version) = input.candidate_version_id
    {
        crate::endpoints::domain::check_change(
            ctx,
            team_id,
            endpoint_id,
            Some(&with_candidate(&endpoint, input, version)),
            None,
        )
        .await
        .map_err(as_candidate_field)?;
    }
    Ok(())
}

/// Starts a rollout on the endpoint (members and up): checks the request,
/// adds the candidate variant when a version is given for it, and records
/// the rollout; the worker takes its first step once the endpoint serves.
/// Where the team's approval policy covers `endpoint.rollout` (or
/// `endpoint.weights`, which its steps change), a direct start answers 409:
/// open a change request of kind `endpoint.rollout`, whose application
/// calls this with its route.
pub async fn start(ctx: &Ctx, endpoint_id: Uuid, input: NewRollout, route: Route) -> Result<Rollout, AppError> {
    let (endpoint, team_id) = crate::endpoints::domain::load(ctx, endpoint_id, Action::Contribute).await?;
    let add = plan(&endpoint, &input)?;
    let live = sqlx::query_scalar!(
        "select rollout_id from rollout where endpoint_id = $1 and state in ('running', 'paused')",
        endpoint_id
    )
    .fetch_optional(ctx.pool())
    .await?;
    if let Some(live) = live {
        return Err(AppError::Conflict {
            field: None,
            message: format!("Rollout {live} of this endpoint is under way: let it finish, or abort it first."),
        });
    }
    let mut conn = ctx.pool().acquire().await?;
    crate::endpoints::domain::refuse_while_on(&mut conn, endpoint_id).await?;
    if route == Route::Direct {
        let covering = [kinds::ENDPOINT_ROLLOUT, kinds::ENDPOINT_WEIGHTS];
        let team = (endpoint.team.as_str(), team_id);
        crate::kernel::changes::refuse_when_covered(&mut conn, team, &covering, kinds::ENDPOINT_ROLLOUT).await?;
    }
    drop(conn);
    let id = Uuid::now_v7();
    let endpoint = match input.candidate_version_id {
        // the rollout's own change: past the policy, as its steps are
        Some(version) if add => crate::endpoints::domain::update(
            ctx,
            endpoint_id,
            with_candidate(&endpoint, &input, version),
            Route::Rollout(id),
        )
        .await
        .map_err(as_candidate_field)?,
        _ => endpoint,
    };
    let weight = |name: &str| endpoint.variants.iter().find(|v| v.name == name).map_or(0.0, |v| v.weight);
    let pair = weight(&input.baseline) + weight(&input.candidate);
    if pair <= 0.0 {
        return Err(AppError::field(
            "baseline",
            "The baseline and the candidate have no weight to share: give the baseline a weight first.",
        ));
    }
    let actor = ctx.actor()?;
    let mut tx = ctx.pool().begin().await?;
    if let Route::ChangeRequest(_) = route {
        // applied once: the request's mark commits with the rollout
        gate(&mut tx, route, (&endpoint.team, team_id), kinds::ENDPOINT_ROLLOUT, (None, None), false).await?;
    }
    sqlx::query!(
        "insert into rollout (rollout_id, endpoint_id, baseline, candidate, strategy, step_percent, interval_seconds,
                              guardrails, pair_weight, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        id,
        endpoint_id,
        input.baseline,
        input.candidate,
        input.strategy,
        input.step_percent,
        input.interval_seconds,
        json!(input.guardrails),
        pair,
        actor.user_id,
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.rollout_started",
            target_type: "endpoint",
            target_id: Some(endpoint_id.to_string()),
            summary: json!({ "request": route.request(), "after": { "rollout": id, "baseline": input.baseline, "candidate": input.candidate,
                             "strategy": input.strategy, "step_percent": input.step_percent,
                             "interval_seconds": input.interval_seconds, "guardrails": input.guardrails,
                             "planned": planned(&input.strategy, input.step_percent) } }),
        },
    )
    .await?;
    tx.commit().await?;
    ctx.state.rollouts_wake.notify_one();
    get(ctx, id).await
}

/// A rollout (viewers of its endpoint's team).
pub async fn get(ctx: &Ctx, id: Uuid) -> Result<Rollout, AppError> {
    let endpoint = sqlx::query_scalar!("select endpoint_id from rollout where rollout_id = $1", id)
        .fetch_optional(ctx.pool())
        .await?
        .ok_or_else(|| AppError::NotFound("Rollout".into()))?;
    crate::endpoints::domain::authorized(ctx, endpoint, Action::ReadTeam).await.map_err(|e| match e {
        AppError::NotFound(_) => AppError::NotFound("Rollout".into()),
        other => other,
    })?;
    read(ctx.pool(), &[id]).await?.pop().ok_or_else(|| AppError::NotFound("Rollout".into()))
}

/// The endpoint's rollouts, newest first (viewers).
pub async fn list(ctx: &Ctx, endpoint: Uuid) -> Result<Vec<Rollout>, AppError> {
    crate::endpoints::domain::authorized(ctx, endpoint, Action::ReadTeam).await?;
    let ids = sqlx::query_scalar!(
        "select rollout_id from rollout where endpoint_id = $1 order by created_at desc limit 50",
        endpoint
    )
    .fetch_all(ctx.pool())
    .await?;
    read(ctx.pool(), &ids).await
}

async fn read(pool: &sqlx::PgPool, ids: &[Uuid]) -> Result<Vec<Rollout>, AppError> {
    let heads = sqlx::query!(
        r#"select r.rollout_id, r.endpoint_id, t.slug as team, e.name as endpoint, r.baseline, r.candidate,
                  r.strategy, r.step_percent, r.interval_seconds, r.guardrails, r.state, r.percent, r.reason,
                  u.email as created_by, r.created_at, r.finished_at
           from rollout r join endpoint e on e.endpoint_id = r.endpoint_id join team t on t.team_id = e.team_id
           join app_user u on u.user_id = r.created_by
           where r.rollout_id = any($1) order by r.created_at desc"#,
        ids
    )
    .fetch_all(pool)
    .await?;
    let steps = sqlx::query!(
        "select rollout_id, seq, percent, started_at, started_by, ended_at, result, checks from rollout_step
         where rollout_id = any($1) order by rollout_id, seq",
        ids
    )
    .fetch_all(pool)
    .await?;
    Ok(heads
        .into_iter()
        .map(|h| Rollout {
            id: h.rollout_id,
            endpoint_id: h.endpoint_id,
            team: h.team,
            endpoint: h.endpoint,
            planned: planned(&h.strategy, h.step_percent),
            baseline: h.baseline,
            candidate: h.candidate,
            strategy: h.strategy,
            step_percent: h.step_percent,
            interval_seconds: h.interval_seconds,
            guardrails: serde_json::from_value(h.guardrails).unwrap_or_default(),
            state: h.state,
            percent: h.percent,
            steps: steps
                .iter()
                .filter(|s| s.rollout_id == h.rollout_id)
                .map(|s| RolloutStep {
                    seq: s.seq,
                    percent: s.percent,
                    started_at: s.started_at,
                    started_by: s.started_by.clone(),
                    ended_at: s.ended_at,
                    result: s.result.clone(),
                    checks: serde_json::from_value(s.checks.clone()).unwrap_or_default(),
                })
                .collect(),
            reason: h.reason,
            created_by: h.created_by,
            created_at: h.created_at,
            finished_at: h.finished_at,
        })
        .collect())
}

/// What a person does to a running rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The next step now (a manual rollout's only way on).
    Promote,
    /// No further steps (the guardrails still watch).
    Pause,
    Resume,
    /// The traffic back to the baseline; needs no approval.
    Abort,
}

/// Promotes, pauses, resumes or aborts a rollout (members and up); audited.
pub async fn command(ctx: &Ctx, id: Uuid, what: Command) -> Result<Rollout, AppError> {
    let endpoint = sqlx::query_scalar!("select endpoint_id from rollout where rollout_id = $1", id)
        .fetch_optional(ctx.pool())
        .await?
        .ok_or_else(|| AppError::NotFound("Rollout".into()))?;
    let (team_id, _) =
        crate::endpoints::domain::authorized(ctx, endpoint, Action::Contribute).await.map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("Rollout".into()),
            other => other,
        })?;
    let actor = ctx.actor()?.clone();
    let mut tx = ctx.pool().begin().await?;
    let r = lock(&mut tx, id, false).await?.ok_or_else(|| AppError::NotFound("Rollout".into()))?;
    let allowed = match what {
        Command::Promote | Command::Pause => r.state == "running",
        Command::Resume => r.state == "paused",
        Command::Abort => matches!(r.state.as_str(), "running" | "paused"),
    };
    if !allowed {
        return Err(AppError::Conflict {
            field: None,
            message: format!("The rollout is {}.", r.state.replace('_', " ")),
        });
    }
    let action = match what {
        Command::Promote => "endpoint.rollout_promoted",
        Command::Pause => "endpoint.rollout_paused",
        Command::Resume => "endpoint.rollout_resumed",
        Command::Abort => "endpoint.rollout_aborted",
    };
    let mut after = json!({});
    match what {
        Command::Promote => match next_share(&r) {
            Some(next) => {
                take_step(ctx, &mut tx, &r, next, &actor.email, None).await?;
                after = json!({ "percent": next });
            }
            None => {
                end_step(&mut tx, &r, "passed", None).await?;
                finish(&mut tx, &r, "completed", None).await?;
                after = json!({ "state": "completed" });
            }
        },
        Command::Pause | Command::Resume => {
            let state = if what == Command::Pause { "paused" } else { "running" };
            sqlx::query!("update rollout set state = $2 where rollout_id = $1", id, state).execute(&mut *tx).await?;
            after = json!({ "state": state });
        }
        Command::Abort => {
            set_share(ctx, &r, 0).await?;
            end_step(&mut tx, &r, "aborted", None).await?;
            finish(&mut tx, &r, "aborted", Some(format!("Aborted by {}.", actor.email))).await?;
            after = json!({ "state": "aborted", "percent": 0 });
        }
    }
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action,
            target_type: "endpoint",
            target_id: Some(r.endpoint_id.to_string()),
            summary: json!({ "rollout": id, "before": { "state": r.state, "percent": r.percent }, "after": after }),
        },
    )
    .await?;
    tx.commit().await?;
    ctx.state.rollouts_wake.notify_one();
    get(ctx, id).await
}

/// A rollout as the worker and the commands read it, its row locked.
struct Locked {
    id: Uuid,
    endpoint_id: Uuid,
    team_id: Uuid,
    endpoint_status: String,
    baseline: String,
    candidate: String,
    strategy: String,
    step_percent: i32,
    interval_seconds: i32,
    guardrails: Guardrails,
    pair_weight: f64,
    state: String,
    percent: i32,
    created_by: Uuid,
    created_at: OffsetDateTime,
    /// The step under way: its number and when it began.
    step: Option<(i32, OffsetDateTime)>,
}

/// Locks the rollout's row (skipping it, when `skip`, if another process
/// holds it).
async fn lock(tx: &mut sqlx::PgConnection, id: Uuid, skip: bool) -> Result<Option<Locked>, AppError> {
    let row = sqlx::query!(
        r#"select r.rollout_id, r.endpoint_id, e.team_id, e.status, r.baseline, r.candidate, r.strategy,
                  r.step_percent, r.interval_seconds, r.guardrails, r.pair_weight, r.state, r.percent, r.created_by,
                  r.created_at,
                  (select s.seq from rollout_step s where s.rollout_id = r.rollout_id and s.ended_at is null
                   order by s.seq desc limit 1) as step_seq,
                  (select s.started_at from rollout_step s where s.rollout_id = r.rollout_id and s.ended_at is null
                   order by s.seq desc limit 1) as step_started
           from rollout r join endpoint e on e.endpoint_id = r.endpoint_id
           where r.rollout_id = $1
           for update of r skip locked"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let row = match row {
        Some(row) => row,
        // held by another process: the caller waits for it, the worker moves on
        None if !skip => {
            return lock_waiting(tx, id).await;
        }
        None => return Ok(None),
    };
    Ok(Some(Locked {
        id: row.rollout_id,
        endpoint_id: row.endpoint_id,
        team_id: row.team_id,
        endpoint_status: row.status,
        baseline: row.baseline,
        candidate: row.candidate,
        strategy: row.strategy,
        step_percent: row.step_percent,
        interval_seconds: row.interval_seconds,
        guardrails: serde_json::from_value(row.guardrails).unwrap_or_default(),
        pair_weight: row.pair_weight,
        state: row.state,
        percent: row.percent,
        created_by: row.created_by,
        created_at: row.created_at,
        step: row.step_seq.zip(row.step_started),
    }))
}

/// [`lock`], waiting for the row.
async fn lock_waiting(tx: &mut sqlx::PgConnection, id: Uuid) -> Result<Option<Locked>, AppError> {
    let held = sqlx::query_scalar!("select rollout_id from rollout where rollout_id = $1 for update", id)
        .fetch_optional(&mut *tx)
        .await?;
    if held.is_none() {
        return Ok(None);
    }
    Box::pin(lock(tx, id, true)).await
}

/// The share after the current one, none at the end.
fn next_share(r: &Locked) -> Option<i32> {
    if r.step.is_none() {
        return planned(&r.strategy, r.step_percent).first().copied();
    }
    planned(&r.strategy, r.step_percent).into_iter().find(|p| *p > r.percent)
}

/// Sets the weights for the candidate's `share` of the pair.
async fn set_share(ctx: &Ctx, r: &Locked, share: i32) -> Result<(), AppError> {
    let candidate = r.pair_weight * f64::from(share) / 100.0;
    let weights = Weights {
        weights: vec![
            VariantWeight { variant: r.baseline.clone(), weight: r.pair_weight - candidate },
            VariantWeight { variant: r.candidate.clone(), weight: candidate },
        ],
    };
    crate::endpoints::domain::set_weights(ctx, r.endpoint_id, weights, Route::Rollout(r.id)).await?;
    Ok(())
}

/// Ends the step under way, if any.
async fn end_step(
    tx: &mut sqlx::PgConnection,
    r: &Locked,
    result: &str,
    checks: Option<&[GuardrailCheck]>,
) -> Result<(), AppError> {
    if let Some((seq, _)) = r.step {
        sqlx::query!(
            "update rollout_step set ended_at = now(), result = $3, checks = coalesce($4, checks)
             where rollout_id = $1 and seq = $2",
            r.id,
            seq,
            result,
            checks.map(|c| json!(c)),
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Moves the candidate to `share`: the weights, then the step's record
/// (the step under way ends as passed, with `checks` when it was judged).
async fn take_step(
    ctx: &Ctx,
    tx: &mut sqlx::PgConnection,
    r: &Locked,
    share: i32,
    by: &str,
    checks: Option<&[GuardrailCheck]>,
) -> Result<(), AppError> {
    set_share(ctx, r, share).await?;
    end_step(tx, r, "passed", checks).await?;
    let seq = r.step.map_or(1, |(seq, _)| seq + 1);
    sqlx::query!(
        "insert into rollout_step (rollout_id, seq, percent, started_by) values ($1, $2, $3, $4)",
        r.id,
        seq,
        share,
        by
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("update rollout set percent = $2 where rollout_id = $1", r.id, share).execute(&mut *tx).await?;
    Ok(())
}

async fn finish(tx: &mut sqlx::PgConnection, r: &Locked, state: &str, reason: Option<String>) -> Result<(), AppError> {
    let percent = if state == "completed" { r.percent } else { 0 };
    sqlx::query!(
        "update rollout set state = $2, reason = $3, finished_at = now(), percent = $4 where rollout_id = $1",
        r.id,
        state,
        reason,
        percent
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Rolls back the endpoint's latest rollout — live, or completed within the
/// last day — for `reason` (its health score fell below the threshold):
/// the weights back to the baseline, the rollout `rolled_back` with the
/// reason, audited as `endpoint.rollout_rolled_back`. The rollout, if any.
pub(crate) async fn roll_back_latest(
    state: &AppState,
    endpoint_id: Uuid,
    reason: &str,
) -> Result<Option<Uuid>, AppError> {
    let latest = sqlx::query_scalar!(
        "select rollout_id from rollout where endpoint_id = $1
           and (state in ('running', 'paused') or (state = 'completed' and finished_at > now() - interval '1 day'))
         order by created_at desc limit 1",
        endpoint_id
    )
    .fetch_optional(&state.pool)
    .await?;
    let Some(id) = latest else { return Ok(None) };
    let mut tx = state.pool.begin().await?;
    let Some(r) = lock(&mut tx, id, false).await? else { return Ok(None) };
    if !matches!(r.state.as_str(), "running" | "paused" | "completed") {
        return Ok(None);
    }
    let ctx = crate::endpoints::domain::system_ctx(state, r.created_by, "health");
    set_share(&ctx, &r, 0).await?;
    end_step(&mut tx, &r, "rolled_back", None).await?;
    finish(&mut tx, &r, "rolled_back", Some(reason.to_owned())).await?;
    record(&ctx, &mut tx, &r, "endpoint.rollout_rolled_back", json!({ "reason": reason })).await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// The worker's pass over every running or paused rollout: judge the step
/// under way, roll back on a failed guardrail, else take the next step when
/// its time has come. Returns how many rollouts it moved.
pub async fn tick(state: &AppState) -> Result<usize, AppError> {
    let live = sqlx::query_scalar!("select rollout_id from rollout where state in ('running', 'paused')")
        .fetch_all(&state.pool)
        .await?;
    let mut moved = 0;
    for id in live {
        match advance(state, id).await {
            Ok(true) => moved += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(rollout = %id, error = %e, "could not step a rollout"),
        }
    }
    Ok(moved)
}

/// One rollout's turn; whether it moved.
async fn advance(state: &AppState, id: Uuid) -> Result<bool, AppError> {
    let mut tx = state.pool.begin().await?;
    let Some(r) = lock(&mut tx, id, true).await? else { return Ok(false) };
    if !matches!(r.state.as_str(), "running" | "paused") {
        return Ok(false);
    }
    let ctx = crate::endpoints::domain::system_ctx(state, r.created_by, "rollout");
    let Some((_, since)) = r.step else {
        // the first step, once the endpoint serves (a candidate added by the rollout is deployed first)
        if r.state != "running" || r.endpoint_status != "InService" {
            if r.state == "running" && OffsetDateTime::now_utc() - r.created_at > FIRST_STEP_DEADLINE {
                let reason = format!(
                    "Aborted: the endpoint did not serve within {} minutes of the start (it is {})",
                    FIRST_STEP_DEADLINE.whole_minutes(),
                    r.endpoint_status
                );
                finish(&mut tx, &r, "aborted", Some(reason.clone())).await?;
                record(&ctx, &mut tx, &r, "endpoint.rollout_aborted", json!({ "reason": reason })).await?;
                tx.commit().await?;
                return Ok(true);
            }
            return Ok(false);
        }
        let Some(share) = next_share(&r) else { return Ok(false) };
        let by = sqlx::query_scalar!("select email from app_user where user_id = $1", r.created_by)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or_else(|| "capstan".into());
        take_step(&ctx, &mut tx, &r, share, &by, None).await?;
        record(&ctx, &mut tx, &r, "endpoint.rollout_stepped", json!({ "percent": share })).await?;
        tx.commit().await?;
        return Ok(true);
    };
    let checks = evaluate(state, &r, since).await?;
    if let Some(failed) = checks.iter().find(|c| c.status == "fail") {
        let reason = format!("Rolled back at {} %: {}", r.percent, failed.text);
        set_share(&ctx, &r, 0).await?;
        end_step(&mut tx, &r, "rolled_back", Some(&checks)).await?;
        finish(&mut tx, &r, "rolled_back", Some(reason.clone())).await?;
        record(&ctx, &mut tx, &r, "endpoint.rollout_rolled_back", json!({ "reason": reason, "checks": checks }))
            .await?;
        tx.commit().await?;
        tracing::warn!(rollout = %id, %reason, "rollout rolled back");
        return Ok(true);
    }
    let judged = checks.iter().all(|c| c.status != "waiting" || c.name != "min_requests");
    let elapsed = OffsetDateTime::now_utc() - since;
    let due = r.state == "running"
        && r.strategy != "manual"
        && judged
        && elapsed >= time::Duration::seconds(i64::from(r.interval_seconds));
    if !due {
        sqlx::query!(
            "update rollout_step set checks = $3 where rollout_id = $1 and seq = $2",
            r.id,
            r.step.map(|s| s.0).unwrap_or_default(),
            json!(checks)
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(false);
    }
    match next_share(&r) {
        Some(share) => {
            take_step(&ctx, &mut tx, &r, share, "capstan", Some(&checks)).await?;
            record(&ctx, &mut tx, &r, "endpoint.rollout_stepped", json!({ "percent": share, "checks": checks }))
                .await?;
        }
        None => {
            end_step(&mut tx, &r, "passed", Some(&checks)).await?;
            finish(&mut tx, &r, "completed", None).await?;
            record(&ctx, &mut tx, &r, "endpoint.rollout_completed", json!({ "checks": checks })).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

async fn record(
    ctx: &Ctx,
    tx: &mut sqlx::PgConnection,
    r: &Locked,
    action: &str,
    after: serde_json::Value,
) -> Result<(), AppError> {
    ctx.record(
        tx,
        NewEvent {
            team_id: Some(r.team_id),
            action,
            target_type: "endpoint",
            target_id: Some(r.endpoint_id.to_string()),
            summary: json!({ "rollout": r.id, "before": { "percent": r.percent }, "after": after }),
        },
    )
    .await?;
    Ok(())
}

/// How long a rollout waits for its endpoint to serve (a candidate it added
/// to be deployed) before its first step; then it is aborted.
const FIRST_STEP_DEADLINE: time::Duration = time::Duration::minutes(30);

/// The p99 latency a baseline counts as at least, in the latency guardrail
/// (a candidate at 5 ms against a baseline at 2 ms has not regressed).
const P99_FLOOR_MS: f64 = 25.0;

/// The guardrails' figures over the window since `since` (whole minutes).
/// In AWS mode the counts are CloudWatch's where it has the minute (they
/// count every invocation, also those sent to SageMaker Runtime directly),
/// its p99 the slowest minute's; and the named alarms are asked for.
async fn evaluate(state: &AppState, r: &Locked, since: OffsetDateTime) -> Result<Vec<GuardrailCheck>, AppError> {
    let pool = &state.pool;
    let mut served = served(pool, r.endpoint_id, &[r.baseline.clone(), r.candidate.clone()], since).await?;
    let base = served.remove(&r.baseline).unwrap_or_default();
    let cand = served.remove(&r.candidate).unwrap_or_default();
    let g = &r.guardrails;
    let min = g.min_requests as f64;
    let enough = cand.requests >= min;
    let rate = |s: &Served| s.error_rate().unwrap_or(0.0);
    let judge = |bad: bool| {
        if !enough {
            "waiting"
        } else if bad {
            "fail"
        } else {
            "pass"
        }
    };
    let mut checks = vec![GuardrailCheck {
        name: "min_requests".into(),
        value: Some(cand.requests),
        limit: min,
        status: if enough { "pass" } else { "waiting" }.into(),
        text: format!("{} of {} requests served by {} in this step", cand.requests, g.min_requests, r.candidate),
    }];
    let cand_rate = rate(&cand);
    checks.push(GuardrailCheck {
        name: "error_rate".into(),
        value: Some(cand_rate),
        limit: g.max_error_rate,
        status: judge(cand_rate > g.max_error_rate).into(),
        text: format!(
            "{}'s error rate {:.2} % (at most {:.2} %)",
            r.candidate,
            cand_rate * 100.0,
            g.max_error_rate * 100.0
        ),
    });
    let floor = rate(&base).max(0.005);
    let ratio = cand_rate / floor;
    checks.push(GuardrailCheck {
        name: "error_ratio".into(),
        value: Some(ratio),
        limit: g.max_error_ratio,
        status: judge(ratio > g.max_error_ratio).into(),
        text: format!(
            "{}'s error rate {:.2} % is {ratio:.2}× {}'s {:.2} % (at most {}×; a baseline under 0.5 % counts as 0.5 %)",
            r.candidate,
            cand_rate * 100.0,
            r.baseline,
            rate(&base) * 100.0,
            g.max_error_ratio
        ),
    });
    match (cand.p99(), base.p99()) {
        (Some(c), Some(b)) if base.requests >= min.min(20.0) && b > 0.0 => {
            // a few milliseconds either way is noise, not a regression
            let ratio = c / b.max(P99_FLOOR_MS);
            checks.push(GuardrailCheck {
                name: "p99_ratio".into(),
                value: Some(ratio),
                limit: g.max_p99_ratio,
                status: judge(ratio > g.max_p99_ratio).into(),
                text: format!(
                    "{}'s p99 {c} ms is {ratio:.2}× {}'s {b} ms (at most {}×; a baseline under {P99_FLOOR_MS} ms counts \
                     as {P99_FLOOR_MS} ms)",
                    r.candidate, r.baseline, g.max_p99_ratio
                ),
            });
        }
        _ => checks.push(GuardrailCheck {
            name: "p99_ratio".into(),
            value: None,
            limit: g.max_p99_ratio,
            status: "waiting".into(),
            text: format!("p99 latency: too little traffic on {} to compare", r.baseline),
        }),
    }
    if let Some(metric) = &g.outcome_metric {
        checks.push(outcome_check(pool, r, since, metric, (base.requests, cand.requests), enough).await?);
    }
    if !g.alarm_names.is_empty() {
        checks.push(alarm_check(state, &g.alarm_names).await);
    }
    Ok(checks)
}

/// The alarms guardrail: none of the named CloudWatch alarms in `ALARM`.
/// An alarm that cannot be read (or does not exist) leaves it waiting.
async fn alarm_check(state: &AppState, names: &[String]) -> GuardrailCheck {
    let states = match &state.serving {
        Some(serving) => serving.alarm_states(names).await.map_err(|e| e.to_string()),
        None => Err("this process serves no endpoints".into()),
    };
    let (status, text, value) = match states {
        Ok(states) => {
            let firing: Vec<&str> = states.iter().filter(|(_, s)| s == "ALARM").map(|(n, _)| n.as_str()).collect();
            let missing: Vec<&str> =
                names.iter().filter(|n| !states.iter().any(|(m, _)| m == *n)).map(String::as_str).collect();
            if !firing.is_empty() {
                ("fail", format!("CloudWatch alarm in ALARM: {}", firing.join(", ")), firing.len())
            } else if !missing.is_empty() {
                ("waiting", format!("CloudWatch has no alarm {}", missing.join(", ")), 0)
            } else {
                ("pass", format!("no alarm in ALARM ({})", names.join(", ")), 0)
            }
        }
        Err(e) => ("waiting", format!("the alarms could not be read: {e}"), 0),
    };
    GuardrailCheck { name: "alarms".into(), value: Some(value as f64), limit: 0.0, status: status.into(), text }
}

/// The outcome guardrail: the candidate may not be significantly worse than
/// the baseline on `metric` per invocation (an invocation without an
/// outcome counts 0), by the experiments' always-valid test at α = 0.05.
async fn outcome_check(
    pool: &sqlx::PgPool,
    r: &Locked,
    since: OffsetDateTime,
    metric: &str,
    (base_requests, cand_requests): (f64, f64),
    enough: bool,
) -> Result<GuardrailCheck, AppError> {
    let rows = sqlx::query!(
        r#"select variant, sum(sum) as "sum!", sum(sum_squares) as "sum_squares!"
           from endpoint_outcome_minute where endpoint_id = $1 and metric = $2 and minute >= $3
             and variant in ($4, $5) group by variant"#,
        r.endpoint_id,
        metric,
        minute_of(since),
        r.baseline,
        r.candidate
    )
    .fetch_all(pool)
    .await?;
    let sample = |name: &str, n: f64| {
        let row = rows.iter().find(|row| row.variant == name);
        Sample { n, sum: row.map_or(0.0, |x| x.sum), sum_squares: row.map_or(0.0, |x| x.sum_squares) }
    };
    let (a, b) = (sample(&r.baseline, base_requests), sample(&r.candidate, cand_requests));
    let lift = stats::sequential(&a, &b, Kind::Real, 0.05, stats::DEFAULT_TUNING);
    let worse = lift.is_some_and(|l| l.high < 0.0);
    Ok(GuardrailCheck {
        name: "outcome".into(),
        value: lift.map(|l| l.estimate),
        limit: 0.0,
        status: if !enough || lift.is_none() {
            "waiting"
        } else if worse {
            "fail"
        } else {
            "pass"
        }
        .into(),
        text: match lift {
            Some(l) => format!(
                "{metric}: {} {:+.2} % against {} (always-valid interval {:+.2} % … {:+.2} %)",
                r.candidate,
                l.estimate * 100.0,
                r.baseline,
                l.low * 100.0,
                l.high * 100.0
            ),
            None => format!("{metric}: not enough outcomes to compare yet"),
        },
    })
}
