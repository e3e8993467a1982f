//! An endpoint's experiment: which metric decides between its production
//! variants (`set`), and the analysis (`get`): per variant its invocations,
//! units, rate or mean, and its lift over the baseline with an always-valid
//! interval ([`crate::endpoints::stats`]), over the window since the split
//! last changed; a sample-ratio-mismatch check of the invocations against
//! the weights; and a verdict in words.
//!
//! Units: for a binary metric every invocation the gateway served is a unit
//! (one without an outcome counts 0), read from the traffic rollups; for a
//! real metric every outcome is one. Both are read a minute at a time, so
//! the minute in which the window starts counts whole.

use crate::endpoints::stats::{self, Kind, Sample};
use crate::endpoints::types::{Experiment, ExperimentSettings, ExperimentVariant, LiftInterval, LiftPoint};
use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::kernel::validate::Errors;
use serde_json::json;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// At most this many points of a variant's history.
const HISTORY_POINTS: usize = 120;

/// Sets (or changes) the endpoint's experiment (members and up); audited.
pub async fn set(ctx: &Ctx, id: Uuid, input: ExperimentSettings) -> Result<Experiment, AppError> {
    let (endpoint, team_id) = crate::endpoints::domain::load(ctx, id, Action::Contribute).await?;
    let mut errors = Errors::new();
    let metric = errors.check("metric", crate::endpoints::outcomes::metric_name(input.metric.trim()));
    if !matches!(input.kind.as_str(), "binary" | "real") {
        errors.push("kind", "Give binary (a rate per invocation) or real (the mean of the values reported).");
    }
    if !matches!(input.goal.as_str(), "increase" | "decrease") {
        errors.push("goal", "Give increase or decrease: which way the metric is better.");
    }
    let names: Vec<&str> = endpoint.variants.iter().map(|v| v.name.as_str()).collect();
    if !names.contains(&input.baseline.as_str()) {
        errors.push("baseline", format!("Name one of the endpoint's production variants ({}).", names.join(", ")));
    }
    if !(0.001..=0.2).contains(&input.alpha) {
        errors.push("alpha", "Give a level between 0.001 and 0.2 (0.05 is usual).");
    }
    errors.finish()?;
    let metric = metric.unwrap_or_default();
    let actor = ctx.actor()?;
    let mut tx = ctx.pool().begin().await?;
    let before = sqlx::query!(
        "select metric, kind, goal, baseline, alpha, started_at from endpoint_experiment where endpoint_id = $1
         for update",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query!(
        "insert into endpoint_experiment (endpoint_id, metric, kind, goal, baseline, alpha, updated_by)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (endpoint_id) do update set metric = $2, kind = $3, goal = $4, baseline = $5, alpha = $6,
             updated_by = $7, updated_at = now(),
             started_at = case when $8 then now() else endpoint_experiment.started_at end",
        id,
        metric,
        input.kind,
        input.goal,
        input.baseline,
        input.alpha,
        actor.user_id,
        input.restart,
    )
    .execute(&mut *tx)
    .await?;
    let before = before.map(
        |b| json!({ "metric": b.metric, "kind": b.kind, "goal": b.goal, "baseline": b.baseline, "alpha": b.alpha }),
    );
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.experiment_set",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "before": before, "after": { "metric": metric, "kind": input.kind, "goal": input.goal,
                             "baseline": input.baseline, "alpha": input.alpha, "restart": input.restart } }),
        },
    )
    .await?;
    tx.commit().await?;
    get(ctx, id, None).await
}

/// The analysis of the endpoint's experiment as it stood at `as_of`
/// (default now), for viewers and up; 404 while it has none.
pub async fn get(ctx: &Ctx, id: Uuid, as_of: Option<OffsetDateTime>) -> Result<Experiment, AppError> {
    find(ctx, id, as_of)
        .await?
        .ok_or_else(|| AppError::NotFound("Experiment of this endpoint (start one: PUT …/experiment)".into()))
}

