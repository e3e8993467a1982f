//! Endpoints of a team: create (members), read (viewers), change weights
//! and variants (members), delete (admins). Rows only: the serving worker
//! (`server/src/workers.rs`) makes each endpoint's processes or SageMaker
//! resources match its rows, one generation at a time.

use crate::endpoints::types::{
    Endpoint, EndpointUpdate, FleetDeployment, Instance, MAX_VARIANTS, NewEndpoint, NewShadow, NewVariant, Variant,
    Weights,
};
use crate::kernel::audit::NewEvent;
use crate::kernel::changes::kinds;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::{Action, Role, authorize_owned};
use crate::kernel::validate::Errors;
use crate::registry::gate::{Route, gate};
use crate::registry::types::ModelVersionStatus;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// A SageMaker name: 1-63 letters, digits and hyphens, starting and ending
/// with a letter or digit.
fn sagemaker_name(raw: &str, what: &str) -> Result<String, String> {
    let n = raw.trim();
    if training::is_legal_job_name(n) {
        Ok(n.to_owned())
    } else {
        Err(format!("Give the {what} 1-63 letters, digits and hyphens, starting and ending with a letter or digit."))
    }
}

fn weight(w: f64) -> Result<f64, String> {
    if w.is_finite() && w >= 0.0 { Ok(w) } else { Err("A weight is a number ≥ 0.".into()) }
}

/// What a variant of the request becomes once checked.
struct CheckedVariant {
    name: String,
    version_id: Uuid,
    instance_type: String,
    instance_count: i32,
    weight: f64,
    shadow_percent: Option<i32>,
}

/// One variant of a request, production or shadow, before it is checked.
struct Asked<'a> {
    field: String,
    name: &'a str,
    version_id: Uuid,
    instance_type: &'a str,
    count: i32,
    weight: f64,
    percent: Option<i32>,
}

