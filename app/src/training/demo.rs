//! The demo: a team, a generated churn dataset, and two training jobs
//! running `examples/train.py` on it with different hyperparameters, so a
//! new user sees training work at once (the first job's version becomes
//! `champion` of `churn`, the second's `challenger`, and the demo endpoint
//! serves both, 90 % and 10 %);
//! and a second user, an approver of the demo team, so the same new user
//! can try a change request from both sides (the registry's demo protects
//! `champion` once the job is a version). Used by `capstan demo` and the
//! button on an empty home page.

use crate::datasets::types::NewVersion;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::training::types::{
    ChannelInput, Demo, DemoReviewer, KeyValue, LaunchRequest, MetricDefinition, TrainingJob,
};

pub const TRAIN_SCRIPT: &str = include_str!("../../../examples/train.py");
pub const SERVE_SCRIPT: &str = include_str!("../../../examples/serve.py");

/// A churn-like CSV: three numeric features and a 0/1 label that depends
/// on them with noise (deterministic, so every demo learns the same).
pub fn churn_csv(rows: usize) -> String {
    let mut state: u64 = 42;
    let mut next = move || {
        // xorshift64*: small, deterministic, good enough for demo data
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = String::from("tenure_months,monthly_spend,support_calls,churned\n");
    for _ in 0..rows {
        let tenure = 1.0 + (next() * 72.0).floor();
        let spend = 10.0 + next() * 110.0;
        let calls = (next() * 10.0).floor();
        let noise = (next() + next() + next() - 1.5) * 1.6;
        let score = -0.06 * tenure + 0.02 * spend + 0.45 * calls - 1.0 + noise;
        out.push_str(&format!("{tenure},{spend:.2},{calls},{}\n", u8::from(score > 0.0)));
    }
    out
}

/// The caller's demo team: `demo` if free or theirs, else `demo-<n>`.
async fn team(ctx: &Ctx) -> Result<crate::teams::types::Team, AppError> {
    for n in 0..20 {
        let slug = if n == 0 { "demo".to_owned() } else { format!("demo-{n}") };
        match crate::teams::domain::get(ctx, &slug).await {
            Ok(team) if team.my_role.is_some_and(|r| r >= crate::kernel::roles::Role::Member) => return Ok(team),
            Ok(_) => continue,
            Err(AppError::NotFound(_)) => {
                let exists = sqlx::query_scalar!("select exists(select 1 from team where slug = $1)", slug)
                    .fetch_one(ctx.pool())
                    .await?
                    .unwrap_or(false);
                if exists {
                    continue;
                }
                return crate::teams::domain::create(ctx, crate::teams::types::NewTeam { slug, name: "Demo".into() })
                    .await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(AppError::Conflict { field: None, message: "No free demo team name (demo … demo-19).".into() })
}

/// The demo's second user, an approver of the demo team.
pub const REVIEWER_EMAIL: &str = "reviewer@demo.example";

/// Creates the demo (or reuses its team and data) and launches its job;
/// the reviewer's password is in the answer only when this call created
/// the account.
pub async fn create(ctx: &Ctx) -> Result<Demo, AppError> {
    ctx.actor()?;
    let team = team(ctx).await?;
    let reviewer = reviewer(ctx, &team.slug).await?;
    let job = launch(ctx, &team, Run::Champion).await?;
    let challenger = launch(ctx, &team, Run::Challenger).await?;
    Ok(Demo { job, challenger, reviewer })
}

/// Makes sure the demo's second user exists and is an approver of `team`.
/// Only site admins create accounts, so for anyone else the reviewer joins
/// only if a site admin's demo created it before. Its password is random,
/// returned once, and kept nowhere but as a hash.
async fn reviewer(ctx: &Ctx, team: &str) -> Result<Option<DemoReviewer>, AppError> {
    let exists =
        sqlx::query_scalar!(r#"select exists(select 1 from app_user where email = $1) as "e!""#, REVIEWER_EMAIL)
            .fetch_one(ctx.pool())
            .await?;
    let mut created = None;
    if !exists {
        if !ctx.actor()?.is_site_admin {
            return Ok(None);
        }
        let password = {
            use rand::RngCore as _;
            let mut bytes = [0u8; 12];
            rand::rng().fill_bytes(&mut bytes);
            hex::encode(bytes)
        };
        let input = crate::accounts::types::NewUserRequest {
            email: REVIEWER_EMAIL.into(),
            display_name: "Riley Reviewer (demo)".into(),
            password: password.clone(),
            is_site_admin: false,
        };
        match crate::accounts::users::create(ctx, input).await {
            Ok(_) => created = Some(DemoReviewer { email: REVIEWER_EMAIL.into(), password }),
            // another demo created it a moment ago
            Err(AppError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let member = crate::teams::types::NewMember { email: REVIEWER_EMAIL.into(), role: "approver".into() };
    match crate::teams::domain::add_member(ctx, team, member).await {
        // a member already, or the caller may not add members (a demo team they only belong to)
        Ok(_) | Err(AppError::Conflict { .. } | AppError::Forbidden) => {}
        Err(e) => return Err(e),
    }
    Ok(created)
}

/// The tag that marks the demo's second job, whose version waits for the
/// first one's and becomes `challenger`.
pub const CHALLENGER_TAG: (&str, &str) = ("demo-role", "challenger");

/// Which of the demo's two jobs.
#[derive(Clone, Copy, PartialEq)]
enum Run {
    Champion,
    Challenger,
}

async fn launch(ctx: &Ctx, team: &crate::teams::types::Team, run: Run) -> Result<TrainingJob, AppError> {
    let dataset = match crate::datasets::domain::list(
        ctx,
        &team.slug,
        crate::datasets::types::DatasetQuery { q: Some("churn-demo".into()), ..Default::default() },
    )
    .await?
    .items
    .into_iter()
    .find(|d| d.name == "churn-demo")
    {
        Some(d) => d,
        None => {
            crate::datasets::domain::create(
                ctx,
                &team.slug,
                crate::datasets::types::NewDataset {
                    name: "churn-demo".into(),
                    description: "Generated customer churn data for the demo training job.".into(),
                    tags: vec!["demo".into()],
                },
            )
            .await?
        }
    };
    let version = match dataset.latest_version {
        Some(_) => crate::datasets::versions::list(ctx, dataset.id, Default::default())
            .await?
            .items
            .into_iter()
            .find(|v| v.status == crate::datasets::types::VersionStatus::Ready)
            .ok_or(AppError::Internal)?,
        None => {
            let storage = &ctx.state.storage;
            let prefix = format!("datasets/{}/churn-demo/generated/", team.slug);
            storage
                .client
                .put_object()
                .bucket(&storage.bucket)
                .key(format!("{prefix}train.csv"))
                .body(churn_csv(600).into_bytes().into())
                .send()
                .await
                .map_err(|e| {
                    tracing::error!(error = %storage::S3Failure::from(e), "could not write the demo dataset");
                    AppError::Internal
                })?;
            let created = crate::datasets::versions::create(
                ctx,
                dataset.id,
                NewVersion { source_uri: format!("s3://{}/{prefix}", storage.bucket), snapshot: false },
            )
            .await?;
            wait_ready(ctx, created.id).await?
        }
    };
    let source = crate::training::launch::store_source(
        ctx,
        &team.slug,
        vec![("train.py".into(), TRAIN_SCRIPT.into()), ("serve.py".into(), SERVE_SCRIPT.into())],
    )
    .await?;
    let kv = |k: &str, v: &str| KeyValue { key: k.into(), value: v.into() };
    let now = time::OffsetDateTime::now_utc();
    // the challenger learns faster for fewer epochs: other metrics to compare
    let (suffix, epochs, rate, tags) = match run {
        Run::Champion => ("", "40", "0.005", vec![kv("purpose", "demo")]),
        Run::Challenger => ("-b", "20", "0.02", vec![kv("purpose", "demo"), kv(CHALLENGER_TAG.0, CHALLENGER_TAG.1)]),
    };
    let request = LaunchRequest {
        name: format!(
            // to the millisecond: two runs in one second are two jobs
            "churn-demo-{}{:02}{:02}-{:02}{:02}{:02}-{:03}{suffix}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond()
        ),
        entry_point: Some("train.py".into()),
        source_uri: Some(source.source_uri),
        framework: Some("sklearn-1.2".into()),
        instance_type: "ml.m5.large".into(),
        max_runtime_seconds: 1800,
        hyperparameters: vec![kv("epochs", epochs), kv("learning-rate", rate), kv("seconds-per-epoch", "0.5")],
        metric_definitions: vec![
            MetricDefinition { name: "loss".into(), regex: r"loss=([0-9.]+)".into() },
            MetricDefinition { name: "accuracy".into(), regex: r"accuracy=([0-9.]+)".into() },
        ],
        channels: vec![ChannelInput { name: "train".into(), version_id: version.id }],
        tags,
        ..LaunchRequest::default()
    };
    crate::training::launch::launch(ctx, &team.slug, request).await
}

/// Waits for the demo version's scan (one small file: well under a second)
/// for at most 10 s, a third of the request timeout.
async fn wait_ready(ctx: &Ctx, id: uuid::Uuid) -> Result<crate::datasets::types::DatasetVersion, AppError> {
    for _ in 0..100 {
        let v = crate::datasets::versions::get(ctx, id).await?;
        match v.status {
            crate::datasets::types::VersionStatus::Ready => return Ok(v),
            crate::datasets::types::VersionStatus::Failed => {
                // generated by Capstan into its own bucket: a failure is ours, not the user's
                tracing::error!(version = %id, failure = ?v.failure, "the demo dataset could not be scanned");
                return Err(AppError::Internal);
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    Err(AppError::Conflict {
        field: None,
        message: "The demo dataset is still being scanned; run the demo again in a moment.".into(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_data_has_both_labels() {
        let csv = super::churn_csv(300);
        let labels: Vec<&str> = csv.lines().skip(1).map(|l| l.rsplit(',').next().unwrap_or_default()).collect();
        assert_eq!(labels.len(), 300);
        let ones = labels.iter().filter(|l| **l == "1").count();
        assert!(ones > 30 && ones < 270, "{ones} churned of 300");
    }
}
