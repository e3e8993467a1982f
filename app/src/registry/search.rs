//! Searching a team's model versions with the filter language of
//! [`crate::registry::filter`], ordered by a metric, the creation time or the
//! number, a keyset page at a time (correct when ordering by a metric that
//! some versions lack: they come last).

use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::page::{self, Page};
use crate::kernel::roles::Action;
use crate::registry::filter::{self, Expr, Field, Op, Order, OrderKey, Value};
use crate::registry::types::{ModelVersion, VersionSearch};
use crate::registry::versions::Row;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where a page ended: the sort key of its last version, and its id.
#[derive(Serialize, Deserialize)]
struct Cursor {
    metric: Option<f64>,
    number: Option<i32>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    at: Option<OffsetDateTime>,
    id: Uuid,
}

/// The columns of [`Row`].
const COLUMNS: &str = r#"select v.version_id, v.model_id, m.name as model, t.slug as team, v.number, v.status,
       v.source, v.artifact_uri, v.image, v.framework, v.entry_point, v.parameters, v.metrics, v.training_job_id,
       array(select c.version_id from training_job_channel c where c.job_id = v.training_job_id order by c.name)
           as dataset_versions,
       v.description, v.tags, u.email as created_by, v.created_at"#;

/// Which versions a search looks through.
pub enum Scope<'a> {
    /// every model of the team (slug or id)
    Team(&'a str),
    /// one model
    Model(Uuid),
    /// every model of these teams, which the caller has been checked to read
    Teams(Vec<Uuid>),
}

/// The versions of `scope` that match `q.filter`, in `q.order_by` order.
pub async fn search(ctx: &Ctx, scope: Scope<'_>, q: VersionSearch) -> Result<Page<ModelVersion>, AppError> {
    let (teams, model) = match scope {
        Scope::Team(team) => (vec![crate::teams::domain::load(ctx, team, Action::ReadTeam).await?.0.id], None),
        Scope::Model(id) => {
            let (model, team_id) = crate::registry::domain::load(ctx, id, Action::ReadTeam).await?;
            (vec![team_id], Some(model.id))
        }
        Scope::Teams(teams) => (teams, None),
    };
    // one team's pages come from the cache when they can: any change of
    // the team's models, versions or aliases announces `page:<team>:`
    if let [team] = teams.as_slice() {
        let cache = &ctx.state.cache;
        let prefix = crate::kernel::cache::PAGE_PREFIX;
        let key = format!("{prefix}{team}:versions:{}:{}", model.map(|m| m.to_string()).unwrap_or_default(), json!(q));
        return cache.get_or_load(key, crate::registry::domain::PAGE_TTL, run(ctx, teams, model, q)).await;
    }
    run(ctx, teams, model, q).await
}