/// Checks the variants and shadow of a request against the team: names,
/// sizes, weights, instance types of the price table, and versions of the
/// team that are neither archived nor rejected (unless in `deployed`, the
/// versions the endpoint serves already: archiving one does not stop a
/// change of the endpoint's other variants).
async fn check_variants(
    ctx: &Ctx,
    team_id: Uuid,
    variants: &[NewVariant],
    shadow: Option<&NewShadow>,
    deployed: &HashSet<Uuid>,
    errors: &mut Errors,
) -> Result<Vec<CheckedVariant>, AppError> {
    if variants.is_empty() || variants.len() > MAX_VARIANTS {
        errors.push("variants", format!("Give 1 to {MAX_VARIANTS} production variants."));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut all: Vec<Asked> = variants
        .iter()
        .enumerate()
        .map(|(i, v)| Asked {
            field: format!("variants[{i}]"),
            name: &v.name,
            version_id: v.version_id,
            instance_type: &v.instance_type,
            count: v.instance_count,
            weight: v.weight,
            percent: None,
        })
        .collect();
    if let Some(s) = shadow {
        all.push(Asked {
            field: "shadow".into(),
            name: &s.name,
            version_id: s.version_id,
            instance_type: &s.instance_type,
            count: s.instance_count,
            weight: 0.0,
            percent: Some(s.percent),
        });
    }
    let ids: Vec<Uuid> = all.iter().map(|v| v.version_id).collect();
    let versions: HashMap<Uuid, (ModelVersionStatus, bool)> = sqlx::query!(
        r#"select v.version_id, v.status as "status: ModelVersionStatus", v.image is not null as "has_image!"
           from model_version v join model m on m.model_id = v.model_id
           where v.version_id = any($1) and m.team_id = $2"#,
        &ids,
        team_id
    )
    .fetch_all(ctx.pool())
    .await?
    .into_iter()
    .map(|r| (r.version_id, (r.status, r.has_image)))
    .collect();
    // SageMaker runs a model in its image; the local runner needs none
    let needs_image = ctx.state.training.kind() == "sagemaker";
    let region = ctx.state.settings.region.clone();
    let types: Vec<String> = all.iter().map(|v| v.instance_type.to_owned()).collect();
    let priced: HashSet<String> = sqlx::query_scalar!(
        "select instance_type from instance_price where region = $1 and instance_type = any($2)",
        region,
        &types
    )
    .fetch_all(ctx.pool())
    .await?
    .into_iter()
    .collect();
    for Asked { field, name, version_id, instance_type, count, weight: w, percent } in all {
        let name = errors.check(&format!("{field}.name"), sagemaker_name(name, "variant"));
        if let Some(n) = &name
            && !seen.insert(n.to_lowercase())
        {
            errors.push(&format!("{field}.name"), format!("Variant names must differ: `{n}` is used twice."));
        }
        match versions.get(&version_id) {
            None => errors.push(&format!("{field}.version_id"), "No model version of this team has this id."),
            Some((ModelVersionStatus::Archived | ModelVersionStatus::Rejected, _)) if !deployed.contains(&version_id) => {
                errors.push(
                    &format!("{field}.version_id"),
                    format!(
                        "Variant `{}`: the version is archived or rejected; deploy an approved or pending one.",
                        name.as_deref().unwrap_or("?")
                    ),
                )
            }
            Some((_, false)) if needs_image => errors.push(
                &format!("{field}.version_id"),
                format!(
                    "Variant `{}`: the version has no inference image, and SageMaker runs a model in one; register a version with an image URI.",
                    name.as_deref().unwrap_or("?")
                ),
            ),
            Some(_) => {}
        }
        if !priced.contains(instance_type) {
            errors.push(
                &format!("{field}.instance_type"),
                format!("`{instance_type}` is not in the price table of {region}: pick a listed instance type."),
            );
        }
        if !(1..=10).contains(&count) {
            errors.push(&format!("{field}.instance_count"), "Use 1 to 10 instances.");
        }
        let w = errors.check(&format!("{field}.weight"), weight(w));
        if let Some(p) = percent
            && !(1..=100).contains(&p)
        {
            errors.push("shadow.percent", "Copy 1 to 100 percent of the requests to the shadow.");
        }
        if let (Some(name), Some(w)) = (name, w) {
            out.push(CheckedVariant {
                name,
                version_id,
                instance_type: instance_type.to_owned(),
                instance_count: count,
                weight: w,
                shadow_percent: percent,
            });
        }
    }
    let production: f64 = variants.iter().map(|v| v.weight).filter(|w| w.is_finite() && *w > 0.0).sum();
    if !variants.is_empty() && production <= 0.0 {
        errors.push("variants", "At least one production variant needs a weight above 0.");
    }
    Ok(out)
}

/// A new endpoint's request, checked.
struct Planned {
    name: String,
    engine_name: String,
    variants: Vec<CheckedVariant>,
}

/// Checks a new endpoint of team (`slug`, `team_id`), field by field.
async fn plan_create(ctx: &Ctx, (slug, team_id): (&str, Uuid), input: &NewEndpoint) -> Result<Planned, AppError> {
    let mut errors = Errors::new();
    let name = errors.check("name", sagemaker_name(&input.name, "endpoint"));
    let engine_name = name.as_ref().map(|n| format!("{slug}-{n}"));
    if let Some(engine) = &engine_name
        && engine.len() > 63
    {
        errors.push(
            "name",
            format!("With the team's slug the name is {engine} ({} characters): SageMaker allows 63.", engine.len()),
        );
    }
    if let Some(p) = input.capture_percent
        && !(1..=100).contains(&p)
    {
        errors.push("capture_percent", "Capture 1 to 100 percent of the requests.");
    }
    let variants =
        check_variants(ctx, team_id, &input.variants, input.shadow.as_ref(), &HashSet::new(), &mut errors).await?;
    errors.finish()?;
    let (Some(name), Some(engine_name)) = (name, engine_name) else { return Err(AppError::Internal) };
    Ok(Planned { name, engine_name, variants })
}

fn name_taken(name: &str) -> AppError {
    AppError::Conflict {
        field: Some("name".into()),
        message: format!("The team already has an endpoint named `{name}` (or it is still being deleted)."),
    }
}

/// Checks a new endpoint as [`create`] would, writing nothing (a change
/// request's proposal); a name the team uses already is refused too.
pub(crate) async fn check_new(ctx: &Ctx, team: (&str, Uuid), input: &NewEndpoint) -> Result<(), AppError> {
    let planned = plan_create(ctx, team, input).await?;
    if endpoint_named(ctx.pool(), team.1, &planned.name).await? {
        return Err(name_taken(&planned.name));
    }
    Ok(())
}

async fn endpoint_named(pool: &sqlx::PgPool, team_id: Uuid, name: &str) -> Result<bool, AppError> {
    Ok(sqlx::query_scalar!(
        r#"select exists(select 1 from endpoint where team_id = $1 and name = $2) as "e!""#,
        team_id,
        name
    )
    .fetch_one(pool)
    .await?)
}

/// Creates an endpoint (members; through a change request where the team's
/// policy covers `endpoint.create`); the serving worker deploys it.
pub async fn create(ctx: &Ctx, team: &str, input: NewEndpoint, route: Route) -> Result<Endpoint, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::Contribute).await?;
    let actor = ctx.actor()?;
    let Planned { name, engine_name, variants } = plan_create(ctx, (&team.slug, team.id), &input).await?;
    let id = Uuid::now_v7();
    let mut tx = ctx.pool().begin().await?;
    gate(&mut tx, route, (&team.slug, team.id), kinds::ENDPOINT_CREATE, (None, None), false).await?;
    let inserted = sqlx::query!(
        "insert into endpoint (endpoint_id, team_id, name, engine_name, backend, capture_percent, created_by)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing",
        id,
        team.id,
        name,
        engine_name,
        ctx.state.training.kind(),
        input.capture_percent,
        actor.user_id
    )
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(name_taken(&name));
    }
    write_variants(ctx, &mut tx, (id, team.id, &name), &variants).await?;
    let summary = summary(&variants);
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "endpoint.created",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "after": { "name": name, "engine_name": engine_name, "variants": summary,
                                         "capture_percent": input.capture_percent }, "request": route.request() }),
        },
    )
    .await?;
    tx.commit().await?;
    ctx.state.serving_wake.notify_one();
    get(ctx, id).await
}

/// Writes `variants` as the endpoint's variants, in order: rows of other
/// names go, rows of the same name are updated in place (their processes'
/// rows stay), new names are added.
async fn write_variants(
    ctx: &Ctx,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    (id, team_id, name): (Uuid, Uuid, &str),
    variants: &[CheckedVariant],
) -> Result<(), AppError> {
    let names: Vec<String> = variants.iter().map(|v| v.name.clone()).collect();
    sqlx::query!("delete from endpoint_variant where endpoint_id = $1 and name <> all($2)", id, &names)
        .execute(&mut **tx)
        .await?;
    // production variants come first: a shadow that becomes a production
    // variant stops being the shadow before the new shadow is written
    for (position, v) in variants.iter().enumerate() {
        sqlx::query!(
            "insert into endpoint_variant (endpoint_id, name, position, version_id, instance_type, instance_count,
                                           weight, shadow_percent)
             values ($1, $2, $3, $4, $5, $6, $7, $8)
             on conflict (endpoint_id, name) do update set position = excluded.position,
                 version_id = excluded.version_id, instance_type = excluded.instance_type,
                 instance_count = excluded.instance_count, weight = excluded.weight,
                 shadow_percent = excluded.shadow_percent",
            id,
            v.name,
            i16::try_from(position).unwrap_or(i16::MAX),
            v.version_id,
            v.instance_type,
            v.instance_count,
            v.weight,
            v.shadow_percent
        )
        .execute(&mut **tx)
        .await?;
    }
    // from now on they cost what their instances cost
    let deployed: Vec<crate::endpoints::cost::Deployed> = variants
        .iter()
        .map(|v| crate::endpoints::cost::Deployed {
            name: &v.name,
            version_id: v.version_id,
            instance_type: &v.instance_type,
            instance_count: v.instance_count,
            shadow: v.shadow_percent.is_some(),
        })
        .collect();
    crate::endpoints::cost::deployed(tx, id, team_id, name, &ctx.state.settings.region, &deployed).await
}

