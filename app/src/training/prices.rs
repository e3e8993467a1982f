//! The instance price table: on-demand USD per instance-hour by region and
//! instance type. Seeded from `app/data/instance-prices.json` (which names
//! its source and date), edited by site admins. Training uses it to check
//! instance types and to compute worst-case, accruing and actual cost.

use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::{SiteAction, authorize_site};
use crate::training::types::{InstancePrice, PriceTable};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

const DATA: &str = include_str!("../../data/instance-prices.json");

#[derive(Deserialize)]
pub(crate) struct DataFile {
    source: String,
    as_of: String,
    regions: BTreeMap<String, BTreeMap<String, f64>>,
}

/// The data file, parsed once; `capstan serve` refuses to start when it is
/// invalid ([`crate::training::launch::check_bundled_data`]).
static DATA_FILE: std::sync::LazyLock<Result<DataFile, String>> = std::sync::LazyLock::new(|| {
    serde_json::from_str(DATA).map_err(|e| format!("app/data/instance-prices.json is invalid: {e}"))
});

pub(crate) fn data() -> Result<&'static DataFile, AppError> {
    DATA_FILE.as_ref().map_err(|e| {
        tracing::error!(error = %e, "bundled price data");
        AppError::Internal
    })
}

/// Adds the data file's prices that are not in the table yet (edits by
/// site admins are kept; new instance types in the file appear).
pub async fn seed(pool: &sqlx::PgPool) -> Result<u64, AppError> {
    let file = data()?;
    let (mut regions, mut types, mut prices) = (Vec::new(), Vec::new(), Vec::new());
    for (region, table) in &file.regions {
        for (instance_type, price) in table {
            regions.push(region.clone());
            types.push(instance_type.clone());
            prices.push(*price);
        }
    }
    let done = sqlx::query!(
        "insert into instance_price (region, instance_type, usd_per_hour)
         select * from unnest($1::text[], $2::text[], $3::float8[]) on conflict do nothing",
        &regions,
        &types,
        &prices,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The price of one `instance_type` instance-hour in `region`, if listed.
pub async fn price(
    conn: impl sqlx::PgExecutor<'_>,
    region: &str,
    instance_type: &str,
) -> Result<Option<f64>, AppError> {
    Ok(sqlx::query_scalar!(
        "select usd_per_hour from instance_price where region = $1 and instance_type = $2",
        region,
        instance_type
    )
    .fetch_optional(conn)
    .await?)
}

pub async fn table(ctx: &Ctx) -> Result<PriceTable, AppError> {
    ctx.actor()?;
    let region = ctx.state.settings.region.clone();
    let prices = sqlx::query_as!(
        InstancePrice,
        r#"select p.instance_type, p.usd_per_hour, u.email as "edited_by?",
                  case when p.updated_by is null then null else p.updated_at end as edited_at
           from instance_price p left join app_user u on u.user_id = p.updated_by
           where p.region = $1 order by p.usd_per_hour, p.instance_type"#,
        region
    )
    .fetch_all(ctx.pool())
    .await?;
    let file = data()?;
    Ok(PriceTable { region, source: file.source.clone(), as_of: file.as_of.clone(), prices })
}

fn parse_type(raw: &str) -> Result<String, String> {
    let t = raw.trim();
    let ok = t.starts_with("ml.")
        && t.len() <= 64
        && t.split('.').count() == 3
        && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if ok { Ok(t.to_owned()) } else { Err("Use an instance type like ml.m5.large.".into()) }
}

pub async fn set(ctx: &Ctx, instance_type: &str, usd_per_hour: &str) -> Result<InstancePrice, AppError> {
    let actor = ctx.actor()?;
    authorize_site(&actor.principal(), SiteAction::ManagePrices)?;
    let mut errors = crate::kernel::validate::Errors::new();
    let instance_type = errors.check("instance_type", parse_type(instance_type));
    let price = errors.check(
        "usd_per_hour",
        usd_per_hour
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite() && *p >= 0.0 && *p < 10_000.0)
            .ok_or_else(|| "Give a price in USD per hour, like 0.115.".to_owned()),
    );
    errors.finish()?;
    let (Some(instance_type), Some(price)) = (instance_type, price) else { return Err(AppError::Internal) };
    let region = ctx.state.settings.region.clone();
    let mut tx = ctx.pool().begin().await?;
    let before = price_for_update(&mut tx, &region, &instance_type).await?;
    sqlx::query!(
        "insert into instance_price (region, instance_type, usd_per_hour, updated_by, updated_at)
         values ($1, $2, $3, $4, now())
         on conflict (region, instance_type) do update set usd_per_hour = $3, updated_by = $4, updated_at = now()",
        region,
        instance_type,
        price,
        actor.user_id
    )
    .execute(&mut *tx)
    .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: None,
            action: "price.updated",
            target_type: "instance_price",
            target_id: Some(format!("{region}/{instance_type}")),
            summary: json!({ "before": before, "after": price }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(InstancePrice {
        instance_type,
        usd_per_hour: price,
        edited_by: Some(actor.email.clone()),
        edited_at: Some(time::OffsetDateTime::now_utc()),
    })
}

async fn price_for_update(
    tx: &mut sqlx::PgConnection,
    region: &str,
    instance_type: &str,
) -> Result<Option<f64>, AppError> {
    Ok(sqlx::query_scalar!(
        "select usd_per_hour from instance_price where region = $1 and instance_type = $2 for update",
        region,
        instance_type
    )
    .fetch_optional(tx)
    .await?)
}

pub async fn delete(ctx: &Ctx, instance_type: &str) -> Result<(), AppError> {
    let actor = ctx.actor()?;
    authorize_site(&actor.principal(), SiteAction::ManagePrices)?;
    let region = ctx.state.settings.region.clone();
    let mut tx = ctx.pool().begin().await?;
    let Some(before) = price_for_update(&mut tx, &region, instance_type).await? else {
        return Err(AppError::NotFound("Instance price".into()));
    };
    sqlx::query!("delete from instance_price where region = $1 and instance_type = $2", region, instance_type)
        .execute(&mut *tx)
        .await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: None,
            action: "price.deleted",
            target_type: "instance_price",
            target_id: Some(format!("{region}/{instance_type}")),
            summary: json!({ "before": before }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn data_file_parses_and_names_its_source() {
        let file = super::data().expect("valid");
        assert!(file.source.contains("aws.amazon.com"));
        assert!(file.regions["us-east-1"]["ml.m5.large"] > 0.0);
    }
}
