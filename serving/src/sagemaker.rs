//! The SageMaker backend of endpoints: a model per variant (`CreateModel`),
//! an endpoint configuration per shape of the endpoint
//! (`CreateEndpointConfig`: production variants, the shadow variant, data
//! capture), `CreateEndpoint` / `UpdateEndpoint` to put a configuration in
//! place, `UpdateEndpointWeightsAndCapacities` when only weights or instance
//! counts change (no redeployment), `DescribeEndpoint` for the status, and
//! `DeleteEndpoint` with its configurations and models. Invocations go to
//! SageMaker Runtime's `InvokeEndpoint` with `TargetVariant`.
//!
//! Every name is derived from what it names (a hash of the endpoint, the
//! variant and the model; of the variants' shape for a configuration), so a
//! call repeated after a crash finds what the first one made instead of
//! making a second one: [`Serving::deploy`] can be called any number of
//! times for one generation of an endpoint. It answers
//! [`ServingError::Busy`] while SageMaker is making the change, so the
//! serving worker asks again; it answers `Ok` once the endpoint runs this
//! generation's configuration, weights and counts and what earlier ones
//! left (configurations, models) is deleted — then the generation counts as
//! deployed.

use crate::{
    Answer, BlueGreen, Described, EndpointSpec, FleetTraffic, Instance, InstanceStatus, InvokeError, MAX_PAYLOAD,
    Request, Serving, ServingError, Target,
};
use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemaker::types::{
    Alarm, AutoRollbackConfig, BlueGreenUpdatePolicy, CapacitySize, CapacitySizeType, CaptureMode, CaptureOption,
    ContainerDefinition, DataCaptureConfig, DeploymentConfig, DesiredWeightAndCapacity, ProductionVariant,
    ProductionVariantInstanceType, Tag, TrafficRoutingConfig, TrafficRoutingConfigType,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// What the backend needs besides the AWS settings.
pub struct SageMakerServingConfig<'a> {
    pub shared: &'a aws_config::SdkConfig,
    /// A SageMaker API endpoint instead of AWS's (an emulator in tests).
    pub sagemaker_endpoint: Option<&'a str>,
    /// A SageMaker Runtime endpoint instead of AWS's.
    pub runtime_endpoint: Option<&'a str>,
    /// A CloudWatch endpoint instead of AWS's (the variants' metrics).
    pub cloudwatch_endpoint: Option<&'a str>,
    /// Capstan's bucket: data capture goes to the team's area of it.
    pub bucket: String,
    /// The role models run as when the team has none of its own.
    pub default_role: Option<String>,
}

pub struct SageMakerServing {
    client: Client,
    runtime: aws_sdk_sagemakerruntime::Client,
    cloudwatch: crate::cloudwatch::CloudWatch,
    bucket: String,
    default_role: Option<String>,
    /// The last answer of [`Serving::describe`] per endpoint, reused while
    /// the endpoint is settled (the serving worker asks every second;
    /// DescribeEndpoint is rate limited).
    described: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Described)>>,
}

/// How long a settled endpoint's description is reused.
const SETTLED_FOR: Duration = Duration::from_secs(30);

impl SageMakerServing {
    pub fn new(config: SageMakerServingConfig<'_>) -> Self {
        let mut sm = aws_sdk_sagemaker::config::Builder::from(config.shared);
        if let Some(url) = config.sagemaker_endpoint {
            sm = sm.endpoint_url(url);
        }
        let mut rt = aws_sdk_sagemakerruntime::config::Builder::from(config.shared);
        if let Some(url) = config.runtime_endpoint.or(config.sagemaker_endpoint) {
            rt = rt.endpoint_url(url);
        }
        Self {
            client: Client::from_conf(sm.build()),
            runtime: aws_sdk_sagemakerruntime::Client::from_conf(rt.build()),
            cloudwatch: crate::cloudwatch::CloudWatch::new(config.shared, config.cloudwatch_endpoint),
            bucket: config.bucket,
            default_role: config.default_role,
            described: Default::default(),
        }
    }