/// The variants as the audit trail shows them.
fn summary(variants: &[CheckedVariant]) -> Vec<serde_json::Value> {
    variants
        .iter()
        .map(|v| {
            json!({"name": v.name, "version_id": v.version_id, "instance_type": v.instance_type,
                   "instance_count": v.instance_count, "weight": v.weight, "shadow_percent": v.shadow_percent})
        })
        .collect()
}

struct Head {
    endpoint_id: Uuid,
    team_id: Uuid,
    team: String,
    name: String,
    engine_name: String,
    backend: String,
    status: String,
    failure_reason: Option<String>,
    capture_percent: Option<i32>,
    deployment: Option<serde_json::Value>,
    created_by: String,
    created_at: time::OffsetDateTime,
    updated_at: time::OffsetDateTime,
}

/// The endpoint `id`, if the caller may `action` on it, with its team's id.
pub(crate) async fn load(ctx: &Ctx, id: Uuid, action: Action) -> Result<(Endpoint, Uuid), AppError> {
    let (team_id, _) = authorized(ctx, id, action).await?;
    let mut found = read(ctx.pool(), &[id]).await?;
    let endpoint = found.pop().ok_or_else(|| AppError::NotFound("Endpoint".into()))?;
    Ok((endpoint, team_id))
}

/// The team and engine name of endpoint `id`, if the caller may `action` on
/// it (one query: what invoking by id needs, without reading the endpoint).
pub(crate) async fn authorized(ctx: &Ctx, id: Uuid, action: Action) -> Result<(Uuid, String), AppError> {
    let actor = ctx.actor()?;
    let row = sqlx::query!(
        r#"select e.team_id, e.engine_name, tm.role as "role?: Role"
           from endpoint e left join team_member tm on tm.team_id = e.team_id and tm.user_id = $2
           where e.endpoint_id = $1"#,
        id,
        actor.user_id
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::NotFound("Endpoint".into()))?;
    authorize_owned(&actor.principal(), action, row.role, "Endpoint")?;
    Ok((row.team_id, row.engine_name))
}

/// The engine name of endpoint `id` (viewers), for invoking it by id; the
/// invocation itself checks the caller may invoke.
pub async fn engine_name(ctx: &Ctx, id: Uuid) -> Result<String, AppError> {
    Ok(authorized(ctx, id, Action::ReadTeam).await?.1)
}

/// Endpoints by id, with their variants and instances (no authorization).
async fn read(pool: &sqlx::PgPool, ids: &[Uuid]) -> Result<Vec<Endpoint>, AppError> {
    let heads = sqlx::query_as!(
        Head,
        r#"select e.endpoint_id, e.team_id, t.slug as team, e.name, e.engine_name, e.backend, e.status,
                  e.failure_reason, e.capture_percent, e.deployment, u.email as created_by, e.created_at,
                  e.updated_at
           from endpoint e join team t on t.team_id = e.team_id join app_user u on u.user_id = e.created_by
           where e.endpoint_id = any($1) order by e.name"#,
        ids
    )
    .fetch_all(pool)
    .await?;
    let variants = sqlx::query!(
        r#"select ev.endpoint_id, ev.name, ev.version_id, v.model_id, m.name as model, v.number, ev.instance_type,
                  ev.instance_count, ev.weight, ev.shadow_percent, f.error_percent as "fault_percent?"
           from endpoint_variant ev join model_version v on v.version_id = ev.version_id
           join model m on m.model_id = v.model_id
           left join endpoint_fault f on f.endpoint_id = ev.endpoint_id and f.variant = ev.name
           where ev.endpoint_id = any($1) order by ev.endpoint_id, ev.position"#,
        ids
    )
    .fetch_all(pool)
    .await?;
    let instances = sqlx::query!(
        "select endpoint_id, variant, ordinal, status, restarts, message from endpoint_instance
         where endpoint_id = any($1) order by endpoint_id, variant, ordinal",
        ids
    )
    .fetch_all(pool)
    .await?;
    let (costs, variant_costs) = crate::endpoints::cost::of_endpoints(pool, ids).await?;
    let teams: Vec<Uuid> = heads.iter().map(|h| h.team_id).collect();
    let policies = sqlx::query!(
        "select distinct team_id, kind from approval_policy where team_id = any($1) and kind = any($2) order by kind",
        &teams,
        &[
            kinds::ENDPOINT_UPDATE,
            kinds::ENDPOINT_DELETE,
            kinds::ENDPOINT_WEIGHTS,
            kinds::ENDPOINT_ROLLOUT,
            kinds::ENDPOINT_BANDIT
        ]
        .map(String::from)
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(heads.len());
    for h in heads {
        let mine: Vec<_> = variants.iter().filter(|v| v.endpoint_id == h.endpoint_id).collect();
        let production: Vec<f64> = mine.iter().filter(|v| v.shadow_percent.is_none()).map(|v| v.weight).collect();
        let shares = crate::endpoints::types::shares(&production);
        let mut shares = shares.into_iter();
        let mut list = Vec::new();
        let mut shadow = None;
        for v in mine {
            let variant = Variant {
                name: v.name.clone(),
                version_id: v.version_id,
                model_id: v.model_id,
                model: v.model.clone(),
                version: v.number,
                instance_type: v.instance_type.clone(),
                instance_count: v.instance_count,
                weight: v.weight,
                share: if v.shadow_percent.is_none() { shares.next().unwrap_or(0.0) } else { 0.0 },
                shadow_percent: v.shadow_percent,
                usd_per_hour: variant_costs.get(&(h.endpoint_id, v.name.clone())).and_then(|c| c.0),
                month_usd: variant_costs.get(&(h.endpoint_id, v.name.clone())).map_or(0.0, |c| c.1),
                instances: instances
                    .iter()
                    .filter(|i| i.endpoint_id == h.endpoint_id && i.variant == v.name)
                    .map(|i| Instance {
                        ordinal: i.ordinal % serving::RETIRING_ORDINAL as i32,
                        previous: i.ordinal >= serving::RETIRING_ORDINAL as i32,
                        status: i.status.clone(),
                        restarts: i.restarts,
                        message: i.message.clone(),
                    })
                    .collect(),
                fault_percent: v.fault_percent,
            };
            if v.shadow_percent.is_some() {
                shadow = Some(variant);
            } else {
                list.push(variant);
            }
        }
        out.push(Endpoint {
            id: h.endpoint_id,
            team: h.team,
            name: h.name,
            engine_name: h.engine_name,
            backend: h.backend,
            status: h.status,
            failure_reason: h.failure_reason,
            variants: list,
            shadow,
            capture_percent: h.capture_percent,
            deployment: h.deployment.and_then(|d| serde_json::from_value(d).ok()),
            needs_request: policies.iter().filter(|p| p.team_id == h.team_id).map(|p| p.kind.clone()).collect(),
            cost: costs.get(&h.endpoint_id).cloned().unwrap_or_default(),
            created_by: h.created_by,
            created_at: h.created_at,
            updated_at: h.updated_at,
        });
    }
    Ok(out)
}

pub async fn get(ctx: &Ctx, id: Uuid) -> Result<Endpoint, AppError> {
    Ok(load(ctx, id, Action::ReadTeam).await?.0)
}

/// The team's endpoints (viewers), by name.
pub async fn list(ctx: &Ctx, team: &str) -> Result<Vec<Endpoint>, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::ReadTeam).await?;
    let ids = sqlx::query_scalar!("select endpoint_id from endpoint where team_id = $1", team.id)
        .fetch_all(ctx.pool())
        .await?;
    read(ctx.pool(), &ids).await
}