async fn run(
    ctx: &Ctx,
    teams: Vec<Uuid>,
    model: Option<Uuid>,
    q: VersionSearch,
) -> Result<Page<ModelVersion>, AppError> {
    let limit = page::limit(q.limit)?;
    let expr =
        filter::parse(q.filter.as_deref().unwrap_or_default()).map_err(|e| AppError::query("filter", e.to_string()))?;
    let order = filter::order(q.order_by.as_deref().unwrap_or_default())
        .map_err(|e| AppError::query("order_by", e.to_string()))?;
    let after: Option<Cursor> = page::ssr::decode(q.cursor.as_deref())?;
    let mut sql = QueryBuilder::<Postgres>::new(COLUMNS);
    sql.push(
        " from model_version v join model m on m.model_id = v.model_id join team t on t.team_id = m.team_id \
         join app_user u on u.user_id = v.created_by",
    );
    if let OrderKey::Metric(name) = &order.key {
        sql.push(" left join model_version_metric om on om.version_id = v.version_id and om.name = ");
        sql.push_bind(name.clone());
    }
    sql.push(" where m.team_id = any(");
    sql.push_bind(teams.clone());
    sql.push(")");
    if let Some(model) = model {
        sql.push(" and v.model_id = ");
        sql.push_bind(model);
    }
    if let Some(expr) = &expr {
        sql.push(" and ");
        condition(&mut sql, &teams, expr);
    }
    if let Some(after) = &after {
        sql.push(" and ");
        keyset(&mut sql, &order, after);
    }
    let dir = if order.descending { "desc" } else { "asc" };
    match &order.key {
        OrderKey::Metric(_) => sql.push(format!(" order by om.value {dir} nulls last, v.version_id {dir}")),
        OrderKey::CreatedAt => sql.push(format!(" order by v.created_at {dir}, v.version_id {dir}")),
        OrderKey::Number => sql.push(format!(" order by v.number {dir}, v.version_id {dir}")),
    };
    sql.push(" limit ");
    sql.push_bind(limit + 1);
    let rows: Vec<Row> = sql.build_query_as().fetch_all(ctx.pool()).await?;
    let items: Vec<ModelVersion> = rows.into_iter().map(ModelVersion::from).collect();
    let key = |v: &ModelVersion| Cursor {
        metric: match &order.key {
            OrderKey::Metric(name) => v.metrics.get(name).copied(),
            _ => None,
        },
        number: Some(v.number),
        at: Some(v.created_at),
        id: v.id,
    };
    Ok(page::ssr::build(items, limit, key))
}

/// The newest version of each of `models`, in one query. For callers that
/// have already checked the caller may read these models (a page of them).
pub async fn latest_of(ctx: &Ctx, models: &[Uuid]) -> Result<std::collections::HashMap<Uuid, ModelVersion>, AppError> {
    let mut sql = QueryBuilder::<Postgres>::new(COLUMNS);
    sql.push(
        " from model_version v join model m on m.model_id = v.model_id join team t on t.team_id = m.team_id \
         join app_user u on u.user_id = v.created_by \
         join (select model_id, max(number) as number from model_version where model_id = any(",
    );
    sql.push_bind(models.to_vec());
    sql.push(") group by model_id) l on l.model_id = v.model_id and l.number = v.number");
    let rows: Vec<Row> = sql.build_query_as().fetch_all(ctx.pool()).await?;
    Ok(rows.into_iter().map(ModelVersion::from).map(|v| (v.model_id, v)).collect())
}

/// The versions after `after` in `order`.
fn keyset(sql: &mut QueryBuilder<'_, Postgres>, order: &Order, after: &Cursor) {
    let (beyond, id_beyond) = if order.descending { ("<", "<") } else { (">", ">") };
    match &order.key {
        OrderKey::Metric(_) => match after.metric {
            // past the versions with the metric come those without it
            Some(value) => {
                sql.push(format!("(om.value {beyond} "));
                sql.push_bind(value);
                sql.push(" or (om.value = ");
                sql.push_bind(value);
                sql.push(format!(" and v.version_id {id_beyond} "));
                sql.push_bind(after.id);
                sql.push(") or om.value is null)");
            }
            None => {
                sql.push(format!("(om.value is null and v.version_id {id_beyond} "));
                sql.push_bind(after.id);
                sql.push(")");
            }
        },
        OrderKey::CreatedAt => {
            sql.push(format!("(v.created_at, v.version_id) {beyond} ("));
            sql.push_bind(after.at.unwrap_or(OffsetDateTime::UNIX_EPOCH));
            sql.push(", ");
            sql.push_bind(after.id);
            sql.push(")");
        }
        OrderKey::Number => {
            sql.push(format!("(v.number, v.version_id) {beyond} ("));
            sql.push_bind(after.number.unwrap_or_default());
            sql.push(", ");
            sql.push_bind(after.id);
            sql.push(")");
        }
    }
}

