//! A stand-in for SageMaker's endpoint API and SageMaker Runtime on
//! loopback, for what the emulator (moto 5.2.1) does not model:
//! `UpdateEndpoint`, `ShadowProductionVariants`, endpoints that take time to
//! come into service or fail with a reason, and `InvokeEndpoint` that
//! answers from the variant it was sent to. It speaks SageMaker's JSON
//! protocol (`X-Amz-Target: SageMaker.<Operation>`) and Runtime's REST path
//! (`POST /endpoints/{name}/invocations`), so the real SDK clients talk to it.
//!
//! An endpoint created or updated is `Creating` / `Updating` until the next
//! DescribeEndpoint after that, then `InService` (or `Failed` when told).

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A variant as the stand-in keeps it: name, weight, instance count.
pub type LiveVariant = (String, f64, i64);

#[derive(Debug, Clone)]
struct Endpoint {
    config: String,
    status: String,
    reason: Option<String>,
    variants: Vec<LiveVariant>,
    shadows: Vec<LiveVariant>,
    tags: Value,
    /// An update that will be rolled back, with SageMaker's reason.
    rolling_back: Option<String>,
}

#[derive(Default)]
struct World {
    models: BTreeMap<String, Value>,
    configs: BTreeMap<String, Value>,
    endpoints: BTreeMap<String, Endpoint>,
    calls: HashMap<String, u64>,
    /// The last request of each operation.
    requests: HashMap<String, Value>,
    /// The next UpdateEndpoint is rolled back, with this reason (as an
    /// alarm going off during a blue/green update would).
    roll_back_next: Option<String>,
    /// The next endpoint that would come into service fails with this reason.
    fail_next: Option<String>,
    /// Invocations as (endpoint, variant).
    invocations: Vec<(String, String)>,
}

pub struct EndpointStandIn {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    world: Arc<Mutex<World>>,
    server: tokio::task::JoinHandle<()>,
}

impl EndpointStandIn {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let world = Arc::new(Mutex::new(World::default()));
        let (api, runtime) = (world.clone(), world.clone());
        let app = axum::Router::new()
            .route(
                "/endpoints/{name}/invocations",
                axum::routing::post(move |Path(name): Path<String>, headers: HeaderMap, body: axum::body::Bytes| {
                    let world = runtime.clone();
                    async move { invoke(&world, &name, &headers, &body) }
                }),
            )
            .fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
                let world = api.clone();
                async move { handle(&world, &headers, &body) }
            });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, world, server })
    }

    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let mut world = self.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut world)
    }

    /// Calls of `operation` (e.g. `UpdateEndpoint`) so far.
    pub fn calls(&self, operation: &str) -> u64 {
        self.with(|w| w.calls.get(operation).copied().unwrap_or(0))
    }

    /// The last request of `operation`, as sent.
    pub fn last_request(&self, operation: &str) -> Option<Value> {
        self.with(|w| w.requests.get(operation).cloned())
    }

    /// The next UpdateEndpoint is rolled back: the endpoint comes back in
    /// service on its earlier configuration, `reason` as its FailureReason.
    pub fn roll_back_next(&self, reason: &str) {
        self.with(|w| w.roll_back_next = Some(reason.to_owned()));
    }

    pub fn model_names(&self) -> Vec<String> {
        self.with(|w| w.models.keys().cloned().collect())
    }

    pub fn config_names(&self) -> Vec<String> {
        self.with(|w| w.configs.keys().cloned().collect())
    }

    /// The CreateEndpointConfig request of configuration `name`.
    pub fn config(&self, name: &str) -> Option<Value> {
        self.with(|w| w.configs.get(name).cloned())
    }

    /// The CreateModel request of model `name`.
    pub fn model(&self, name: &str) -> Option<Value> {
        self.with(|w| w.models.get(name).cloned())
    }

    /// Endpoint `name`'s configuration and its variants' (name, weight, count).
    pub fn endpoint(&self, name: &str) -> Option<(String, Vec<LiveVariant>)> {
        self.with(|w| w.endpoints.get(name).map(|e| (e.config.clone(), e.variants.clone())))
    }

    /// The next endpoint to come into service fails instead, with `reason`.
    pub fn fail_next(&self, reason: &str) {
        self.with(|w| w.fail_next = Some(reason.to_owned()));
    }

    /// Which variant each invocation so far was sent to.
    pub fn invocations(&self) -> Vec<(String, String)> {
        self.with(|w| w.invocations.clone())
    }
}