    fn forget(&self, name: &str) {
        self.described.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(name);
    }
}

/// SageMaker's longest name.
const MAX_NAME: usize = 63;
/// `-m` or `-c` and 8 hex digits.
const SUFFIX: usize = 10;

/// The start of every name made for endpoint `endpoint`: the endpoint's name,
/// shortened to leave room for the suffix.
fn stem(endpoint: &str) -> &str {
    endpoint[..endpoint.len().min(MAX_NAME - SUFFIX)].trim_end_matches('-')
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..4])
}

/// Whether `name` was made by [`plan`] for endpoint `endpoint` (`kind` `m`
/// for a model, `c` for a configuration). When the endpoint's name had to be
/// shortened, another endpoint may share the stem: the caller also checks
/// the `capstan:endpoint` tag.
fn made_for(name: &str, endpoint: &str, kind: char) -> bool {
    name.strip_prefix(stem(endpoint))
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_prefix(kind))
        .is_some_and(|hash| hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One SageMaker model: what CreateModel receives.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPlan {
    pub name: String,
    pub image: String,
    pub model_data: String,
    /// Script mode: SageMaker's framework containers read the entry point
    /// from `SAGEMAKER_PROGRAM` in `SAGEMAKER_SUBMIT_DIRECTORY` (the training
    /// job's sources) when the model archive has no `code/inference.py`.
    pub environment: Vec<(String, String)>,
}

/// One variant of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantPlan {
    pub name: String,
    pub model: String,
    pub instance_type: String,
    pub count: u32,
    pub weight: f32,
    /// In `ShadowProductionVariants` (SageMaker copies the traffic).
    pub native_shadow: bool,
}

/// What an endpoint spec becomes on SageMaker.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub models: Vec<ModelPlan>,
    pub config: String,
    pub variants: Vec<VariantPlan>,
    /// Data capture: sampling percentage and destination.
    pub capture: Option<(u32, String)>,
    pub role: String,
}

/// The models, configuration and variants of `spec` with `role`.
///
/// SageMaker takes a shadow variant (`ShadowProductionVariants`) only beside
/// exactly one production variant; its share of copied requests is its
/// weight relative to the production variant's. Beside several production
/// variants the shadow is deployed as a production variant of weight 0 — it
/// gets no traffic of SageMaker's choosing — and Capstan's gateway sends it
/// the sampled copies by `TargetVariant`.
pub fn plan(spec: &EndpointSpec, role: &str, bucket: &str) -> Result<Plan, ServingError> {
    let production = spec.production().count();
    let native_shadow = !crate::gateway_copies_shadow("sagemaker", production);
    let production_weight = spec.production().map(|v| v.weight).next().unwrap_or(1.0);
    let mut models = Vec::new();
    let mut variants = Vec::new();
    for v in &spec.variants {
        let image = v.image.clone().filter(|i| !i.trim().is_empty()).ok_or_else(|| {
            ServingError::Invalid(format!(
                "variant {}: its model version has no inference image; SageMaker needs one (register the version with an image URI)",
                v.name
            ))
        })?;
        let code = v.code_uri.as_deref().unwrap_or_default();
        let name =
            format!("{}-m{}", stem(&spec.name), short_hash(&[&spec.name, &v.name, &v.model_uri, &image, code, role]));
        let mut environment = Vec::new();
        if let Some(code_uri) = &v.code_uri {
            environment.push(("SAGEMAKER_PROGRAM".to_owned(), "inference.py".to_owned()));
            environment.push(("SAGEMAKER_SUBMIT_DIRECTORY".to_owned(), code_uri.clone()));
        }
        models.push(ModelPlan { name: name.clone(), image, model_data: v.model_uri.clone(), environment });
        let (weight, native) = match v.shadow_percent {
            None => (v.weight as f32, false),
            Some(percent) if native_shadow => ((production_weight * f64::from(percent) / 100.0) as f32, true),
            Some(_) => (0.0, false),
        };
        variants.push(VariantPlan {
            name: v.name.clone(),
            model: name,
            instance_type: v.instance_type.clone(),
            count: v.instance_count,
            weight,
            native_shadow: native,
        });
    }
    let capture = spec
        .capture_percent
        .map(|p| (p, format!("s3://{bucket}/endpoints/{}/{}/data-capture/", spec.team_slug, spec.name)));
    // the configuration's name covers its shape, not the weights and counts
    // (those change in place)
    let mut shape: Vec<String> =
        variants.iter().map(|v| format!("{}|{}|{}|{}", v.name, v.model, v.instance_type, v.native_shadow)).collect();
    if let Some((p, dest)) = &capture {
        shape.push(format!("capture|{p}|{dest}"));
    }
    let parts: Vec<&str> = std::iter::once(spec.name.as_str()).chain(shape.iter().map(String::as_str)).collect();
    let config = format!("{}-c{}", stem(&spec.name), short_hash(&parts));
    Ok(Plan { models, config, variants, capture, role: role.to_owned() })
}

