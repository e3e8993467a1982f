//! Launching a training job: the options the form offers, every check of a
//! launch request (fields, the team's datasets and roles, prices, source
//! archives), and the one transaction that writes the job row and its audit
//! event before any engine call ([`crate::training::engine`] does the rest).

use crate::kernel::audit::NewEvent;
use crate::kernel::context::Ctx;
use crate::kernel::error::AppError;
use crate::kernel::error::FieldError;
use crate::kernel::roles::Action;
use crate::kernel::state::AppState;
use crate::kernel::validate::role_arn;
use crate::training::jobs::get;
use crate::training::types::{Framework, LaunchOptions, LaunchRequest, SourceArchive, TrainingJob};
use crate::training::validate::{
    channel_name, engine_name, entry_point, image_uri, job_name, metric_regex, object_uri,
};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use storage::S3Uri;
use uuid::Uuid;

const FRAMEWORKS: &str = include_str!("../../data/framework-images.json");

/// The framework file, parsed once.
static FRAMEWORK_FILE: std::sync::LazyLock<Result<Vec<Framework>, String>> = std::sync::LazyLock::new(|| {
    #[derive(serde::Deserialize)]
    struct File {
        frameworks: Vec<Framework>,
    }
    serde_json::from_str::<File>(FRAMEWORKS)
        .map(|f| f.frameworks)
        .map_err(|e| format!("app/data/framework-images.json is invalid: {e}"))
});

/// The framework images offered in `region`.
pub fn frameworks(region: &str) -> Result<Vec<Framework>, AppError> {
    let all = FRAMEWORK_FILE.as_ref().map_err(|e| {
        tracing::error!(error = %e, "bundled framework data");
        AppError::Internal
    })?;
    Ok(all.iter().map(|f| Framework { image: f.image.replace("{region}", region), ..f.clone() }).collect())
}

/// Parses the data files built into Capstan (instance prices, framework
/// images); `capstan serve` calls it first and refuses to start with the
/// message when one is invalid, so no request ever meets a broken file.
pub fn check_bundled_data() -> Result<(), String> {
    FRAMEWORK_FILE.as_ref().map(drop).map_err(Clone::clone)?;
    crate::training::prices::data().map(drop).map_err(|_| "app/data/instance-prices.json is invalid".to_owned())
}

/// Validated pieces of a launch.
struct Checked {
    name: String,
    spec: training::JobSpec,
    channels: Vec<(String, Uuid, String)>,
    usd_per_hour: Option<f64>,
}

/// The launch form's live check of one metric regex (members only: it is
/// part of launching).
pub async fn check_metric_regex(ctx: &Ctx, team: &str, regex: &str) -> Result<(), AppError> {
    crate::teams::domain::load(ctx, team, Action::Contribute).await?;
    metric_regex(regex).map(drop).map_err(|m| AppError::field("regex", m))
}

pub async fn options(ctx: &Ctx, team: &str) -> Result<LaunchOptions, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::ReadTeam).await?;
    let state = &ctx.state;
    let region = state.settings.region.clone();
    let instance_types = sqlx::query!(
        "select instance_type, usd_per_hour from instance_price where region = $1 order by usd_per_hour, instance_type",
        region
    )
    .fetch_all(ctx.pool())
    .await?
    .into_iter()
    .map(|r| (r.instance_type, r.usd_per_hour))
    .collect();
    let team_role = sqlx::query_scalar!("select sagemaker_role_arn from team where team_id = $1", team.id)
        .fetch_one(ctx.pool())
        .await?;
    let versions = sqlx::query!(
        r#"select v.version_id, d.name, v.number from dataset_version v join dataset d on d.dataset_id = v.dataset_id
           where v.team_id = $1 and v.status = 'ready' and d.archived_at is null
           order by v.created_at desc limit 200"#,
        team.id
    )
    .fetch_all(ctx.pool())
    .await?
    .into_iter()
    .map(|r| (r.version_id, format!("{} v{}", r.name, r.number)))
    .collect();
    Ok(LaunchOptions {
        backend: state.training.kind().to_owned(),
        frameworks: frameworks(&region)?,
        region,
        instance_types,
        default_role_arn: team_role.or_else(|| state.settings.sagemaker_role_arn.clone()),
        default_output_uri: format!("s3://{}/jobs/{}/", state.storage.bucket, team.slug),
        versions,
    })
}

