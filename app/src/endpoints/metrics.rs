//! Per-variant traffic metrics: the gateway's counts added to per-minute
//! rollups in batches (`flush`, every process); in AWS mode also what
//! CloudWatch counted of the same variants and minutes (`pull_cloudwatch`,
//! the serving worker), which counts every invocation, the gateway's and
//! direct ones; read back as series for the endpoint page and
//! `GET /api/v1/endpoints/{id}/metrics`, CloudWatch's figures first where
//! they are.

use crate::endpoints::types::{EndpointMetrics, VariantSeries};
use crate::kernel::context::Ctx;
use crate::kernel::error::{AppError, FieldError};
use crate::kernel::roles::Action;
use serving::traffic::{BUCKETS, Counts, quantile};
use std::collections::BTreeMap;
use uuid::Uuid;

/// What one variant served over a window of whole minutes (the rollouts'
/// guardrails and the health score read it). In AWS mode the counts are
/// CloudWatch's where it has the minute: they count every invocation, also
/// those sent to SageMaker Runtime directly.
#[derive(Debug, Default, Clone)]
pub struct Served {
    pub requests: f64,
    /// Server and model errors.
    pub errors: f64,
    /// The gateway's latency histogram (`serving::traffic::BUCKETS`).
    pub latency: Vec<u64>,
    /// AWS mode: CloudWatch's p99 of the slowest minute.
    pub cw_p99: Option<f64>,
    /// AWS mode: the sums and counts of the minutes' CPU use (percent of
    /// one vCPU) and memory use (percent).
    cpu: (f64, f64),
    memory: (f64, f64),
}

impl Served {
    /// Adds what `other` served (another variant's, for the endpoint's whole).
    pub fn add(&mut self, other: &Served) {
        self.requests += other.requests;
        self.errors += other.errors;
        if self.latency.len() < other.latency.len() {
            self.latency.resize(other.latency.len(), 0);
        }
        for (slot, n) in self.latency.iter_mut().zip(&other.latency) {
            *slot += n;
        }
        self.cw_p99 = match (self.cw_p99, other.cw_p99) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for (mine, theirs) in [(&mut self.cpu, other.cpu), (&mut self.memory, other.memory)] {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }

    /// Errors per request; none without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0.0).then(|| self.errors / self.requests)
    }

    /// The p99 latency in ms: CloudWatch's where it has one, else the gateway's.
    pub fn p99(&self) -> Option<f64> {
        self.cw_p99.or_else(|| quantile(&self.latency, 0.99))
    }

    /// The window's average CPU use, in percent of one vCPU.
    pub fn cpu_percent(&self) -> Option<f64> {
        (self.cpu.1 > 0.0).then(|| self.cpu.0 / self.cpu.1)
    }

    /// The window's average memory use, in percent.
    pub fn memory_percent(&self) -> Option<f64> {
        (self.memory.1 > 0.0).then(|| self.memory.0 / self.memory.1)
    }
}

/// What each of `variants` of endpoint `id` served from the minute of
/// `since` on; a variant without a row is left out.
pub async fn served(
    pool: &sqlx::PgPool,
    id: Uuid,
    variants: &[String],
    since: time::OffsetDateTime,
) -> Result<BTreeMap<String, Served>, AppError> {
    let rows = sqlx::query!(
        r#"select variant, coalesce(cw_requests, requests) as "requests!",
                  coalesce(cw_errors_5xx, errors_5xx + model_errors) as "errors!", latency_buckets, cw_p99_ms,
                  cw_cpu_percent, cw_memory_percent
           from endpoint_metric where endpoint_id = $1 and minute >= $2 and variant = any($3)"#,
        id,
        crate::endpoints::experiment::minute_of(since),
        variants
    )
    .fetch_all(pool)
    .await?;
    let mut out: BTreeMap<String, Served> = BTreeMap::new();
    for row in rows {
        let s = out.entry(row.variant).or_default();
        s.requests += row.requests as f64;
        s.errors += row.errors as f64;
        if s.latency.len() < row.latency_buckets.len() {
            s.latency.resize(row.latency_buckets.len(), 0);
        }
        for (slot, n) in s.latency.iter_mut().zip(&row.latency_buckets) {
            *slot += u64::try_from(*n).unwrap_or_default();
        }
        if let Some(p) = row.cw_p99_ms {
            s.cw_p99 = Some(s.cw_p99.map_or(p, |q: f64| q.max(p)));
        }
        for (slot, value) in [(&mut s.cpu, row.cw_cpu_percent), (&mut s.memory, row.cw_memory_percent)] {
            if let Some(v) = value {
                slot.0 += v;
                slot.1 += 1.0;
            }
        }
    }
    Ok(out)
}

