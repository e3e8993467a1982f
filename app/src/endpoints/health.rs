//! An endpoint's health score: a composite 0-100 of four parts, each 0-100,
//! over the last [`WINDOW_MINUTES`] whole minutes of its production
//! variants, weighted as below; a part that cannot be judged (no traffic,
//! no captured data) is left out and the others' weights shared out again.
//!
//! | part | weight | 100 when | 0 when |
//! | --- | --- | --- | --- |
//! | `errors`: server and model errors per request | 40 | none | 5 % or more |
//! | `latency`: p99 against the endpoint's SLO | 30 | p99 ≤ SLO | p99 ≥ 2 × SLO |
//! | `drift`: the largest population stability index of a numeric request field, captured requests against the model version's training data | 20 | PSI ≤ 0.1 | PSI ≥ 0.5 |
//! | `capacity` (local mode): healthy processes of those wanted | 10 | all | none |
//! | `resources` (AWS mode): the busiest variant's average CPU use per vCPU, or memory use, whichever is higher (CloudWatch's `CPUUtilization` and `MemoryUtilization`) | 10 | ≤ 70 % | ≥ 95 % |
//!
//! Between the ends each part falls in a straight line. Drift needs data
//! capture on the endpoint and a version trained by Capstan from CSV data:
//! a request's fields are matched to the training file's columns by name
//! where the request names them (JSON objects), else by position to its
//! first columns (its label last, as in the demo). The worker ([`tick`],
//! once a minute, on every process; one records each minute) keeps the
//! history a week; when the score falls below the threshold (default 85) it audits
//! `endpoint.health_low` (which fires the team's webhooks) and, when the
//! endpoint opts in, rolls back its last rollout (live, or completed within
//! a day); back above it, `endpoint.health_recovered`.

use crate::endpoints::experiment::minute_of;
use crate::endpoints::types::{Health, HealthPart, HealthPoint, HealthSettings};
use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::kernel::state::AppState;
use crate::kernel::validate::Errors;
use serde_json::json;
use uuid::Uuid;

/// The minutes the parts look back over.
pub const WINDOW_MINUTES: i64 = 15;

/// At most this many captured requests, and training rows, are compared.
const MAX_ROWS: usize = 5_000;

/// The endpoint's settings, the defaults where none were set.
async fn settings_of(pool: &sqlx::PgPool, id: Uuid) -> Result<HealthSettings, AppError> {
    Ok(sqlx::query_as!(
        HealthSettings,
        "select latency_slo_ms, threshold, auto_rollback from endpoint_health_settings where endpoint_id = $1",
        id
    )
    .fetch_optional(pool)
    .await?
    .unwrap_or_default())
}

/// Sets what the score is judged against (members and up); audited as
/// `endpoint.health_set`.
pub async fn set(ctx: &Ctx, id: Uuid, input: HealthSettings) -> Result<Health, AppError> {
    let (_, team_id) = crate::endpoints::domain::load(ctx, id, Action::Contribute).await?;
    let mut errors = Errors::new();
    if !(1..=600_000).contains(&input.latency_slo_ms) {
        errors.push("latency_slo_ms", "Give 1 to 600 000 ms.");
    }
    if !(1..=100).contains(&input.threshold) {
        errors.push("threshold", "Give a score of 1 to 100.");
    }
    errors.finish()?;
    let actor = ctx.actor()?;
    let before = settings_of(ctx.pool(), id).await?;
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!(
        "insert into endpoint_health_settings (endpoint_id, latency_slo_ms, threshold, auto_rollback, updated_by)
         values ($1, $2, $3, $4, $5)
         on conflict (endpoint_id) do update set latency_slo_ms = $2, threshold = $3, auto_rollback = $4,
             updated_by = $5, updated_at = now()",
        id,
        input.latency_slo_ms,
        input.threshold,
        input.auto_rollback,
        actor.user_id
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.health_set",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "before": before, "after": input }),
        },
    )
    .await?;
    tx.commit().await?;
    get(ctx, id).await
}

