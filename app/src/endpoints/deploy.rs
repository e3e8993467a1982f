//! The serving worker's side of endpoints: what must be deployed or
//! removed, the specs the backend deploys, and what the backend reports
//! back (deployed generations, processes, status), audited as Capstan's own acts.

use crate::kernel::audit::NewEvent;
use crate::kernel::error::AppError;
use serde_json::json;
use std::collections::HashMap;
use uuid::Uuid;

/// An endpoint whose backend must be brought to its rows.
#[derive(Debug, Clone)]
pub struct Pending {
    pub endpoint_id: Uuid,
    pub engine_name: String,
    pub team_id: Uuid,
    pub generation: i32,
    pub deleted: bool,
    pub spec: serving::EndpointSpec,
}

/// Endpoints whose deployed generation is behind, or that should be deleted.
pub async fn pending(pool: &sqlx::PgPool) -> Result<Vec<Pending>, AppError> {
    let heads = sqlx::query!(
        "select endpoint_id, engine_name, team_id, generation, desired from endpoint
         where desired = 'deleted' or deployed_generation < generation order by created_at limit 50"
    )
    .fetch_all(pool)
    .await?;
    let mut specs = specs(pool, heads.iter().map(|h| (h.endpoint_id, h.engine_name.as_str(), h.team_id))).await?;
    Ok(heads
        .into_iter()
        .filter_map(|h| {
            Some(Pending {
                spec: specs.remove(&h.endpoint_id)?,
                endpoint_id: h.endpoint_id,
                engine_name: h.engine_name,
                team_id: h.team_id,
                generation: h.generation,
                deleted: h.desired == "deleted",
            })
        })
        .collect())
}

/// An endpoint that should be running: its status and what to deploy.
#[derive(Debug, Clone)]
pub struct Running {
    pub endpoint_id: Uuid,
    pub status: String,
    pub spec: serving::EndpointSpec,
}

/// Every endpoint that should be running (for a restart, another process
/// taking over local serving, and each round of the serving worker).
pub async fn running(pool: &sqlx::PgPool) -> Result<Vec<Running>, AppError> {
    let heads =
        sqlx::query!("select endpoint_id, engine_name, team_id, status from endpoint where desired = 'running'")
            .fetch_all(pool)
            .await?;
    let mut specs = specs(pool, heads.iter().map(|h| (h.endpoint_id, h.engine_name.as_str(), h.team_id))).await?;
    Ok(heads
        .into_iter()
        .filter_map(|h| {
            Some(Running { spec: specs.remove(&h.endpoint_id)?, endpoint_id: h.endpoint_id, status: h.status })
        })
        .collect())
}

/// The specs of endpoints `(id, engine name, team)`, their variants read in one query.
async fn specs<'a>(
    pool: &sqlx::PgPool,
    heads: impl Iterator<Item = (Uuid, &'a str, Uuid)>,
) -> Result<HashMap<Uuid, serving::EndpointSpec>, AppError> {
    let mut specs: HashMap<Uuid, serving::EndpointSpec> = heads
        .map(|(id, engine_name, team_id)| {
            (
                id,
                serving::EndpointSpec {
                    name: engine_name.to_owned(),
                    team: team_id.to_string(),
                    team_slug: String::new(),
                    role: None,
                    capture_percent: None,
                    variants: Vec::new(),
                    blue_green: None,
                },
            )
        })
        .collect();
    let ids: Vec<Uuid> = specs.keys().copied().collect();
    let variants = sqlx::query!(
        r#"select ev.endpoint_id, ev.name, v.artifact_uri, v.image,
                  j.spec->'script'->>'source_uri' as "code_uri?",
                  ev.instance_type, ev.instance_count, ev.weight, ev.shadow_percent
           from endpoint_variant ev join model_version v on v.version_id = ev.version_id
           left join training_job j on j.job_id = v.training_job_id
           where ev.endpoint_id = any($1) order by ev.endpoint_id, ev.position"#,
        &ids
    )
    .fetch_all(pool)
    .await?;
    let owners = sqlx::query!(
        "select e.endpoint_id, t.slug, t.sagemaker_role_arn, e.capture_percent, e.deployment
         from endpoint e join team t on t.team_id = e.team_id where e.endpoint_id = any($1)",
        &ids
    )
    .fetch_all(pool)
    .await?;
    for o in owners {
        if let Some(spec) = specs.get_mut(&o.endpoint_id) {
            spec.team_slug = o.slug;
            spec.role = o.sagemaker_role_arn;
            spec.capture_percent = o.capture_percent.and_then(|p| u32::try_from(p).ok());
            spec.blue_green = o.deployment.and_then(|d| serde_json::from_value(d).ok()).map(|d| blue_green(&d));
        }
    }
    for v in variants {
        if let Some(spec) = specs.get_mut(&v.endpoint_id) {
            spec.variants.push(serving::VariantSpec {
                name: v.name,
                model_uri: v.artifact_uri,
                code_uri: v.code_uri,
                image: v.image,
                instance_type: v.instance_type,
                instance_count: u32::try_from(v.instance_count).unwrap_or(1),
                weight: v.weight,
                shadow_percent: v.shadow_percent.and_then(|p| u32::try_from(p).ok()),
            });
        }
    }
    Ok(specs)
}

