//! The MLflow-compatible model registry under `/api/2.0/mlflow/`: enough of
//! MLflow's `registered-models/*` and `model-versions/*` REST API, with its
//! JSON shapes, error codes and statuses, for the official `mlflow` client
//! (`MlflowClient(tracking_uri=<capstan>)` with `MLFLOW_TRACKING_TOKEN` set to
//! a Capstan API token). Names are `<team>/<model>`, or the bare model name
//! for a caller in exactly one team ([`app::registry::mlflow`]). Every call
//! goes through the registry's own domain functions: the same roles, audit
//! events, validation and protected aliases as the native API.

use app::kernel::context::Ctx;
use app::kernel::error::AppError;
use app::kernel::page::MAX_LIMIT;
use app::kernel::state::AppState;
use app::registry::aliases;
use app::registry::gate::Route;
use app::registry::mlflow::Naming;
use app::registry::search::{self, Scope};
use app::registry::types::{
    Model, ModelUpdate, ModelVersion, ModelVersionUpdate, NewModel, NewModelVersion, SetAlias, VersionSearch,
};
use app::registry::{domain, versions};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/api/2.0/mlflow/{*operation}", axum::routing::any(dispatch))
}

/// An MLflow error: `{"error_code": …, "message": …}` with MLflow's status.
fn error(e: &AppError) -> Response {
    let (status, code) = match e {
        AppError::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        AppError::Forbidden => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
        AppError::Conflict { field: Some(f), .. } if f == "name" => {
            (StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS")
        }
        AppError::Conflict { .. } => (StatusCode::CONFLICT, "RESOURCE_CONFLICT"),
        AppError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "REQUEST_LIMIT_EXCEEDED"),
        AppError::Internal | AppError::Transport(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        AppError::Upstream(_) => (StatusCode::BAD_GATEWAY, "TEMPORARILY_UNAVAILABLE"),
        AppError::Validation(_)
        | AppError::InvalidQuery(_)
        | AppError::BadRequest(_)
        | AppError::UnsupportedMediaType(_)
        | AppError::PayloadTooLarge => (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
    };
    let message = match e {
        AppError::Validation(fields) | AppError::InvalidQuery(fields) => {
            fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
        }
        other => other.to_string(),
    };
    (status, axum::Json(json!({ "error_code": code, "message": message }))).into_response()
}

/// A request's parameters: the JSON body, or for GET the query string
/// (a repeated key becomes a list), as MLflow's client sends them.
struct Params(Map<String, Value>);

impl Params {
    async fn read(method: &Method, req: Request) -> Result<Self, AppError> {
        if method == Method::GET {
            let axum::extract::Query(pairs) = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(req.uri())
                .map_err(|e| AppError::BadRequest(format!("The query string is not valid: {e}")))?;
            let mut map = Map::new();
            for (k, v) in pairs {
                match map.get_mut(&k) {
                    Some(Value::Array(list)) => list.push(Value::String(v)),
                    Some(one) => *one = Value::Array(vec![one.take(), Value::String(v)]),
                    None => {
                        map.insert(k, Value::String(v));
                    }
                }
            }
            return Ok(Self(map));
        }
        let body = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .map_err(|_| AppError::BadRequest("The request body could not be read.".into()))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Map::new()));
        }
        match serde_json::from_slice(&body) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            _ => Err(AppError::BadRequest("The request body must be a JSON object.".into())),
        }
    }

    fn text(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Array(list) => list.first().and_then(Value::as_str).map(str::to_owned),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    fn required(&self, key: &str) -> Result<String, AppError> {
        self.text(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AppError::field(key, format!("Missing value for required parameter '{key}'.")))
    }

    fn list(&self, key: &str) -> Vec<String> {
        match self.0.get(key) {
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    /// `max_results`, capped at a page of [`MAX_LIMIT`] (the next page token
    /// gives the rest).
    fn max_results(&self, default: i64) -> Result<i64, AppError> {
        match self.text("max_results") {
            None => Ok(default.min(MAX_LIMIT)),
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n >= 1 => Ok(n.min(MAX_LIMIT)),
                _ => Err(AppError::field("max_results", format!("'{raw}' is not a positive whole number."))),
            },
        }
    }

    /// `tags` as MLflow sends them: `[{"key": …, "value": …}]`.
    fn tags(&self) -> Result<BTreeMap<String, String>, AppError> {
        let mut tags = BTreeMap::new();
        if let Some(Value::Array(list)) = self.0.get("tags") {
            for tag in list {
                let key = tag["key"].as_str().ok_or_else(|| AppError::field("tags", "Each tag needs a key."))?;
                tags.insert(key.to_owned(), tag["value"].as_str().unwrap_or_default().to_owned());
            }
        }
        Ok(tags)
    }
}

async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let method = req.method().clone();
    let operation = req.uri().path().trim_start_matches("/api/2.0/mlflow/").to_owned();
    let (mut parts, body) = req.into_parts();
    let ctx = match Ctx::from_parts(&mut parts, &state).await {
        Ok(ctx) if ctx.actor.is_some() => ctx,
        Ok(_) => return error(&AppError::Unauthenticated),
        Err(e) => return error(&e),
    };
    let result = async {
        let params = Params::read(&method, Request::from_parts(parts, body)).await?;
        let naming = Naming::of(&ctx).await?;
        operate(&ctx, &naming, &method, &operation, &params).await
    }
    .await;
    match result {
        Ok(Some(value)) => axum::Json(value).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({
                "error_code": "ENDPOINT_NOT_FOUND",
                "message": format!("{method} /api/2.0/mlflow/{operation} is not part of Capstan's MLflow-compatible API."),
            })),
        )
            .into_response(),
        Err(e) => error(&e),
    }
}

