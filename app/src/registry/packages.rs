//! SageMaker's copy of the registry (AWS mode): a model is a Model Package
//! Group, each version a Model Package holding its image, its artifact as
//! `ModelDataUrl` and its metrics as customer metadata, and a status change
//! reaches the package as its `ModelApprovalStatus`.
//!
//! The same crash-safe pattern as training launches: registering a version
//! or changing its status writes an intent row (`model_package_sync`) in the
//! same transaction, and [`sync_due`] — run by the worker of whichever
//! process holds the row's lease — makes SageMaker match it:
//!
//! - the group's name is fixed in the database before any call, and a group
//!   found under that name counts only with this model's `capstan:model-id`
//!   tag;
//! - before creating a package it looks for one carrying the version's
//!   `capstan:version-id` metadata (an attempt that died after SageMaker
//!   answered), and sends the version id as SageMaker's `ClientToken`;
//! - status pushes are idempotent, and the row is marked done only if no
//!   change arrived meanwhile (`generation`).
//!
//! So every version gets one package, however often a process dies.
//! SageMaker has no `Archived` approval status: an archived version's
//! package becomes `Rejected` (nothing deploys it) with `capstan:status =
//! Archived` in its metadata. Deleting a version in Capstan leaves its
//! package in SageMaker.
//!
//! [`import`] brings an existing group of the account into a team: one
//! version per package whose artifact the team may reach.

use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::kernel::state::AppState;
use crate::registry::types::{ImportGroup, Imported, ModelVersionStatus, PackageGroup, PackageSync};
use crate::training::engine::StepError;
use serde_json::json;
use std::collections::BTreeMap;
use storage::S3Uri;
use training::BackendError;
use training::packages::{MODEL_ID_TAG, ModelPackages, PackageSpec, VERSION_ID_PROPERTY};
use uuid::Uuid;

/// How long a claimed row is this process's.
const LEASE_SECS: f64 = 300.0;

/// The Model Package Group name of a model: `capstan-<team>-<model>` where
/// that is a legal group name as it stands; otherwise its legal characters
/// with the model id's first 8 hex digits appended, so two models never
/// share a group.
pub fn group_name(team: &str, model: &str, model_id: Uuid) -> String {
    let plain = format!("capstan-{team}-{model}");
    if training::packages::is_legal_group_name(&plain) {
        return plain;
    }
    let mut cleaned = String::new();
    for c in plain.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && cleaned.ends_with('-')) {
            cleaned.push(c);
        }
    }
    let suffix = &model_id.simple().to_string()[..8];
    let head: String = cleaned.chars().take(63 - 9).collect();
    format!("{}-{suffix}", head.trim_end_matches('-'))
}

/// The `ModelApprovalStatus` SageMaker gets for a version's status.
pub fn sagemaker_status(status: ModelVersionStatus) -> &'static str {
    match status {
        ModelVersionStatus::PendingManualApproval => "PendingManualApproval",
        ModelVersionStatus::Approved => "Approved",
        ModelVersionStatus::Rejected | ModelVersionStatus::Archived => "Rejected",
    }
}

/// A customer metadata key or value SageMaker takes: letters, digits,
/// spaces and `_.:/=+-@`.
fn metadata_safe(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.chars().count() <= max
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@'))
}

/// A package's customer metadata: Capstan's ids and status, then as many
/// metrics (`metric:<name>`) as SageMaker's 50 properties leave room for.
fn metadata(
    version_id: Uuid,
    model_id: Uuid,
    team: &str,
    number: i32,
    status: ModelVersionStatus,
    metrics: &BTreeMap<String, f64>,
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::from([
        (VERSION_ID_PROPERTY.to_owned(), version_id.to_string()),
        (MODEL_ID_TAG.to_owned(), model_id.to_string()),
        ("capstan:team".to_owned(), team.to_owned()),
        ("capstan:version".to_owned(), number.to_string()),
        ("capstan:status".to_owned(), status.as_str().to_owned()),
    ]);
    for (name, value) in metrics {
        let key = format!("metric:{name}");
        if m.len() < 50 && metadata_safe(&key, 128) {
            m.insert(key, value.to_string());
        }
    }
    m
}

