//! Training jobs after launch: reading one or a team's list, cost (worst
//! case, so far, actual), this month's spend, stopping, and metrics.

use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::Page;
use crate::kernel::roles::{Action, Role, authorize_owned};
use crate::training::types::{
    Cost, FinalMetric, JobChannel, JobQuery, LaunchRequest, MetricPoint, MetricSeries, MonthCost, TrainingJob,
    TrainingJobSummary, TrainingStatus, worst_case,
};
use serde_json::json;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// Loads a job with its team and the caller's role, checking `action`.
pub(crate) async fn load(ctx: &Ctx, id: Uuid, action: Action) -> Result<(TrainingJob, Uuid), AppError> {
    let actor = ctx.actor()?;
    let row = sqlx::query!(
        r#"select j.job_id, j.team_id, t.slug, j.name, j.engine_name, j.backend, j.status as "status: TrainingStatus",
                  j.secondary_status, j.failure_reason, j.error_code, j.last_error, j.request, j.region,
                  j.usd_per_hour, j.instance_count, j.max_runtime_seconds, j.spot,
                  j.output_uri, j.artifact_uri, j.transitions, j.final_metrics, j.billable_seconds,
                  j.training_seconds, j.training_started_at, j.training_ended_at, u.email as created_by,
                  j.created_at, j.log_seq, m.role as "role?: Role"
           from training_job j join team t on t.team_id = j.team_id join app_user u on u.user_id = j.created_by
           left join team_member m on m.team_id = j.team_id and m.user_id = $2
           where j.job_id = $1"#,
        id,
        actor.user_id
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::NotFound("Training job".into()))?;
    authorize_owned(&actor.principal(), action, row.role, "Training job")?;
    let channels = sqlx::query_as!(
        JobChannel,
        r#"select c.name, c.version_id, d.dataset_id, d.name as dataset, v.number as version, c.uri
           from training_job_channel c join dataset_version v on v.version_id = c.version_id
           join dataset d on d.dataset_id = v.dataset_id where c.job_id = $1 order by c.name"#,
        id
    )
    .fetch_all(ctx.pool())
    .await?;
    let request: LaunchRequest = serde_json::from_value(row.request).map_err(anyhow::Error::from)?;
    let final_metrics: BTreeMap<String, f64> = serde_json::from_value(row.final_metrics).unwrap_or_default();
    let cost = cost(
        row.status,
        row.usd_per_hour,
        row.instance_count,
        row.max_runtime_seconds,
        row.spot,
        row.training_started_at,
        row.billable_seconds,
        row.training_seconds,
    );
    let job = TrainingJob {
        id: row.job_id,
        team: row.slug,
        name: row.name,
        engine_name: row.engine_name,
        backend: row.backend,
        status: row.status,
        secondary_status: row.secondary_status,
        failure_reason: row.failure_reason,
        error_code: row.error_code,
        last_error: row.last_error,
        request,
        region: row.region,
        output_uri: row.output_uri,
        artifact_uri: row.artifact_uri,
        channels,
        transitions: serde_json::from_value(row.transitions).unwrap_or_default(),
        final_metrics: final_metrics.into_iter().map(|(name, value)| FinalMetric { name, value }).collect(),
        billable_seconds: row.billable_seconds,
        training_seconds: row.training_seconds,
        training_started_at: row.training_started_at,
        training_ended_at: row.training_ended_at,
        cost,
        created_by: row.created_by,
        created_at: row.created_at,
        log_lines: row.log_seq,
    };
    Ok((job, row.team_id))
}

/// Cost from the launch price, the runtime limits and the times reported.
#[allow(clippy::too_many_arguments)]
pub fn cost(
    status: TrainingStatus,
    usd_per_hour: Option<f64>,
    count: i32,
    max_runtime_seconds: i32,
    spot: bool,
    started: Option<OffsetDateTime>,
    billable_seconds: Option<i64>,
    training_seconds: Option<i64>,
) -> Cost {
    let Some(price) = usd_per_hour else { return Cost::default() };
    let per_second = price * f64::from(count) / 3600.0;
    let finished = status.is_final();
    let accrued = (!finished && status != TrainingStatus::Requested)
        .then(|| started.map(|s| (OffsetDateTime::now_utc() - s).whole_seconds().max(0) as f64 * per_second))
        .flatten();
    let actual = finished.then(|| billable_seconds.map_or(0.0, |b| b as f64 * per_second));
    let savings = match (spot, billable_seconds, training_seconds) {
        (true, Some(b), Some(t)) if t > 0 => Some(1.0 - b as f64 / t as f64),
        _ => None,
    };
    Cost {
        usd_per_hour: Some(price),
        worst_case_usd: Some(worst_case(price, count, max_runtime_seconds)),
        accrued_usd: accrued,
        actual_usd: actual,
        spot_savings: savings,
    }
}