impl Drop for EndpointStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn error(code: &str, message: &str) -> Response {
    (StatusCode::BAD_REQUEST, [("x-amzn-errortype", code)], axum::Json(json!({"__type": code, "message": message})))
        .into_response()
}

fn arn(kind: &str, name: &str) -> String {
    format!("arn:aws:sagemaker:us-east-1:000000000000:{kind}/{name}")
}

fn variants_of(config: &Value, key: &str) -> Vec<LiveVariant> {
    config[key]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    (
                        v["VariantName"].as_str().unwrap_or_default().to_owned(),
                        v["InitialVariantWeight"].as_f64().unwrap_or(1.0),
                        v["InitialInstanceCount"].as_i64().unwrap_or(1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn summaries(variants: &[LiveVariant]) -> Value {
    variants
        .iter()
        .map(|(name, weight, count)| {
            json!({"VariantName": name, "CurrentWeight": weight, "DesiredWeight": weight,
                   "CurrentInstanceCount": count, "DesiredInstanceCount": count})
        })
        .collect()
}

fn handle(world: &Mutex<World>, headers: &HeaderMap, body: &[u8]) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let operation = target.strip_prefix("SageMaker.").unwrap_or(target).to_owned();
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut w = world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *w.calls.entry(operation.clone()).or_default() += 1;
    w.requests.insert(operation.clone(), input.clone());
    let str_of = |key: &str| input[key].as_str().unwrap_or_default().to_owned();
    match operation.as_str() {
        "CreateModel" => {
            let name = str_of("ModelName");
            if w.models.contains_key(&name) {
                return error(
                    "ValidationException",
                    &format!("Cannot create already existing model \"{}\".", arn("model", &name)),
                );
            }
            w.models.insert(name.clone(), input.clone());
            axum::Json(json!({"ModelArn": arn("model", &name)})).into_response()
        }
        "DeleteModel" => match w.models.remove(&str_of("ModelName")) {
            Some(_) => axum::Json(json!({})).into_response(),
            None => error("ValidationException", "Could not find model."),
        },
        "ListModels" => {
            let contains = str_of("NameContains");
            let models: Vec<Value> = w
                .models
                .keys()
                .filter(|n| n.contains(&contains))
                .map(|n| json!({"ModelName": n, "ModelArn": arn("model", n), "CreationTime": 0}))
                .collect();
            axum::Json(json!({"Models": models})).into_response()
        }
        "CreateEndpointConfig" => {
            let name = str_of("EndpointConfigName");
            if w.configs.contains_key(&name) {
                return error(
                    "ValidationException",
                    &format!(
                        "Cannot create already existing endpoint configuration \"{}\".",
                        arn("endpoint-config", &name)
                    ),
                );
            }
            let production = input["ProductionVariants"].as_array().map_or(0, Vec::len);
            let shadows = input["ShadowProductionVariants"].as_array().map_or(0, Vec::len);
            if shadows > 0 && production != 1 {
                return error(
                    "ValidationException",
                    "Shadow variants are supported with exactly one production variant.",
                );
            }
            for v in input["ProductionVariants"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(input["ShadowProductionVariants"].as_array().into_iter().flatten())
            {
                if !w.models.contains_key(v["ModelName"].as_str().unwrap_or_default()) {
                    return error("ValidationException", &format!("Could not find model \"{}\".", v["ModelName"]));
                }
            }
            w.configs.insert(name.clone(), input.clone());
            axum::Json(json!({"EndpointConfigArn": arn("endpoint-config", &name)})).into_response()
        }
        "DescribeEndpointConfig" => match w.configs.get(&str_of("EndpointConfigName")) {
            Some(config) => axum::Json(config.clone()).into_response(),
            None => error("ValidationException", "Could not find endpoint configuration."),
        },
        "DeleteEndpointConfig" => match w.configs.remove(&str_of("EndpointConfigName")) {
            Some(_) => axum::Json(json!({})).into_response(),
            None => error("ValidationException", "Could not find endpoint configuration."),
        },
        "ListEndpointConfigs" => {
            let contains = str_of("NameContains");
            let configs: Vec<Value> = w
                .configs
                .keys()
                .filter(|n| n.contains(&contains))
                .map(|n| json!({"EndpointConfigName": n, "EndpointConfigArn": arn("endpoint-config", n), "CreationTime": 0}))
                .collect();
            axum::Json(json!({"EndpointConfigs": configs})).into_response()
        }
        "CreateEndpoint" | "UpdateEndpoint" => {
            let name = str_of("EndpointName");
            let config_name = str_of("EndpointConfigName");
            let Some(config) = w.configs.get(&config_name).cloned() else {
                return error(
                    "ValidationException",
                    &format!("Could not find endpoint configuration \"{config_name}\"."),
                );
            };
            let existing = w.endpoints.get(&name).cloned();
            let (status, tags) = match (operation.as_str(), &existing) {
                ("CreateEndpoint", Some(_)) => {
                    return error(
                        "ValidationException",
                        &format!("Cannot create already existing endpoint \"{}\".", arn("endpoint", &name)),
                    );
                }
                ("CreateEndpoint", None) => ("Creating", input["Tags"].clone()),
                (_, None) => return error("ValidationException", &format!("Could not find endpoint \"{name}\".")),
                (_, Some(e)) if e.status != "InService" => {
                    return error(
                        "ValidationException",
                        &format!("Cannot update in-progress endpoint \"{}\".", arn("endpoint", &name)),
                    );
                }
                (_, Some(e)) => ("Updating", e.tags.clone()),
            };
            if operation == "UpdateEndpoint"
                && let Some(reason) = w.roll_back_next.take()
                && let Some(e) = w.endpoints.get_mut(&name)
            {
                // the old fleet stays; the next look finds the update rolled back
                e.status = "Updating".into();
                e.reason = None;
                e.rolling_back = Some(reason);
                return axum::Json(json!({"EndpointArn": arn("endpoint", &name)})).into_response();
            }
            w.endpoints.insert(
                name.clone(),
                Endpoint {
                    config: config_name,
                    status: status.into(),
                    reason: None,
                    variants: variants_of(&config, "ProductionVariants"),
                    shadows: variants_of(&config, "ShadowProductionVariants"),
                    tags,
                    rolling_back: None,
                },
            );
            axum::Json(json!({"EndpointArn": arn("endpoint", &name)})).into_response()
        }
        "UpdateEndpointWeightsAndCapacities" => {
            let name = str_of("EndpointName");
            let Some(e) = w.endpoints.get_mut(&name) else {
                return error("ValidationException", &format!("Could not find endpoint \"{name}\"."));
            };
            if e.status != "InService" {
                return error("ValidationException", "Cannot update in-progress endpoint.");
            }
            for d in input["DesiredWeightsAndCapacities"].as_array().into_iter().flatten() {
                let variant = d["VariantName"].as_str().unwrap_or_default();
                let Some(v) = e.variants.iter_mut().find(|v| v.0 == variant) else {
                    return error(
                        "ValidationException",
                        &format!("The variant name(s) \"{variant}\" is/are not present."),
                    );
                };
                if let Some(weight) = d["DesiredWeight"].as_f64() {
                    v.1 = weight;
                }
                if let Some(count) = d["DesiredInstanceCount"].as_i64() {
                    v.2 = count;
                }
            }
            e.status = "Updating".into();
            axum::Json(json!({"EndpointArn": arn("endpoint", &name)})).into_response()
        }
        "DescribeEndpoint" => {
            let name = str_of("EndpointName");
            let fail = w.fail_next.clone();
            let Some(e) = w.endpoints.get_mut(&name) else {
                return error(
                    "ValidationException",
                    &format!("Could not find endpoint \"{}\".", arn("endpoint", &name)),
                );
            };
            let out = json!({
                "EndpointName": name, "EndpointArn": arn("endpoint", &name), "EndpointConfigName": e.config,
                "EndpointStatus": e.status, "FailureReason": e.reason,
                "ProductionVariants": summaries(&e.variants), "ShadowProductionVariants": summaries(&e.shadows),
                "CreationTime": 0, "LastModifiedTime": 0,
            });
            // the next look finds it done
            let mut failed = false;
            if let Some(reason) = e.rolling_back.take() {
                e.status = "InService".into();
                e.reason = Some(reason);
            } else if matches!(e.status.as_str(), "Creating" | "Updating") {
                match fail {
                    Some(reason) => {
                        e.status = "Failed".into();
                        e.reason = Some(reason);
                        failed = true;
                    }
                    None => e.status = "InService".into(),
                }
            } else if e.status == "Deleting" {
                w.endpoints.remove(&name);
            }
            if failed {
                w.fail_next = None;
            }
            axum::Json(out).into_response()
        }
        "DeleteEndpoint" => {
            let name = str_of("EndpointName");
            match w.endpoints.get_mut(&name) {
                Some(e) => {
                    e.status = "Deleting".into();
                    axum::Json(json!({})).into_response()
                }
                None => error("ValidationException", &format!("Could not find endpoint \"{name}\".")),
            }
        }
        "ListTags" => {
            let wanted = str_of("ResourceArn");
            let tags = w
                .models
                .iter()
                .find(|(n, _)| arn("model", n) == wanted)
                .map(|(_, m)| m["Tags"].clone())
                .or_else(|| {
                    w.configs.iter().find(|(n, _)| arn("endpoint-config", n) == wanted).map(|(_, c)| c["Tags"].clone())
                })
                .or_else(|| {
                    w.endpoints.iter().find(|(n, _)| arn("endpoint", n) == wanted).map(|(_, e)| e.tags.clone())
                });
            match tags {
                Some(tags) => axum::Json(json!({"Tags": tags})).into_response(),
                None => error("ValidationException", "Requested resource not found"),
            }
        }
        other => error("UnknownOperationException", &format!("the stand-in does not implement {other}")),
    }
}

/// InvokeEndpoint: answers from the variant asked for (or the first with
/// weight), as JSON naming it, with SageMaker Runtime's headers.
fn invoke(world: &Mutex<World>, name: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let mut w = world.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *w.calls.entry("InvokeEndpoint".into()).or_default() += 1;
    let Some(e) = w.endpoints.get(name) else {
        return error("ValidationError", &format!("Endpoint {name} of account 000000000000 not found."));
    };
    if !matches!(e.status.as_str(), "InService" | "Updating") {
        return error("ValidationError", &format!("Endpoint {name} is not in service ({}).", e.status));
    }
    let pinned = headers.get("x-amzn-sagemaker-target-variant").and_then(|v| v.to_str().ok());
    let variant = match pinned {
        Some(p) if e.variants.iter().any(|v| v.0 == p) => p.to_owned(),
        Some(p) => return error("ValidationError", &format!("Variant {p} not found for endpoint {name}.")),
        None => match e.variants.iter().find(|v| v.1 > 0.0) {
            Some(v) => v.0.clone(),
            None => return error("ValidationError", "No variant has weight."),
        },
    };
    w.invocations.push((name.to_owned(), variant.clone()));
    let text = String::from_utf8_lossy(body);
    if text.contains("\"fail\"") {
        let message = format!("{{\"error\": \"variant {variant} refused the rows\"}}");
        return (
            StatusCode::FAILED_DEPENDENCY,
            [("x-amzn-errortype", "ModelError")],
            axum::Json(json!({"message": "Received client error (400) from primary with message \"...\"",
                              "OriginalStatusCode": 400, "OriginalMessage": message})),
        )
            .into_response();
    }
    let answer = json!({"variant": variant, "received": text}).to_string();
    ([("content-type", "application/json"), ("x-amzn-invoked-production-variant", variant.as_str())], answer)
        .into_response()
}