/// The score now, its parts and its history (viewers and up).
pub async fn get(ctx: &Ctx, id: Uuid) -> Result<Health, AppError> {
    let (endpoint, _) = crate::endpoints::domain::load(ctx, id, Action::ReadTeam).await?;
    let settings = settings_of(ctx.pool(), id).await?;
    let parts = parts(&ctx.state, &endpoint, &settings).await?;
    let score = score_of(&parts);
    let rows = sqlx::query!(
        "select minute, score from endpoint_health where endpoint_id = $1 and minute > now() - interval '1 day'
         order by minute",
        id
    )
    .fetch_all(ctx.pool())
    .await?;
    let step = rows.len().div_ceil(120).max(1);
    let history = rows
        .iter()
        .enumerate()
        .filter(|(k, _)| (rows.len() - 1 - k).is_multiple_of(step))
        .map(|(_, r)| HealthPoint { at: r.minute, score: r.score })
        .collect();
    Ok(Health {
        endpoint_id: id,
        score,
        below: score.is_some_and(|s| s < f64::from(settings.threshold)),
        window_minutes: WINDOW_MINUTES,
        parts,
        settings,
        history,
    })
}

/// The score: none without traffic (no error rate), else the composite.
fn score_of(parts: &[HealthPart]) -> Option<f64> {
    parts.iter().find(|p| p.name == "errors").and_then(|p| p.score)?;
    composite(parts)
}

/// The parts' weighted mean over the parts that could be judged.
pub fn composite(parts: &[HealthPart]) -> Option<f64> {
    let known: Vec<(f64, f64)> = parts.iter().filter_map(|p| p.score.map(|s| (p.weight, s))).collect();
    let weight: f64 = known.iter().map(|(w, _)| w).sum();
    (weight > 0.0).then(|| known.iter().map(|(w, s)| w * s).sum::<f64>() / weight)
}

/// 100 at or below `good`, 0 at or above `bad`, a straight line between.
fn linear(value: f64, good: f64, bad: f64) -> f64 {
    (100.0 * (bad - value) / (bad - good)).clamp(0.0, 100.0)
}