/// Checks every field; all errors at once, nothing written.
async fn check(ctx: &Ctx, owner: &crate::teams::types::Team, id: Uuid, r: &LaunchRequest) -> Result<Checked, AppError> {
    let (team_id, team) = (owner.id, owner.slug.as_str());
    let state = &ctx.state;
    let local = state.training.kind() == "local";
    let region = state.settings.region.clone();
    let mut errors = crate::kernel::validate::Errors::new();
    let name = errors.check("name", job_name(&r.name));
    let image = r.image.as_deref().filter(|s| !s.trim().is_empty()).and_then(|i| errors.check("image", image_uri(i)));
    let entry = r
        .entry_point
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .and_then(|e| errors.check("entry_point", entry_point(e)));
    let source = r.source_uri.as_deref().filter(|s| !s.trim().is_empty());
    let mut framework_image = None;
    if local {
        if entry.is_none() && r.entry_point.as_deref().is_none_or(|e| e.trim().is_empty()) {
            errors.check::<()>(
                "entry_point",
                Err("The local runner runs script mode: give an entry point and a source folder.".into()),
            );
        }
    } else if entry.is_some() {
        match r.framework.as_deref().filter(|f| !f.is_empty()) {
            Some(key) => match frameworks(&region)?.into_iter().find(|f| f.key == key) {
                Some(f) => framework_image = Some(f.image),
                None => {
                    errors.check::<()>("framework", Err(format!("Unknown framework {key}.")));
                }
            },
            None if image.is_none() => {
                errors.check::<()>("framework", Err("Choose a framework image for script mode.".into()));
            }
            None => {}
        }
    } else if image.is_none() && r.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        errors.check::<()>("image", Err("Give a container image URI, or an entry point for script mode.".into()));
    }
    if entry.is_some() && source.is_none() {
        errors.check::<()>("source_uri", Err("Upload the source folder that holds the entry point.".into()));
    }
    let price = crate::training::prices::price(ctx.pool(), &region, r.instance_type.trim()).await?;
    if price.is_none() {
        errors.check::<()>(
            "instance_type",
            Err(format!(
                "{} is not in the price table for {region}; pick a listed type or ask a site admin to add it.",
                r.instance_type.trim()
            )),
        );
    }
    if r.instance_count < 1 {
        errors.check::<()>("instance_count", Err("Use at least 1 instance.".into()));
    } else if r.instance_count > 100 {
        errors.check::<()>("instance_count", Err("Use at most 100 instances.".into()));
    } else if local && r.instance_count != 1 {
        errors.check::<()>("instance_count", Err("The local runner runs one instance.".into()));
    }
    if !(1..=16384).contains(&r.volume_gb) {
        errors.check::<()>("volume_gb", Err("Use a volume of 1 to 16384 GB.".into()));
    }
    if !(1..=28 * 24 * 3600).contains(&r.max_runtime_seconds) {
        errors.check::<()>("max_runtime_seconds", Err("Use 1 second to 28 days.".into()));
    }
    let mut spot = None;
    if r.spot {
        match r.max_wait_seconds {
            Some(w) if w >= r.max_runtime_seconds => {
                let checkpoint = r
                    .checkpoint_uri
                    .as_deref()
                    .filter(|c| !c.trim().is_empty())
                    .and_then(|c| {
                        let uri = S3Uri::parse(c).and_then(|u| {
                            crate::datasets::versions::reachable(&state.storage.bucket, owner, &u).map(|()| u)
                        });
                        errors.check("checkpoint_uri", uri)
                    })
                    .map(|u| u.to_string());
                spot = Some(training::Spot { max_wait_seconds: w, checkpoint_uri: checkpoint });
            }
            Some(_) => {
                errors.check::<()>("max_wait_seconds", Err("Max wait must be at least the max runtime.".into()));
            }
            None => {
                errors.check::<()>(
                    "max_wait_seconds",
                    Err("Spot training needs a max wait (at least the max runtime).".into()),
                );
            }
        }
    }
    let mut hps = BTreeMap::new();
    for (i, kv) in r.hyperparameters.iter().enumerate() {
        let key = kv.key.trim();
        let field = format!("hyperparameters[{i}].key");
        if key.is_empty() {
            errors.check::<()>(&field, Err("Give the hyperparameter a name.".into()));
        } else if key.len() > 256 || kv.value.len() > 2500 {
            errors.check::<()>(&field, Err("Use at most 256 characters for names and 2500 for values.".into()));
        } else if hps.insert(key.to_owned(), kv.value.clone()).is_some() {
            errors.check::<()>(&field, Err(format!("`{key}` is given twice.")));
        }
    }
    let mut metric_defs = Vec::new();
    let mut metric_names = HashSet::new();
    for (i, m) in r.metric_definitions.iter().enumerate() {
        let mname = m.name.trim();
        if mname.is_empty() || mname.len() > 255 {
            errors.check::<()>(
                &format!("metric_definitions[{i}].name"),
                Err("Give the metric a name (up to 255 characters).".into()),
            );
        } else if !metric_names.insert(mname.to_owned()) {
            errors.check::<()>(&format!("metric_definitions[{i}].name"), Err(format!("`{mname}` is defined twice.")));
        }
        if errors.check(&format!("metric_definitions[{i}].regex"), metric_regex(&m.regex)).is_some() {
            metric_defs.push(training::MetricDefinition { name: mname.to_owned(), regex: m.regex.clone() });
        }
    }
    if r.metric_definitions.len() > 40 {
        errors.check::<()>("metric_definitions", Err("Use at most 40 metric definitions.".into()));
    }
    let mut tags = BTreeMap::new();
    for (i, kv) in r.tags.iter().enumerate() {
        let key = kv.key.trim();
        let field = format!("tags[{i}].key");
        if key.is_empty() || key.len() > 128 || kv.value.len() > 256 {
            errors.check::<()>(&field, Err("Use a key of 1-128 and a value of up to 256 characters.".into()));
        } else if key.starts_with("aws:") || key.starts_with("capstan:") {
            errors.check::<()>(&field, Err("Keys starting with aws: or capstan: are reserved.".into()));
        } else if tags.insert(key.to_owned(), kv.value.clone()).is_some() {
            errors.check::<()>(&field, Err(format!("`{key}` is given twice.")));
        }
    }
    let output = match r.output_uri.as_deref().filter(|o| !o.trim().is_empty()) {
        None => Some(format!("s3://{}/jobs/{team}/", state.storage.bucket)),
        Some(o) => errors
            .check(
                "output_uri",
                S3Uri::parse(o)
                    .and_then(|u| crate::datasets::versions::reachable(&state.storage.bucket, owner, &u).map(|()| u)),
            )
            .map(|u| u.to_string()),
    };
    let role = if local {
        None
    } else {
        let team_role = sqlx::query_scalar!("select sagemaker_role_arn from team where team_id = $1", team_id)
            .fetch_one(ctx.pool())
            .await?;
        // The role is the team's (set by a site admin) or the site's:
        // naming another would let a member run code with its rights.
        let granted = team_role.or_else(|| state.settings.sagemaker_role_arn.clone());
        let named = r.role_arn.as_deref().map(str::trim).filter(|s| !s.is_empty());
        match (named, granted) {
            // another role only if a site admin put it on the team's list
            (Some(named), _) if owner.allowed_role_arns.iter().any(|a| a == named) => {
                errors.check("role_arn", role_arn(named))
            }
            (Some(named), granted) if granted.as_deref() != Some(named) => {
                errors.check::<()>(
                    "role_arn",
                    Err("This team's jobs run as the IAM role a site admin set for it (or one of the roles a \
                         site admin allowed it); leave role_arn empty or name one of those."
                        .into()),
                );
                None
            }
            (_, Some(arn)) => errors.check("role_arn", role_arn(&arn)),
            (_, None) => {
                errors.check::<()>(
                    "role_arn",
                    Err("No IAM role is set for this team's SageMaker jobs: a site admin sets one in the team's \
                         settings (or CAPSTAN_SAGEMAKER_ROLE_ARN for the whole site)."
                        .into()),
                );
                None
            }
        }
    };
    // Channels: names, then versions of this team that are ready.
    let mut channels = Vec::new();
    let mut seen = HashSet::new();
    for (i, c) in r.channels.iter().enumerate() {
        let Some(cname) = errors.check(&format!("channels[{i}].name"), channel_name(&c.name)) else { continue };
        if !seen.insert(cname.clone()) {
            errors.check::<()>(&format!("channels[{i}].name"), Err(format!("The channel {cname} is given twice.")));
            continue;
        }
        let version = sqlx::query!(
            r#"select v.team_id, v.status::text as "status!", v.bucket, v.prefix, v.number, d.name
               from dataset_version v join dataset d on d.dataset_id = v.dataset_id where v.version_id = $1"#,
            c.version_id
        )
        .fetch_optional(ctx.pool())
        .await?;
        match version {
            Some(v) if v.team_id == team_id => {
                if v.status == "ready" {
                    channels.push((cname, c.version_id, format!("s3://{}/{}", v.bucket, v.prefix)));
                } else {
                    errors.check::<()>(
                        &format!("channels[{i}].version_id"),
                        Err(format!("{} v{} is {}; use a ready version.", v.name, v.number, v.status)),
                    );
                }
            }
            // Another team's version is not there, as far as this caller knows.
            _ => return Err(AppError::NotFound("Dataset version".into())),
        }
    }
    errors.finish()?;
    // The source archive must exist, be ours, and hold the entry point.
    let script = match (entry.clone(), source) {
        (Some(entry), Some(source)) => {
            let (bucket, key) = object_uri(source).map_err(|m| AppError::field("source_uri", m))?;
            let as_prefix = S3Uri { bucket: bucket.clone(), prefix: key.clone() };
            crate::datasets::versions::reachable(&state.storage.bucket, owner, &as_prefix)
                .map_err(|m| AppError::field("source_uri", m))?;
            let files = archive_files(state, &bucket, &key).await.map_err(|m| AppError::field("source_uri", m))?;
            if !files.iter().any(|f| f == &entry) {
                let mut shown: Vec<&str> =
                    files.iter().map(String::as_str).filter(|f| f.ends_with(".py")).take(8).collect();
                if shown.is_empty() {
                    shown = files.iter().map(String::as_str).take(8).collect();
                }
                return Err(AppError::field(
                    "entry_point",
                    format!("{entry} is not in the source folder (it has: {}).", shown.join(", ")),
                ));
            }
            Some(training::Script { entry_point: entry, source_uri: source.trim().to_owned() })
        }
        _ => None,
    };
    let (Some(name), Some(output)) = (name, output) else { return Err(AppError::Internal) };
    let spec = training::JobSpec {
        name: engine_name(&name, id),
        job_id: id.to_string(),
        image: image.or(framework_image),
        script,
        instance_type: r.instance_type.trim().to_owned(),
        instance_count: r.instance_count,
        volume_gb: r.volume_gb,
        max_runtime_seconds: r.max_runtime_seconds,
        spot,
        hyperparameters: hps,
        metric_definitions: metric_defs,
        channels: channels.iter().map(|(n, _, uri)| training::Channel { name: n.clone(), uri: uri.clone() }).collect(),
        output_uri: output,
        tags,
        role_arn: role,
        region,
        team: team_id.to_string(),
    };
    Ok(Checked { name, spec, channels, usd_per_hour: price })
}