/// The production variants' weights after `input`, in the endpoint's
/// order; each bad entry named (`weights[1].variant`).
fn plan_weights(before: &Endpoint, input: &Weights) -> Result<Vec<(String, f64)>, AppError> {
    let mut errors = Errors::new();
    let mut new: Vec<(String, f64)> = before.variants.iter().map(|v| (v.name.clone(), v.weight)).collect();
    let mut seen = HashSet::new();
    for (i, w) in input.weights.iter().enumerate() {
        let field = format!("weights[{i}]");
        if !seen.insert(w.variant.as_str()) {
            errors.push(&format!("{field}.variant"), format!("`{}` is named twice.", w.variant));
        }
        match new.iter_mut().find(|(n, _)| *n == w.variant) {
            Some(slot) => {
                if let Some(v) = errors.check(&format!("{field}.weight"), weight(w.weight)) {
                    slot.1 = v;
                }
            }
            None => errors.push(
                &format!("{field}.variant"),
                format!(
                    "The endpoint has no production variant `{}`: it has {}.",
                    w.variant,
                    before.variants.iter().map(|v| format!("`{}`", v.name)).collect::<Vec<_>>().join(", ")
                ),
            ),
        }
    }
    if input.weights.is_empty() {
        errors.push("weights", "Name at least one variant.");
    }
    if errors.is_empty() && new.iter().all(|(_, w)| *w <= 0.0) {
        errors.push("weights", "At least one production variant needs a weight above 0.");
    }
    errors.finish()?;
    Ok(new)
}

fn being_deleted(e: &Endpoint) -> Result<(), AppError> {
    if e.status == "Deleting" {
        return Err(AppError::Conflict { field: None, message: "The endpoint is being deleted.".into() });
    }
    Ok(())
}

/// Changes the weights of production variants (members; through a change
/// request where the team's policy covers `endpoint.weights`): the gateway
/// routes by the new weights as soon as this commits, on every process.
pub async fn set_weights(ctx: &Ctx, id: Uuid, input: Weights, route: Route) -> Result<Endpoint, AppError> {
    let (before, team_id) = load(ctx, id, Action::Contribute).await?;
    being_deleted(&before)?;
    let new = plan_weights(&before, &input)?;
    let mut tx = ctx.pool().begin().await?;
    gate(&mut tx, route, (&before.team, team_id), kinds::ENDPOINT_WEIGHTS, (None, None), false).await?;
    if !route.by_bandit() {
        refuse_while_on(&mut tx, id).await?;
    }
    for (name, w) in &new {
        sqlx::query!(
            "update endpoint_variant set weight = $3 where endpoint_id = $1 and name = $2 and shadow_percent is null",
            id,
            name,
            w
        )
        .execute(&mut *tx)
        .await?;
    }
    // a bandit's changes keep the experiment's window: its analysis spans the bandit's run
    sqlx::query!(
        "update endpoint set generation = generation + 1, updated_at = now(),
             split_changed_at = case when $2 then split_changed_at else now() end
         where endpoint_id = $1",
        id,
        route.by_bandit()
    )
    .execute(&mut *tx)
    .await?;
    let before_map: serde_json::Map<String, serde_json::Value> =
        before.variants.iter().map(|v| (v.name.clone(), json!(v.weight))).collect();
    let after_map: serde_json::Map<String, serde_json::Value> =
        new.iter().map(|(n, w)| (n.clone(), json!(w))).collect();
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.weights_changed",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "before": { "weights": before_map }, "after": { "weights": after_map },
                             "request": route.request(), "rollout": route.rollout(), "bandit": route.by_bandit() }),
        },
    )
    .await?;
    tx.commit().await?;
    route_changed(ctx, &before.engine_name);
    ctx.state.serving_wake.notify_one();
    get(ctx, id).await
}