fn millis(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or_default()
}

fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    tags.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect()
}

/// A version as MLflow shows it.
fn model_version(naming: &Naming, v: &ModelVersion, aliases: &[String]) -> Value {
    json!({
        "name": naming.name(&v.team, &v.model),
        "version": v.number.to_string(),
        "creation_timestamp": millis(v.created_at),
        "last_updated_timestamp": millis(v.created_at),
        "user_id": v.created_by,
        "current_stage": "None",
        "description": v.description,
        "source": v.artifact_uri,
        "run_id": v.training_job_id.map(|j| j.to_string()).unwrap_or_default(),
        "status": "READY",
        "tags": tag_list(&v.tags),
        "aliases": aliases,
    })
}

async fn versions_json(ctx: &Ctx, naming: &Naming, list: &[ModelVersion]) -> Result<Vec<Value>, AppError> {
    let ids: Vec<(Uuid, Uuid)> = list.iter().map(|v| (v.model_id, v.id)).collect();
    let named = app::registry::mlflow::aliases_of(ctx, &ids).await?;
    Ok(list.iter().map(|v| model_version(naming, v, named.get(&v.id).map_or(&[][..], Vec::as_slice))).collect())
}

/// The model's newest version, if it has one (MLflow's "latest versions": Capstan has no stages).
async fn latest_version(ctx: &Ctx, model: Uuid) -> Result<Vec<ModelVersion>, AppError> {
    // checks the caller may read the model
    domain::get(ctx, model).await?;
    Ok(search::latest_of(ctx, &[model]).await?.into_values().collect())
}

/// Models as MLflow shows them, each with its latest version (from
/// `latest`, by model) and aliases.
async fn registered_models(
    ctx: &Ctx,
    naming: &Naming,
    models: &[Model],
    mut latest: std::collections::HashMap<Uuid, ModelVersion>,
) -> Result<Vec<Value>, AppError> {
    let versions: Vec<ModelVersion> = models.iter().filter_map(|m| latest.remove(&m.id)).collect();
    let mut rendered: std::collections::HashMap<Uuid, Value> =
        versions.iter().map(|v| v.model_id).zip(versions_json(ctx, naming, &versions).await?).collect();
    Ok(models
        .iter()
        .map(|m| {
            json!({
                "name": naming.name(&m.team, &m.name),
                "creation_timestamp": millis(m.created_at),
                "last_updated_timestamp": millis(m.created_at),
                "user_id": m.created_by,
                "description": m.description,
                "tags": tag_list(&m.tags),
                "latest_versions": rendered.remove(&m.id).into_iter().collect::<Vec<_>>(),
                "aliases": m.aliases.iter().map(|(a, n)| json!({ "alias": a, "version": n.to_string() })).collect::<Vec<_>>(),
            })
        })
        .collect())
}

