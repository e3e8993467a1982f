//! The SageMaker backend: CreateTrainingJob, DescribeTrainingJob,
//! ListTrainingJobs and StopTrainingJob, with logs from CloudWatch Logs
//! (`/aws/sagemaker/TrainingJobs`, one stream per host).

use crate::{Backend, BackendError, Description, JobSpec, LogChunk, LogLine, Page, Summary, Transition};
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::{
    AlgorithmSpecification, Channel, CheckpointConfig, DataSource, MetricDefinition, OutputDataConfig, ResourceConfig,
    S3DataDistribution, S3DataSource, S3DataType, SortBy, SortOrder, StoppingCondition, Tag, TrainingInputMode,
    TrainingInstanceType,
};
use aws_smithy_types::DateTime;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The log group SageMaker writes training containers' output to.
pub const LOG_GROUP: &str = "/aws/sagemaker/TrainingJobs";

/// Jobs per ListTrainingJobs page (SageMaker's maximum).
pub const PAGE_SIZE: i32 = 100;

pub struct SageMaker {
    pub(crate) client: Client,
    logs: aws_sdk_cloudwatchlogs::Client,
}

impl SageMaker {
    /// Clients from the shared AWS settings; the endpoints override AWS's
    /// (an emulator or stand-in in tests).
    pub fn new(shared: &aws_config::SdkConfig, sagemaker_endpoint: Option<&str>, logs_endpoint: Option<&str>) -> Self {
        let mut sm = aws_sdk_sagemaker::config::Builder::from(shared);
        if let Some(url) = sagemaker_endpoint {
            sm = sm.endpoint_url(url);
        }
        let mut logs = aws_sdk_cloudwatchlogs::config::Builder::from(shared);
        if let Some(url) = logs_endpoint {
            logs = logs.endpoint_url(url);
        }
        Self { client: Client::from_conf(sm.build()), logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs.build()) }
    }
}

/// Hyperparameters as SageMaker receives them. Script mode adds the
/// toolkit's `sagemaker_program` and `sagemaker_submit_directory`, and, as
/// the SageMaker Python SDK does, JSON-encodes every value (the toolkit
/// decodes them again, so the script sees plain strings).
pub fn sagemaker_hyperparameters(spec: &JobSpec) -> BTreeMap<String, String> {
    match &spec.script {
        None => spec.hyperparameters.clone(),
        Some(script) => {
            let json = |v: &str| serde_json::Value::String(v.to_owned()).to_string();
            let mut hps: BTreeMap<String, String> =
                spec.hyperparameters.iter().map(|(k, v)| (k.clone(), json(v))).collect();
            hps.insert("sagemaker_program".into(), json(&script.entry_point));
            hps.insert("sagemaker_submit_directory".into(), json(&script.source_uri));
            hps.insert("sagemaker_container_log_level".into(), "20".into());
            hps.insert("sagemaker_region".into(), json(&spec.region));
            hps
        }
    }
}

fn smithy_time(t: OffsetDateTime) -> DateTime {
    DateTime::from_nanos(t.unix_timestamp_nanos()).unwrap_or_else(|_| DateTime::from_secs(t.unix_timestamp()))
}

fn offset_time(t: &DateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.secs()) * 1_000_000_000 + i128::from(t.subsec_nanos()))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Classifies an SDK error by its AWS error code.
pub(crate) fn classify<E, R>(err: aws_sdk_sagemaker::error::SdkError<E, R>) -> BackendError
where
    E: aws_sdk_sagemaker::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sagemaker::error::SdkError;
    let (code, message) = match &err {
        SdkError::ServiceError(service) => (
            service.err().code().unwrap_or("Unknown").to_owned(),
            service.err().message().unwrap_or("the request failed").to_owned(),
        ),
        SdkError::TimeoutError(_) => ("Timeout".to_owned(), "SageMaker did not answer in time".to_owned()),
        SdkError::DispatchFailure(_) => {
            ("ConnectionFailed".to_owned(), aws_smithy_types::error::display::DisplayErrorContext(&err).to_string())
        }
        other => ("RequestFailed".to_owned(), aws_smithy_types::error::display::DisplayErrorContext(other).to_string()),
    };
    from_code(code, message)
}

pub(crate) fn from_code(code: String, message: String) -> BackendError {
    match code.as_str() {
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" | "RequestLimitExceeded" => {
            BackendError::Throttled { code, message }
        }
        "ResourceInUse" | "ResourceInUseException" => BackendError::AlreadyExists(message),
        "ResourceNotFound" | "ResourceNotFoundException" => BackendError::NotFound(message),
        // SageMaker answers a describe of an unknown job with a validation error.
        "ValidationException"
            if message.contains("not found")
                || message.contains("Could not find")
                || message.contains("does not exist") =>
        {
            BackendError::NotFound(message)
        }
        _ => BackendError::Aws { code, message },
    }
}