/// Adds what this process's gateway recorded to the rollups, in one
/// statement; on failure the counts go back for the next flush. Returns how
/// many (variant, minute) rows it added to.
pub async fn flush(state: &crate::kernel::state::AppState) -> Result<usize, AppError> {
    let taken = state.traffic.take();
    if taken.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::new();
    let mut variants = Vec::new();
    let mut minutes = Vec::new();
    let mut numbers: [Vec<i64>; 6] = Default::default();
    let mut sums = Vec::new();
    let mut buckets = Vec::new();
    for ((endpoint, variant, minute), c) in &taken {
        let Ok(id) = endpoint.parse::<Uuid>() else { continue };
        ids.push(id);
        variants.push(variant.clone());
        minutes.push(time::OffsetDateTime::from_unix_timestamp(*minute).unwrap_or(time::OffsetDateTime::UNIX_EPOCH));
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (slot, v) in numbers.iter_mut().zip([
            c.requests,
            c.errors_4xx,
            c.errors_5xx,
            c.model_errors,
            c.shadow_requests,
            c.shadow_agree,
        ]) {
            slot.push(n(v));
        }
        sums.push(c.latency_ms_sum);
        // one text per row: Postgres has no arrays of arrays of unequal use here
        buckets.push(c.latency.iter().map(u64::to_string).collect::<Vec<_>>().join(","));
    }
    let [requests, e4, e5, model, shadow, agree] = numbers;
    let done = sqlx::query!(
        r#"insert into endpoint_metric as m (endpoint_id, variant, minute, requests, errors_4xx, errors_5xx,
                  model_errors, shadow_requests, shadow_agree, latency_ms_sum, latency_buckets)
           select r.id, r.variant, r.minute, r.requests, r.e4, r.e5, r.model, r.shadow, r.agree, r.sum,
                  string_to_array(r.buckets, ',')::bigint[]
           from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::bigint[],
                       $7::bigint[], $8::bigint[], $9::bigint[], $10::float8[], $11::text[])
                as r(id, variant, minute, requests, e4, e5, model, shadow, agree, sum, buckets)
           where exists (select 1 from endpoint e where e.endpoint_id = r.id)
           on conflict (endpoint_id, variant, minute) do update set
               requests = m.requests + excluded.requests,
               errors_4xx = m.errors_4xx + excluded.errors_4xx,
               errors_5xx = m.errors_5xx + excluded.errors_5xx,
               model_errors = m.model_errors + excluded.model_errors,
               shadow_requests = m.shadow_requests + excluded.shadow_requests,
               shadow_agree = m.shadow_agree + excluded.shadow_agree,
               latency_ms_sum = m.latency_ms_sum + excluded.latency_ms_sum,
               latency_buckets = array(select coalesce(a, 0) + coalesce(b, 0)
                                       from unnest(m.latency_buckets, excluded.latency_buckets) as t(a, b))"#,
        &ids,
        &variants,
        &minutes,
        &requests,
        &e4,
        &e5,
        &model,
        &shadow,
        &agree,
        &sums,
        &buckets
    )
    .execute(&state.pool)
    .await;
    match done {
        Ok(r) => Ok(usize::try_from(r.rows_affected()).unwrap_or_default()),
        Err(e) => {
            state.traffic.restore(taken);
            Err(e.into())
        }
    }
}

/// How far back each pull reads CloudWatch: its figures for a minute can
/// still grow for a few minutes after it.
const CLOUDWATCH_MINUTES: i64 = 15;