/// The analysis of the endpoint's experiment, if it has one.
pub async fn find(ctx: &Ctx, id: Uuid, as_of: Option<OffsetDateTime>) -> Result<Option<Experiment>, AppError> {
    let (endpoint, _) = crate::endpoints::domain::load(ctx, id, Action::ReadTeam).await?;
    let settings = sqlx::query!(
        r#"select x.metric, x.kind, x.goal, x.baseline, x.alpha, x.started_at, e.split_changed_at
           from endpoint_experiment x join endpoint e on e.endpoint_id = x.endpoint_id where x.endpoint_id = $1"#,
        id
    )
    .fetch_optional(ctx.pool())
    .await?;
    let Some(settings) = settings else { return Ok(None) };
    let now = OffsetDateTime::now_utc();
    let as_of = as_of.map_or(now, |t| t.min(now));
    let from = minute_of(settings.started_at.max(settings.split_changed_at));
    let kind = if settings.kind == "binary" { Kind::Binary } else { Kind::Real };
    let order: Vec<&str> = std::iter::once(settings.baseline.as_str())
        .chain(endpoint.variants.iter().map(|v| v.name.as_str()).filter(|n| *n != settings.baseline))
        .collect();
    let rows = read_minutes(ctx.pool(), id, &settings.metric, from, as_of).await?;
    let mut totals: BTreeMap<&str, (f64, Sample)> = order.iter().map(|n| (*n, (0.0, Sample::default()))).collect();
    // the cumulative samples at the end of each minute
    let mut minutes: Vec<(OffsetDateTime, Vec<Sample>)> = Vec::new();
    for r in &rows {
        let Some((invocations, sample)) = totals.get_mut(r.variant.as_str()) else { continue };
        r.add_to(invocations, sample, kind);
        let now_samples: Vec<Sample> = order.iter().map(|n| totals[n].1).collect();
        match minutes.last_mut() {
            Some((at, samples)) if *at == r.minute => *samples = now_samples,
            _ => minutes.push((r.minute, now_samples)),
        }
    }
    let base = totals.get(settings.baseline.as_str()).map(|t| t.1).unwrap_or_default();
    let goal_up = settings.goal == "increase";
    let weights: BTreeMap<&str, f64> = endpoint.variants.iter().map(|v| (v.name.as_str(), v.weight)).collect();
    let mut variants = Vec::new();
    let mut verdicts = Vec::new();
    for (i, name) in order.iter().enumerate() {
        let (invocations, sample) = totals[name];
        let lift = (i > 0).then(|| stats::sequential(&base, &sample, kind, settings.alpha, stats::DEFAULT_TUNING));
        let lift = lift.flatten();
        let status = match (i, lift) {
            (0, _) => "baseline",
            (_, Some(l)) if l.significant() && (l.estimate > 0.0) == goal_up => "better",
            (_, Some(l)) if l.significant() => "worse",
            _ => "inconclusive",
        };
        if matches!(status, "better" | "worse") {
            verdicts.push(format!("{name} {status}"));
        }
        let history = if i == 0 { Vec::new() } else { history(&minutes, i, kind, settings.alpha) };
        variants.push(ExperimentVariant {
            variant: (*name).to_owned(),
            weight: weights.get(name).copied().unwrap_or_default(),
            invocations: count(invocations),
            units: count(sample.n),
            mean: sample.mean(),
            lift: lift.map(|l| LiftInterval { estimate: l.estimate, low: l.low, high: l.high, p_value: l.p_value }),
            status: status.to_owned(),
            history,
        });
    }
    let observed: Vec<f64> = variants.iter().map(|v| v.invocations as f64).collect();
    let expected: Vec<f64> = variants.iter().map(|v| v.weight).collect();
    let bandit = sqlx::query_scalar!("select 1 as one from endpoint_bandit where endpoint_id = $1", id)
        .fetch_optional(ctx.pool())
        .await?
        .is_some();
    let srm_p_value = if bandit { 1.0 } else { stats::sample_ratio_mismatch(&observed, &expected) };
    let judged = variants.iter().skip(1).any(|v| v.lift.is_some());
    let verdict = if !verdicts.is_empty() {
        format!("significant: {}", verdicts.join(", "))
    } else if variants.len() < 2 {
        "nothing to compare: the endpoint has one production variant".to_owned()
    } else if judged {
        "keep running".to_owned()
    } else {
        "not enough data yet: each variant needs invocations and outcomes (values that vary)".to_owned()
    };
    Ok(Some(Experiment {
        endpoint_id: id,
        metric: settings.metric,
        kind: settings.kind,
        goal: settings.goal,
        baseline: settings.baseline,
        alpha: settings.alpha,
        started_at: settings.started_at,
        window_from: from,
        as_of,
        variants,
        srm_p_value,
        srm_warning: srm_p_value < 0.001,
        bandit,
        verdict,
    }))
}

