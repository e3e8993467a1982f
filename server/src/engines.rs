//! Training engine wiring: SageMaker in AWS mode, the local runner otherwise.

use crate::config::Config;
use std::sync::Arc;
use storage::Storage;
use training::local::{LocalConfig, LocalRunner};
use training::sagemaker::SageMaker;
use training::sandbox::Sandbox;

/// Local mode's sandbox for user code (`None` in AWS mode, where SageMaker
/// runs it); an error when bubblewrap is missing and unsandboxed runs are not
/// allowed.
pub fn sandbox(config: &Config) -> anyhow::Result<Option<Sandbox>> {
    if config.mode == crate::config::Mode::Aws {
        return Ok(None);
    }
    Sandbox::detect(&config.python, config.allow_unsandboxed_jobs).map(Some)
}

/// The configured training backend.
pub async fn training_backend(
    config: &Config,
    storage: &Storage,
    sandbox: Option<Sandbox>,
) -> Arc<dyn training::Backend> {
    let Some(sandbox) = sandbox else {
        let shared = storage::sdk_config(Some(&config.region()), None, None).await;
        return Arc::new(SageMaker::new(
            &shared,
            config.sagemaker_endpoint.as_deref(),
            config.logs_endpoint.as_deref(),
        ));
    };
    Arc::new(LocalRunner::new(
        LocalConfig {
            root: config.data_dir.join("training"),
            sandbox,
            max_jobs: config.local_max_jobs,
            stop_grace: std::time::Duration::from_secs(config.local_stop_grace_secs),
        },
        storage.client.clone(),
    ))
}

/// SageMaker's model registry, which Capstan's mirrors in AWS mode; `None`
/// in local mode.
pub async fn model_packages(config: &Config) -> Option<Arc<dyn training::packages::ModelPackages>> {
    if config.mode != crate::config::Mode::Aws {
        return None;
    }
    let shared = storage::sdk_config(Some(&config.region()), None, None).await;
    Some(Arc::new(SageMaker::new(&shared, config.sagemaker_endpoint.as_deref(), config.logs_endpoint.as_deref())))
}

/// Where endpoints run: SageMaker real-time endpoints in AWS mode, the
/// local serving runner otherwise.
pub async fn serving_backend(
    config: &Config,
    storage: &Storage,
    sandbox: Option<Sandbox>,
) -> anyhow::Result<Option<Arc<dyn serving::Serving>>> {
    let Some(sandbox) = sandbox else {
        let shared = storage::sdk_config(Some(&config.region()), None, None).await;
        return Ok(Some(Arc::new(serving::sagemaker::SageMakerServing::new(
            serving::sagemaker::SageMakerServingConfig {
                shared: &shared,
                sagemaker_endpoint: config.sagemaker_endpoint.as_deref(),
                runtime_endpoint: config.sagemaker_runtime_endpoint.as_deref(),
                cloudwatch_endpoint: config.cloudwatch_endpoint.as_deref().or(config.sagemaker_endpoint.as_deref()),
                bucket: config.s3_bucket.clone(),
                default_role: config.sagemaker_role_arn.clone(),
            },
        ))));
    };
    let local = serving::local::LocalServing::new(
        serving::local::LocalServingConfig { root: config.data_dir.join("serving"), sandbox },
        storage.client.clone(),
    )?;
    Ok(Some(Arc::new(local)))
}
