//! Comparing 2 to 5 versions of the team's models side by side.

use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::roles::Action;
use crate::registry::types::{Comparison, lower_is_better};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Parses `a,b,c` (or repeated values) into 2 to 5 version ids, in order
/// (one named twice shows twice).
pub fn ids(raw: &[String]) -> Result<Vec<Uuid>, AppError> {
    let mut ids = Vec::new();
    for part in raw.iter().flat_map(|r| r.split(',')).map(str::trim).filter(|p| !p.is_empty()) {
        ids.push(Uuid::parse_str(part).map_err(|_| AppError::query("ids", format!("'{part}' is not a version id.")))?);
    }
    if !(2..=5).contains(&ids.len()) {
        return Err(AppError::query("ids", "Pick 2 to 5 versions to compare."));
    }
    Ok(ids)
}

/// The versions `ids` of team `team` side by side. A version of another
/// team is as unknown as one that does not exist.
pub async fn compare(ctx: &Ctx, team: &str, ids: &[Uuid]) -> Result<Comparison, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::ReadTeam).await?;
    let mut versions = Vec::with_capacity(ids.len());
    let mut series = Vec::with_capacity(ids.len());
    let mut lineages = Vec::with_capacity(ids.len());
    for &id in ids {
        let (version, team_id) = crate::registry::versions::load(ctx, id, Action::ReadTeam).await?;
        if team_id != team.id {
            return Err(AppError::NotFound("Model version".into()));
        }
        series.push(match version.training_job_id {
            Some(job) => crate::training::jobs::metrics(ctx, job).await?,
            None => Vec::new(),
        });
        lineages.push(crate::registry::lineage::of_version(ctx, id).await?);
        versions.push(version);
    }
    let mut best: BTreeMap<String, (Uuid, f64)> = BTreeMap::new();
    for v in &versions {
        for (name, &value) in &v.metrics {
            let lower = lower_is_better(name);
            let better = |old: f64| if lower { value < old } else { value > old };
            if best.get(name).is_none_or(|(_, old)| better(*old)) {
                best.insert(name.clone(), (v.id, value));
            }
        }
    }
    let lower = best.keys().filter(|n| lower_is_better(n)).cloned().collect();
    Ok(Comparison {
        versions,
        best: best.into_iter().map(|(name, (id, _))| (name, id)).collect(),
        lower_is_better: lower,
        series,
        lineages,
    })
}