/// What an update makes of the endpoint: its variants (production, then
/// the shadow), checked, and its data capture; `None` when nothing changes.
async fn plan_update(
    ctx: &Ctx,
    before: &Endpoint,
    team_id: Uuid,
    input: &EndpointUpdate,
) -> Result<Option<(Vec<CheckedVariant>, Option<i32>)>, AppError> {
    let as_new = |v: &Variant| NewVariant {
        name: v.name.clone(),
        version_id: v.version_id,
        instance_type: v.instance_type.clone(),
        instance_count: v.instance_count,
        weight: v.weight,
    };
    let old_variants: Vec<NewVariant> = before.variants.iter().map(as_new).collect();
    let old_shadow = before.shadow.as_ref().map(|s| NewShadow {
        name: s.name.clone(),
        version_id: s.version_id,
        instance_type: s.instance_type.clone(),
        instance_count: s.instance_count,
        percent: s.shadow_percent.unwrap_or(1),
    });
    let variants = input.variants.clone().unwrap_or_else(|| old_variants.clone());
    let shadow = input.shadow.clone().unwrap_or_else(|| old_shadow.clone());
    let capture_percent = input.capture_percent.unwrap_or(before.capture_percent);
    if variants == old_variants && shadow == old_shadow && capture_percent == before.capture_percent {
        return Ok(None);
    }
    let mut errors = Errors::new();
    if let Some(p) = capture_percent
        && !(1..=100).contains(&p)
    {
        errors.push("capture_percent", "Capture 1 to 100 percent of the requests.");
    }
    if let Some(d) = &input.deployment {
        check_deployment(d, &mut errors);
        let fleet = |vs: &[NewVariant], s: &Option<NewShadow>, c: Option<i32>| {
            let mut names: Vec<(String, Uuid, String)> =
                vs.iter().map(|v| (v.name.clone(), v.version_id, v.instance_type.clone())).collect();
            names.sort();
            (names, s.as_ref().map(|s| (s.name.clone(), s.version_id, s.instance_type.clone(), s.percent)), c)
        };
        let names = |vs: &[NewVariant]| {
            let mut names: Vec<String> = vs.iter().map(|v| v.name.clone()).collect();
            names.sort_unstable();
            names
        };
        if before.backend == "local" {
            errors.push(
                "deployment",
                "SageMaker's blue/green deployment is for AWS mode; in local mode a variant's new processes take \
                 its traffic once they are healthy. To move traffic between variants gradually, start a rollout.",
            );
        } else if names(&variants) != names(&old_variants) {
            let list = |vs: &[NewVariant]| vs.iter().map(|v| format!("`{}`", v.name)).collect::<Vec<_>>().join(", ");
            errors.push(
                "deployment",
                format!(
                    "A blue/green deployment replaces each variant's fleet under the same name ({}), never moves \
                     traffic between variants: keep the names, or leave the deployment out (to move traffic \
                     to a new variant gradually, start a rollout).",
                    list(&old_variants)
                ),
            );
        } else if fleet(&variants, &shadow, capture_percent)
            == fleet(&old_variants, &old_shadow, before.capture_percent)
        {
            errors.push(
                "deployment",
                "Only weights or instance counts change, which SageMaker changes in place: there is no new fleet \
                 to deploy blue/green.",
            );
        }
    }
    let deployed: HashSet<Uuid> = before.variants.iter().chain(before.shadow.as_ref()).map(|v| v.version_id).collect();
    let checked = check_variants(ctx, team_id, &variants, shadow.as_ref(), &deployed, &mut errors).await?;
    errors.finish()?;
    Ok(Some((checked, capture_percent)))
}

/// The fields of a blue/green deployment, within SageMaker's limits.
fn check_deployment(d: &FleetDeployment, errors: &mut Errors) {
    match (d.traffic.as_str(), d.step_percent) {
        ("all_at_once", None) => {}
        ("all_at_once", Some(_)) => {
            errors.push("deployment.step_percent", "All at once has no steps: leave the step out.");
        }
        ("canary", Some(1..=50)) | ("linear", Some(10..=50)) => {}
        ("canary", _) => errors.push("deployment.step_percent", "Give the canary's size: 1 to 50 % of the fleet."),
        ("linear", _) => errors.push("deployment.step_percent", "Give each linear step: 10 to 50 % of the fleet."),
        _ => errors.push("deployment.traffic", "Shift traffic `all_at_once`, by a `canary`, or `linear`."),
    }
    if !(0..=3600).contains(&d.wait_seconds) {
        errors.push("deployment.wait_seconds", "Wait 0 to 3 600 seconds after each shift.");
    }
    if !(0..=3600).contains(&d.termination_wait_seconds) {
        errors.push("deployment.termination_wait_seconds", "Keep the old fleet 0 to 3 600 seconds.");
    }
    check_alarm_names("deployment.alarm_names", &d.alarm_names, errors);
}

/// CloudWatch alarm names as a request gives them: up to 10, each 1 to 255
/// characters without control characters.
pub(crate) fn check_alarm_names(field: &str, names: &[String], errors: &mut Errors) {
    if names.len() > 10 || names.iter().any(|n| n.trim().is_empty() || n.len() > 255 || n.chars().any(char::is_control))
    {
        errors.push(field, "Name up to 10 CloudWatch alarms, each 1 to 255 characters.");
    }
}