/// The file names in a `.tar.gz` source archive (at most 64 MiB read).
async fn archive_files(state: &AppState, bucket: &str, key: &str) -> Result<Vec<String>, String> {
    let head = state
        .storage
        .client
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("s3://{bucket}/{key}: {}", storage::S3Failure::from(e)))?;
    let size = u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0);
    if size > 64 << 20 {
        return Err("The source archive is over 64 MiB; keep data in datasets, not in the source folder.".into());
    }
    let bytes = storage::read_range(&state.storage.client, bucket, key, 0, size)
        .await
        .map_err(|e| format!("s3://{bucket}/{key}: {e}"))?;
    tokio::task::spawn_blocking(move || training::archive::list(&bytes).map_err(|e| e.to_string()))
        .await
        .map_err(|_| "The source archive could not be read.".to_owned())?
}

pub async fn launch(ctx: &Ctx, team: &str, request: LaunchRequest) -> Result<TrainingJob, AppError> {
    let (team, _) = crate::teams::domain::load(ctx, team, Action::Contribute).await?;
    let actor = ctx.actor()?;
    let id = Uuid::now_v7();
    let checked = check(ctx, &team, id, &request).await?;
    let spec = &checked.spec;
    let mut tx = ctx.pool().begin().await?;
    sqlx::query!(
        "insert into training_job (job_id, team_id, name, engine_name, backend, request, spec, instance_type,
             instance_count, max_runtime_seconds, spot, region, usd_per_hour, output_uri, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        id,
        team.id,
        checked.name,
        spec.name,
        ctx.state.training.kind(),
        serde_json::to_value(&request).map_err(anyhow::Error::from)?,
        serde_json::to_value(spec).map_err(anyhow::Error::from)?,
        spec.instance_type,
        spec.instance_count,
        spec.max_runtime_seconds,
        spec.spot.is_some(),
        spec.region,
        checked.usd_per_hour,
        spec.output_uri,
        actor.user_id,
    )
    .execute(&mut *tx)
    .await?;
    for (name, version_id, uri) in &checked.channels {
        sqlx::query!(
            "insert into training_job_channel (job_id, name, version_id, uri) values ($1, $2, $3, $4)",
            id,
            name,
            version_id,
            uri
        )
        .execute(&mut *tx)
        .await?;
    }
    ctx.record(
        &mut tx,
        NewEvent {
            team_id: Some(team.id),
            action: "training_job.launched",
            target_type: "training_job",
            target_id: Some(id.to_string()),
            summary: json!({ "name": checked.name, "engine_name": spec.name, "backend": ctx.state.training.kind(),
                             "instance_type": spec.instance_type, "instance_count": spec.instance_count,
                             "channels": checked.channels.iter().map(|(n, v, _)| json!({"name": n, "version_id": v})).collect::<Vec<_>>() }),
        },
    )
    .await?;
    tx.commit().await?;
    ctx.state.training_wake.notify_one();
    get(ctx, id).await
}