/// `expr` as SQL over `v` (the version) and `m` (its model).
fn condition(sql: &mut QueryBuilder<'_, Postgres>, teams: &[Uuid], expr: &Expr) {
    match expr {
        Expr::And(a, b) | Expr::Or(a, b) => {
            sql.push("(");
            condition(sql, teams, a);
            sql.push(if matches!(expr, Expr::And(..)) { " and " } else { " or " });
            condition(sql, teams, b);
            sql.push(")");
        }
        Expr::Compare { field, op, value } => compare(sql, teams, field, *op, value),
    }
}

fn compare(sql: &mut QueryBuilder<'_, Postgres>, teams: &[Uuid], field: &Field, op: Op, value: &Value) {
    let text = || match value {
        Value::Text(t) => t.clone(),
        Value::Number(n) => n.to_string(),
    };
    let number = || match value {
        Value::Number(n) => *n,
        Value::Text(_) => f64::NAN,
    };
    let o = op.sql();
    match field {
        // through the (team, name, value) index
        Field::Metric(name) => {
            sql.push("v.version_id in (select mm.version_id from model_version_metric mm where mm.team_id = any(");
            sql.push_bind(teams.to_vec());
            sql.push(") and mm.name = ");
            sql.push_bind(name.clone());
            sql.push(format!(" and mm.value {o} "));
            sql.push_bind(number());
            sql.push(")");
        }
        Field::Param(key) | Field::Tag(key) => {
            let column = if matches!(field, Field::Param(_)) { "v.parameters" } else { "v.tags" };
            if op == Op::Eq {
                // containment, through the GIN index
                sql.push(format!("{column} @> jsonb_build_object("));
                sql.push_bind(key.clone());
                sql.push("::text, ");
                sql.push_bind(text());
                sql.push("::text)");
            } else {
                // a version without the key is not equal to any value
                let o = if op == Op::Ne { "is distinct from" } else { o };
                sql.push(format!("({column} ->> "));
                sql.push_bind(key.clone());
                sql.push(format!("::text) {o} "));
                sql.push_bind(text());
            }
        }
        Field::Status => {
            sql.push(format!("v.status::text {o} "));
            sql.push_bind(text());
        }
        Field::CreatedAt => {
            sql.push(format!("v.created_at {o} "));
            sql.push_bind(instant(value));
        }
        Field::Number => {
            sql.push(format!("v.number {o} "));
            sql.push_bind(number());
        }
        Field::Model => {
            // `team/model`, as the MLflow-compatible API names models, or the bare name
            sql.push(format!("{} {o} ", model_name_column(&text())));
            sql.push_bind(text());
        }
        Field::Source => {
            sql.push(format!("v.source {o} "));
            sql.push_bind(text());
        }
        Field::ArtifactUri => {
            sql.push(format!("v.artifact_uri {o} "));
            sql.push_bind(text());
        }
        Field::RunId => {
            sql.push(format!("v.training_job_id {o} "));
            sql.push_bind(Uuid::parse_str(&text()).unwrap_or_default());
        }
    }
}

/// What a `name`/`model` comparison with `value` reads: `team/model` or
/// `team~model` as the MLflow-compatible API names models, or the bare name.
pub(crate) fn model_name_column(value: &str) -> &'static str {
    if value.contains('/') {
        "(t.slug || '/' || m.name)"
    } else if value.contains('~') {
        "(t.slug || '~' || m.name)"
    } else {
        "m.name"
    }
}

/// A `created_at` value: an RFC 3339 time, a date (its midnight, UTC), or
/// milliseconds since 1970 (as MLflow's `creation_timestamp`). The parser
/// has checked it.
fn instant(value: &Value) -> OffsetDateTime {
    use time::format_description::well_known::Rfc3339;
    match value {
        Value::Number(ms) => {
            OffsetDateTime::from_unix_timestamp_nanos((*ms as i128) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
        }
        Value::Text(t) => OffsetDateTime::parse(t, &Rfc3339).unwrap_or_else(|_| {
            time::Date::parse(t, time::macros::format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_utc())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        }),
    }
}