/// Changes an endpoint's variants, shadow or data capture (members; through
/// a change request where the team's policy covers `endpoint.update`): adds
/// and removes variants, changes a variant's version, instance type or
/// count. The serving worker deploys the new generation; the gateway routes
/// by the new variants as soon as this commits. Asking for what is already
/// there changes nothing.
pub async fn update(ctx: &Ctx, id: Uuid, input: EndpointUpdate, route: Route) -> Result<Endpoint, AppError> {
    let (before, team_id) = load(ctx, id, Action::Contribute).await?;
    being_deleted(&before)?;
    let Some((checked, capture_percent)) = plan_update(ctx, &before, team_id, &input).await? else {
        return Ok(before);
    };
    let mut tx = ctx.pool().begin().await?;
    gate(&mut tx, route, (&before.team, team_id), kinds::ENDPOINT_UPDATE, (None, None), false).await?;
    write_variants(ctx, &mut tx, (id, team_id, &before.name), &checked).await?;
    // the split: which versions serve production traffic, and by what weights
    let split = |variants: &mut dyn Iterator<Item = (&str, Uuid, f64)>| -> Vec<(String, Uuid, u64)> {
        variants.map(|(n, v, w)| (n.to_owned(), v, w.to_bits())).collect()
    };
    let split_changed = split(&mut before.variants.iter().map(|v| (v.name.as_str(), v.version_id, v.weight)))
        != split(
            &mut checked
                .iter()
                .filter(|v| v.shadow_percent.is_none())
                .map(|v| (v.name.as_str(), v.version_id, v.weight)),
        );
    sqlx::query!(
        "update endpoint set generation = generation + 1, capture_percent = $2, updated_at = now(),
                status = case when status = 'Creating' then status else 'Updating' end, failure_reason = null,
                split_changed_at = case when $3 then now() else split_changed_at end, deployment = $4
         where endpoint_id = $1",
        id,
        capture_percent,
        split_changed,
        input.deployment.as_ref().map(|d| json!(d))
    )
    .execute(&mut *tx)
    .await?;
    let old: Vec<CheckedVariant> = before
        .variants
        .iter()
        .chain(before.shadow.as_ref())
        .map(|v| CheckedVariant {
            name: v.name.clone(),
            version_id: v.version_id,
            instance_type: v.instance_type.clone(),
            instance_count: v.instance_count,
            weight: v.weight,
            shadow_percent: v.shadow_percent,
        })
        .collect();
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.updated",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "before": { "variants": summary(&old), "capture_percent": before.capture_percent },
                             "after": { "variants": summary(&checked), "capture_percent": capture_percent },
                             "deployment": input.deployment, "request": route.request() }),
        },
    )
    .await?;
    tx.commit().await?;
    route_changed(ctx, &before.engine_name);
    ctx.state.serving_wake.notify_one();
    get(ctx, id).await
}

/// Drops this process's cached route of `engine_name` at once (the others
/// hear of it from the database's notification).
pub(crate) fn route_changed(ctx: &Ctx, engine_name: &str) {
    ctx.state.cache.invalidate(&format!("endpoint-route:{engine_name}"));
}

/// Deletes an endpoint (admins; through a change request where the team's
/// policy covers `endpoint.delete`): it stops taking traffic at once and the
/// serving worker removes its processes (or SageMaker resources), then its rows.
pub async fn delete(ctx: &Ctx, id: Uuid, route: Route) -> Result<(), AppError> {
    let (before, team_id) = load(ctx, id, Action::Archive).await?;
    let mut tx = ctx.pool().begin().await?;
    gate(&mut tx, route, (&before.team, team_id), kinds::ENDPOINT_DELETE, (None, None), false).await?;
    sqlx::query!(
        "update endpoint set desired = 'deleted', status = 'Deleting', updated_at = now() where endpoint_id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    crate::endpoints::cost::stopped(&mut tx, id).await?;
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team_id),
            action: "endpoint.deleted",
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "before": { "name": before.name, "engine_name": before.engine_name,
                                          "variants": before.variants.iter().map(|v| &v.name).collect::<Vec<_>>() },
                             "request": route.request() }),
        },
    )
    .await?;
    tx.commit().await?;
    route_changed(ctx, &before.engine_name);
    ctx.state.serving_wake.notify_one();
    Ok(())
}

/// Endpoint `id` of team `team_id` as a change request sees it (no caller's
/// role: the request's team was authorized), or not found.
async fn of_team(pool: &sqlx::PgPool, team_id: Uuid, id: Uuid) -> Result<Endpoint, AppError> {
    let ours = sqlx::query_scalar!(
        r#"select exists(select 1 from endpoint where endpoint_id = $1 and team_id = $2) as "e!""#,
        id,
        team_id
    )
    .fetch_one(pool)
    .await?;
    let found = if ours { read(pool, &[id]).await?.pop() } else { None };
    found.ok_or_else(|| AppError::NotFound("Endpoint".into()))
}

/// What a change request for endpoint `id` compares to decide whether the
/// endpoint changed since it was proposed: its variants with their weights,
/// data capture, and whether it is being deleted. `None` when the team has
/// no such endpoint.
pub(crate) async fn change_base(
    pool: &sqlx::PgPool,
    team_id: Uuid,
    id: Uuid,
) -> Result<Option<serde_json::Value>, AppError> {
    let e = match of_team(pool, team_id, id).await {
        Ok(e) => e,
        Err(AppError::NotFound(_)) => return Ok(None),
        Err(err) => return Err(err),
    };
    let variants: Vec<serde_json::Value> = e
        .variants
        .iter()
        .chain(e.shadow.as_ref())
        .map(|v| {
            json!({ "name": v.name, "version_id": v.version_id, "instance_type": v.instance_type,
                    "instance_count": v.instance_count, "weight": v.weight, "shadow_percent": v.shadow_percent })
        })
        .collect();
    Ok(Some(json!({ "name": e.name, "variants": variants, "capture_percent": e.capture_percent,
                    "deleting": e.status == "Deleting" })))
}