pub async fn get(ctx: &Ctx, id: Uuid) -> Result<TrainingJob, AppError> {
    Ok(load(ctx, id, Action::ReadTeam).await?.0)
}

pub async fn list(ctx: &Ctx, team: &str, q: JobQuery) -> Result<Page<TrainingJobSummary>, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::ReadTeam).await?;
    let limit = crate::kernel::page::limit(q.limit)?;
    let status = q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    // a status, or `running` for every job not finished
    if let Some(s) = &status
        && s != "running"
        && s.parse::<TrainingStatus>().is_err()
    {
        let all: Vec<&str> = TrainingStatus::ALL.iter().map(|s| s.as_str()).chain(["running"]).collect();
        return Err(AppError::query("status", format!("Use one of: {}.", all.join(", "))));
    }
    let after: Option<(OffsetDateTime, Uuid)> = crate::kernel::page::ssr::decode(q.cursor.as_deref())?;
    let (after_at, after_id) = after.unwrap_or((OffsetDateTime::now_utc() + time::Duration::days(36500), Uuid::max()));
    let rows = sqlx::query!(
        r#"select j.job_id, j.name, j.backend, j.status as "status: TrainingStatus", j.instance_type, j.instance_count,
                  j.max_runtime_seconds, j.spot, j.usd_per_hour, j.training_started_at, j.training_ended_at,
                  j.billable_seconds, j.training_seconds, u.email as created_by, j.created_at
           from training_job j join app_user u on u.user_id = j.created_by
           where j.team_id = $1 and (j.created_at, j.job_id) < ($2, $3)
             and ($4::text is null
                  or ($4 = 'running' and not training_status_is_final(j.status))
                  or j.status::text = $4)
           order by j.created_at desc, j.job_id desc limit $5"#,
        team.id,
        after_at,
        after_id,
        status,
        limit + 1
    )
    .fetch_all(ctx.pool())
    .await?;
    let now = OffsetDateTime::now_utc();
    let items = rows
        .into_iter()
        .map(|r| TrainingJobSummary {
            cost: cost(
                r.status,
                r.usd_per_hour,
                r.instance_count,
                r.max_runtime_seconds,
                r.spot,
                r.training_started_at,
                r.billable_seconds,
                r.training_seconds,
            ),
            duration_seconds: r.training_started_at.map(|s| (r.training_ended_at.unwrap_or(now) - s).whole_seconds()),
            id: r.job_id,
            name: r.name,
            backend: r.backend,
            status: r.status,
            instance_type: r.instance_type,
            instance_count: r.instance_count,
            created_by: r.created_by,
            created_at: r.created_at,
        })
        .collect();
    Ok(crate::kernel::page::ssr::build(items, limit, |j: &TrainingJobSummary| (j.created_at, j.id)))
}

/// This month's spend: finished jobs' actual cost plus running jobs' accrual.
pub async fn month_cost(ctx: &Ctx, team: &str) -> Result<MonthCost, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::ReadTeam).await?;
    month_total(ctx.pool(), team.id).await
}

/// [`month_cost`] of team `team_id`, without authorization (budgets).
pub async fn month_total(pool: &sqlx::PgPool, team_id: Uuid) -> Result<MonthCost, AppError> {
    let now = OffsetDateTime::now_utc();
    let month_start = now.replace_day(1).map_err(anyhow::Error::from)?.replace_time(time::Time::MIDNIGHT);
    let rows = sqlx::query!(
        r#"select j.status as "status: TrainingStatus", j.usd_per_hour, j.instance_count, j.max_runtime_seconds, j.spot,
                  j.training_started_at, j.billable_seconds, j.training_seconds
           from training_job j
           where j.team_id = $1 and (j.training_ended_at >= $2 or not training_status_is_final(j.status))"#,
        team_id,
        month_start
    )
    .fetch_all(pool)
    .await?;
    let total = rows
        .iter()
        .filter_map(|r| {
            cost(
                r.status,
                r.usd_per_hour,
                r.instance_count,
                r.max_runtime_seconds,
                r.spot,
                r.training_started_at,
                r.billable_seconds,
                r.training_seconds,
            )
            .so_far()
        })
        .sum();
    Ok(MonthCost {
        month: format!("{}-{:02}", now.year(), u8::from(now.month())),
        total_usd: total,
        jobs: i64::try_from(rows.len()).unwrap_or(i64::MAX),
    })
}

