//! Outcome feedback: what happened after an invocation (a conversion, the
//! revenue, a rating), reported by the team's application as a value of a
//! named metric, joined to the production variant that served the
//! invocation. The gateway names each invocation with an id that carries
//! the variant and the time it was served (`x-capstan-invocation-id:
//! <request id>.<variant>`, the request id a UUIDv7), so joining needs no
//! record of each invocation. A second report of the same (request, metric)
//! is a duplicate and changes nothing; a late one counts in the minute the
//! invocation was served. Outcomes are telemetry, like invocations: they
//! are not audited.

use crate::endpoints::types::{Outcome, Outcomes, OutcomesAccepted};
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::kernel::validate::Errors;
use time::OffsetDateTime;
use uuid::Uuid;

/// At most this many outcomes in one request.
pub const MAX_BATCH: usize = 1_000;

/// The id the gateway gives an invocation served by `variant`.
pub fn invocation_id(request_id: &str, variant: &str) -> String {
    format!("{request_id}.{variant}")
}

/// The variant an invocation id names, and when the invocation was served
/// (a UUIDv7 request id carries its time).
fn parse_invocation(id: &str) -> Option<(&str, Option<OffsetDateTime>)> {
    let (request, variant) = id.split_once('.')?;
    let request = Uuid::parse_str(request).ok()?;
    if variant.is_empty() {
        return None;
    }
    let served = request.get_timestamp().and_then(|t| {
        let (seconds, nanos) = t.to_unix();
        let at = OffsetDateTime::from_unix_timestamp(i64::try_from(seconds).ok()?).ok()?;
        Some(at + time::Duration::nanoseconds(i64::from(nanos)))
    });
    Some((variant, served))
}

/// A metric's name: 1-64 letters, digits, `_`, `.`, `:`, `-`, starting with
/// a letter or digit.
pub fn metric_name(raw: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err("Name the metric with 1-64 letters, digits, '_', '.', ':' or '-' (like conversion).".into())
    }
}

/// Records outcomes of the endpoint's invocations (members and up): all of
/// them, or none when one is refused (each refusal names its place,
/// `outcomes[i].field`).
pub async fn record(ctx: &Ctx, id: Uuid, input: Outcomes) -> Result<OutcomesAccepted, AppError> {
    crate::endpoints::domain::authorized(ctx, id, Action::Contribute).await?;
    let (list, prefix) = match input {
        Outcomes::One(o) => (vec![o], String::new()),
        Outcomes::Batch { outcomes } => (outcomes, "outcomes".to_owned()),
    };
    if list.is_empty() || list.len() > MAX_BATCH {
        return Err(AppError::field(
            "outcomes",
            format!("Send 1 to {MAX_BATCH} outcomes at a time (this request has {}).", list.len()),
        ));
    }
    let variants: Vec<String> = sqlx::query_scalar!(
        "select name from endpoint_variant where endpoint_id = $1 and shadow_percent is null order by position",
        id
    )
    .fetch_all(ctx.pool())
    .await?;
    let now = OffsetDateTime::now_utc();
    let mut errors = Errors::new();
    let mut rows = Rows::default();
    for (i, o) in list.iter().enumerate() {
        let at = |field: &str| if prefix.is_empty() { field.to_owned() } else { format!("{prefix}[{i}].{field}") };
        if let Some(row) = checked(o, &variants, now, &mut errors, &at) {
            rows.push(row);
        }
    }
    errors.finish()?;
    let accepted = sqlx::query_scalar!(
        r#"with input as (
               select * from unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::timestamptz[])
                   as i(metric, request_id, variant, value, served_at)),
           added as (
               insert into endpoint_outcome (endpoint_id, metric, request_id, variant, value, served_at)
               select $1, metric, request_id, variant, value, served_at from input
               on conflict do nothing
               returning metric, variant, value, served_at),
           sums as (
               insert into endpoint_outcome_minute as m (endpoint_id, metric, variant, minute, n, sum, sum_squares)
               select $1, metric, variant, date_trunc('minute', served_at), count(*), sum(value), sum(value * value)
               from added group by 2, 3, 4 order by 2, 3, 4
               on conflict (endpoint_id, metric, variant, minute) do update set
                   n = m.n + excluded.n, sum = m.sum + excluded.sum, sum_squares = m.sum_squares + excluded.sum_squares)
           select count(*) as "n!" from added"#,
        id,
        &rows.metric,
        &rows.request_id,
        &rows.variant,
        &rows.value,
        &rows.served_at,
    )
    .fetch_one(ctx.pool())
    .await?;
    let accepted = u64::try_from(accepted).unwrap_or_default();
    Ok(OutcomesAccepted { accepted, duplicates: list.len() as u64 - accepted })
}