/// Stores a script-mode source folder as a content-addressed
/// `sourcedir.tar.gz` in the team's area of Capstan's bucket.
pub async fn store_source(ctx: &Ctx, team: &str, files: Vec<(String, Vec<u8>)>) -> Result<SourceArchive, AppError> {
    use sha2::Digest as _;
    let (team, _) = crate::teams::domain::load(ctx, team, Action::Contribute).await?;
    let mut errors = Vec::new();
    if files.is_empty() {
        errors.push(FieldError::new("files", "Choose the files of the source folder."));
    }
    let mut seen = HashSet::new();
    let mut clean = Vec::new();
    for (i, (path, body)) in files.into_iter().enumerate() {
        let p = path.trim().trim_start_matches("./").to_owned();
        let ok = p.len() <= 512 && storage::check_relative(&p).is_ok();
        if !ok {
            errors.push(FieldError::new(&format!("files[{i}]"), format!("`{path}` is not a relative file path.")));
        } else if !seen.insert(p.clone()) {
            errors.push(FieldError::new(&format!("files[{i}]"), format!("`{p}` is given twice.")));
        } else {
            clean.push((p, body));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    clean.sort();
    // A deterministic archive (fixed times and modes) so equal folders share one URI.
    let (archive, names, bytes) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<u8>, Vec<String>, i64)> {
            let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
            let mut total = 0i64;
            for (path, body) in &clean {
                let mut header = tar::Header::new_gnu();
                header.set_size(body.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(0);
                header.set_cksum();
                tar.append_data(&mut header, path, &body[..])?;
                total += i64::try_from(body.len()).unwrap_or(i64::MAX);
            }
            let gz = tar.into_inner()?.finish()?;
            Ok((gz, clean.into_iter().map(|(p, _)| p).collect(), total))
        })
        .await
        .map_err(anyhow::Error::from)??;
    let digest = hex::encode(sha2::Sha256::digest(&archive));
    let key = format!("jobs/{}/sources/{}/sourcedir.tar.gz", team.slug, &digest[..32]);
    let storage = &ctx.state.storage;
    storage.client.put_object().bucket(&storage.bucket).key(&key).body(archive.into()).send().await.map_err(|e| {
        tracing::error!(error = %storage::S3Failure::from(e), "could not store a source archive");
        AppError::Internal
    })?;
    Ok(SourceArchive { source_uri: format!("s3://{}/{key}", storage.bucket), files: names, bytes })
}