/// What a change request for a new endpoint named `name` compares: whether
/// the team has one of that name.
pub(crate) async fn name_base(pool: &sqlx::PgPool, team_id: Uuid, name: &str) -> Result<serde_json::Value, AppError> {
    Ok(json!({ "exists": endpoint_named(pool, team_id, name.trim()).await? }))
}

/// Checks a change of endpoint `id` of team `team_id` as [`update`] or
/// [`set_weights`] would, writing nothing (a change request's proposal); a
/// change that changes nothing is refused. With neither, only that the
/// endpoint is there and not being deleted (a request to delete it).
pub(crate) async fn check_change(
    ctx: &Ctx,
    team_id: Uuid,
    id: Uuid,
    update: Option<&EndpointUpdate>,
    weights: Option<&Weights>,
) -> Result<(), AppError> {
    let before = of_team(ctx.pool(), team_id, id).await?;
    being_deleted(&before)?;
    if let Some(input) = update
        && plan_update(ctx, &before, team_id, input).await?.is_none()
    {
        return Err(AppError::field("change.update", "The endpoint is like this already: nothing would change."));
    }
    if let Some(input) = weights {
        let new = plan_weights(&before, input)?;
        if new.iter().zip(&before.variants).all(|((_, w), v)| *w == v.weight) {
            return Err(AppError::field("change.weights", "The weights are these already: nothing would change."));
        }
    }
    Ok(())
}

/// What the new-endpoint form offers the caller in `team` (members).
pub async fn options(ctx: &Ctx, team: &str) -> Result<crate::endpoints::types::DeployChoices, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::Contribute).await?;
    let versions = sqlx::query!(
        r#"select v.version_id, m.name as model, v.number, v.status::text as "status!",
                  coalesce((select string_agg(a.alias, ', ' order by a.alias) from model_alias a
                            where a.version_id = v.version_id), '') as "aliases!"
           from model_version v join model m on m.model_id = v.model_id
           where m.team_id = $1 and m.archived_at is null and v.status in ('PendingManualApproval', 'Approved')
           order by m.name, v.number desc limit 300"#,
        team.id
    )
    .fetch_all(ctx.pool())
    .await?
    .into_iter()
    .map(|r| crate::endpoints::types::VersionChoice {
        id: r.version_id,
        label: [format!("{} v{}", r.model, r.number), r.aliases, r.status]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" · "),
    })
    .collect();
    let instance_types = sqlx::query_scalar!(
        "select instance_type from instance_price where region = $1 order by usd_per_hour, instance_type",
        ctx.state.settings.region
    )
    .fetch_all(ctx.pool())
    .await?;
    let needs_request = crate::kernel::changes::requires_request(
        &mut *ctx.pool().acquire().await?,
        team.id,
        kinds::ENDPOINT_CREATE,
        None,
        None,
    )
    .await?;
    Ok(crate::endpoints::types::DeployChoices { versions, instance_types, needs_request })
}

/// Builds a request from the form's rows: rows without a version are left
/// out; a number that does not parse is a field error.
/// The blue/green deployment the variants editor asks for, if any.
pub fn fleet_from_form(row: &crate::endpoints::types::FleetRow) -> Result<Option<FleetDeployment>, AppError> {
    if row.traffic.trim().is_empty() {
        return Ok(None);
    }
    let mut errors = Errors::new();
    let whole = |field: &str, text: &str, errors: &mut Errors| -> Option<i32> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        errors.check(field, text.parse::<i32>().map_err(|_| "Give a whole number.".into()))
    };
    // named as the API's fields, whose messages the form shows
    let step_percent = whole("deployment.step_percent", &row.step_percent, &mut errors);
    let wait_seconds = whole("deployment.wait_seconds", &row.wait_seconds, &mut errors).unwrap_or(300);
    errors.finish()?;
    Ok(Some(FleetDeployment {
        traffic: row.traffic.trim().to_owned(),
        step_percent,
        wait_seconds,
        termination_wait_seconds: 0,
        alarm_names: row.alarm_names.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect(),
    }))
}

pub fn from_form(
    name: String,
    rows: Vec<crate::endpoints::types::VariantRow>,
    shadow: Option<crate::endpoints::types::VariantRow>,
) -> Result<NewEndpoint, AppError> {
    let mut errors = Errors::new();
    let mut variants = Vec::new();
    for (i, row) in rows.into_iter().enumerate().filter(|(_, r)| !r.version_id.trim().is_empty()) {
        let field = |f: &str| format!("variants[{i}].{f}");
        let version_id = errors
            .check(&field("version_id"), row.version_id.trim().parse::<Uuid>().map_err(|_| "Pick a version.".into()));
        let count = errors.check(
            &field("instance_count"),
            row.instance_count.trim().parse::<i32>().map_err(|_| "Give a whole number.".into()),
        );
        let w =
            errors.check(&field("weight"), row.weight.trim().parse::<f64>().map_err(|_| "Give a number ≥ 0.".into()));
        if let (Some(version_id), Some(instance_count), Some(weight)) = (version_id, count, w) {
            variants.push(NewVariant {
                name: row.name.trim().to_owned(),
                version_id,
                instance_type: row.instance_type,
                instance_count,
                weight,
            });
        }
    }
    let shadow = match shadow.filter(|r| !r.version_id.trim().is_empty()) {
        None => None,
        Some(row) => {
            let version_id = errors.check(
                "shadow.version_id",
                row.version_id.trim().parse::<Uuid>().map_err(|_| "Pick a version.".into()),
            );
            let count = errors.check(
                "shadow.instance_count",
                row.instance_count.trim().parse::<i32>().map_err(|_| "Give a whole number.".into()),
            );
            let percent = errors.check(
                "shadow.percent",
                row.weight.trim().parse::<i32>().map_err(|_| "Give a whole percentage, 1 to 100.".into()),
            );
            match (version_id, count, percent) {
                (Some(version_id), Some(instance_count), Some(percent)) => Some(NewShadow {
                    name: row.name.trim().to_owned(),
                    version_id,
                    instance_type: row.instance_type,
                    instance_count,
                    percent,
                }),
                _ => None,
            }
        }
    };
    errors.finish()?;
    Ok(NewEndpoint { name, variants, shadow, capture_percent: None })
}