/// SageMaker's `DeploymentConfig` for a blue/green update.
fn deployment_config(b: &BlueGreen) -> DeploymentConfig {
    let percent = |p: u32| {
        CapacitySize::builder().r#type(CapacitySizeType::CapacityPercent).value(i32::try_from(p).unwrap_or(100)).build()
    };
    let routing = TrafficRoutingConfig::builder().wait_interval_in_seconds(i32::try_from(b.wait_seconds).unwrap_or(0));
    let routing = match b.traffic {
        FleetTraffic::AllAtOnce => routing.r#type(TrafficRoutingConfigType::AllAtOnce),
        FleetTraffic::Canary(p) => routing.r#type(TrafficRoutingConfigType::Canary).canary_size(percent(p)),
        FleetTraffic::Linear(p) => routing.r#type(TrafficRoutingConfigType::Linear).linear_step_size(percent(p)),
    };
    let policy = BlueGreenUpdatePolicy::builder()
        .traffic_routing_configuration(routing.build())
        .termination_wait_in_seconds(i32::try_from(b.termination_wait_seconds).unwrap_or(0))
        .build();
    let config = DeploymentConfig::builder().blue_green_update_policy(policy);
    let config = if b.alarms.is_empty() {
        config
    } else {
        config.auto_rollback_configuration(
            AutoRollbackConfig::builder()
                .set_alarms(Some(b.alarms.iter().map(|a| Alarm::builder().alarm_name(a).build()).collect()))
                .build(),
        )
    };
    config.build()
}

/// Capstan's status for SageMaker's `EndpointStatus`.
pub fn status_of(sagemaker: &str) -> &'static str {
    match sagemaker {
        "InService" => "InService",
        "Creating" => "Creating",
        "Updating" | "SystemUpdating" => "Updating",
        "RollingBack" => "RollingBack",
        "Deleting" => "Deleting",
        // Failed, UpdateRollbackFailed, OutOfService
        _ => "Failed",
    }
}

fn is_busy(sagemaker: &str) -> bool {
    matches!(sagemaker, "Creating" | "Updating" | "SystemUpdating" | "RollingBack" | "Deleting")
}

fn failure<E, R>(what: &str, err: SdkError<E, R>) -> ServingError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or("the request failed");
            // a request SageMaker refuses as asked is the user's to fix
            if code == "ValidationException" {
                ServingError::Invalid(format!("{what}: {message}"))
            } else {
                ServingError::Other(anyhow::anyhow!("{what}: {code}: {message}"))
            }
        }
        _ => ServingError::Other(anyhow::anyhow!("{what}: {}", DisplayErrorContext(&err))),
    }
}

/// A delete's result: done, or already gone (a retry after a crash, or
/// SageMaker deleting it first) is the same; anything else is a failure.
fn deleted<T, E, R>(what: &str, result: Result<T, SdkError<E, R>>) -> Result<(), ServingError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => Err(failure(what, e)),
    }
}

fn not_found<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            let message = service.err().message().unwrap_or_default();
            matches!(service.err().code(), Some("ResourceNotFound" | "ResourceNotFoundException"))
                || message.contains("Could not find")
                || message.contains("not found")
                || message.contains("does not exist")
        }
        _ => false,
    }
}

