//! The history of a registry target — an alias, a model version — read from
//! the team's audit log (the tamper-evident record `capstan audit verify`
//! checks), not from a table of our own: every set, move, delete,
//! protection and status decision, who made it, when it was applied, and
//! the change request that carried it with its author and approvers.
//!
//! A change applied by a request names it in its audit event (`request`);
//! the request's own events (`change_request.opened`, `.approved`,
//! `.edited`) give its title, author and the approvals that counted (those
//! after its last edit, as the quorum counted them).

use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::registry::types::{RequestRef, TargetChange};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// How many changes a history shows, newest first.
const LIMIT: i64 = 200;

struct Row {
    id: Uuid,
    at: time::OffsetDateTime,
    by: String,
    action: String,
    summary: Value,
}

/// Every change of `alias` of `model`, newest first (readers of the team).
pub async fn of_alias(ctx: &Ctx, model: Uuid, alias: &str) -> Result<Vec<TargetChange>, AppError> {
    let (_, team_id) = crate::registry::domain::load(ctx, model, Action::ReadTeam).await?;
    let alias = crate::registry::aliases::alias_name(alias).map_err(|m| AppError::field("alias", m))?;
    let rows = sqlx::query_as!(
        Row,
        r#"select audit_event_id as id, occurred_at as at, actor_label as by, action, summary
           from audit_event
           where target_type = 'model' and target_id = $2 and team_id = $1
             and action like 'model_alias.%' and summary ->> 'alias' = $3
           order by occurred_at desc, audit_event_id desc limit $4"#,
        team_id,
        model.to_string(),
        alias,
        LIMIT
    )
    .fetch_all(ctx.pool())
    .await?;
    explain(ctx, rows).await
}

/// Every change of model version `id` — registration, edits, status
/// decisions — and every alias that came to name it or left it, newest
/// first (readers of the team).
pub async fn of_version(ctx: &Ctx, id: Uuid) -> Result<Vec<TargetChange>, AppError> {
    let (version, team_id) = crate::registry::versions::load(ctx, id, Action::ReadTeam).await?;
    let rows = sqlx::query_as!(
        Row,
        r#"select audit_event_id as id, occurred_at as at, actor_label as by, action, summary
           from audit_event
           where team_id = $1
             and ((target_type = 'model_version' and target_id = $2)
                  or (target_type = 'model' and target_id = $3
                      and action in ('model_alias.set', 'model_alias.deleted')
                      and (summary ->> 'after' = $2 or summary ->> 'before' = $2)))
           order by occurred_at desc, audit_event_id desc limit $4"#,
        team_id,
        id.to_string(),
        version.model_id.to_string(),
        LIMIT
    )
    .fetch_all(ctx.pool())
    .await?;
    explain(ctx, rows).await
}

/// Puts the rows into words, with the requests that carried them.
async fn explain(ctx: &Ctx, rows: Vec<Row>) -> Result<Vec<TargetChange>, AppError> {
    let uuid_at = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).and_then(|s| s.parse::<Uuid>().ok());
    let requests: Vec<String> =
        rows.iter().filter_map(|r| uuid_at(&r.summary, "request")).map(|id| id.to_string()).collect();
    let versions: Vec<Uuid> =
        rows.iter().flat_map(|r| [uuid_at(&r.summary, "before"), uuid_at(&r.summary, "after")]).flatten().collect();
    let numbers: HashMap<Uuid, i32> =
        sqlx::query!("select version_id, number from model_version where version_id = any($1)", &versions)
            .fetch_all(ctx.pool())
            .await?
            .into_iter()
            .map(|v| (v.version_id, v.number))
            .collect();
    let refs = request_refs(ctx, &requests).await?;
    let number = |id: Option<Uuid>| match id.and_then(|id| numbers.get(&id)) {
        Some(n) => format!("v{n}"),
        None => "a deleted version".into(),
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let s = &r.summary;
            let text = |key: &str| s.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
            let nested = |outer: &str, key: &str| {
                s.get(outer).and_then(|o| o.get(key)).and_then(Value::as_str).unwrap_or_default().to_owned()
            };
            let alias = text("alias");
            let what = match r.action.as_str() {
                "model_alias.set" => match uuid_at(s, "before") {
                    None => format!("{alias} set → {}", number(uuid_at(s, "after"))),
                    Some(before) => format!("{alias}: {} → {}", number(Some(before)), number(uuid_at(s, "after"))),
                },
                "model_alias.deleted" => format!("{alias} deleted (was {})", number(uuid_at(s, "before"))),
                "model_alias.protected" => format!("{alias} protected"),
                "model_alias.unprotected" => format!("{alias} no longer protected"),
                "model_version.registered" => format!(
                    "registered as v{}",
                    s.get("after").and_then(|a| a.get("number")).and_then(Value::as_i64).unwrap_or_default()
                ),
                "model_version.status_changed" => {
                    format!("status: {} → {}", nested("before", "status"), nested("after", "status"))
                }
                "model_version.updated" => "description and tags edited".into(),
                "model_version.card_updated" => "model card edited".into(),
                "model_version.deleted" => "deleted".into(),
                other => other.to_owned(),
            };
            let reason = Some(text("reason")).filter(|r| !r.is_empty());
            let request = uuid_at(s, "request").and_then(|id| refs.get(&id).cloned());
            TargetChange { id: r.id, action: r.action, what, by: r.by, reason, request, at: r.at }
        })
        .collect())
}

/// The requests named by `ids`, from their own audit events.
async fn request_refs(ctx: &Ctx, ids: &[String]) -> Result<HashMap<Uuid, RequestRef>, AppError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let events = sqlx::query!(
        r#"select target_id as "id!", action, actor_label, summary from audit_event
           where target_type = 'change_request' and target_id = any($1)
             and action in ('change_request.opened', 'change_request.edited', 'change_request.approved')
           order by occurred_at, audit_event_id"#,
        ids
    )
    .fetch_all(ctx.pool())
    .await?;
    let mut refs: HashMap<Uuid, RequestRef> = HashMap::new();
    for e in events {
        let Ok(id) = e.id.parse::<Uuid>() else { continue };
        let title =
            |key: &str| e.summary.get(key).and_then(|a| a.get("title")).and_then(Value::as_str).map(str::to_owned);
        match e.action.as_str() {
            "change_request.opened" => {
                refs.insert(
                    id,
                    RequestRef {
                        id,
                        title: title("after").unwrap_or_default(),
                        author: e.actor_label,
                        approvers: vec![],
                    },
                );
            }
            "change_request.edited" => {
                if let Some(r) = refs.get_mut(&id) {
                    // an edit clears the approvals given so far
                    r.approvers.clear();
                    if let Some(t) = title("after") {
                        r.title = t;
                    }
                }
            }
            _ => {
                if let Some(r) = refs.get_mut(&id)
                    && !r.approvers.contains(&e.actor_label)
                {
                    r.approvers.push(e.actor_label);
                }
            }
        }
    }
    Ok(refs)
}