/// A model as MLflow shows it, with its latest version and aliases.
async fn registered_model(ctx: &Ctx, naming: &Naming, m: &Model) -> Result<Value, AppError> {
    let latest = if m.latest_version.is_some() { search::latest_of(ctx, &[m.id]).await? } else { Default::default() };
    Ok(registered_models(ctx, naming, std::slice::from_ref(m), latest).await?.remove(0))
}

/// One MLflow operation; `None` for one Capstan does not offer.
async fn operate(
    ctx: &Ctx,
    naming: &Naming,
    method: &Method,
    operation: &str,
    p: &Params,
) -> Result<Option<Value>, AppError> {
    let model = || async { naming.model(ctx, &p.required("name")?).await };
    let version = || async { naming.version(ctx, &p.required("name")?, &p.required("version")?).await };
    let answer = match (method.as_str(), operation) {
        ("POST", "registered-models/create") => {
            let (team, name) = naming.split(&p.required("name")?)?;
            let input = NewModel { name, description: p.text("description").unwrap_or_default(), tags: p.tags()? };
            let m = domain::create(ctx, &team, input).await?;
            json!({ "registered_model": registered_model(ctx, naming, &m).await? })
        }
        ("GET", "registered-models/get") => {
            let m = domain::get(ctx, model().await?).await?;
            json!({ "registered_model": registered_model(ctx, naming, &m).await? })
        }
        ("POST", "registered-models/rename") => {
            let id = model().await?;
            let current = domain::get(ctx, id).await?;
            let (team, new_name) = naming.split(&p.required("new_name")?)?;
            if team != current.team {
                return Err(AppError::field("new_name", "A model stays in its team: rename it within the team."));
            }
            let m = domain::rename(ctx, id, &new_name).await?;
            json!({ "registered_model": registered_model(ctx, naming, &m).await? })
        }
        ("PATCH", "registered-models/update") => {
            let update = ModelUpdate { description: Some(p.text("description").unwrap_or_default()), tags: None };
            let m = domain::update(ctx, model().await?, update).await?;
            json!({ "registered_model": registered_model(ctx, naming, &m).await? })
        }
        ("DELETE", "registered-models/delete") => {
            domain::delete(ctx, model().await?).await?;
            json!({})
        }
        ("GET", "registered-models/search") => {
            let limit = p.max_results(100)?;
            let filter = p.text("filter").unwrap_or_default();
            let order = p.list("order_by").into_iter().next();
            let page_token = p.text("page_token");
            let page = app::registry::mlflow::search_models(
                ctx,
                naming,
                &filter,
                order.as_deref(),
                limit,
                page_token.as_deref(),
            )
            .await?;
            let models = registered_models(ctx, naming, &page.page.items, page.latest).await?;
            json!({ "registered_models": models, "next_page_token": page.page.next_cursor })
        }
        ("POST", "registered-models/alias") => {
            let (id, target) = (model().await?, version().await?);
            let alias = p.required("alias")?;
            aliases::set(ctx, id, &alias, SetAlias { version_id: target, reason: String::new() }, Route::Direct)
                .await?;
            json!({})
        }
        ("GET", "registered-models/alias") => {
            let v = aliases::resolve(ctx, model().await?, &p.required("alias")?).await?;
            json!({ "model_version": versions_json(ctx, naming, std::slice::from_ref(&v)).await?.remove(0) })
        }
        ("DELETE", "registered-models/alias") => {
            aliases::delete(ctx, model().await?, &p.required("alias")?, Route::Direct).await?;
            json!({})
        }
        ("POST", "registered-models/set-tag") | ("DELETE", "registered-models/delete-tag") => {
            let id = model().await?;
            let mut tags = domain::get(ctx, id).await?.tags;
            let key = p.required("key")?;
            if method == Method::POST {
                tags.insert(key, p.text("value").unwrap_or_default());
            } else {
                tags.remove(&key);
            }
            domain::update(ctx, id, ModelUpdate { description: None, tags: Some(tags) }).await?;
            json!({})
        }
        ("POST" | "GET", "registered-models/get-latest-versions") => {
            let id = model().await?;
            // Capstan has no stages: every version is in stage "None"
            let stages = p.list("stages");
            let latest = if stages.is_empty() || stages.iter().any(|s| s.eq_ignore_ascii_case("none")) {
                latest_version(ctx, id).await?
            } else {
                Vec::new()
            };
            json!({ "model_versions": versions_json(ctx, naming, &latest).await? })
        }
        ("POST", "model-versions/create") => {
            let id = model().await?;
            // a run id that is a training job of the team registers the job; else the source is an artifact
            let job = p.text("run_id").filter(|r| !r.is_empty());
            let job = job
                .map(|r| {
                    Uuid::parse_str(&r).map_err(|_| AppError::field("run_id", "A run id is a Capstan training job id."))
                })
                .transpose()?;
            let input = NewModelVersion {
                training_job_id: job,
                artifact_uri: if job.is_none() { Some(p.required("source")?) } else { None },
                description: p.text("description").unwrap_or_default(),
                tags: p.tags()?,
                ..Default::default()
            };
            let v = versions::register(ctx, id, input).await?;
            json!({ "model_version": versions_json(ctx, naming, std::slice::from_ref(&v)).await?.remove(0) })
        }
        ("GET", "model-versions/get") => {
            let v = versions::get(ctx, version().await?).await?;
            json!({ "model_version": versions_json(ctx, naming, std::slice::from_ref(&v)).await?.remove(0) })
        }
        ("PATCH", "model-versions/update") => {
            let update =
                ModelVersionUpdate { description: Some(p.text("description").unwrap_or_default()), tags: None };
            let v = versions::update(ctx, version().await?, update).await?;
            json!({ "model_version": versions_json(ctx, naming, std::slice::from_ref(&v)).await?.remove(0) })
        }
        ("DELETE", "model-versions/delete") => {
            versions::delete(ctx, version().await?).await?;
            json!({})
        }
        ("GET", "model-versions/search") => {
            let filter = p.text("filter").unwrap_or_default();
            let parsed = app::registry::filter::parse(&filter).map_err(|e| AppError::query("filter", e.to_string()))?;
            let query = VersionSearch {
                filter: Some(filter),
                order_by: p.list("order_by").into_iter().next(),
                cursor: p.text("page_token"),
                limit: Some(p.max_results(MAX_LIMIT)?),
            };
            let page = search::search(ctx, Scope::Teams(naming.search_teams(parsed.as_ref())), query).await?;
            json!({ "model_versions": versions_json(ctx, naming, &page.items).await?, "next_page_token": page.next_cursor })
        }
        ("GET", "model-versions/get-download-uri") => {
            let v = versions::get(ctx, version().await?).await?;
            json!({ "artifact_uri": v.artifact_uri })
        }
        ("POST", "model-versions/set-tag") | ("DELETE", "model-versions/delete-tag") => {
            let id = version().await?;
            let mut tags = versions::get(ctx, id).await?.tags;
            let key = p.required("key")?;
            if method == Method::POST {
                tags.insert(key, p.text("value").unwrap_or_default());
            } else {
                tags.remove(&key);
            }
            versions::update(ctx, id, ModelVersionUpdate { description: None, tags: Some(tags) }).await?;
            json!({})
        }
        ("POST", "model-versions/transition-stage") => {
            return Err(AppError::field(
                "stage",
                "Capstan has no stages: name versions with aliases (set_registered_model_alias) and approve them \
                 with their status.",
            ));
        }
        _ => return Ok(None),
    };
    Ok(Some(answer))
}
