//! The REST API under `/api/v1`: one module per noun, each handler a thin
//! shell over the same domain function the UI's server functions call.
//! Errors are RFC 9457 problem+json; the OpenAPI document is generated here.
//! Beside it, [`mlflow`] speaks MLflow's model-registry API under
//! `/api/2.0/mlflow/` for MLflow's own client.

pub mod approvals;
pub mod audit;
pub mod budgets;
pub mod datasets;
pub mod endpoints;
pub mod me;
pub mod members;
pub mod mlflow;
pub mod models;
pub mod teams;
pub mod tokens;
pub mod training;
pub mod users;
mod versions;
pub mod webhooks;

use app::kernel::error::AppError;
use app::kernel::state::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Capstan API",
        version = "1",
        description = "Control plane for ML teams. Authenticate with `Authorization: Bearer <token>` \
                       (create tokens on the API tokens page or with `capstan token create`). \
                       Lists are keyset-paginated with `limit` (1-200, default 50) and the opaque \
                       `cursor` from the previous page's `next_cursor`. A team in a path is its \
                       slug or its id. Errors are RFC 9457 \
                       `application/problem+json`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(app::kernel::error::ssr::Problem)),
    tags(
        (name = "me", description = "The caller"),
        (name = "teams", description = "Teams and their members"),
        (name = "tokens", description = "Your API tokens"),
        (name = "users", description = "Accounts (site admins)"),
        (name = "audit", description = "The audit log"),
        (name = "datasets", description = "Datasets a team trains on, their immutable versions, uploads, previews and drift checks"),
        (name = "training", description = "Training jobs on SageMaker or the local runner: launch, status, logs, metrics, stop, cost"),
        (name = "registry", description = "The model registry: models and their immutable versions, registered from training jobs"),
        (name = "approvals", description = "Change requests, the team policies that ask for them, and their reviews"),
        (name = "webhooks", description = "Team endpoints that receive signed events, and their delivery logs"),
        (name = "budgets", description = "A team's monthly budget over training and endpoints, and where the month stands"),
        (name = "endpoints", description = "Deployed model versions: endpoints, their production and shadow variants, traffic weights. Invoke with POST /endpoints/{engine_name}/invocations (SageMaker Runtime's path)"),
        (name = "rollouts", description = "Traffic moved from a baseline variant to a candidate step by step (canary, linear, manual), watched by guardrails that roll back a failing candidate"),
        (name = "experiments", description = "A/B/N experiments on an endpoint's production variants: outcomes reported for invocations (by the gateway's x-capstan-invocation-id), and the always-valid analysis"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("cap_…").build()),
        );
    }
}

/// The `/api/v1` routes and their OpenAPI document.
pub fn router() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::new()
        .merge(me::router())
        .merge(teams::router())
        .merge(members::router())
        .merge(tokens::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(datasets::router())
        .merge(versions::router())
        .merge(training::router())
        .merge(models::router())
        .merge(approvals::router())
        .merge(webhooks::router())
        .merge(endpoints::router())
        .merge(budgets::router());
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", v1).split_for_parts();
    document_problems(&mut doc);
    let doc = document_inputs(doc);
    let router = router
        .route("/api/v1/{*rest}", axum::routing::any(not_found))
        .layer(axum::middleware::from_fn(credentials_first));
    (router, doc)
}

/// Authentication comes first: a request with neither a token nor a session
/// cookie is answered 401 before its query or body is read (a bad query
/// would otherwise answer 400 to someone who may not call at all). Whether
/// the credentials are valid is the handler's `Ctx` to decide.
async fn credentials_first(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let bearer =
        matches!(app::kernel::context::credentials(req.headers()), app::kernel::context::Credentials::Bearer(_));
    let cookie = req
        .headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(';').any(|c| c.trim_start().starts_with("capstan_session=")));
    if bearer || cookie { next.run(req).await } else { AppError::Unauthenticated.into_response() }
}

/// No control characters but tabs and line breaks: what every JSON string
/// field accepts ([`control_characters`]).
const TEXT_PATTERN: &str = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$";