fn already_exists<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            matches!(service.err().code(), Some("ResourceInUse" | "ResourceInUseException"))
                || service.err().message().unwrap_or_default().contains("already exist")
        }
        _ => false,
    }
}

fn tags(spec_name: &str, team: &str) -> Vec<Tag> {
    vec![
        Tag::builder().key("capstan:endpoint").value(spec_name).build(),
        Tag::builder().key("capstan:team").value(team).build(),
    ]
}

/// The endpoint as DescribeEndpoint gives it.
struct Current {
    status: String,
    reason: Option<String>,
    config: String,
    /// (variant, weight, instance count), desired where SageMaker says.
    variants: Vec<(String, Option<f32>, Option<i32>)>,
    /// Shadow variants' (name, count).
    shadows: Vec<(String, Option<i32>)>,
}

impl SageMakerServing {
    async fn current(&self, name: &str) -> Result<Option<Current>, ServingError> {
        match self.client.describe_endpoint().endpoint_name(name).send().await {
            Ok(out) => Ok(Some(Current {
                status: out.endpoint_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                reason: out.failure_reason().map(str::to_owned),
                config: out.endpoint_config_name().unwrap_or_default().to_owned(),
                variants: out
                    .production_variants()
                    .iter()
                    .map(|v| {
                        (
                            v.variant_name().unwrap_or_default().to_owned(),
                            v.desired_weight().or(v.current_weight()),
                            v.desired_instance_count().or(v.current_instance_count()),
                        )
                    })
                    .collect(),
                shadows: out
                    .shadow_production_variants()
                    .iter()
                    .map(|v| {
                        (
                            v.variant_name().unwrap_or_default().to_owned(),
                            v.current_instance_count().or(v.desired_instance_count()),
                        )
                    })
                    .collect(),
            })),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(failure("DescribeEndpoint", e)),
        }
    }