/// Sets the rollups' CloudWatch columns of every endpoint on SageMaker
/// from its variants' metrics of the last minutes (run by the serving
/// worker about once a minute; setting, not adding, so a second pull of
/// the same minutes changes nothing). Returns how many (variant, minute)
/// rows it set. An endpoint whose metrics cannot be read is skipped (and
/// logged) until the next pull.
pub async fn pull_cloudwatch(state: &crate::kernel::state::AppState) -> Result<usize, AppError> {
    let Some(serving) = state.serving.clone() else { return Ok(0) };
    let endpoints = sqlx::query!(
        r#"select e.endpoint_id, e.engine_name, array_agg(v.name order by v.position) as "variants!"
           from endpoint e join endpoint_variant v on v.endpoint_id = e.endpoint_id
           where e.backend = 'sagemaker' and e.desired = 'running' and e.status <> 'Creating'
           group by e.endpoint_id, e.engine_name"#
    )
    .fetch_all(&state.pool)
    .await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let until = now - now.rem_euclid(60) + 60;
    let since = until - 60 * (CLOUDWATCH_MINUTES + 1);
    let mut set = 0;
    for e in endpoints {
        let minutes = match serving.variant_metrics(&e.engine_name, &e.variants, since, until).await {
            Ok(m) => m,
            Err(err) => {
                tracing::warn!(endpoint = %e.engine_name, error = %err, "could not read the variants' CloudWatch metrics");
                continue;
            }
        };
        if minutes.is_empty() {
            continue;
        }
        let at = |m: i64| time::OffsetDateTime::from_unix_timestamp(m).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let count = |v: f64| v.max(0.0).round() as i64;
        let done = sqlx::query!(
            r#"insert into endpoint_metric as m (endpoint_id, variant, minute, latency_buckets, cw_requests,
                      cw_errors_4xx, cw_errors_5xx, cw_p50_ms, cw_p95_ms, cw_p99_ms, cw_cpu_percent,
                      cw_memory_percent)
               select $1, r.variant, r.minute, '{}', r.requests, r.e4, r.e5, r.p50, r.p95, r.p99, r.cpu, r.memory
               from unnest($2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::bigint[],
                           $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[])
                    as r(variant, minute, requests, e4, e5, p50, p95, p99, cpu, memory)
               on conflict (endpoint_id, variant, minute) do update set
                   cw_requests = excluded.cw_requests, cw_errors_4xx = excluded.cw_errors_4xx,
                   cw_errors_5xx = excluded.cw_errors_5xx, cw_p50_ms = excluded.cw_p50_ms,
                   cw_p95_ms = excluded.cw_p95_ms, cw_p99_ms = excluded.cw_p99_ms,
                   cw_cpu_percent = excluded.cw_cpu_percent, cw_memory_percent = excluded.cw_memory_percent"#,
            e.endpoint_id,
            &minutes.iter().map(|m| m.variant.clone()).collect::<Vec<_>>(),
            &minutes.iter().map(|m| at(m.minute)).collect::<Vec<_>>(),
            &minutes.iter().map(|m| count(m.invocations)).collect::<Vec<_>>(),
            &minutes.iter().map(|m| count(m.errors_4xx)).collect::<Vec<_>>(),
            &minutes.iter().map(|m| count(m.errors_5xx)).collect::<Vec<_>>(),
            &minutes.iter().map(|m| m.p50_ms).collect::<Vec<_>>() as &[Option<f64>],
            &minutes.iter().map(|m| m.p95_ms).collect::<Vec<_>>() as &[Option<f64>],
            &minutes.iter().map(|m| m.p99_ms).collect::<Vec<_>>() as &[Option<f64>],
            &minutes.iter().map(|m| m.cpu_percent).collect::<Vec<_>>() as &[Option<f64>],
            &minutes.iter().map(|m| m.memory_percent).collect::<Vec<_>>() as &[Option<f64>],
        )
        .execute(&state.pool)
        .await?;
        set += usize::try_from(done.rows_affected()).unwrap_or_default();
    }
    Ok(set)
}