#[async_trait::async_trait]
impl Backend for SageMaker {
    fn kind(&self) -> &'static str {
        "sagemaker"
    }

    async fn create(&self, spec: &JobSpec) -> Result<(), BackendError> {
        let image = spec.image.clone().ok_or_else(|| BackendError::Aws {
            code: "ValidationException".into(),
            message: "a training image is required".into(),
        })?;
        let mut algorithm =
            AlgorithmSpecification::builder().training_image(image).training_input_mode(TrainingInputMode::File);
        for m in &spec.metric_definitions {
            algorithm = algorithm.metric_definitions(MetricDefinition::builder().name(&m.name).regex(&m.regex).build());
        }
        let mut request = self
            .client
            .create_training_job()
            .training_job_name(&spec.name)
            .algorithm_specification(algorithm.build())
            .set_role_arn(spec.role_arn.clone())
            .set_hyper_parameters(Some(sagemaker_hyperparameters(spec).into_iter().collect()))
            .output_data_config(OutputDataConfig::builder().s3_output_path(&spec.output_uri).build())
            .resource_config(
                ResourceConfig::builder()
                    .instance_type(TrainingInstanceType::from(spec.instance_type.as_str()))
                    .instance_count(spec.instance_count)
                    .volume_size_in_gb(spec.volume_gb)
                    .build(),
            )
            .stopping_condition(
                StoppingCondition::builder()
                    .max_runtime_in_seconds(spec.max_runtime_seconds)
                    .set_max_wait_time_in_seconds(spec.spot.as_ref().map(|s| s.max_wait_seconds))
                    .build(),
            )
            .tags(Tag::builder().key(crate::JOB_ID_TAG).value(&spec.job_id).build());
        for channel in &spec.channels {
            let source = S3DataSource::builder()
                .s3_data_type(S3DataType::S3Prefix)
                .s3_uri(&channel.uri)
                .s3_data_distribution_type(S3DataDistribution::FullyReplicated)
                .build();
            request = request.input_data_config(
                Channel::builder()
                    .channel_name(&channel.name)
                    .data_source(DataSource::builder().s3_data_source(source).build())
                    .build(),
            );
        }
        for (key, value) in &spec.tags {
            request = request.tags(Tag::builder().key(key).value(value).build());
        }
        if let Some(spot) = &spec.spot {
            request = request.enable_managed_spot_training(true);
            if let Some(uri) = &spot.checkpoint_uri {
                request = request.checkpoint_config(CheckpointConfig::builder().s3_uri(uri).build());
            }
        }
        request.send().await.map_err(classify)?;
        Ok(())
    }

    async fn job_id_tag(&self, name: &str) -> Result<Option<String>, BackendError> {
        let job = self.client.describe_training_job().training_job_name(name).send().await.map_err(classify)?;
        let Some(arn) = job.training_job_arn() else { return Ok(None) };
        let tags = self.client.list_tags().resource_arn(arn).send().await.map_err(classify)?;
        Ok(tags.tags().iter().find(|t| t.key() == Some(crate::JOB_ID_TAG)).and_then(|t| t.value().map(str::to_owned)))
    }

    async fn describe(&self, name: &str) -> Result<Description, BackendError> {
        let job = self.client.describe_training_job().training_job_name(name).send().await.map_err(classify)?;
        let transitions = job
            .secondary_status_transitions()
            .iter()
            .map(|t| Transition {
                status: t.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                start: t.start_time().map_or(OffsetDateTime::UNIX_EPOCH, offset_time),
                end: t.end_time().map(offset_time),
                message: t.status_message().unwrap_or_default().to_owned(),
            })
            .collect();
        Ok(Description {
            name: name.to_owned(),
            status: job.training_job_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            secondary_status: job.secondary_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            failure_reason: job.failure_reason().map(str::to_owned),
            transitions,
            artifact_uri: job.model_artifacts().and_then(|a| a.s3_model_artifacts()).map(str::to_owned),
            billable_seconds: job.billable_time_in_seconds().map(i64::from),
            training_seconds: job.training_time_in_seconds().map(i64::from),
            training_start: job.training_start_time().map(offset_time),
            training_end: job.training_end_time().map(offset_time),
            final_metrics: job
                .final_metric_data_list()
                .iter()
                .filter_map(|m| Some((m.metric_name()?.to_owned(), f64::from(m.value()?))))
                .collect(),
            last_modified: job.last_modified_time().map_or(OffsetDateTime::UNIX_EPOCH, offset_time),
        })
    }

    async fn list(&self, created_after: OffsetDateTime, next_token: Option<String>) -> Result<Page, BackendError> {
        let out = self
            .client
            .list_training_jobs()
            .creation_time_after(smithy_time(created_after))
            .sort_by(SortBy::CreationTime)
            .sort_order(SortOrder::Ascending)
            .max_results(PAGE_SIZE)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(classify)?;
        let jobs = out
            .training_job_summaries()
            .iter()
            .map(|s| Summary {
                name: s.training_job_name().unwrap_or_default().to_owned(),
                status: s.training_job_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                secondary_status: s.secondary_status().map(|s| s.as_str().to_owned()),
                created: s.creation_time().map_or(OffsetDateTime::UNIX_EPOCH, offset_time),
                last_modified: s.last_modified_time().map_or(OffsetDateTime::UNIX_EPOCH, offset_time),
            })
            .collect();
        Ok(Page { jobs, next_token: out.next_token().filter(|t| !t.is_empty()).map(str::to_owned) })
    }

    async fn stop(&self, name: &str) -> Result<(), BackendError> {
        self.client.stop_training_job().training_job_name(name).send().await.map_err(classify)?;
        Ok(())
    }

    async fn logs(&self, name: &str, cursor: Option<&str>) -> Result<LogChunk, BackendError> {
        // The cursor maps each log stream to its next forward token.
        let mut tokens: BTreeMap<String, String> =
            cursor.and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
        let streams = match self
            .logs
            .describe_log_streams()
            .log_group_name(LOG_GROUP)
            .log_stream_name_prefix(format!("{name}/"))
            .send()
            .await
        {
            Ok(out) => out.log_streams().iter().filter_map(|s| s.log_stream_name().map(str::to_owned)).collect(),
            Err(e) => match logs_error(e) {
                BackendError::NotFound(_) => Vec::new(),
                other => return Err(other),
            },
        };
        let mut lines = Vec::new();
        for stream in streams {
            // A bounded number of pages per call keeps one chatty job from
            // starving the others; the cursor picks up where this stops.
            for _ in 0..5 {
                let previous = tokens.get(&stream).cloned();
                let out = self
                    .logs
                    .get_log_events()
                    .log_group_name(LOG_GROUP)
                    .log_stream_name(&stream)
                    .start_from_head(true)
                    .set_next_token(previous.clone())
                    .send()
                    .await
                    .map_err(logs_error)?;
                let host = stream.rsplit('/').next().unwrap_or(&stream).to_owned();
                for event in out.events() {
                    let at = event
                        .timestamp()
                        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
                        .unwrap_or_else(OffsetDateTime::now_utc);
                    lines.push(LogLine {
                        at,
                        stream: host.clone(),
                        text: event.message().unwrap_or_default().to_owned(),
                    });
                }
                let next = out.next_forward_token().map(str::to_owned);
                let done = out.events().is_empty() || next == previous;
                if let Some(next) = next {
                    tokens.insert(stream.clone(), next);
                }
                if done {
                    break;
                }
            }
        }
        lines.sort_by_key(|l| l.at);
        Ok(LogChunk { lines, cursor: Some(serde_json::to_string(&tokens).unwrap_or_default()) })
    }
}

