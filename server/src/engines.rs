//! Training engine wiring: SageMaker in AWS mode, the local runner otherwise.

use crate::config::Config;
use std::sync::Arc;
use storage::Storage;
use training::local::{LocalConfig, LocalRunner};
use training::sagemaker::SageMaker;

/// The configured training backend.
pub async fn training_backend(config: &Config, storage: &Storage) -> Arc<dyn training::Backend> {
    if config.mode == "aws" {
        let shared = storage::sdk_config(Some(&config.region()), None, None).await;
        Arc::new(SageMaker::new(&shared, config.sagemaker_endpoint.as_deref(), config.logs_endpoint.as_deref()))
    } else {
        Arc::new(LocalRunner::new(
            LocalConfig {
                root: config.data_dir.join("training"),
                python: config.python.clone(),
                max_jobs: config.local_max_jobs,
                stop_grace: std::time::Duration::from_secs(config.local_stop_grace_secs),
            },
            storage.client.clone(),
        ))
    }
}
