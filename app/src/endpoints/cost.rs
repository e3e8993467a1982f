//! What endpoints cost: every variant accrues instance-hours × the hourly
//! price of its instance type (the price table of the site's region, as it
//! was when the variant was deployed so), from the usage rows written in the
//! same transaction as each change (migration `…24_endpoint_usage.sql`).
//! Shown per endpoint (now per hour, today, this month, in all), per
//! variant, per model version and per team month beside training. In local
//! mode it is what the same endpoints would cost on SageMaker.

use crate::endpoints::types::{EndpointCost, EndpointSpend, VersionSpend};
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// A variant as deployed, for its usage row.
pub(crate) struct Deployed<'a> {
    pub name: &'a str,
    pub version_id: Uuid,
    pub instance_type: &'a str,
    pub instance_count: i32,
    pub shadow: bool,
}

/// Records that endpoint `id` now runs `variants`: rows of variants gone or
/// changed close now, variants without an open row open one at the current
/// price. Call it in the transaction of the change.
pub(crate) async fn deployed(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    id: Uuid,
    team_id: Uuid,
    endpoint_name: &str,
    region: &str,
    variants: &[Deployed<'_>],
) -> Result<(), AppError> {
    let names: Vec<String> = variants.iter().map(|v| v.name.to_owned()).collect();
    let versions: Vec<Uuid> = variants.iter().map(|v| v.version_id).collect();
    let types: Vec<String> = variants.iter().map(|v| v.instance_type.to_owned()).collect();
    let counts: Vec<i32> = variants.iter().map(|v| v.instance_count).collect();
    let shadows: Vec<bool> = variants.iter().map(|v| v.shadow).collect();
    sqlx::query!(
        "update endpoint_usage u set ended_at = now()
         where u.endpoint_id = $1 and u.ended_at is null
           and not exists (select 1 from unnest($2::text[], $3::uuid[], $4::text[], $5::int[]) as n(name, version_id, instance_type, count)
                           where n.name = u.variant and n.version_id = u.version_id
                             and n.instance_type = u.instance_type and n.count = u.instance_count)",
        id,
        &names,
        &versions,
        &types,
        &counts
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "insert into endpoint_usage (usage_id, endpoint_id, team_id, endpoint_name, variant, version_id, instance_type,
                                     instance_count, usd_per_hour, shadow)
         select gen_random_uuid(), $1, $2, $3, n.name, n.version_id, n.instance_type, n.count, p.usd_per_hour, n.shadow
         from unnest($4::text[], $5::uuid[], $6::text[], $7::int[], $8::bool[]) as n(name, version_id, instance_type, count, shadow)
         left join instance_price p on p.region = $9 and p.instance_type = n.instance_type
         where not exists (select 1 from endpoint_usage u where u.endpoint_id = $1 and u.ended_at is null and u.variant = n.name)",
        id,
        team_id,
        endpoint_name,
        &names,
        &versions,
        &types,
        &counts,
        &shadows,
        region
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that endpoint `id` stopped running (deleted).
pub(crate) async fn stopped(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, id: Uuid) -> Result<(), AppError> {
    sqlx::query!("update endpoint_usage set ended_at = now() where endpoint_id = $1 and ended_at is null", id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One usage row: what it costs per hour, from when to when.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub usd_per_hour: f64,
    pub started_at: OffsetDateTime,
    pub ended_at: Option<OffsetDateTime>,
}

impl Usage {
    /// What it accrued between `from` and `to`.
    pub fn between(&self, from: OffsetDateTime, to: OffsetDateTime) -> f64 {
        let start = self.started_at.max(from);
        let end = self.ended_at.unwrap_or(to).min(to);
        if end <= start { 0.0 } else { self.usd_per_hour * (end - start).as_seconds_f64() / 3600.0 }
    }
}

/// The start of today and of this month (UTC).
fn day_and_month(now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let day = now.replace_time(time::Time::MIDNIGHT);
    let month = day.replace_day(1).unwrap_or(day);
    (day, month)
}

/// Costs of endpoints `ids` and of their variants (by name), as of now.
pub async fn of_endpoints(
    pool: &sqlx::PgPool,
    ids: &[Uuid],
) -> Result<(HashMap<Uuid, EndpointCost>, HashMap<(Uuid, String), (Option<f64>, f64)>), AppError> {
    let rows = sqlx::query!(
        r#"select endpoint_id, variant, instance_count, usd_per_hour, started_at, ended_at
           from endpoint_usage where endpoint_id = any($1)"#,
        ids
    )
    .fetch_all(pool)
    .await?;
    let now = OffsetDateTime::now_utc();
    let (day, month) = day_and_month(now);
    let mut endpoints: HashMap<Uuid, EndpointCost> = HashMap::new();
    let mut variants: HashMap<(Uuid, String), (Option<f64>, f64)> = HashMap::new();
    for r in rows {
        let e = endpoints.entry(r.endpoint_id).or_default();
        let Some(price) = r.usd_per_hour else {
            e.unpriced |= r.ended_at.is_none();
            continue;
        };
        let usage =
            Usage { usd_per_hour: price * f64::from(r.instance_count), started_at: r.started_at, ended_at: r.ended_at };
        e.today_usd += usage.between(day, now);
        e.month_usd += usage.between(month, now);
        e.total_usd += usage.between(r.started_at, now);
        let v = variants.entry((r.endpoint_id, r.variant)).or_default();
        v.1 += usage.between(month, now);
        if r.ended_at.is_none() {
            e.usd_per_hour += usage.usd_per_hour;
            v.0 = Some(usage.usd_per_hour);
        }
    }
    Ok((endpoints, variants))
}

/// The team's endpoints this month (viewers): in all, per endpoint and per
/// model version, and its training beside it.
pub async fn month(ctx: &Ctx, team: &str) -> Result<EndpointSpend, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::ReadTeam).await?;
    team_month(ctx.pool(), team.id).await
}

/// [`month`] of team `team_id`, without authorization (budgets).
pub async fn team_month(pool: &sqlx::PgPool, team_id: Uuid) -> Result<EndpointSpend, AppError> {
    let training = crate::training::jobs::month_total(pool, team_id).await?;
    let now = OffsetDateTime::now_utc();
    let (_, month_start) = day_and_month(now);
    let rows = sqlx::query!(
        r#"select u.endpoint_name, u.version_id as "version_id?", m.name as "model?", v.number as "number?",
                  u.instance_count, u.usd_per_hour as "usd_per_hour!", u.started_at, u.ended_at
           from endpoint_usage u
           left join model_version v on v.version_id = u.version_id left join model m on m.model_id = v.model_id
           where u.team_id = $1 and u.usd_per_hour is not null and (u.ended_at is null or u.ended_at > $2)"#,
        team_id,
        month_start
    )
    .fetch_all(pool)
    .await?;
    let mut total = 0.0;
    let mut by_endpoint: HashMap<String, f64> = HashMap::new();
    let mut by_version: HashMap<Option<Uuid>, VersionSpend> = HashMap::new();
    for r in rows {
        let usage = Usage {
            usd_per_hour: r.usd_per_hour * f64::from(r.instance_count),
            started_at: r.started_at,
            ended_at: r.ended_at,
        };
        let usd = usage.between(month_start, now);
        total += usd;
        *by_endpoint.entry(r.endpoint_name).or_default() += usd;
        let v = by_version.entry(r.version_id).or_insert_with(|| VersionSpend {
            version_id: r.version_id,
            label: match (&r.model, r.number) {
                (Some(m), Some(n)) => format!("{m} v{n}"),
                _ => "a deleted version".into(),
            },
            usd: 0.0,
        });
        v.usd += usd;
    }
    let mut endpoints: Vec<(String, f64)> = by_endpoint.into_iter().collect();
    endpoints.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut versions: Vec<VersionSpend> = by_version.into_values().collect();
    versions.sort_by(|a, b| b.usd.total_cmp(&a.usd).then_with(|| a.label.cmp(&b.label)));
    Ok(EndpointSpend {
        month: training.month,
        endpoints_usd: total,
        training_usd: training.total_usd,
        by_endpoint: endpoints
            .into_iter()
            .map(|(name, usd)| crate::endpoints::types::NamedSpend { name, usd })
            .collect(),
        by_version: versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn usage_accrues_only_inside_the_window() {
        let u = Usage {
            usd_per_hour: 2.0,
            started_at: datetime!(2026-12-01 10:00 UTC),
            ended_at: Some(datetime!(2026-12-01 13:00 UTC)),
        };
        let (from, to) = (datetime!(2026-12-01 12:00 UTC), datetime!(2026-12-02 0:00 UTC));
        assert!((u.between(from, to) - 2.0).abs() < 1e-9, "one hour inside the window");
        assert_eq!(u.between(datetime!(2026-12-02 0:00 UTC), datetime!(2026-12-03 0:00 UTC)), 0.0);
        let open = Usage { ended_at: None, ..u };
        assert!((open.between(from, datetime!(2026-12-01 14:30 UTC)) - 5.0).abs() < 1e-9, "still running");
    }
}