/// Makes the request schemas say what the server accepts: a string field
/// with no pattern, format or list of values of its own gets the rule every
/// text field follows ([`TEXT_PATTERN`]); every request object refuses
/// unknown fields; the source upload is described part by part.
fn document_inputs(doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use serde_json::{Value, json};
    let Ok(mut doc) = serde_json::to_value(&doc) else { return doc };
    // the components a request body reaches, directly or through others
    let mut reached = std::collections::BTreeSet::new();
    let mut todo: Vec<Value> = Vec::new();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut()) {
            let Some(content) = op.pointer_mut("/requestBody/content").and_then(Value::as_object_mut) else {
                continue;
            };
            if let Some(multipart) = content.get_mut("multipart/form-data") {
                multipart["schema"] = json!({
                    "type": "object",
                    "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"},
                                            "description": "One part per file; the part's file name is its path."}},
                    "additionalProperties": false
                });
            }
            for body in content.values_mut() {
                if let Some(schema) = body.get_mut("schema") {
                    constrain(schema);
                    todo.push(schema.clone());
                }
            }
            // every operation that takes a body needs one
            if let Some(body) = op.pointer_mut("/requestBody").and_then(Value::as_object_mut) {
                body.insert("required".into(), Value::Bool(true));
            }
        }
    }
    while let Some(schema) = todo.pop() {
        refs(&schema, &mut |name| {
            if reached.insert(name.to_owned())
                && let Some(component) = doc.pointer(&format!("/components/schemas/{name}"))
            {
                todo.push(component.clone());
            }
        });
    }
    for name in reached {
        if let Some(component) = doc.pointer_mut(&format!("/components/schemas/{name}")) {
            constrain(component);
        }
    }
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI post-processing produced an unreadable document");
        utoipa::openapi::OpenApi::default()
    })
}

/// Calls `found` with the name of every component `schema` refers to.
fn refs(schema: &serde_json::Value, found: &mut impl FnMut(&str)) {
    use serde_json::Value;
    match schema {
        Value::Object(map) => {
            if let Some(name) = map.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next()) {
                found(name);
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

/// The text rule on every plain string of a request schema, and no unknown
/// fields on its objects.
fn constrain(schema: &mut serde_json::Value) {
    use serde_json::Value;
    let Some(map) = schema.as_object_mut() else { return };
    let is = |t: &str| match map.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(ts)) => ts.iter().any(|s| s == t),
        _ => false,
    };
    let (string, object) = (is("string"), is("object"));
    if string && !["pattern", "format", "enum"].iter().any(|k| map.contains_key(*k)) {
        map.insert("pattern".into(), Value::String(TEXT_PATTERN.into()));
    }
    if object && map.contains_key("properties") && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["properties"] {
        if let Some(Value::Object(props)) = map.get_mut(key) {
            props.values_mut().for_each(constrain);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = map.get_mut(key) {
            constrain(inner);
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(parts)) = map.get_mut(key) {
            parts.iter_mut().for_each(constrain);
        }
    }
}

/// Makes the document say what the server does with errors: every error
/// answer is `application/problem+json` (the handlers' `body = Problem`
/// alone would say `application/json`), and the answers any operation can
/// give are listed on each one: 401 on every operation (all need a token),
/// 400 where there are query parameters or a body, 413 and 415 where there
/// is a JSON body.
fn document_problems(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    const PROBLEM: &str = "application/problem+json";
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(PROBLEM, ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build())
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let shared_query = item.parameters.iter().flatten().any(|p| p.parameter_in == ParameterIn::Query);
        for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch]
            .into_iter()
            .filter_map(Option::as_mut)
        {
            for (code, response) in &mut op.responses.responses {
                if (code.starts_with('4') || code.starts_with('5'))
                    && let RefOr::T(response) = response
                    && let Some(content) = response.content.shift_remove("application/json")
                {
                    response.content.insert(PROBLEM.to_owned(), content);
                }
            }
            let query = shared_query || op.parameters.iter().flatten().any(|p| p.parameter_in == ParameterIn::Query);
            let json_body = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            let mut add = |code: &str, description: &str| {
                responses.entry(code.to_owned()).or_insert_with(|| RefOr::T(problem(description)));
            };
            add("401", "No valid API token: missing, unknown, expired or revoked.");
            if query || op.request_body.is_some() {
                add("400", "A query parameter or the body is invalid; `errors` names each field.");
            }
            if json_body {
                add("413", "The body is too large.");
                add("415", "The body is not of the media type the operation takes.");
            }
        }
    }
}

