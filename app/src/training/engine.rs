//! The training worker's steps, driven by the server's worker loop:
//!
//! - [`launch_due`] creates the engine job of every `requested` row. The row
//!   was committed before any engine call, and the engine name is fixed, so
//!   a crash anywhere means the next attempt either creates the job or hits
//!   "already exists" — accepted once the job's `capstan:job-id` tag proves
//!   it is ours. One launch, one engine job.
//! - [`reconcile`] brings in-flight rows up to date: it lists jobs page by
//!   page (oldest in-flight first) and describes only those whose
//!   LastModifiedTime moved, so calls grow with pages, not jobs.
//! - [`follow_logs`] stores new log lines and the metric values the job's
//!   metric definitions find in them.
//!
//! Several Capstan processes may share one database. Each job is worked on
//! by the process holding its lease (`lease_owner`, `lease_until`): a launch
//! claims its row, the worker renews its leases ([`renew_leases`]), and
//! [`reconcile`] first takes over the jobs whose process died ([`take_over`]).
//! A SageMaker job is simply followed on from the new process; a local job
//! died with its process and runs again in the new one, up to
//! [`MAX_RESTARTS`] times.

use crate::kernel::error::AppError;
use crate::kernel::state::AppState;
use crate::training::types::TrainingStatus;
use serde_json::json;
use std::collections::HashMap;
use time::OffsetDateTime;
use training::{BackendError, Description, Phase};
use uuid::Uuid;

/// What one reconcile cycle did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CycleStats {
    pub in_flight: usize,
    pub list_calls: u64,
    pub describe_calls: u64,
    pub updated: usize,
}

impl CycleStats {
    pub fn calls(&self) -> u64 {
        self.list_calls + self.describe_calls
    }
}

/// Why a step could not finish; throttling asks the loop to back off.
#[derive(Debug)]
pub enum StepError {
    Throttled(String),
    Engine(BackendError),
    Db(AppError),
}

impl From<AppError> for StepError {
    fn from(e: AppError) -> Self {
        Self::Db(e)
    }
}

impl From<sqlx::Error> for StepError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

impl From<BackendError> for StepError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Throttled { .. } => Self::Throttled(e.to_string()),
            other => Self::Engine(other),
        }
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Throttled(m) => write!(f, "throttled: {m}"),
            Self::Engine(e) => write!(f, "{e}"),
            Self::Db(e) => write!(f, "{e}"),
        }
    }
}

/// How long a job's lease lasts; the worker renews its leases every third of that.
pub const LEASE_SECS: f64 = 60.0;

/// How often a local job interrupted by the death of its process runs again
/// before it is failed (a job that kills its process must not loop forever).
pub const MAX_RESTARTS: i32 = 3;