/// The backend's blue/green deployment for the one an update asked for.
fn blue_green(d: &crate::endpoints::types::FleetDeployment) -> serving::BlueGreen {
    let step = u32::try_from(d.step_percent.unwrap_or(0)).unwrap_or(0);
    serving::BlueGreen {
        traffic: match d.traffic.as_str() {
            "canary" => serving::FleetTraffic::Canary(step),
            "linear" => serving::FleetTraffic::Linear(step),
            _ => serving::FleetTraffic::AllAtOnce,
        },
        wait_seconds: u32::try_from(d.wait_seconds).unwrap_or(0),
        termination_wait_seconds: u32::try_from(d.termination_wait_seconds).unwrap_or(0),
        alarms: d.alarm_names.clone(),
    }
}

/// Records that the backend took `generation` (its processes may still be starting).
pub async fn mark_deployed(pool: &sqlx::PgPool, id: Uuid, generation: i32) -> Result<(), AppError> {
    sqlx::query!(
        "update endpoint set deployed_generation = greatest(deployed_generation, $2) where endpoint_id = $1",
        id,
        generation
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Moves a running endpoint to `status` (`InService`, `Failed`, …) with
/// `reason`, audited as Capstan's own act; nothing when it is there already.
pub async fn set_status(pool: &sqlx::PgPool, id: Uuid, status: &str, reason: Option<&str>) -> Result<(), AppError> {
    let mut tx = pool.begin().await?;
    let before = sqlx::query!(
        "select e.status, e.team_id, e.name from endpoint e where e.endpoint_id = $1 and e.desired = 'running' for update",
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(before) = before else { return Ok(()) };
    if before.status == status {
        return Ok(());
    }
    sqlx::query!(
        "update endpoint set status = $2, failure_reason = $3, updated_at = now() where endpoint_id = $1",
        id,
        status,
        reason
    )
    .execute(&mut *tx)
    .await?;
    // the way there (SageMaker's Creating, Updating, RollingBack) is shown, not audited
    let action = match status {
        "InService" => "endpoint.in_service",
        "Failed" => "endpoint.failed",
        _ => {
            tx.commit().await?;
            return Ok(());
        }
    };
    let (actor, meta) = crate::kernel::audit::system();
    crate::kernel::audit::record(
        &mut tx,
        &actor,
        &meta,
        NewEvent {
            team_id: Some(before.team_id),
            action,
            target_type: "endpoint",
            target_id: Some(id.to_string()),
            summary: json!({ "name": before.name, "before": { "status": before.status },
                             "after": { "status": status, "failure_reason": reason } }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The status an endpoint's processes add up to: in service when every
/// variant has a healthy process; failed when a variant's processes all
/// crashed three times or more without ever taking traffic.
pub fn settled(
    spec: &serving::EndpointSpec,
    instances: &[serving::Instance],
) -> Option<(&'static str, Option<String>)> {
    let mut all_healthy = true;
    for v in &spec.variants {
        let mine: Vec<_> =
            instances.iter().filter(|i| i.variant == v.name && i.ordinal < serving::RETIRING_ORDINAL).collect();
        if mine.iter().any(|i| i.status == serving::InstanceStatus::Healthy) {
            continue;
        }
        all_healthy = false;
        if !mine.is_empty() && mine.iter().all(|i| i.status == serving::InstanceStatus::Crashed && i.restarts >= 3) {
            let why = mine.iter().find_map(|i| i.message.clone()).unwrap_or_default();
            return Some(("Failed", Some(format!("variant {}: {why}", v.name))));
        }
    }
    all_healthy.then_some(("InService", None))
}

/// Removes a deleted endpoint's rows once its backend let go of it.
pub async fn removed(pool: &sqlx::PgPool, id: Uuid) -> Result<(), AppError> {
    sqlx::query!("delete from endpoint where endpoint_id = $1 and desired = 'deleted'", id).execute(pool).await?;
    Ok(())
}

/// Writes what the local runner sees of an endpoint's processes (only rows
/// that changed, so the gateway's caches are dropped only when they must be).
pub async fn save_instances(pool: &sqlx::PgPool, id: Uuid, instances: &[serving::Instance]) -> Result<(), AppError> {
    let mut tx = pool.begin().await?;
    for i in instances {
        sqlx::query!(
            "insert into endpoint_instance (endpoint_id, variant, ordinal, address, status, restarts, message)
             select $1, $2, $3, $4, $5, $6, $7
             where exists (select 1 from endpoint_variant where endpoint_id = $1 and name = $2)
             on conflict (endpoint_id, variant, ordinal) do update
                set address = excluded.address, status = excluded.status, restarts = excluded.restarts,
                    message = excluded.message, updated_at = now()
                where (endpoint_instance.address, endpoint_instance.status, endpoint_instance.restarts,
                       endpoint_instance.message)
                      is distinct from (excluded.address, excluded.status, excluded.restarts, excluded.message)",
            id,
            i.variant,
            i32::try_from(i.ordinal).unwrap_or(0),
            i.address.map(|a| a.to_string()),
            i.status.as_str(),
            i32::try_from(i.restarts).unwrap_or(i32::MAX),
            i.message
        )
        .execute(&mut *tx)
        .await?;
    }
    // processes of variants (or counts) that are gone
    let keep: Vec<String> = instances.iter().map(|i| format!("{}#{}", i.variant, i.ordinal)).collect();
    sqlx::query!(
        "delete from endpoint_instance where endpoint_id = $1 and not (variant || '#' || ordinal = any($2))",
        id,
        &keep
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
