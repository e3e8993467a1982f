//! The demo's registry: once the demo's training job has completed, it
//! becomes version 1 of model `churn` in the demo team, and alias
//! `champion` names it, protected, so a new user lands on a populated
//! registry and moves `champion` by change request. The demo's second job
//! (tagged as its challenger) waits for the first and becomes version 2,
//! named by alias `challenger`; so does every later demo version. Run by the training worker after each
//! reconcile; any process may run it (registering a job twice in one model
//! is refused by the database).

use crate::kernel::context::{Ctx, actor_by_id};
use crate::kernel::error::AppError;
use crate::kernel::state::AppState;
use crate::registry::aliases;
use crate::registry::gate::Route;
use crate::registry::types::{NewModelVersion, SetAlias};

/// The model the demo registers into, and the alias it sets.
pub const MODEL: &str = "churn";
pub const ALIAS: &str = "champion";
pub const CHALLENGER: &str = "challenger";

/// A demo job that became a version.
pub struct Registered {
    /// As the person who ran the demo.
    pub ctx: Ctx,
    pub team: String,
    pub model_id: uuid::Uuid,
    pub version_id: uuid::Uuid,
    /// Whether this step set `champion` on it (the model's first).
    pub champion: bool,
}

/// Registers every completed demo job (tagged `purpose=demo`, launched by
/// the demo in the last day) that is no version yet; returns them. A
/// challenger job waits while a first job of its team's demo is unfinished,
/// so the first one's version is the champion.
pub async fn register_finished(state: &AppState) -> Result<Vec<Registered>, AppError> {
    let challenger_tag = serde_json::json!([{
        "key": crate::training::demo::CHALLENGER_TAG.0,
        "value": crate::training::demo::CHALLENGER_TAG.1
    }]);
    let jobs = sqlx::query!(
        r#"select j.job_id, j.created_by, t.slug, (j.request -> 'tags' @> $1) as "challenger!"
           from training_job j join team t on t.team_id = j.team_id
           where j.status = 'completed' and j.artifact_uri is not null
             and j.name like 'churn-demo-%' and j.request -> 'tags' @> '[{"key": "purpose", "value": "demo"}]'
             and j.created_at > now() - interval '1 day'
             and not exists (select 1 from model_version v where v.training_job_id = j.job_id)
             and not ((j.request -> 'tags' @> $1) and exists (
                 select 1 from training_job f
                 where f.team_id = j.team_id and f.name like 'churn-demo-%'
                   and f.request -> 'tags' @> '[{"key": "purpose", "value": "demo"}]'
                   and not (f.request -> 'tags' @> $1)
                   and f.created_at > now() - interval '1 day'
                   and not training_status_is_final(f.status)))
           order by (j.request -> 'tags' @> $1), j.created_at"#,
        challenger_tag
    )
    .fetch_all(&state.pool)
    .await?;
    let mut registered = Vec::new();
    for job in jobs {
        // as the person who ran the demo
        let Some(actor) = actor_by_id(&state.pool, job.created_by).await? else { continue };
        let ctx = Ctx { state: state.clone(), actor: Some(actor), request_id: None, client_addr: "demo".into() };
        let input = NewModelVersion {
            training_job_id: Some(job.job_id),
            description: "The demo's training run on the generated churn data.".into(),
            ..NewModelVersion::default()
        };
        let version = match crate::registry::versions::register_by_name(&ctx, &job.slug, MODEL, input).await {
            Ok(version) => version,
            // another process registered it first
            Err(AppError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        };
        let champion = aliases::list(&ctx, version.model_id).await?.iter().all(|a| a.alias != ALIAS);
        if champion {
            let set = SetAlias { version_id: version.id, reason: "The demo's first version.".into() };
            aliases::set(&ctx, version.model_id, ALIAS, set, Route::Direct).await?;
            // moved only by change request from now on (team admins protect;
            // a demo run by a mere member of the demo team leaves it open)
            match aliases::protect(&ctx, version.model_id, ALIAS, true, Route::Direct).await {
                Ok(_) | Err(AppError::Forbidden) => {}
                Err(e) => return Err(e),
            }
        } else {
            let reason = if job.challenger {
                "The demo's second job, trained with other hyperparameters."
            } else {
                "A later demo run."
            };
            let set = SetAlias { version_id: version.id, reason: reason.into() };
            match aliases::set(&ctx, version.model_id, CHALLENGER, set, Route::Direct).await {
                // a team's policy or protection on `challenger`: leave it to the team
                Ok(_) | Err(AppError::Forbidden | AppError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        registered.push(Registered {
            ctx,
            team: job.slug,
            model_id: version.model_id,
            version_id: version.id,
            champion,
        });
    }
    Ok(registered)
}