/// Creates the engine jobs of due `requested` rows that no other live
/// process has claimed, as many as the engine takes now. Returns how many
/// were launched.
pub async fn launch_due(state: &AppState) -> Result<usize, StepError> {
    let backend = state.training.clone();
    let room = backend.free_slots().unwrap_or(20).min(20);
    if room == 0 {
        return Ok(0);
    }
    let mut rows = sqlx::query!(
        r#"update training_job set lease_owner = $2, lease_until = now() + make_interval(secs => $3)
           where job_id in (
               select job_id from training_job
               where backend = $1 and status = 'requested' and next_attempt_at <= now()
                 and (lease_until is null or lease_until < now() or lease_owner = $2)
               order by created_at limit $4
               for update skip locked)
           returning job_id, engine_name, spec, launch_attempts, created_at"#,
        backend.kind(),
        state.instance,
        LEASE_SECS,
        room as i64
    )
    .fetch_all(&state.pool)
    .await?;
    rows.sort_by_key(|r| r.created_at);
    let mut launched = 0;
    for row in rows {
        let spec: training::JobSpec = match serde_json::from_value(row.spec) {
            Ok(spec) => spec,
            Err(e) => {
                fail_launch(state, row.job_id, "InternalError", &format!("the stored job spec is unreadable: {e}"))
                    .await?;
                continue;
            }
        };
        let created = match backend.create(&spec).await {
            Ok(()) => Ok(()),
            Err(BackendError::AlreadyExists(_)) => match backend.job_id_tag(&spec.name).await {
                Ok(Some(tag)) if tag == row.job_id.to_string() => Ok(()),
                Ok(_) => Err(BackendError::Aws {
                    code: "ResourceInUse".into(),
                    message: format!("a job named {} exists and was not launched by this Capstan job", spec.name),
                }),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match created {
            Ok(()) => {
                mark_started(state, row.job_id, &spec.name).await?;
                launched += 1;
            }
            Err(e) if e.is_transient() => {
                let delay = 2_i64.saturating_pow(u32::try_from(row.launch_attempts.clamp(0, 8)).unwrap_or(8));
                sqlx::query!(
                    "update training_job set last_error = $2, launch_attempts = launch_attempts + 1,
                         next_attempt_at = now() + make_interval(secs => $3), updated_at = now()
                     where job_id = $1",
                    row.job_id,
                    e.to_string(),
                    delay as f64
                )
                .execute(&state.pool)
                .await?;
                if matches!(e, BackendError::Throttled { .. }) {
                    return Err(e.into());
                }
            }
            Err(e) => fail_launch(state, row.job_id, e.code(), &e.to_string()).await?,
        }
    }
    Ok(launched)
}

async fn mark_started(state: &AppState, id: Uuid, name: &str) -> Result<(), StepError> {
    let moved = sqlx::query!(
        "update training_job set status = 'starting', secondary_status = 'Starting', last_error = null,
             launch_attempts = launch_attempts + 1, updated_at = now()
         where job_id = $1 and status = 'requested'",
        id
    )
    .execute(&state.pool)
    .await?
    .rows_affected();
    if moved == 0 {
        // Stopped while the create call was under way: stop what was created.
        let status =
            sqlx::query_scalar!(r#"select status as "s: TrainingStatus" from training_job where job_id = $1"#, id)
                .fetch_one(&state.pool)
                .await?;
        if status == TrainingStatus::Stopped {
            if let Err(e) = state.training.stop(name).await {
                tracing::warn!(job = %id, error = %e, "stopping a job stopped during launch failed");
            }
            sqlx::query!(
                "update training_job set status = 'stopping', logs_done = false, updated_at = now() where job_id = $1",
                id
            )
            .execute(&state.pool)
            .await?;
        }
    }
    Ok(())
}

async fn fail_launch(state: &AppState, id: Uuid, code: &str, message: &str) -> Result<(), StepError> {
    sqlx::query!(
        "update training_job set status = 'failed', secondary_status = 'Failed', error_code = $2, failure_reason = $3,
             last_error = null, logs_done = true, updated_at = now()
         where job_id = $1 and status = 'requested'",
        id,
        code,
        message
    )
    .execute(&state.pool)
    .await?;
    Ok(())
}

struct InFlight {
    id: Uuid,
    status: TrainingStatus,
    modified: Option<OffsetDateTime>,
}

fn micros(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos() / 1000
}

/// Renews the leases of the jobs this process works on; returns how many.
pub async fn renew_leases(state: &AppState) -> Result<u64, sqlx::Error> {
    let renewed = sqlx::query!(
        "update training_job set lease_until = now() + make_interval(secs => $2)
         where lease_owner = $1 and not (training_status_is_final(status) and logs_done)",
        state.instance,
        LEASE_SECS
    )
    .execute(&state.pool)
    .await?;
    Ok(renewed.rows_affected())
}

/// Lets go of this process's leases (on a clean shutdown), so another
/// process takes the jobs over at once instead of after the lease.
pub async fn release_leases(state: &AppState) -> Result<u64, sqlx::Error> {
    let released = sqlx::query!("update training_job set lease_until = null where lease_owner = $1", state.instance)
        .execute(&state.pool)
        .await?;
    Ok(released.rows_affected())
}

/// Takes over the launched jobs of this backend that no live process holds
/// (their process died, or they predate leases). A local job's script died
/// with its process: it is queued to run again here, or failed after
/// [`MAX_RESTARTS`]; one that was being stopped is stopped. Returns how many
/// jobs were taken over.
pub async fn take_over(state: &AppState) -> Result<usize, StepError> {
    let backend = state.training.clone();
    let rows = sqlx::query!(
        r#"update training_job set lease_owner = $2, lease_until = now() + make_interval(secs => $3)
           where backend = $1 and status <> 'requested' and not (training_status_is_final(status) and logs_done)
             and (lease_until is null or lease_until < now())
           returning job_id, status as "status: TrainingStatus", restarts"#,
        backend.kind(),
        state.instance,
        LEASE_SECS
    )
    .fetch_all(&state.pool)
    .await?;
    if backend.outlives_process() {
        return Ok(rows.len());
    }
    for row in rows.iter().filter(|r| !r.status.is_final()) {
        let (status, message) = if row.status == TrainingStatus::Stopping {
            (TrainingStatus::Stopped, "The Capstan process running this job stopped while it was being stopped.")
        } else if row.restarts >= MAX_RESTARTS {
            (
                TrainingStatus::Failed,
                "Interrupted: the Capstan process running this job stopped too often. Clone it to run it again.",
            )
        } else {
            (
                TrainingStatus::Requested,
                "The Capstan process running this job stopped; another takes it over, and the job runs again from the start.",
            )
        };
        tracing::warn!(job = %row.job_id, from = row.status.as_str(), to = status.as_str(), "took over a local job whose process stopped");
        // the row and a log line saying what happened, in one statement
        sqlx::query!(
            "with moved as (
                 update training_job set status = $3::text::training_status,
                     secondary_status = case when $3 = 'requested' then null else initcap($3) end,
                     failure_reason = case when $3 = 'failed' then $4 else failure_reason end,
                     error_code = case when $3 = 'failed' then 'Interrupted' else error_code end,
                     restarts = restarts + (case when $3 = 'requested' then 1 else 0 end),
                     next_attempt_at = now(), engine_modified_at = null,
                     training_ended_at = case when $3 = 'requested' then null else now() end,
                     log_seq = log_seq + 1, updated_at = now(),
                     -- queued again: any process may launch it
                     lease_owner = case when $3 = 'requested' then null else lease_owner end,
                     lease_until = case when $3 = 'requested' then null else lease_until end
                 where job_id = $1 and lease_owner = $2
                 returning job_id, log_seq)
             insert into training_log (job_id, seq, at, stream, line)
             select job_id, log_seq, now(), 'capstan', $4 from moved",
            row.job_id,
            state.instance,
            status.as_str(),
            message
        )
        .execute(&state.pool)
        .await?;
    }
    Ok(rows.len())
}

/// One reconcile cycle over the in-flight jobs this process holds, after
/// taking over those nobody holds.
pub async fn reconcile(state: &AppState) -> Result<CycleStats, StepError> {
    take_over(state).await?;
    let backend = state.training.clone();
    let rows = sqlx::query!(
        r#"select job_id, engine_name, status as "status: TrainingStatus", engine_modified_at, created_at from training_job
           where backend = $1 and status in ('starting', 'downloading', 'training', 'uploading', 'stopping')
             and lease_owner = $2"#,
        backend.kind(),
        state.instance
    )
    .fetch_all(&state.pool)
    .await?;
    let mut stats = CycleStats { in_flight: rows.len(), ..CycleStats::default() };
    let Some(oldest) = rows.iter().map(|r| r.created_at).min() else { return Ok(stats) };
    let mut pending: HashMap<String, InFlight> = rows
        .into_iter()
        .map(|r| (r.engine_name, InFlight { id: r.job_id, status: r.status, modified: r.engine_modified_at }))
        .collect();
    // Clocks differ: list from a little before the oldest launch.
    let since = oldest - time::Duration::minutes(10);
    let mut token = None;
    loop {
        let page = backend.list(since, token).await?;
        stats.list_calls += 1;
        for summary in &page.jobs {
            let Some(row) = pending.remove(&summary.name) else { continue };
            if row.modified.map(micros) == Some(micros(summary.last_modified)) {
                continue;
            }
            let description = backend.describe(&summary.name).await?;
            stats.describe_calls += 1;
            apply(state, &row, &description).await?;
            stats.updated += 1;
        }
        token = page.next_token;
        if pending.is_empty() || token.is_none() {
            break;
        }
    }
    // Not listed (just created, or gone): ask about each directly.
    for (name, row) in pending {
        stats.describe_calls += 1;
        match backend.describe(&name).await {
            Ok(description) => {
                if row.modified.map(micros) != Some(micros(description.last_modified)) {
                    apply(state, &row, &description).await?;
                    stats.updated += 1;
                }
            }
            Err(BackendError::NotFound(_)) => {
                sqlx::query!(
                    "update training_job set status = 'failed', secondary_status = 'Failed', error_code = 'ResourceNotFound',
                         failure_reason = $2, updated_at = now()
                     where job_id = $1",
                    row.id,
                    format!("The training engine no longer knows a job named {name}.")
                )
                .execute(&state.pool)
                .await?;
                stats.updated += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(stats)
}

/// The job status an engine phase stands for.
fn status_of(phase: Phase) -> TrainingStatus {
    match phase {
        Phase::Starting => TrainingStatus::Starting,
        Phase::Downloading => TrainingStatus::Downloading,
        Phase::Training => TrainingStatus::Training,
        Phase::Uploading => TrainingStatus::Uploading,
        Phase::Stopping => TrainingStatus::Stopping,
        Phase::Completed => TrainingStatus::Completed,
        Phase::Failed => TrainingStatus::Failed,
        Phase::Stopped => TrainingStatus::Stopped,
    }
}

/// Writes what the engine reported onto the row.
async fn apply(state: &AppState, row: &InFlight, d: &Description) -> Result<(), StepError> {
    let phase = d.phase();
    let reported = status_of(phase);
    // A stop was asked for: keep showing `stopping` until the engine stops.
    let status = if row.status == TrainingStatus::Stopping && !reported.is_final() {
        if !matches!(phase, Phase::Stopping) {
            // The earlier stop call did not take (or failed): ask again.
            if let Err(e) = state.training.stop(&d.name).await {
                tracing::warn!(job = %row.id, error = %e, "stop call failed; will retry");
            }
        }
        TrainingStatus::Stopping
    } else {
        reported
    };
    let final_metrics: serde_json::Map<String, serde_json::Value> =
        d.final_metrics.iter().map(|(name, value)| (name.clone(), json!(value))).collect();
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "update training_job set status = $2::text::training_status, secondary_status = $3,
             failure_reason = coalesce($4, failure_reason), transitions = $5, artifact_uri = coalesce($6, artifact_uri),
             billable_seconds = coalesce($7, billable_seconds), training_seconds = coalesce($8, training_seconds),
             training_started_at = coalesce($9, training_started_at), training_ended_at = coalesce($10, training_ended_at),
             final_metrics = case when $11::jsonb = '{}'::jsonb then final_metrics else $11 end,
             engine_modified_at = $12, last_error = null, updated_at = now()
         where job_id = $1",
        row.id,
        status.as_str(),
        d.secondary_status,
        d.failure_reason,
        serde_json::to_value(&d.transitions).unwrap_or_else(|_| json!([])),
        (phase == Phase::Completed).then_some(d.artifact_uri.clone()).flatten(),
        d.billable_seconds,
        d.training_seconds,
        d.training_start,
        d.training_end.filter(|_| reported.is_final()),
        serde_json::Value::Object(final_metrics),
        d.last_modified,
    )
    .execute(&mut *tx)
    .await?;
    // the job's end is an event of its team (its audit trail and webhooks)
    if status.is_final() && !row.status.is_final() {
        let team_id = sqlx::query_scalar!("select team_id from training_job where job_id = $1", row.id)
            .fetch_one(&mut *tx)
            .await?;
        let action = format!("training_job.{}", status.as_str());
        let actor = crate::kernel::audit::AuditActor { user_id: None, token_id: None, label: "capstan".into() };
        let event = crate::kernel::audit::NewEvent {
            team_id: Some(team_id),
            action: &action,
            target_type: "training_job",
            target_id: Some(row.id.to_string()),
            summary: json!({ "before": { "status": row.status.as_str() },
                             "after": { "status": status.as_str(), "failure_reason": d.failure_reason,
                                        "artifact_uri": d.artifact_uri } }),
        };
        crate::kernel::audit::record(&mut tx, &actor, &Default::default(), event).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Reads new log lines of every job whose logs are not complete, storing
/// them with the metric values they contain. Returns the lines stored.
pub async fn follow_logs(state: &AppState) -> Result<usize, StepError> {
    let backend = state.training.clone();
    let rows = sqlx::query!(
        r#"select job_id, engine_name, status as "status: TrainingStatus", log_cursor, log_seq, spec -> 'metric_definitions' as defs
           from training_job where backend = $1 and status <> 'requested' and not logs_done and lease_owner = $2"#,
        backend.kind(),
        state.instance
    )
    .fetch_all(&state.pool)
    .await?;
    let mut stored = 0;
    for row in rows {
        let finished = row.status.is_final();
        let chunk = match backend.logs(&row.engine_name, row.log_cursor.as_deref()).await {
            Ok(chunk) => chunk,
            Err(BackendError::NotFound(_)) if finished => training::LogChunk::default(),
            Err(e @ BackendError::Throttled { .. }) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(job = %row.job_id, error = %e, "reading logs failed");
                continue;
            }
        };
        if chunk.lines.is_empty() {
            if finished {
                sqlx::query!("update training_job set logs_done = true where job_id = $1", row.job_id)
                    .execute(&state.pool)
                    .await?;
            }
            continue;
        }
        let defs: Vec<training::MetricDefinition> =
            row.defs.and_then(|d| serde_json::from_value(d).ok()).unwrap_or_default();
        let regexes: Vec<(String, regex::Regex)> = defs
            .into_iter()
            .filter_map(|d| crate::training::validate::metric_regex(&d.regex).ok().map(|re| (d.name, re)))
            .collect();
        let n = chunk.lines.len();
        let seqs: Vec<i64> = (1..=n as i64).map(|i| row.log_seq + i).collect();
        let (mut m_names, mut m_seqs, mut m_ats, mut m_values) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (line, seq) in chunk.lines.iter().zip(&seqs) {
            for (name, re) in &regexes {
                if let Some(value) =
                    re.captures(&line.text).and_then(|c| c.get(1)).and_then(|m| m.as_str().parse::<f64>().ok())
                    && value.is_finite()
                {
                    m_names.push(name.clone());
                    m_seqs.push(*seq);
                    m_ats.push(line.at);
                    m_values.push(value);
                }
            }
        }
        let ats: Vec<OffsetDateTime> = chunk.lines.iter().map(|l| l.at).collect();
        let streams: Vec<String> = chunk.lines.iter().map(|l| l.stream.clone()).collect();
        // Postgres text cannot hold NUL bytes.
        let texts: Vec<String> = chunk.lines.iter().map(|l| l.text.replace('\0', "")).collect();
        let mut tx = state.pool.begin().await?;
        // Only the reader that still sees the old position writes (no duplicates).
        let claimed = sqlx::query!(
            "update training_job set log_cursor = $3, log_seq = $4 where job_id = $1 and log_seq = $2",
            row.job_id,
            row.log_seq,
            chunk.cursor,
            row.log_seq + n as i64
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            continue;
        }
        sqlx::query!(
            "insert into training_log (job_id, seq, at, stream, line)
             select $1, * from unnest($2::bigint[], $3::timestamptz[], $4::text[], $5::text[])",
            row.job_id,
            &seqs,
            &ats,
            &streams,
            &texts
        )
        .execute(&mut *tx)
        .await?;
        if !m_names.is_empty() {
            sqlx::query!(
                "insert into training_metric (job_id, name, seq, at, value)
                 select $1, * from unnest($2::text[], $3::bigint[], $4::timestamptz[], $5::float8[])
                 on conflict do nothing",
                row.job_id,
                &m_names,
                &m_seqs,
                &m_ats,
                &m_values
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        stored += n;
    }
    Ok(stored)
}