/// The lift of variant `i` over the baseline (0) at the end of each minute,
/// thinned to at most [`HISTORY_POINTS`] (the last minute always kept).
fn history(minutes: &[(OffsetDateTime, Vec<Sample>)], i: usize, kind: Kind, alpha: f64) -> Vec<LiftPoint> {
    let step = minutes.len().div_ceil(HISTORY_POINTS).max(1);
    minutes
        .iter()
        .enumerate()
        .filter(|(k, _)| (minutes.len() - 1 - k).is_multiple_of(step))
        .filter_map(|(_, (at, samples))| {
            let l = stats::sequential(&samples[0], &samples[i], kind, alpha, stats::DEFAULT_TUNING)?;
            Some(LiftPoint { at: *at, units: count(samples[i].n), estimate: l.estimate, low: l.low, high: l.high })
        })
        .collect()
}

fn count(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 { x.round() as u64 } else { 0 }
}

/// One variant's minute of an experiment's metric: the invocations it
/// served, and the outcomes reported for them (count, sum, sum of squares).
pub(crate) struct MinuteRow {
    pub variant: String,
    pub minute: OffsetDateTime,
    pub requests: f64,
    pub n: f64,
    pub sum: f64,
    pub sum_squares: f64,
}

impl MinuteRow {
    /// Adds the minute to a variant's invocations and sample: for a binary
    /// metric every invocation is a unit (one without an outcome counts 0),
    /// for a real one every outcome.
    pub fn add_to(&self, invocations: &mut f64, sample: &mut Sample, kind: Kind) {
        *invocations += self.requests;
        match kind {
            Kind::Binary => {
                sample.n += self.requests;
                sample.sum += self.sum;
                sample.sum_squares += self.sum;
            }
            Kind::Real => {
                sample.n += self.n;
                sample.sum += self.sum;
                sample.sum_squares += self.sum_squares;
            }
        }
    }
}

/// The endpoint's minutes from `from` to `to` (both whole minutes
/// counted) of invocations and of `metric`'s outcomes, per variant, in
/// time order: what an experiment and a bandit read.
pub(crate) async fn read_minutes(
    pool: &sqlx::PgPool,
    id: Uuid,
    metric: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<MinuteRow>, AppError> {
    Ok(sqlx::query_as!(
        MinuteRow,
        r#"select coalesce(t.variant, o.variant) as "variant!", coalesce(t.minute, o.minute) as "minute!",
                  coalesce(t.requests, 0)::float8 as "requests!", coalesce(o.n, 0)::float8 as "n!",
                  coalesce(o.sum, 0) as "sum!", coalesce(o.sum_squares, 0) as "sum_squares!"
           from (select variant, minute, requests from endpoint_metric
                 where endpoint_id = $1 and minute >= $2 and minute <= $3) t
           full join (select variant, minute, n, sum, sum_squares from endpoint_outcome_minute
                      where endpoint_id = $1 and metric = $4 and minute >= $2 and minute <= $3) o
                on o.variant = t.variant and o.minute = t.minute
           order by 2"#,
        id,
        from,
        to,
        metric,
    )
    .fetch_all(pool)
    .await?)
}

/// The start of `t`'s minute (the rollups' granularity).
pub(crate) fn minute_of(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_second(0).and_then(|t| t.replace_nanosecond(0)).unwrap_or(t)
}
