//! A model version's lineage: the dataset versions its training job read,
//! the job, and the version (or the artifact it was registered from), then
//! the endpoints' variants that serve it. Every part before the version is
//! referenced by it, so none can be deleted from under it; a deployed
//! version cannot be deleted either.

use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::registry::types::{Lineage, LineageEdge, LineageKind, LineageNode};
use uuid::Uuid;

/// The graph of version `id`, if the caller may read its team.
pub async fn of_version(ctx: &Ctx, id: Uuid) -> Result<Lineage, AppError> {
    let (version, _) = crate::registry::versions::load(ctx, id, Action::ReadTeam).await?;
    let team = &version.team;
    let me = LineageNode {
        id: format!("model_version:{}", version.id),
        kind: LineageKind::ModelVersion,
        label: format!("{} v{}", version.model, version.number),
        detail: version.status.as_str().to_owned(),
        url: Some(format!("/teams/{team}/model-versions/{}", version.id)),
    };
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    match version.training_job_id {
        Some(job_id) => {
            let job =
                sqlx::query!("select name, status::text as \"status!\" from training_job where job_id = $1", job_id)
                    .fetch_one(ctx.pool())
                    .await?;
            let job_node = format!("training_job:{job_id}");
            let inputs = sqlx::query!(
                r#"select c.name as channel, v.version_id, v.number, d.name as dataset, d.dataset_id
                   from training_job_channel c join dataset_version v on v.version_id = c.version_id
                   join dataset d on d.dataset_id = v.dataset_id
                   where c.job_id = $1 order by c.name"#,
                job_id
            )
            .fetch_all(ctx.pool())
            .await?;
            for input in inputs {
                let node = format!("dataset_version:{}", input.version_id);
                // one dataset version may feed several channels
                if !nodes.iter().any(|n: &LineageNode| n.id == node) {
                    nodes.push(LineageNode {
                        id: node.clone(),
                        kind: LineageKind::DatasetVersion,
                        label: format!("{} v{}", input.dataset, input.number),
                        detail: "dataset version".into(),
                        url: Some(format!("/teams/{team}/versions/{}", input.version_id)),
                    });
                }
                edges.push(LineageEdge { from: node, to: job_node.clone(), label: input.channel });
            }
            nodes.push(LineageNode {
                id: job_node.clone(),
                kind: LineageKind::TrainingJob,
                label: job.name,
                detail: format!("training job, {}", job.status),
                url: Some(format!("/teams/{team}/training/{job_id}")),
            });
            edges.push(LineageEdge { from: job_node, to: me.id.clone(), label: "registered".into() });
        }
        None => {
            let node = format!("artifact:{}", version.artifact_uri);
            nodes.push(LineageNode {
                id: node.clone(),
                kind: LineageKind::Artifact,
                label: "artifact".into(),
                detail: version.artifact_uri.clone(),
                url: None,
            });
            edges.push(LineageEdge { from: node, to: me.id.clone(), label: "registered".into() });
        }
    }
    // the endpoints' variants serving it (the endpoints capability's tables, read here
    // so the registry needs none of its code)
    let serving = sqlx::query!(
        r#"select e.endpoint_id, e.name as endpoint, e.status, ev.name as variant, ev.shadow_percent
           from endpoint_variant ev join endpoint e on e.endpoint_id = ev.endpoint_id
           where ev.version_id = $1 and e.desired = 'running' order by e.name, ev.name"#,
        version.id
    )
    .fetch_all(ctx.pool())
    .await?;
    for s in serving {
        let node = format!("endpoint:{}:{}", s.endpoint_id, s.variant);
        let role = if s.shadow_percent.is_some() { "shadow" } else { "variant" };
        nodes.push(LineageNode {
            id: node.clone(),
            kind: LineageKind::Endpoint,
            label: format!("{} / {}", s.endpoint, s.variant),
            detail: format!("endpoint {role}, {}", s.status),
            url: Some(format!("/teams/{team}/endpoints/{}", s.endpoint_id)),
        });
        edges.push(LineageEdge { from: me.id.clone(), to: node, label: "serves".into() });
    }
    nodes.push(me);
    Ok(Lineage { nodes, edges })
}