async fn not_found() -> AppError {
    AppError::NotFound("API route".into())
}

/// JSON body whose rejections are problem+json (400, 413, 415).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(mut v)) => {
                // every body is an object (serde would read a struct from an array)
                if !v.is_object() {
                    return Err(AppError::BadRequest("The body must be a JSON object.".into()));
                }
                whole_numbers(&mut v);
                let mut bad = Vec::new();
                control_characters(&v, "", &mut bad);
                if !bad.is_empty() {
                    return Err(AppError::Validation(
                        bad.into_iter()
                            .map(|field| {
                                app::kernel::error::FieldError::new(
                                    &field,
                                    "Remove the control characters (only tabs and line breaks are kept).",
                                )
                            })
                            .collect(),
                    ));
                }
                // the path names the field in type errors (`instance_count: invalid type …`)
                serde_path_to_error::deserialize(v).map(ApiJson).map_err(|e| data_error(&e.to_string()))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(AppError::UnsupportedMediaType("Send a JSON body with Content-Type: application/json.".into()))
            }
            Err(JsonRejection::JsonDataError(e)) => Err(data_error(&e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(AppError::BadRequest(e.body_text())),
            Err(e) if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE => Err(AppError::PayloadTooLarge),
            Err(e) => Err(AppError::BadRequest(e.body_text())),
        }
    }
}

/// JSON Schema counts `3.0` as an integer, as many clients write it: whole
/// numbers written with a fraction become integers before the body is read.
fn whole_numbers(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

/// Where text enters, NUL and other control characters are refused by field
/// (tabs and line breaks are text): they would otherwise reach PostgreSQL
/// (which refuses NUL) or a terminal reading logs. Fields are named as in
/// validation errors: `name`, `tags[1]`, `hyperparameters[0].value`.
fn control_characters(v: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    match v {
        Value::String(s) if s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) => {
            out.push(if at.is_empty() { "body".to_owned() } else { at.to_owned() });
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                control_characters(item, &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                control_characters(item, &path, out);
            }
        }
        _ => {}
    }
}

/// A body that parsed as JSON but does not fit: a field the endpoint does not
/// know is an error on that field (a misspelt `expires_in_days` must not
/// silently give a token that never expires), and so is a value outside an
/// enumeration (`"min_role": "owner"`); anything else is a 400.
fn data_error(text: &str) -> AppError {
    match text.split("unknown field `").nth(1).and_then(|rest| rest.split('`').next()) {
        Some(field) => {
            let expected = text
                .split(", expected ")
                .nth(1)
                .map(|e| format!(" Expected {}", e.split(" at line").next().unwrap_or(e)));
            AppError::field(field, format!("Unknown field `{field}`.{}", expected.unwrap_or_default()))
        }
        // a value outside an enumeration: a field error naming the allowed values
        None => match text.split_once(": unknown variant `") {
            Some((field, rest)) if !field.contains(' ') => {
                let value = rest.split('`').next().unwrap_or_default();
                let allowed = rest.split(", expected ").nth(1).map(|e| e.split(" at line").next().unwrap_or(e));
                AppError::field(
                    field,
                    format!(
                        "`{value}` is not allowed here: use {}.",
                        allowed.unwrap_or("one of the documented values")
                    ),
                )
            }
            _ => AppError::BadRequest(text.to_owned()),
        },
    }
}

/// Query string whose rejections are problem+json (400).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| AppError::BadRequest(e.body_text()))
    }
}

/// Path parameters whose rejections are problem+json (a malformed id is a 404).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| AppError::NotFound("Resource".into()))
    }
}

/// Pagination parameters shared by list endpoints.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1 to 200; default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