/// The weights editor's fields (`variant[i]`, `weight[i]`, as typed) as
/// weights; every unreadable weight is named (`weights[i].weight`).
pub fn weights_from_form(variant: Vec<String>, weight: Vec<String>) -> Result<Weights, AppError> {
    let mut errors = Errors::new();
    let mut weights = Vec::new();
    if variant.len() != weight.len() {
        errors.push("weights", "Give one weight per variant.");
    }
    for (i, (variant, w)) in variant.into_iter().zip(weight).enumerate() {
        let parsed = errors
            .check(&format!("weights[{i}].weight"), w.trim().parse::<f64>().map_err(|_| "Give a number ≥ 0.".into()));
        if let Some(weight) = parsed {
            weights.push(crate::endpoints::types::VariantWeight { variant, weight });
        }
    }
    errors.finish()?;
    Ok(Weights { weights })
}

/// 409 while the endpoint's weights are a bandit's to set.
pub(crate) async fn refuse_while_on(conn: &mut sqlx::PgConnection, endpoint_id: Uuid) -> Result<(), AppError> {
    let on = sqlx::query_scalar!("select 1 as one from endpoint_bandit where endpoint_id = $1", endpoint_id)
        .fetch_optional(&mut *conn)
        .await?;
    if on.is_some() {
        return Err(AppError::Conflict {
            field: None,
            message: "A bandit sets this endpoint's weights: stop it first (DELETE /api/v1/endpoints/{id}/bandit)."
                .replace("{id}", &endpoint_id.to_string()),
        });
    }
    Ok(())
}

/// Capstan acting for the member who started an automatic process (a
/// rollout, a bandit), with its authority (maybe approved): what the
/// process's changes are audited as (`capstan (<what>)`).
pub(crate) fn system_ctx(state: &crate::kernel::state::AppState, creator: Uuid, what: &str) -> Ctx {
    let actor = crate::kernel::context::Actor {
        user_id: creator,
        email: format!("capstan ({what})"),
        display_name: "Capstan".into(),
        is_site_admin: true,
        token_id: None,
    };
    Ctx { state: state.clone(), actor: Some(actor), request_id: None, client_addr: format!("{what}s") }
}

#[cfg(test)]
mod form_tests {
    use super::*;
    use crate::endpoints::types::VariantRow;

    fn row(name: &str, version: &str, count: &str, weight: &str) -> VariantRow {
        VariantRow {
            name: name.into(),
            version_id: version.into(),
            instance_type: "ml.m5.large".into(),
            instance_count: count.into(),
            weight: weight.into(),
        }
    }

    fn fields(e: AppError) -> Vec<String> {
        match e {
            AppError::Validation(f) => f.into_iter().map(|f| f.field).collect(),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn the_new_endpoint_form_keeps_rows_with_a_version_and_names_each_bad_field() {
        let v = Uuid::now_v7();
        let rows =
            vec![row(" a ", &v.to_string(), "2", "0.5"), row("b", "", "1", "1"), row("c", &v.to_string(), "1", "3")];
        let shadow = row("s", &v.to_string(), "1", "20");
        let e = from_form("web".into(), rows, Some(shadow)).expect("parses");
        let names: Vec<(&str, i32, f64)> =
            e.variants.iter().map(|v| (v.name.as_str(), v.instance_count, v.weight)).collect();
        assert_eq!(names, [("a", 2, 0.5), ("c", 1, 3.0)], "the row without a version is left out");
        assert_eq!(e.shadow.map(|s| (s.name, s.percent)), Some(("s".to_owned(), 20)));

        let rows = vec![row("a", "not-a-uuid", "1", "1"), row("b", &v.to_string(), "two", "x")];
        let shadow = row("s", &v.to_string(), "1", "ten");
        let err = from_form("web".into(), rows, Some(shadow)).expect_err("refused");
        assert_eq!(
            fields(err),
            ["variants[0].version_id", "variants[1].instance_count", "variants[1].weight", "shadow.percent"]
        );
        // a shadow row without a version is no shadow
        let none = from_form("web".into(), vec![row("a", &v.to_string(), "1", "1")], Some(row("s", " ", "1", "")));
        assert!(none.expect("parses").shadow.is_none());
    }

    #[test]
    fn the_weights_form_names_each_unreadable_weight() {
        let w = weights_from_form(vec!["a".into(), "b".into()], vec![" 1.5".into(), "0".into()]).expect("parses");
        assert_eq!(
            w.weights.iter().map(|w| (w.variant.as_str(), w.weight)).collect::<Vec<_>>(),
            [("a", 1.5), ("b", 0.0)]
        );
        let err = weights_from_form(vec!["a".into(), "b".into()], vec!["".into(), "lots".into()]).expect_err("refused");
        assert_eq!(fields(err), ["weights[0].weight", "weights[1].weight"]);
        let err = weights_from_form(vec!["a".into(), "b".into()], vec!["1".into()]).expect_err("refused");
        assert_eq!(fields(err), ["weights"]);
    }
}