pub async fn stop(ctx: &Ctx, id: Uuid) -> Result<TrainingJob, AppError> {
    let (job, team_id) = load(ctx, id, Action::Contribute).await?;
    let actor = ctx.actor()?;
    if job.is_final() {
        return Err(AppError::Conflict { field: None, message: format!("The job is {} already.", job.status) });
    }
    let mut tx = ctx.pool().begin().await?;
    // Not launched yet: it never will be. Otherwise ask the engine.
    let stopped_before_launch = sqlx::query!(
        "update training_job set status = 'stopped', secondary_status = 'Stopped', stop_requested_by = $2,
             failure_reason = null, logs_done = true, updated_at = now()
         where job_id = $1 and status = 'requested'",
        id,
        actor.user_id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !stopped_before_launch {
        sqlx::query!(
            "update training_job set status = 'stopping', stop_requested_by = $2, updated_at = now()
             where job_id = $1 and not training_status_is_final(status)",
            id,
            actor.user_id
        )
        .execute(&mut *tx)
        .await?;
    }
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "training_job.stop_requested",
            target_type: "training_job",
            target_id: Some(id.to_string()),
            summary: json!({ "name": job.name, "status_before": job.status }),
        },
    )
    .await?;
    tx.commit().await?;
    if !stopped_before_launch && let Err(e) = ctx.state.training.stop(&job.engine_name).await {
        // The reconciler retries stopping jobs; show why it has not stopped yet.
        tracing::warn!(job = %id, error = %e, "stop call failed; will retry");
        sqlx::query!("update training_job set last_error = $2 where job_id = $1", id, e.to_string())
            .execute(ctx.pool())
            .await?;
    }
    ctx.state.training_wake.notify_one();
    get(ctx, id).await
}

/// Checks that the caller may read job `id` (for the log stream).
pub async fn authorize_read(ctx: &Ctx, id: Uuid) -> Result<TrainingJob, AppError> {
    get(ctx, id).await
}

/// The job's status and how many log lines it has, for the log stream.
pub async fn progress(pool: &sqlx::PgPool, id: Uuid) -> Result<(TrainingStatus, bool), AppError> {
    let row =
        sqlx::query!(r#"select status as "status: TrainingStatus", logs_done from training_job where job_id = $1"#, id)
            .fetch_one(pool)
            .await?;
    Ok((row.status, row.logs_done))
}

pub async fn metrics(ctx: &Ctx, id: Uuid) -> Result<Vec<MetricSeries>, AppError> {
    load(ctx, id, Action::ReadTeam).await?;
    let rows =
        sqlx::query!("select name, seq, at, value from training_metric where job_id = $1 order by name, seq", id)
            .fetch_all(ctx.pool())
            .await?;
    let mut series: Vec<MetricSeries> = Vec::new();
    for r in rows {
        if series.last().is_none_or(|s| s.name != r.name) {
            series.push(MetricSeries { name: r.name.clone(), points: Vec::new() });
        }
        if let Some(s) = series.last_mut() {
            s.points.push(MetricPoint { seq: r.seq, at: r.at, value: r.value });
        }
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::cost;
    use crate::training::types::TrainingStatus;
    use time::OffsetDateTime;

    #[test]
    fn costs() {
        let c = cost(TrainingStatus::Completed, Some(3.6), 2, 7200, true, None, Some(600), Some(1000));
        assert!((c.actual_usd.unwrap_or_default() - 1.2).abs() < 1e-9);
        assert!((c.worst_case_usd.unwrap_or_default() - 14.4).abs() < 1e-9);
        assert!((c.spot_savings.unwrap_or_default() - 0.4).abs() < 1e-9);
        let running = cost(
            TrainingStatus::Training,
            Some(3.6),
            1,
            7200,
            false,
            Some(OffsetDateTime::now_utc() - time::Duration::seconds(100)),
            None,
            None,
        );
        assert!(running.accrued_usd.unwrap_or_default() >= 0.099);
        assert!(running.actual_usd.is_none());
    }
}