fn logs_error<E, R>(err: aws_sdk_cloudwatchlogs::error::SdkError<E, R>) -> BackendError
where
    E: aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_cloudwatchlogs::error::SdkError;
    match &err {
        SdkError::ServiceError(service) => from_code(
            service.err().code().unwrap_or("Unknown").to_owned(),
            service.err().message().unwrap_or("the request failed").to_owned(),
        ),
        _ => BackendError::Aws {
            code: "ConnectionFailed".into(),
            message: aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Script;

    #[test]
    fn script_mode_hyperparameters_are_json_encoded() {
        let spec = JobSpec {
            name: "j".into(),
            job_id: "id".into(),
            image: Some("img".into()),
            script: Some(Script { entry_point: "train.py".into(), source_uri: "s3://b/src/sourcedir.tar.gz".into() }),
            instance_type: "ml.m5.large".into(),
            instance_count: 1,
            volume_gb: 30,
            max_runtime_seconds: 3600,
            spot: None,
            hyperparameters: [("epochs".to_owned(), "10".to_owned())].into(),
            metric_definitions: vec![],
            channels: vec![],
            output_uri: "s3://b/out/".into(),
            tags: BTreeMap::new(),
            role_arn: None,
            region: "us-east-1".into(),
            team: String::new(),
        };
        let hps = sagemaker_hyperparameters(&spec);
        assert_eq!(hps["epochs"], "\"10\"");
        assert_eq!(hps["sagemaker_program"], "\"train.py\"");
        assert_eq!(hps["sagemaker_submit_directory"], "\"s3://b/src/sourcedir.tar.gz\"");
        let byo = JobSpec { script: None, ..spec };
        assert_eq!(sagemaker_hyperparameters(&byo)["epochs"], "10");
    }
}