    async fn create_model(&self, spec: &EndpointSpec, plan: &Plan, model: &ModelPlan) -> Result<(), ServingError> {
        let mut container = ContainerDefinition::builder().image(&model.image).model_data_url(&model.model_data);
        for (k, v) in &model.environment {
            container = container.environment(k, v);
        }
        let sent = self
            .client
            .create_model()
            .model_name(&model.name)
            .execution_role_arn(&plan.role)
            .primary_container(container.build())
            .set_tags(Some(tags(&spec.name, &spec.team_slug)))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // made by an earlier try of this generation: the name says it is the same
            Err(e) if already_exists(&e) => Ok(()),
            Err(e) => Err(failure("CreateModel", e)),
        }
    }

    async fn create_config(&self, spec: &EndpointSpec, plan: &Plan) -> Result<(), ServingError> {
        let variant = |v: &VariantPlan| {
            ProductionVariant::builder()
                .variant_name(&v.name)
                .model_name(&v.model)
                .instance_type(ProductionVariantInstanceType::from(v.instance_type.as_str()))
                .initial_instance_count(i32::try_from(v.count).unwrap_or(1))
                .initial_variant_weight(v.weight)
                .build()
        };
        let mut request = self.client.create_endpoint_config().endpoint_config_name(&plan.config);
        for v in &plan.variants {
            request = if v.native_shadow {
                request.shadow_production_variants(variant(v))
            } else {
                request.production_variants(variant(v))
            };
        }
        if let Some((percent, destination)) = &plan.capture {
            request = request.data_capture_config(
                DataCaptureConfig::builder()
                    .enable_capture(true)
                    .initial_sampling_percentage(i32::try_from(*percent).unwrap_or(100))
                    .destination_s3_uri(destination)
                    .capture_options(CaptureOption::builder().capture_mode(CaptureMode::Input).build())
                    .capture_options(CaptureOption::builder().capture_mode(CaptureMode::Output).build())
                    .build(),
            );
        }
        match request.set_tags(Some(tags(&spec.name, &spec.team_slug))).send().await {
            Ok(_) => Ok(()),
            Err(e) if already_exists(&e) => Ok(()),
            Err(e) => Err(failure("CreateEndpointConfig", e)),
        }
    }

    /// Whether SageMaker's weights and counts differ from the plan's.
    async fn config_exists(&self, name: &str) -> Result<bool, ServingError> {
        match self.client.describe_endpoint_config().endpoint_config_name(name).send().await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(failure("DescribeEndpointConfig", e)),
        }
    }

    fn weights_differ(plan: &Plan, current: &Current) -> bool {
        plan.variants.iter().filter(|v| !v.native_shadow).any(|v| {
            let Some((_, weight, count)) = current.variants.iter().find(|(n, ..)| *n == v.name) else {
                return true;
            };
            // moto leaves out a weight of 0
            (weight.unwrap_or(0.0) - v.weight).abs() > 1e-4 || count.is_some_and(|c| c != v.count as i32)
        })
    }

    /// Names (made for `endpoint`) among `names`, with their ARNs, that
    /// carry its `capstan:endpoint` tag when the stem is shared.
    async fn ours(&self, endpoint: &str, kind: char, names: Vec<(String, String)>) -> Vec<String> {
        let shortened = stem(endpoint) != endpoint;
        let mut out = Vec::new();
        for (name, arn) in names.into_iter().filter(|(n, _)| made_for(n, endpoint, kind)) {
            if shortened {
                let tagged = self.client.list_tags().resource_arn(&arn).send().await.is_ok_and(|t| {
                    t.tags().iter().any(|t| t.key() == Some("capstan:endpoint") && t.value() == Some(endpoint))
                });
                if !tagged {
                    continue;
                }
            }
            out.push(name);
        }
        out
    }

    /// Deletes the configurations and models made for `endpoint` other than
    /// those in `keep`.
    async fn clean_up(&self, endpoint: &str, keep: &[&str]) -> Result<(), ServingError> {
        let configs: Vec<(String, String)> = self
            .client
            .list_endpoint_configs()
            .name_contains(stem(endpoint))
            .max_results(100)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| failure("ListEndpointConfigs", e))?
            .into_iter()
            .map(|c| {
                (
                    c.endpoint_config_name().unwrap_or_default().to_owned(),
                    c.endpoint_config_arn().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        for name in self.ours(endpoint, 'c', configs).await {
            if keep.contains(&name.as_str()) {
                continue;
            }
            deleted(
                "DeleteEndpointConfig",
                self.client.delete_endpoint_config().endpoint_config_name(&name).send().await,
            )?;
        }
        let models: Vec<(String, String)> = self
            .client
            .list_models()
            .name_contains(stem(endpoint))
            .max_results(100)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| failure("ListModels", e))?
            .into_iter()
            .map(|m| (m.model_name().unwrap_or_default().to_owned(), m.model_arn().unwrap_or_default().to_owned()))
            .collect();
        for name in self.ours(endpoint, 'm', models).await {
            if keep.contains(&name.as_str()) {
                continue;
            }
            deleted("DeleteModel", self.client.delete_model().model_name(&name).send().await)?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Serving for SageMakerServing {
    async fn deploy(&self, spec: &EndpointSpec) -> Result<(), ServingError> {
        let role = spec.role.clone().or_else(|| self.default_role.clone()).ok_or_else(|| {
            ServingError::Invalid(
                "no IAM role to run the models as: a site admin sets the team's SageMaker role (or CAPSTAN_SAGEMAKER_ROLE_ARN for the site)".into(),
            )
        })?;
        let plan = plan(spec, &role, &self.bucket)?;
        self.forget(&spec.name);
        let current = self.current(&spec.name).await?;
        if let Some(current) = &current
            && is_busy(&current.status)
        {
            return Err(ServingError::Busy(format!("endpoint {} is {}", spec.name, current.status)));
        }
        for model in &plan.models {
            self.create_model(spec, &plan, model).await?;
        }
        crate::fault_point("serving:after-models");
        match current {
            None => {
                self.create_config(spec, &plan).await?;
                crate::fault_point("serving:after-config");
                let created = self
                    .client
                    .create_endpoint()
                    .endpoint_name(&spec.name)
                    .endpoint_config_name(&plan.config)
                    .set_tags(Some(tags(&spec.name, &spec.team_slug)))
                    .send()
                    .await;
                match created {
                    Ok(_) => Err(ServingError::Busy(format!("endpoint {} is being created", spec.name))),
                    Err(e) if already_exists(&e) => Err(ServingError::Busy(format!("endpoint {} exists", spec.name))),
                    Err(e) => Err(failure("CreateEndpoint", e)),
                }
            }
            Some(current) if current.config != plan.config => {
                if status_of(&current.status) == "Failed" {
                    // SageMaker updates no failed endpoint: delete it; the next
                    // round creates it with the new configuration
                    deleted("DeleteEndpoint", self.client.delete_endpoint().endpoint_name(&spec.name).send().await)?;
                    return Err(ServingError::Busy(format!("endpoint {} failed: replacing it", spec.name)));
                }
                if let (Some(_), "InService", Some(reason)) =
                    (&spec.blue_green, status_of(&current.status), &current.reason)
                    && self.config_exists(&plan.config).await?
                {
                    // SageMaker rolled a blue/green update back (an alarm went
                    // off, or the new fleet failed): the endpoint serves the old
                    // fleet and says why. Not tried again until asked again.
                    // a retry creates the configuration anew
                    deleted(
                        "DeleteEndpointConfig",
                        self.client.delete_endpoint_config().endpoint_config_name(&plan.config).send().await,
                    )?;
                    return Err(ServingError::Invalid(format!(
                        "SageMaker rolled the blue/green update back: {reason}. The endpoint still serves its earlier fleet ({}); update it again to retry.",
                        current.config
                    )));
                }
                self.create_config(spec, &plan).await?;
                self.client
                    .update_endpoint()
                    .endpoint_name(&spec.name)
                    .endpoint_config_name(&plan.config)
                    .set_deployment_config(spec.blue_green.as_ref().map(deployment_config))
                    .send()
                    .await
                    .map_err(|e| failure("UpdateEndpoint", e))?;
                Err(ServingError::Busy(format!("endpoint {} is being updated", spec.name)))
            }
            Some(current) if status_of(&current.status) == "Failed" => Ok(()),
            Some(current) if Self::weights_differ(&plan, &current) => {
                let desired: Vec<DesiredWeightAndCapacity> = plan
                    .variants
                    .iter()
                    .filter(|v| !v.native_shadow)
                    .map(|v| {
                        DesiredWeightAndCapacity::builder()
                            .variant_name(&v.name)
                            .desired_weight(v.weight)
                            .desired_instance_count(i32::try_from(v.count).unwrap_or(1))
                            .build()
                    })
                    .collect();
                self.client
                    .update_endpoint_weights_and_capacities()
                    .endpoint_name(&spec.name)
                    .set_desired_weights_and_capacities(Some(desired))
                    .send()
                    .await
                    .map_err(|e| failure("UpdateEndpointWeightsAndCapacities", e))?;
                Err(ServingError::Busy(format!("endpoint {}: weights and capacities are changing", spec.name)))
            }
            Some(_) => {
                // in place: configurations and models of earlier shapes can go
                let keep: Vec<&str> =
                    std::iter::once(plan.config.as_str()).chain(plan.models.iter().map(|m| m.name.as_str())).collect();
                self.clean_up(&spec.name, &keep).await
            }
        }
    }

    async fn remove(&self, name: &str) -> Result<(), ServingError> {
        self.forget(name);
        if let Some(current) = self.current(name).await? {
            if current.status != "Deleting" {
                deleted("DeleteEndpoint", self.client.delete_endpoint().endpoint_name(name).send().await)?;
            }
            if self.current(name).await?.is_some() {
                return Err(ServingError::Busy(format!("endpoint {name} is being deleted")));
            }
        }
        self.clean_up(name, &[]).await
    }

    fn stop(&self, _name: &str) {
        // SageMaker runs the endpoint, not this process
    }

    fn instances(&self, _name: &str) -> Vec<Instance> {
        Vec::new()
    }

    fn running(&self) -> Vec<String> {
        Vec::new()
    }

    async fn variant_metrics(
        &self,
        name: &str,
        variants: &[String],
        since: i64,
        until: i64,
    ) -> Result<Vec<crate::VariantMinute>, ServingError> {
        Ok(self.cloudwatch.variant_minutes(name, variants, since, until).await?)
    }

    async fn alarm_states(&self, names: &[String]) -> Result<Vec<(String, String)>, ServingError> {
        Ok(self.cloudwatch.alarm_states(names).await?)
    }

    async fn describe(&self, name: &str) -> Result<Option<Described>, ServingError> {
        let cached = self.described.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned();
        if let Some((at, described)) = cached
            && at.elapsed() < SETTLED_FOR
        {
            return Ok(Some(described));
        }
        let Some(current) = self.current(name).await? else {
            self.forget(name);
            return Ok(None);
        };
        let status = status_of(&current.status);
        let (instance_status, message) = match status {
            "InService" | "Updating" | "RollingBack" => (InstanceStatus::Healthy, None),
            "Creating" => (InstanceStatus::Starting, Some(format!("SageMaker: {}", current.status))),
            "Deleting" => (InstanceStatus::Stopped, None),
            _ => (InstanceStatus::Crashed, current.reason.clone()),
        };
        let counts = current.variants.iter().map(|(n, _, c)| (n, c)).chain(current.shadows.iter().map(|(n, c)| (n, c)));
        let mut instances = Vec::new();
        for (variant, count) in counts {
            for ordinal in 0..u32::try_from(count.unwrap_or(1).max(1)).unwrap_or(1) {
                instances.push(Instance {
                    variant: variant.clone(),
                    ordinal,
                    address: None,
                    status: instance_status,
                    restarts: 0,
                    message: message.clone(),
                });
            }
        }
        // a failure's reason; in service, SageMaker's word on a rolled-back update
        let reason = match status {
            "Failed" => Some(current.reason.clone().unwrap_or_else(|| format!("SageMaker says {}", current.status))),
            "InService" => current.reason.clone(),
            _ => None,
        };
        let described = Described { status, reason, instances };
        if matches!(status, "InService" | "Failed") {
            self.described
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(name.to_owned(), (std::time::Instant::now(), described.clone()));
        }
        Ok(Some(described))
    }

    async fn invoke(&self, target: &Target<'_>, request: Request, timeout: Duration) -> Result<Answer, InvokeError> {
        use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
        let call = self
            .runtime
            .invoke_endpoint()
            .endpoint_name(target.endpoint)
            .target_variant(target.variant)
            .body(aws_sdk_sagemakerruntime::primitives::Blob::new(request.body.to_vec()))
            .set_content_type(request.content_type)
            .set_accept(request.accept)
            .send();
        let answered = tokio::time::timeout(timeout, call).await.map_err(|_| InvokeError::Timeout(timeout))?;
        match answered {
            Ok(out) => {
                let body = out.body().map(|b| b.as_ref().to_vec()).unwrap_or_default();
                if body.len() > MAX_PAYLOAD {
                    return Err(InvokeError::TooLarge);
                }
                Ok(Answer { status: 200, body: body.into(), content_type: out.content_type().map(str::to_owned) })
            }
            Err(aws_sdk_sagemakerruntime::error::SdkError::ServiceError(service)) => match service.into_err() {
                // the model answered with an error of its own
                InvokeEndpointError::ModelError(e) => Ok(Answer {
                    status: e.original_status_code().and_then(|c| u16::try_from(c).ok()).unwrap_or(500),
                    body: e.original_message().unwrap_or_default().to_owned().into(),
                    content_type: Some("text/plain".into()),
                }),
                other => Err(InvokeError::Unavailable(format!(
                    "SageMaker Runtime: {}",
                    aws_sdk_sagemakerruntime::error::DisplayErrorContext(&other)
                ))),
            },
            Err(other) => Err(InvokeError::Unavailable(format!(
                "SageMaker Runtime: {}",
                aws_sdk_sagemakerruntime::error::DisplayErrorContext(&other)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VariantSpec;

    fn variant(name: &str, weight: f64, shadow: Option<u32>) -> VariantSpec {
        VariantSpec {
            name: name.into(),
            model_uri: format!("s3://b/models/ml/{name}/model.tar.gz"),
            code_uri: None,
            image: Some("123.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.2".into()),
            instance_type: "ml.m5.large".into(),
            instance_count: 1,
            weight,
            shadow_percent: shadow,
        }
    }

    fn spec(name: &str, variants: Vec<VariantSpec>) -> EndpointSpec {
        EndpointSpec {
            name: name.into(),
            team: "t".into(),
            team_slug: "ml".into(),
            role: None,
            capture_percent: None,
            variants,
            blue_green: None,
        }
    }

    #[test]
    fn names_are_legal_stable_and_change_with_what_they_name() {
        let long = "a".repeat(63);
        let s = spec(&long, vec![variant("champion", 9.0, None), variant("challenger", 1.0, None)]);
        let p = plan(&s, "arn:aws:iam::1:role/r", "b").expect("plan");
        for name in p.models.iter().map(|m| m.name.as_str()).chain([p.config.as_str()]) {
            assert!(name.len() <= 63, "{name}");
            assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{name}");
        }
        assert_eq!(p, plan(&s, "arn:aws:iam::1:role/r", "b").expect("plan"), "the same spec, the same names");
        assert_ne!(p.models[0].name, p.models[1].name);
        assert!(made_for(&p.config, &long, 'c') && made_for(&p.models[0].name, &long, 'm'));
        assert!(!made_for(&p.config, "a-b", 'c'));
        // weights and counts change in place: the same configuration
        let mut reweighed = s.clone();
        reweighed.variants[0].weight = 1.0;
        reweighed.variants[1].instance_count = 3;
        assert_eq!(plan(&reweighed, "arn:aws:iam::1:role/r", "b").expect("plan").config, p.config);
        // another model is another model and another configuration
        let mut moved = s.clone();
        moved.variants[1].model_uri = "s3://b/models/ml/v3/model.tar.gz".into();
        let q = plan(&moved, "arn:aws:iam::1:role/r", "b").expect("plan");
        assert_eq!(q.models[0].name, p.models[0].name);
        assert_ne!(q.models[1].name, p.models[1].name);
        assert_ne!(q.config, p.config);
        // an endpoint whose name starts like another's owns none of its names
        let other = plan(&spec("ml-churn-2", vec![variant("a", 1.0, None)]), "r", "b").expect("plan");
        assert!(!made_for(&other.config, "ml-churn", 'c') && !made_for(&other.models[0].name, "ml-churn", 'm'));
    }

    #[test]
    fn a_shadow_beside_one_variant_is_sagemakers_beside_several_the_gateways() {
        let one = plan(&spec("e", vec![variant("prod", 2.0, None), variant("shadow", 0.0, Some(25))]), "r", "b")
            .expect("plan");
        assert!(one.variants[1].native_shadow);
        assert!((one.variants[1].weight - 0.5).abs() < 1e-6, "25 % of production's weight 2");
        let two = plan(
            &spec("e", vec![variant("a", 1.0, None), variant("b", 1.0, None), variant("shadow", 0.0, Some(25))]),
            "r",
            "b",
        )
        .expect("plan");
        assert!(!two.variants[2].native_shadow);
        assert_eq!(two.variants[2].weight, 0.0, "a production variant SageMaker sends nothing to");
    }

    #[test]
    fn a_version_without_an_image_is_refused_with_the_variant_named() {
        let mut v = variant("champion", 1.0, None);
        v.image = None;
        let err = plan(&spec("e", vec![v]), "r", "b").expect_err("no image");
        assert!(matches!(&err, ServingError::Invalid(m) if m.starts_with("variant champion:")), "{err}");
    }
}