/// The endpoint's series from `from` to `to` in steps of `step` seconds
/// (viewers): per variant, requests per second, error rate, p50/p95/p99
/// latency and the shadow's agreement. Defaults: the last hour by minute.
pub async fn series(
    ctx: &Ctx,
    id: Uuid,
    from: Option<time::OffsetDateTime>,
    to: Option<time::OffsetDateTime>,
    step: Option<i64>,
) -> Result<EndpointMetrics, AppError> {
    crate::endpoints::domain::load(ctx, id, Action::ReadTeam).await?;
    let now = time::OffsetDateTime::now_utc();
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to - time::Duration::hours(1));
    let step = step.unwrap_or(60);
    let mut bad = Vec::new();
    if !(60..=86_400).contains(&step) || step % 60 != 0 {
        bad.push(FieldError::new("step", "Give a step in whole minutes, 60 to 86400 seconds."));
    }
    if from >= to || to - from > time::Duration::days(31) {
        bad.push(FieldError::new("from", "Give a window `from` < `to` of at most 31 days."));
    } else if (to - from).whole_seconds() / step.max(1) > 2_000 {
        bad.push(FieldError::new("step", "At most 2000 points: take a longer step."));
    }
    if !bad.is_empty() {
        return Err(AppError::InvalidQuery(bad));
    }
    let start = from.unix_timestamp() - from.unix_timestamp().rem_euclid(step);
    let points = usize::try_from((to.unix_timestamp() - start) / step + 1).unwrap_or(1);
    let rows = sqlx::query!(
        r#"select variant, minute, requests, errors_4xx, errors_5xx, model_errors, latency_buckets,
                  shadow_requests, shadow_agree, cw_requests, cw_errors_4xx, cw_errors_5xx,
                  cw_p50_ms, cw_p95_ms, cw_p99_ms
           from endpoint_metric where endpoint_id = $1 and minute >= $2 and minute <= $3"#,
        id,
        time::OffsetDateTime::from_unix_timestamp(start).unwrap_or(from),
        to
    )
    .fetch_all(ctx.pool())
    .await?;
    let mut by_variant: BTreeMap<String, Vec<Slot>> = BTreeMap::new();
    for r in rows {
        let i = usize::try_from((r.minute.unix_timestamp() - start) / step).unwrap_or(0).min(points - 1);
        let slots = by_variant.entry(r.variant).or_insert_with(|| vec![Slot::default(); points]);
        let slot = &mut slots[i];
        let c = &mut slot.counts;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        // CloudWatch's minute (AWS mode) counts every invocation; the
        // gateway's only those through it
        match r.cw_requests {
            Some(cw) => {
                c.requests += n(cw);
                c.errors_4xx += n(r.cw_errors_4xx.unwrap_or(0));
                c.errors_5xx += n(r.cw_errors_5xx.unwrap_or(0));
            }
            None => {
                c.requests += n(r.requests);
                c.errors_4xx += n(r.errors_4xx);
                c.errors_5xx += n(r.errors_5xx);
                c.model_errors += n(r.model_errors);
            }
        }
        c.shadow_requests += n(r.shadow_requests);
        c.shadow_agree += n(r.shadow_agree);
        for (slot, v) in c.latency.iter_mut().zip(r.latency_buckets.iter().take(BUCKETS)) {
            *slot += n(*v);
        }
        // several minutes in one step: the slowest minute's percentile
        for (kept, cw) in slot.cw.iter_mut().zip([r.cw_p50_ms, r.cw_p95_ms, r.cw_p99_ms]) {
            if let Some(v) = cw {
                *kept = Some(kept.map_or(v, |k: f64| k.max(v)));
            }
        }
    }
    let secs = step as f64;
    let variants = by_variant
        .into_iter()
        .map(|(variant, slots)| VariantSeries {
            variant,
            requests: slots.iter().map(|s| s.counts.requests).collect(),
            requests_per_second: slots.iter().map(|s| s.counts.requests as f64 / secs).collect(),
            error_rate: slots
                .iter()
                .map(|s| {
                    let c = &s.counts;
                    let errors = c.errors_4xx + c.errors_5xx + c.model_errors;
                    if c.requests == 0 { 0.0 } else { errors as f64 / c.requests as f64 }
                })
                .collect(),
            p50_ms: slots.iter().map(|s| s.cw[0].or_else(|| quantile(&s.counts.latency, 0.5))).collect(),
            p95_ms: slots.iter().map(|s| s.cw[1].or_else(|| quantile(&s.counts.latency, 0.95))).collect(),
            p99_ms: slots.iter().map(|s| s.cw[2].or_else(|| quantile(&s.counts.latency, 0.99))).collect(),
            shadow_agreement: slots
                .iter()
                .map(|s| {
                    let c = &s.counts;
                    (c.shadow_requests > 0).then(|| c.shadow_agree as f64 / c.shadow_requests as f64)
                })
                .collect(),
        })
        .collect();
    let at = (0..points)
        .map(|i| {
            let t = time::OffsetDateTime::from_unix_timestamp(start + step * i as i64).unwrap_or(from);
            t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
        })
        .collect();
    Ok(EndpointMetrics { step_seconds: step, at, variants })
}

/// One point of a variant's series: the gateway's counts (or CloudWatch's,
/// in AWS mode) and CloudWatch's latency percentiles, when it has them.
#[derive(Clone, Default)]
struct Slot {
    counts: Counts,
    /// p50, p95, p99 in milliseconds.
    cw: [Option<f64>; 3],
}