/// The columns of a batch, as the insert takes them.
#[derive(Default)]
struct Rows {
    metric: Vec<String>,
    request_id: Vec<String>,
    variant: Vec<String>,
    value: Vec<f64>,
    served_at: Vec<OffsetDateTime>,
}

impl Rows {
    fn push(&mut self, (metric, request_id, variant, value, served_at): (String, String, String, f64, OffsetDateTime)) {
        self.metric.push(metric);
        self.request_id.push(request_id);
        self.variant.push(variant);
        self.value.push(value);
        self.served_at.push(served_at);
    }
}

/// One outcome as it is stored, or its refusals added to `errors`.
fn checked(
    o: &Outcome,
    variants: &[String],
    now: OffsetDateTime,
    errors: &mut Errors,
    at: &dyn Fn(&str) -> String,
) -> Option<(String, String, String, f64, OffsetDateTime)> {
    let metric = errors.check(&at("metric"), metric_name(&o.metric));
    if !o.value.is_finite() {
        errors.push(&at("value"), "Give a finite number.");
    }
    let request_id = o.request_id.trim();
    if request_id.is_empty() || request_id.chars().count() > 200 || request_id.chars().any(char::is_control) {
        errors.push(&at("request_id"), "Give the invocation's id: 1-200 characters.");
        return None;
    }
    let from_id = parse_invocation(request_id);
    let variant = match (from_id, o.variant.as_deref()) {
        (Some((named, _)), Some(given)) if named != given => {
            errors.push(
                &at("variant"),
                format!("The invocation was served by `{named}`, not `{given}`: leave variant out."),
            );
            return None;
        }
        (Some((named, _)), _) => named.to_owned(),
        (None, Some(given)) => given.trim().to_owned(),
        (None, None) => {
            errors.push(
                &at("variant"),
                "Give the variant that served it, or the gateway's x-capstan-invocation-id as request_id.",
            );
            return None;
        }
    };
    if !variants.contains(&variant) {
        let field = if from_id.is_some() { "request_id" } else { "variant" };
        errors.push(
            &at(field),
            format!("`{variant}` is not a production variant of this endpoint (it has {}).", variants.join(", ")),
        );
        return None;
    }
    // an invocation's own time, never later than now (an id can be made up)
    let served_at = from_id.and_then(|(_, served)| served).map_or(now, |s| s.min(now));
    Some((metric?, request_id.to_owned(), variant, o.value, served_at))
}

/// How long an outcome is kept for recognising its duplicates; the
/// per-minute sums, which analyses read, are kept.
pub const KEPT_DAYS: i32 = 30;

/// Deletes outcomes received more than [`KEPT_DAYS`] ago (housekeeping);
/// how many. A duplicate of one arriving later counts again.
pub async fn prune(pool: &sqlx::PgPool) -> Result<u64, AppError> {
    let gone =
        sqlx::query!("delete from endpoint_outcome where received_at < now() - make_interval(days => $1)", KEPT_DAYS)
            .execute(pool)
            .await?;
    Ok(gone.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_id_names_its_variant_and_when_it_was_served() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a time");
        let ms = 1_800_000_000_000;
        let request = uuid::Builder::from_unix_timestamp_millis(ms, &[7; 10]).into_uuid();
        let id = invocation_id(&request.to_string(), "challenger");
        let (variant, served) = parse_invocation(&id).expect("an invocation id");
        assert_eq!(variant, "challenger");
        assert_eq!(served, Some(at));
        // not an invocation id: the caller names the variant
        assert!(parse_invocation("order-1234").is_none());
        assert!(parse_invocation(&format!("{request}.")).is_none());
        // a v4 id carries no time
        let (_, served) = parse_invocation(&format!("{}.a", Uuid::new_v4())).expect("an invocation id");
        assert_eq!(served, None);
    }

    #[test]
    fn metric_names_are_checked() {
        assert!(metric_name("conversion").is_ok());
        assert!(metric_name("revenue.usd:v2").is_ok());
        assert!(metric_name("").is_err());
        assert!(metric_name("-x").is_err());
        assert!(metric_name("a b").is_err());
        assert!(metric_name(&"m".repeat(65)).is_err());
    }
}