/// Each part of the endpoint's score now.
async fn parts(
    state: &AppState,
    endpoint: &crate::endpoints::types::Endpoint,
    settings: &HealthSettings,
) -> Result<Vec<HealthPart>, AppError> {
    let since = minute_of(time::OffsetDateTime::now_utc()) - time::Duration::minutes(WINDOW_MINUTES - 1);
    let names: Vec<String> = endpoint.variants.iter().map(|v| v.name.clone()).collect();
    let served = crate::endpoints::metrics::served(&state.pool, endpoint.id, &names, since).await?;
    // the production variants together
    let mut all = crate::endpoints::metrics::Served::default();
    for s in served.values() {
        all.add(s);
    }
    let requests = all.requests;
    let mut out = Vec::new();
    let rate = all.error_rate();
    out.push(HealthPart {
        name: "errors".into(),
        weight: 40.0,
        score: rate.map(|r| linear(r, 0.0, 0.05)),
        value: rate,
        text: match rate {
            Some(r) => format!("{:.2} % of {requests} requests failed (0 at 5 %)", r * 100.0),
            None => format!("no requests in the last {WINDOW_MINUTES} minutes"),
        },
    });
    let slo = f64::from(settings.latency_slo_ms);
    let p99 = all.p99();
    out.push(HealthPart {
        name: "latency".into(),
        weight: 30.0,
        score: p99.map(|p| linear(p, slo, 2.0 * slo)),
        value: p99,
        text: match p99 {
            Some(p) => format!("p99 {p} ms against an SLO of {slo} ms (0 at {} ms)", 2.0 * slo),
            None => format!("no requests in the last {WINDOW_MINUTES} minutes"),
        },
    });
    let drift = drift(state, endpoint).await.unwrap_or_else(|why| Err(why.to_string()));
    out.push(HealthPart {
        name: "drift".into(),
        weight: 20.0,
        score: drift.as_ref().ok().map(|(psi, _)| linear(*psi, 0.1, 0.5)),
        value: drift.as_ref().ok().map(|(psi, _)| *psi),
        text: match &drift {
            Ok((psi, field)) => format!("largest PSI {psi:.3} ({field}; 0 at 0.5)"),
            Err(why) => why.clone(),
        },
    });
    if endpoint.backend == "sagemaker" {
        // the busiest variant's CPU (per vCPU) or memory use
        let busiest = served
            .iter()
            .flat_map(|(variant, s)| {
                let vcpus = endpoint.variants.iter().find(|v| v.name == *variant).and_then(|v| vcpus(&v.instance_type));
                let cpu = s.cpu_percent().zip(vcpus).map(|(c, n)| c / n);
                [(cpu, "CPU"), (s.memory_percent(), "memory")]
                    .into_iter()
                    .filter_map(move |(used, what)| used.map(|u| (u, what, variant.as_str())))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        out.push(HealthPart {
            name: "resources".into(),
            weight: 10.0,
            score: busiest.map(|(used, ..)| linear(used, 70.0, 95.0)),
            value: busiest.map(|(used, ..)| used / 100.0),
            text: match busiest {
                Some((used, what, variant)) => format!("{variant}'s {what} at {used:.0} % (0 at 95 %)"),
                None => format!("no instance metrics from CloudWatch in the last {WINDOW_MINUTES} minutes"),
            },
        });
        return Ok(out);
    }
    let wanted: i32 = endpoint.variants.iter().map(|v| v.instance_count).sum();
    let healthy = endpoint.variants.iter().flat_map(|v| &v.instances).filter(|i| i.status == "Healthy").count();
    let local = endpoint.variants.iter().any(|v| !v.instances.is_empty());
    let share = (local && wanted > 0).then(|| (healthy as f64 / f64::from(wanted)).min(1.0));
    out.push(HealthPart {
        name: "capacity".into(),
        weight: 10.0,
        score: share.map(|s| s * 100.0),
        value: share,
        text: match share {
            Some(_) => format!("{healthy} of {wanted} processes healthy"),
            None => "not known here (SageMaker runs the instances)".into(),
        },
    });
    Ok(out)
}

/// The vCPUs of a SageMaker instance type by its size (`ml.m5.2xlarge`: 8),
/// as the general-purpose, compute and memory families have them; none
/// for a size not named so.
pub fn vcpus(instance_type: &str) -> Option<f64> {
    let size = instance_type.rsplit('.').next()?;
    match size {
        "medium" | "large" => Some(2.0),
        "xlarge" => Some(4.0),
        _ => size.strip_suffix("xlarge")?.parse::<f64>().ok().filter(|n| *n > 0.0).map(|n| 4.0 * n),
    }
}

/// The population stability index of `actual` against `expected`, over ten
/// bins cut at `expected`'s deciles (an empty bin counts as 0.0001).
pub fn psi(expected: &[f64], actual: &[f64]) -> Option<f64> {
    if expected.len() < 10 || actual.is_empty() {
        return None;
    }
    let mut sorted = expected.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut cuts: Vec<f64> = (1..10).map(|k| sorted[k * sorted.len() / 10]).collect();
    cuts.dedup();
    let share = |values: &[f64]| -> Vec<f64> {
        let mut counts = vec![0.0; cuts.len() + 1];
        for v in values {
            counts[cuts.partition_point(|c| c <= v)] += 1.0;
        }
        counts.iter().map(|c| (c / values.len() as f64).max(1e-4)).collect()
    };
    let (e, a) = (share(expected), share(actual));
    Some(e.iter().zip(&a).map(|(e, a)| (a - e) * (a / e).ln()).sum())
}

/// The largest PSI of a numeric request field, and which; or why there is none.
async fn drift(
    state: &AppState,
    endpoint: &crate::endpoints::types::Endpoint,
) -> Result<Result<(f64, String), String>, AppError> {
    let Some(variant) = endpoint.variants.iter().max_by(|a, b| a.share.total_cmp(&b.share)) else {
        return Ok(Err("no production variant".into()));
    };
    let Some(training) = training_sample(state, variant.version_id).await? else {
        return Ok(Err(format!(
            "{} was not trained by Capstan from CSV data: no sample to compare with",
            variant.name
        )));
    };
    let names: Vec<&str> = training.iter().map(|(name, _)| name.as_str()).collect();
    let captured = captured_rows(state, endpoint, &variant.name, &names).await?;
    if captured.is_empty() {
        return Ok(Err(format!(
            "no requests of {} captured in the last hour (turn data capture on to judge drift)",
            variant.name
        )));
    }
    let mut worst: Option<(f64, String)> = None;
    for (i, (name, expected)) in training.iter().enumerate() {
        let actual: Vec<f64> = captured.iter().filter_map(|row| row.get(i).copied().flatten()).collect();
        if let Some(p) = psi(expected, &actual)
            && worst.as_ref().is_none_or(|(w, _)| p > *w)
        {
            worst = Some((p, name.clone()));
        }
    }
    Ok(worst.ok_or_else(|| "no numeric field in both the requests and the training data".to_owned()))
}

/// A version's training columns, (name, values) each.
type Columns = std::sync::Arc<Vec<(String, Vec<f64>)>>;

/// How long a version's training sample is kept in the process's cache (a
/// version's lineage and its dataset versions never change; the time bounds
/// a transient read failure's "none").
const SAMPLE_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// [`read_training_sample`], from the process's cache when it was read in
/// the last half hour: the score is computed every minute and on every
/// look at the endpoint's page.
async fn training_sample(state: &AppState, version: Uuid) -> Result<Option<Columns>, AppError> {
    let key = format!("health-training:{version}");
    state.cache.get_or_load(key, SAMPLE_TTL, read_training_sample(state, version)).await
}

/// The numeric columns (name, values) of the first CSV file of the
/// training data of `version`, label last and left out; none for a version
/// not trained from CSV by Capstan.
async fn read_training_sample(state: &AppState, version: Uuid) -> Result<Option<Columns>, AppError> {
    let file = sqlx::query!(
        r#"select dv.bucket, dv.prefix, o.key, o.size
           from model_version mv join training_job_channel c on c.job_id = mv.training_job_id
           join dataset_version dv on dv.version_id = c.version_id
           join dataset_object o on o.version_id = dv.version_id
           where mv.version_id = $1 and lower(o.key) like '%.csv'
           order by c.name = 'train' desc, c.name, o.key limit 1"#,
        version
    )
    .fetch_optional(&state.pool)
    .await?;
    let Some(file) = file else { return Ok(None) };
    let len = u64::try_from(file.size).unwrap_or_default().min(1 << 20);
    let key = format!("{}{}", file.prefix, file.key);
    let Ok(data) = storage::read_range(&state.storage.client, &file.bucket, &key, 0, len).await else {
        return Ok(None);
    };
    let complete = len >= u64::try_from(file.size).unwrap_or_default();
    let Ok(table) = crate::datasets::preview::parse_delimited(&data, complete, b',', MAX_ROWS) else { return Ok(None) };
    let features = table.columns.len().saturating_sub(1);
    let columns = table
        .columns
        .iter()
        .take(features)
        .enumerate()
        .map(|(i, c)| {
            (c.name.clone(), table.rows.iter().filter_map(|r| r.get(i)?.trim().parse::<f64>().ok()).collect())
        })
        .collect();
    Ok(Some(std::sync::Arc::new(columns)))
}

/// The numeric fields of the requests of `variant` captured in this hour
/// and the last (at most [`MAX_ROWS`]), in the order of the training
/// data's `columns` (see [`json_rows`]); a field that is not a number is none.
async fn captured_rows(
    state: &AppState,
    endpoint: &crate::endpoints::types::Endpoint,
    variant: &str,
    columns: &[&str],
) -> Result<Vec<Vec<Option<f64>>>, AppError> {
    let now = time::OffsetDateTime::now_utc();
    let mut keys = Vec::new();
    for hour in [now - time::Duration::hours(1), now] {
        let prefix = format!(
            "endpoints/{}/{}/data-capture/{}/{variant}/{:04}/{:02}/{:02}/{:02}/",
            endpoint.team,
            endpoint.engine_name,
            endpoint.engine_name,
            hour.year(),
            u8::from(hour.month()),
            hour.day(),
            hour.hour()
        );
        let listed = storage::list_prefix(&state.storage.client, &state.storage.bucket, &prefix, |page| {
            keys.extend(page.into_iter().map(|o| (o.key, o.size)));
        })
        .await;
        if listed.is_err() {
            return Ok(Vec::new());
        }
    }
    let mut rows = Vec::new();
    // the newest first
    for (key, size) in keys.iter().rev().take(50) {
        let len = u64::try_from(*size).unwrap_or_default().min(1 << 20);
        let Ok(data) = storage::read_range(&state.storage.client, &state.storage.bucket, key, 0, len).await else {
            continue;
        };
        for line in String::from_utf8_lossy(&data).lines() {
            let Ok(record) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let input = &record["captureData"]["endpointInput"];
            let text = input["data"].as_str().unwrap_or_default();
            match input["encoding"].as_str() {
                Some("CSV") => rows.extend(
                    text.lines().map(|l| l.split(',').map(|f| f.trim().parse::<f64>().ok()).collect::<Vec<_>>()),
                ),
                Some("JSON") => rows.extend(json_rows(text, columns)),
                _ => {}
            }
            if rows.len() >= MAX_ROWS {
                return Ok(rows);
            }
        }
    }
    Ok(rows)
}

/// The rows of a JSON request body in the order of `columns`: a list of
/// numbers is one row by position, an object one row by name (its fields
/// not among the columns left out); a list of such rows, or an object with
/// them under `instances` or `inputs` (as TensorFlow Serving and
/// SageMaker's JSON containers take them), is several.
pub fn json_rows(text: &str, columns: &[&str]) -> Vec<Vec<Option<f64>>> {
    use serde_json::Value;
    fn row(value: &Value, columns: &[&str]) -> Option<Vec<Option<f64>>> {
        match value {
            Value::Array(fields) if fields.iter().all(|f| !f.is_array() && !f.is_object()) => {
                Some(fields.iter().map(Value::as_f64).collect())
            }
            Value::Object(named) if !named.contains_key("instances") && !named.contains_key("inputs") => {
                Some(columns.iter().map(|c| named.get(*c).and_then(Value::as_f64)).collect())
            }
            _ => None,
        }
    }
    let Ok(body) = serde_json::from_str::<Value>(text) else { return Vec::new() };
    let list = match &body {
        Value::Object(o) => o.get("instances").or_else(|| o.get("inputs")).unwrap_or(&body),
        _ => &body,
    };
    if let Some(one) = row(list, columns) {
        return vec![one];
    }
    list.as_array().into_iter().flatten().filter_map(|r| row(r, columns)).collect()
}

/// The worker's pass, once a minute: records each serving endpoint's score
/// for this minute (one process does each), and alerts, recovers or rolls
/// back as the score crosses its threshold. Returns how many it recorded.
pub async fn tick(state: &AppState) -> Result<usize, AppError> {
    let serving = sqlx::query!("select endpoint_id, created_by from endpoint where status = 'InService'")
        .fetch_all(&state.pool)
        .await?;
    let mut recorded = 0;
    for e in serving {
        match record_minute(state, e.endpoint_id, e.created_by).await {
            Ok(true) => recorded += 1,
            Ok(false) => {}
            Err(err) => tracing::warn!(endpoint = %e.endpoint_id, error = %err, "could not score an endpoint's health"),
        }
    }
    // the history is kept a week
    sqlx::query!("delete from endpoint_health where minute < now() - interval '7 days'").execute(&state.pool).await?;
    Ok(recorded)
}

async fn record_minute(state: &AppState, id: Uuid, owner: Uuid) -> Result<bool, AppError> {
    let ctx = crate::endpoints::domain::system_ctx(state, owner, "health");
    let minute = minute_of(time::OffsetDateTime::now_utc());
    let taken =
        sqlx::query_scalar!("select 1 as one from endpoint_health where endpoint_id = $1 and minute = $2", id, minute)
            .fetch_optional(&state.pool)
            .await?;
    if taken.is_some() {
        return Ok(false);
    }
    let (endpoint, team_id) = crate::endpoints::domain::load(&ctx, id, Action::ReadTeam).await?;
    let settings = settings_of(&state.pool, id).await?;
    let parts = parts(state, &endpoint, &settings).await?;
    let score = score_of(&parts);
    let mut tx = state.pool.begin().await?;
    let previous = sqlx::query!(
        "select score, alerted from endpoint_health where endpoint_id = $1 and score is not null
         order by minute desc limit 1",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let threshold = f64::from(settings.threshold);
    let was_below = previous.as_ref().is_some_and(|p| p.score.is_some_and(|s| s < threshold));
    let below = score.is_some_and(|s| s < threshold);
    let inserted = sqlx::query!(
        "insert into endpoint_health (endpoint_id, minute, score, parts, alerted) values ($1, $2, $3, $4, $5)
         on conflict do nothing",
        id,
        minute,
        score,
        json!(parts),
        below && !was_below
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    let crossed = match (was_below, below) {
        (false, true) => Some("endpoint.health_low"),
        (true, false) if score.is_some() => Some("endpoint.health_recovered"),
        _ => None,
    };
    if let Some(action) = crossed {
        ctx.record(
            &mut tx,
            NewEvent {
                team_id: Some(team_id),
                action,
                target_type: "endpoint",
                target_id: Some(id.to_string()),
                summary: json!({ "after": { "score": score, "threshold": settings.threshold, "parts": parts } }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    if crossed == Some("endpoint.health_low") && settings.auto_rollback {
        let reason = format!(
            "Rolled back: the endpoint's health score {:.1} fell below {}",
            score.unwrap_or_default(),
            settings.threshold
        );
        match crate::endpoints::rollouts::roll_back_latest(state, id, &reason).await {
            Ok(Some(rollout)) => tracing::warn!(endpoint = %id, %rollout, %reason, "rollout rolled back"),
            Ok(None) => {}
            Err(e) => tracing::warn!(endpoint = %id, error = %e, "could not roll back for the health score"),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str, weight: f64, score: Option<f64>) -> HealthPart {
        HealthPart { name: name.into(), weight, score, value: None, text: String::new() }
    }

    #[test]
    fn json_requests_give_rows_by_position_or_by_name() {
        let columns = ["age", "balance", "products"];
        let by_position = vec![vec![Some(24.0), Some(70.5), Some(3.0)]];
        assert_eq!(json_rows("[24, 70.5, 3]", &columns), by_position);
        assert_eq!(json_rows("[[24, 70.5, 3], [30, 1.5, 1]]", &columns).len(), 2);
        // by name, whatever the order; unknown fields left out, missing ones none
        let named = r#"{"products": 3, "age": 24, "balance": 70.5, "id": "x-1"}"#;
        assert_eq!(json_rows(named, &columns), by_position);
        assert_eq!(
            json_rows(r#"{"instances": [{"age": 24, "balance": 70.5}, [1, 2, 3]]}"#, &columns),
            vec![vec![Some(24.0), Some(70.5), None], vec![Some(1.0), Some(2.0), Some(3.0)]]
        );
        assert_eq!(json_rows(r#"{"inputs": [[24, 70.5, 3]]}"#, &columns), by_position);
        assert!(json_rows("not json", &columns).is_empty());
        assert!(json_rows(r#"{"instances": "x"}"#, &columns).is_empty());
    }

    #[test]
    fn instance_sizes_give_their_vcpus() {
        assert_eq!(vcpus("ml.m5.large"), Some(2.0));
        assert_eq!(vcpus("ml.c5.xlarge"), Some(4.0));
        assert_eq!(vcpus("ml.m5.4xlarge"), Some(16.0));
        assert_eq!(vcpus("ml.g4dn.12xlarge"), Some(48.0));
        assert_eq!(vcpus("ml.m5d.metal"), None);
        assert_eq!(vcpus("local"), None);
    }

    #[test]
    fn the_score_weighs_the_parts_that_could_be_judged() {
        let parts = [part("errors", 40.0, Some(100.0)), part("latency", 30.0, Some(50.0)), part("drift", 20.0, None)];
        // (40 × 100 + 30 × 50) / 70
        assert!((composite(&parts).expect("a score") - 5500.0 / 70.0).abs() < 1e-9);
        assert_eq!(composite(&[part("drift", 20.0, None)]), None);
        assert_eq!(linear(0.025, 0.0, 0.05), 50.0);
        assert_eq!(linear(3000.0, 1000.0, 2000.0), 0.0);
        assert_eq!(linear(900.0, 1000.0, 2000.0), 100.0);
    }

    #[test]
    fn the_same_distribution_has_no_drift_and_a_shifted_one_has() {
        let expected: Vec<f64> = (0..1000).map(|i| f64::from(i % 100)).collect();
        let same: Vec<f64> = (0..500).map(|i| f64::from((i * 7) % 100)).collect();
        assert!(psi(&expected, &same).expect("psi") < 0.02);
        // shifted by half the range: most values fall in the top bins
        let shifted: Vec<f64> = same.iter().map(|v| v + 50.0).collect();
        assert!(psi(&expected, &shifted).expect("psi") > 1.0);
        // a worked example: half the mass moved from one decile to the next
        let moved: Vec<f64> = expected.iter().map(|v| if (0.0..5.0).contains(v) { v + 10.0 } else { *v }).collect();
        let value = psi(&expected, &moved).expect("psi");
        // bins 0 and 1: (0.05 − 0.1)·ln(0.5) + (0.15 − 0.1)·ln(1.5)
        let want = (0.05 - 0.1) * (0.5f64).ln() + (0.15 - 0.1) * (1.5f64).ln();
        assert!((value - want).abs() < 1e-9, "{value} vs {want}");
        assert_eq!(psi(&expected[..5], &same), None);
    }
}