/// Records, in the registering transaction, that SageMaker must hold the new
/// version (AWS mode; nothing in local mode). Fixes the model's group name
/// on its first version.
pub(crate) async fn want_package(
    tx: &mut sqlx::PgConnection,
    state: &AppState,
    model_id: Uuid,
    team: &str,
    model: &str,
    version_id: Uuid,
) -> Result<(), AppError> {
    if state.packages.is_none() {
        return Ok(());
    }
    let group = group_name(team, model, model_id);
    sqlx::query!("update model set package_group = coalesce(package_group, $2) where model_id = $1", model_id, group)
        .execute(&mut *tx)
        .await?;
    sqlx::query!("insert into model_package_sync (version_id) values ($1) on conflict do nothing", version_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Records, in the status-changing transaction, that SageMaker must learn
/// the version's new status (when it mirrors the version).
pub(crate) async fn status_changed(tx: &mut sqlx::PgConnection, version_id: Uuid) -> Result<(), AppError> {
    sqlx::query!(
        "update model_package_sync set dirty = true, generation = generation + 1, attempts = 0,
                next_attempt_at = now(), updated_at = now()
         where version_id = $1",
        version_id
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Where SageMaker's copy of a version stands; `None` when nothing mirrors
/// it (local mode, or a version registered before AWS mode).
pub async fn sync_state(ctx: &Ctx, version_id: Uuid) -> Result<Option<PackageSync>, AppError> {
    let actor = ctx.actor()?;
    let team_id = sqlx::query_scalar!(
        "select m.team_id from model_version v join model m on m.model_id = v.model_id where v.version_id = $1",
        version_id
    )
    .fetch_optional(ctx.pool())
    .await?
    .ok_or_else(|| AppError::NotFound("Model version".into()))?;
    let role = ctx.role_in(team_id).await?;
    crate::kernel::roles::authorize_owned(&actor.principal(), Action::ReadTeam, role, "Model version")?;
    let row = sqlx::query!(
        r#"select m.package_group as "group!", s.package_arn, s.synced_status as "synced_status: ModelVersionStatus",
                  s.dirty, s.last_error, s.synced_at
           from model_package_sync s join model_version v on v.version_id = s.version_id
           join model m on m.model_id = v.model_id
           where s.version_id = $1 and m.package_group is not null"#,
        version_id
    )
    .fetch_optional(ctx.pool())
    .await?;
    Ok(row.map(|r| PackageSync {
        group: r.group,
        package_arn: r.package_arn,
        synced_status: r.synced_status,
        pending: r.dirty,
        last_error: r.last_error,
        synced_at: r.synced_at,
    }))
}

/// What the worker needs of a claimed row.
struct Claimed {
    version_id: Uuid,
    generation: i64,
    attempts: i32,
    package_arn: Option<String>,
    model_id: Uuid,
    team: String,
    number: i32,
    status: ModelVersionStatus,
    artifact_uri: String,
    image: Option<String>,
    framework: Option<String>,
    metrics: serde_json::Value,
    description: String,
    group: Option<String>,
    imported: bool,
    model: String,
}

/// Makes SageMaker match every due intent that no live process holds:
/// creates groups and packages, pushes statuses. Returns how many rows were
/// brought up to date. An error on one row is recorded on it and retried
/// later with a growing delay; throttling stops the round.
pub async fn sync_due(state: &AppState) -> Result<usize, StepError> {
    let Some(sm) = state.packages.clone() else { return Ok(0) };
    let rows = sqlx::query_as!(
        Claimed,
        r#"with claimed as (
               update model_package_sync set lease_owner = $1, lease_until = now() + make_interval(secs => $2)
               where version_id in (
                   select version_id from model_package_sync
                   where dirty and next_attempt_at <= now() and (lease_until is null or lease_until < now())
                   order by next_attempt_at limit 20
                   for update skip locked)
               returning version_id, generation, attempts, package_arn)
           select c.version_id as "version_id!", c.generation as "generation!", c.attempts as "attempts!",
                  c.package_arn, m.model_id, t.slug as team, v.number, v.status as "status: ModelVersionStatus",
                  v.artifact_uri, v.image, v.framework, v.metrics, v.description, m.package_group as "group",
                  m.package_group_imported as imported, m.name as model
           from claimed c join model_version v on v.version_id = c.version_id
           join model m on m.model_id = v.model_id join team t on t.team_id = m.team_id"#,
        state.instance,
        LEASE_SECS
    )
    .fetch_all(&state.pool)
    .await?;
    let mut synced = 0;
    for row in rows {
        match sync_one(sm.as_ref(), &row).await {
            Ok(arn) => {
                // done unless the version changed again meanwhile (then the next round pushes that too)
                sqlx::query!(
                    "update model_package_sync set package_arn = $2, synced_status = $3, dirty = generation <> $4,
                            attempts = 0, last_error = null, lease_until = null, synced_at = now(), updated_at = now()
                     where version_id = $1",
                    row.version_id,
                    arn,
                    row.status as ModelVersionStatus,
                    row.generation
                )
                .execute(&state.pool)
                .await?;
                synced += 1;
            }
            Err((arn, e)) => {
                let delay = 2_f64.powi(row.attempts.clamp(0, 12)).min(3600.0);
                sqlx::query!(
                    "update model_package_sync set package_arn = coalesce($2, package_arn), last_error = $3,
                            attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $4),
                            lease_until = null, updated_at = now()
                     where version_id = $1",
                    row.version_id,
                    arn,
                    e.to_string(),
                    delay
                )
                .execute(&state.pool)
                .await?;
                tracing::warn!(version = %row.version_id, error = %e, "syncing a model version to SageMaker failed");
                if let BackendError::Throttled { .. } = e {
                    return Err(StepError::from(e));
                }
            }
        }
    }
    Ok(synced)
}

/// Brings one version's package up to date; the package's ARN, also with
/// the error when the package was made but its status could not be pushed.
async fn sync_one(sm: &dyn ModelPackages, row: &Claimed) -> Result<String, (Option<String>, BackendError)> {
    let fail = |arn: Option<String>| move |e: BackendError| (arn, e);
    let group = row.group.clone().unwrap_or_else(|| group_name(&row.team, &row.model, row.model_id));
    let metrics: BTreeMap<String, f64> = serde_json::from_value(row.metrics.clone()).unwrap_or_default();
    let metadata = metadata(row.version_id, row.model_id, &row.team, row.number, row.status, &metrics);
    let arn = match &row.package_arn {
        Some(arn) => arn.clone(),
        None => {
            if !row.imported {
                ensure_group(sm, &group, row).await.map_err(fail(None))?;
            }
            let existing = sm
                .packages(&group)
                .await
                .map_err(fail(None))?
                .into_iter()
                .find(|p| p.metadata.get(VERSION_ID_PROPERTY).is_some_and(|v| *v == row.version_id.to_string()));
            match existing {
                Some(p) => p.arn,
                None => {
                    let image = row.image.clone().ok_or_else(|| {
                        (
                            None,
                            BackendError::Aws {
                                code: "MissingImage".into(),
                                message: "SageMaker needs an inference image for a model package: this version has \
                                          none (register it with an image)"
                                    .into(),
                            },
                        )
                    })?;
                    let spec = PackageSpec {
                        group: group.clone(),
                        description: format!("{} v{}: {}", row.model, row.number, row.description)
                            .chars()
                            .take(1024)
                            .collect(),
                        image,
                        model_data_url: row.artifact_uri.clone(),
                        framework: row.framework.as_ref().map(|f| f.to_uppercase()),
                        approval_status: sagemaker_status(row.status).to_owned(),
                        metadata: metadata.clone(),
                        client_token: row.version_id.to_string(),
                    };
                    // created with its current status: nothing more to push
                    return sm.create_package(&spec).await.map_err(fail(None));
                }
            }
        }
    };
    sm.update_package(&arn, sagemaker_status(row.status), &metadata).await.map_err(fail(Some(arn.clone())))?;
    Ok(arn)
}

/// Creates the model's group unless it exists already as this model's.
async fn ensure_group(sm: &dyn ModelPackages, group: &str, row: &Claimed) -> Result<(), BackendError> {
    match sm.group_owner(group).await {
        Ok(Some(owner)) if owner == row.model_id.to_string() => Ok(()),
        Ok(_) => Err(BackendError::Aws {
            code: "GroupInUse".into(),
            message: format!(
                "a Model Package Group named {group} exists and was not created for this model: import it into a \
                 team instead, or rename the group in SageMaker"
            ),
        }),
        Err(BackendError::NotFound(_)) => {
            let description = format!("Capstan model {}/{}", row.team, row.model);
            match sm.create_group(group, &description, &row.model_id.to_string()).await {
                Ok(()) | Err(BackendError::AlreadyExists(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

fn sagemaker(state: &AppState) -> Result<std::sync::Arc<dyn ModelPackages>, AppError> {
    state.packages.clone().ok_or_else(|| AppError::Conflict {
        field: None,
        message: "SageMaker's model registry is reachable in AWS mode only (CAPSTAN_MODE=aws).".into(),
    })
}

fn upstream(e: BackendError) -> AppError {
    AppError::Upstream(format!("SageMaker answered: {e}"))
}

/// The account's Model Package Groups, each with the Capstan model that
/// mirrors it, if any (team admins: they import).
pub async fn groups(ctx: &Ctx, team: &str) -> Result<Vec<PackageGroup>, AppError> {
    crate::teams::domain::load(ctx, team, Action::Archive).await?;
    let sm = sagemaker(&ctx.state)?;
    let found = sm.list_groups().await.map_err(upstream)?;
    let names: Vec<String> = found.iter().map(|g| g.name.clone()).collect();
    let mirrored: BTreeMap<String, String> = sqlx::query!(
        "select m.package_group as \"group!\", t.slug || '/' || m.name as \"model!\"
         from model m join team t on t.team_id = m.team_id where m.package_group = any($1)",
        &names
    )
    .fetch_all(ctx.pool())
    .await?
    .into_iter()
    .map(|r| (r.group, r.model))
    .collect();
    Ok(found
        .into_iter()
        .map(|g| PackageGroup {
            model: mirrored.get(&g.name).cloned(),
            name: g.name,
            arn: g.arn,
            description: g.description,
        })
        .collect())
}

/// Brings a group of the account into the team as a new model (team
/// admins): one version per package, oldest first, with the package's
/// approval status, image, artifact and numeric customer metadata as
/// metrics. A package whose artifact the team may not reach is left out and
/// named in `skipped`. A group that another Capstan model mirrors, or that
/// Capstan created for another model, is refused; so is a name in use.
pub async fn import(ctx: &Ctx, team: &str, input: ImportGroup) -> Result<Imported, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::Archive).await?;
    let actor = ctx.actor()?.clone();
    let group = input.group.trim().to_owned();
    if !training::packages::is_legal_group_name(&group) {
        return Err(AppError::field("group", "A Model Package Group name: 1 to 63 letters, digits and hyphens."));
    }
    let name = crate::registry::domain::model_name(input.name.as_deref().unwrap_or(&group))
        .map_err(|m| AppError::field("name", m))?;
    let sm = sagemaker(&ctx.state)?;
    if let Some(model) = sqlx::query_scalar!(
        "select t.slug || '/' || m.name from model m join team t on t.team_id = m.team_id where m.package_group = $1",
        group
    )
    .fetch_optional(ctx.pool())
    .await?
    {
        return Err(AppError::Conflict {
            field: Some("group".into()),
            message: format!("Model {} already mirrors {group}.", model.unwrap_or_default()),
        });
    }
    match sm.group_owner(&group).await {
        Ok(Some(owner)) => {
            return Err(AppError::Conflict {
                field: Some("group".into()),
                message: format!("Capstan created {group} for another model ({owner}): it cannot be imported."),
            });
        }
        Ok(None) => {}
        Err(BackendError::NotFound(_)) => {
            return Err(AppError::field("group", format!("No Model Package Group named {group} in this account.")));
        }
        Err(e) => return Err(upstream(e)),
    }
    let packages = sm.packages(&group).await.map_err(upstream)?;
    let mut skipped = Vec::new();
    let mut versions = Vec::new();
    for p in packages {
        let label = p.version.map_or_else(|| p.arn.clone(), |n| format!("{group}/{n}"));
        let Some(uri) = p.model_data_url.clone() else {
            skipped.push(format!("{label}: no ModelDataUrl"));
            continue;
        };
        let reach =
            S3Uri::parse(&uri).and_then(|u| crate::datasets::versions::reachable(&ctx.state.storage.bucket, &team, &u));
        if let Err(why) = reach {
            skipped.push(format!("{label}: {why}"));
            continue;
        }
        let status = match p.approval_status.as_str() {
            "Approved" => ModelVersionStatus::Approved,
            "Rejected" => ModelVersionStatus::Rejected,
            _ => ModelVersionStatus::PendingManualApproval,
        };
        let metrics: BTreeMap<String, f64> = p
            .metadata
            .iter()
            .filter(|(k, _)| !k.starts_with("capstan:"))
            .filter_map(|(k, v)| {
                let value = v.parse::<f64>().ok().filter(|x| x.is_finite())?;
                Some((k.strip_prefix("metric:").unwrap_or(k).to_owned(), value))
            })
            .collect();
        versions.push((p, uri, status, metrics));
    }
    let model_id = Uuid::now_v7();
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!(
        "insert into model (model_id, team_id, name, description, created_by, package_group, package_group_imported,
                            last_number, version_count)
         values ($1, $2, $3, $4, $5, $6, true, $7, $7)",
        model_id,
        team.id,
        name,
        format!("Imported from SageMaker Model Package Group {group}."),
        actor.user_id,
        group,
        i32::try_from(versions.len()).unwrap_or(i32::MAX),
    )
    .execute(&mut *tx)
    .await?;
    for (number, (p, uri, status, metrics)) in versions.iter().enumerate() {
        let version_id = Uuid::now_v7();
        let number = i32::try_from(number + 1).unwrap_or(i32::MAX);
        sqlx::query!(
            r#"with version as (
                   insert into model_version (version_id, model_id, number, status, source, artifact_uri, image,
                                              framework, metrics, description, tags, created_by)
                   values ($1, $2, $3, $4, 'sagemaker', $5, $6, $7, $8, $9, $10, $11) returning version_id)
               insert into model_version_metric (version_id, team_id, name, value)
               select version.version_id, $12, e.key, (e.value)::double precision
               from version, jsonb_each($8) e where jsonb_typeof(e.value) = 'number'"#,
            version_id,
            model_id,
            number,
            *status as ModelVersionStatus,
            uri,
            p.image,
            p.framework.as_ref().map(|f| f.to_lowercase()),
            json!(metrics),
            p.description.clone().unwrap_or_default().chars().take(2000).collect::<String>(),
            json!({ "sagemaker:model-package-arn": p.arn }),
            actor.user_id,
            team.id,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "insert into model_package_sync (version_id, package_arn, synced_status, dirty, synced_at)
             values ($1, $2, $3, false, now())",
            version_id,
            p.arn,
            *status as ModelVersionStatus
        )
        .execute(&mut *tx)
        .await?;
    }
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "model.imported",
            target_type: "model",
            target_id: Some(model_id.to_string()),
            summary: json!({ "after": { "name": name, "group": group, "versions": versions.len(),
                                        "skipped": skipped } }),
        },
    )
    .await?;
    tx.commit().await?;
    crate::registry::domain::pages_changed(ctx, team.id);
    let model = crate::registry::domain::get(ctx, model_id).await?;
    Ok(Imported { model, versions: i32::try_from(versions.len()).unwrap_or(i32::MAX), skipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_legal_and_distinct() {
        let id = Uuid::parse_str("0193ab12-cd34-7000-8000-000000000000").expect("uuid");
        assert_eq!(group_name("ml", "churn", id), "capstan-ml-churn");
        assert_eq!(group_name("ml", "churn_v2.1", id), "capstan-ml-churn-v2-1-0193ab12");
        let long = group_name("ml", &"x".repeat(128), id);
        assert!(training::packages::is_legal_group_name(&long), "{long}");
        assert!(long.ends_with("-0193ab12"));
    }

    #[test]
    fn archived_is_rejected_in_sagemaker() {
        assert_eq!(sagemaker_status(ModelVersionStatus::Archived), "Rejected");
        assert_eq!(sagemaker_status(ModelVersionStatus::Approved), "Approved");
    }

    #[test]
    fn metadata_keeps_ids_and_legal_metric_names() {
        let v = Uuid::now_v7();
        let m = Uuid::now_v7();
        let metrics = BTreeMap::from([("auc".to_owned(), 0.9), ("loss (train)".to_owned(), 0.1)]);
        let md = metadata(v, m, "ml", 3, ModelVersionStatus::Approved, &metrics);
        assert_eq!(md[VERSION_ID_PROPERTY], v.to_string());
        assert_eq!(md["metric:auc"], "0.9");
        assert!(!md.contains_key("metric:loss (train)"), "parentheses are not allowed in SageMaker metadata keys");
    }
}
