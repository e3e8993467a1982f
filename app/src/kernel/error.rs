//! The one error type that crosses every boundary: domain functions return it,
//! server functions send it to the UI, and the REST API renders it as RFC 9457
//! problem+json. Raw database or library errors never reach a client.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// A problem with one input field, named as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), message: message.into() }
    }
}

/// Every way a request can fail, closed so the UI can match on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Sign in to continue.")]
    Unauthenticated,
    #[error("Your role does not allow this.")]
    Forbidden,
    /// The resource does not exist or the caller may not know it exists.
    #[error("{0} not found.")]
    NotFound(String),
    #[error("Some fields are invalid.")]
    Validation(Vec<FieldError>),
    /// A bad query parameter (limit, cursor, filter): reported as 400.
    #[error("Some query parameters are invalid.")]
    InvalidQuery(Vec<FieldError>),
    /// A uniqueness or state conflict, optionally tied to a field.
    #[error("{message}")]
    Conflict { field: Option<String>, message: String },
    #[error("Too many failed attempts. Try again in {retry_after_secs} seconds.")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("The request body is too large.")]
    PayloadTooLarge,
    /// A service Capstan calls (SageMaker) refused or failed; the message says which and why.
    #[error("{0}")]
    Upstream(String),
    #[error("Something went wrong on our side. It has been logged.")]
    Internal,
    /// The request never reached the server function (network, encoding).
    #[error("Request failed: {0}")]
    Transport(String),
}

impl AppError {
    /// A validation error about a single field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// A bad query parameter.
    pub fn query(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidQuery(vec![FieldError::new(field, message)])
    }

    /// The message for `field`, if this error names it; used by forms.
    pub fn field_message(&self, field: &str) -> Option<String> {
        match self {
            Self::Validation(errors) | Self::InvalidQuery(errors) => {
                errors.iter().find(|e| e.field == field).map(|e| e.message.clone())
            }
            Self::Conflict { field: Some(f), message } if f == field => Some(message.clone()),
            _ => None,
        }
    }

    /// Whether the error is about named fields (shown next to them in forms).
    pub fn names_fields(&self) -> bool {
        match self {
            Self::Validation(errors) | Self::InvalidQuery(errors) => !errors.is_empty(),
            Self::Conflict { field, .. } => field.is_some(),
            _ => false,
        }
    }

    /// The HTTP status this error is reported with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound(_) => 404,
            Self::Validation(_) => 422,
            Self::InvalidQuery(_) => 400,
            Self::Conflict { .. } => 409,
            Self::RateLimited { .. } => 429,
            Self::BadRequest(_) | Self::Transport(_) => 400,
            Self::UnsupportedMediaType(_) => 415,
            Self::PayloadTooLarge => 413,
            Self::Upstream(_) => 502,
            Self::Internal => 500,
        }
    }

    /// A short stable slug used in problem+json `type` URIs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::Validation(_) => "validation",
            Self::InvalidQuery(_) => "invalid-query",
            Self::Conflict { .. } => "conflict",
            Self::RateLimited { .. } => "rate-limited",
            Self::BadRequest(_) | Self::Transport(_) => "bad-request",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::PayloadTooLarge => "payload-too-large",
            Self::Upstream(_) => "upstream",
            Self::Internal => "internal",
        }
    }
}

impl AppError {
    /// The error a REST answer's problem+json body (`status`, `body`) stands
    /// for, so a page that calls the REST API (the launch form's upload)
    /// shows its errors as every other form does, field by field.
    pub fn from_problem(status: u16, body: &str) -> Self {
        #[derive(Deserialize)]
        struct Body {
            #[serde(rename = "type", default)]
            kind: String,
            #[serde(default)]
            detail: String,
            #[serde(default)]
            errors: Vec<FieldError>,
        }
        let Ok(p) = serde_json::from_str::<Body>(body) else {
            return Self::Transport(format!("HTTP {status}"));
        };
        match p.kind.trim_start_matches("/problems/") {
            "unauthenticated" => Self::Unauthenticated,
            "forbidden" => Self::Forbidden,
            "not-found" => Self::NotFound(p.detail.trim_end_matches(" not found.").to_owned()),
            "validation" => Self::Validation(p.errors),
            "invalid-query" => Self::InvalidQuery(p.errors),
            "conflict" => Self::Conflict { field: p.errors.into_iter().next().map(|e| e.field), message: p.detail },
            "rate-limited" => Self::RateLimited {
                retry_after_secs: p.detail.split_whitespace().find_map(|w| w.parse().ok()).unwrap_or(60),
            },
            "bad-request" => Self::BadRequest(p.detail),
            "unsupported-media-type" => Self::UnsupportedMediaType(p.detail),
            "payload-too-large" => Self::PayloadTooLarge,
            "upstream" => Self::Upstream(p.detail),
            "internal" => Self::Internal,
            _ => Self::Transport(format!("HTTP {status}")),
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(msg) | ServerFnErrorErr::Deserialization(msg) => Self::BadRequest(msg),
            other => Self::Transport(other.to_string()),
        }
    }
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! Mapping infrastructure errors into [`AppError`] and rendering it over HTTP.
    use super::{AppError, FieldError};
    use axum::response::{IntoResponse, Response};
    use serde::Serialize;

    /// Unique constraints, by name, and the field and message each one means.
    const UNIQUE_CONSTRAINTS: &[(&str, &str, &str)] = &[
        ("team_slug_key", "slug", "A team with this slug already exists."),
        ("app_user_email_key", "email", "A user with this email already exists."),
        ("team_member_pkey", "email", "This user is already a member of the team."),
        ("dataset_team_name_key", "name", "This team already has a dataset with this name."),
        ("training_job_name_key", "name", "This team already has a training job with this name."),
        ("model_team_name_key", "name", "This team already has a model with this name."),
        ("model_version_job_key", "training_job_id", "This job is already a version of the model."),
    ];

    impl From<sqlx::Error> for AppError {
        fn from(err: sqlx::Error) -> Self {
            if let sqlx::Error::Database(db) = &err
                && let Some(name) = db.constraint()
                && let Some((_, field, message)) = UNIQUE_CONSTRAINTS.iter().find(|(c, _, _)| *c == name)
            {
                return AppError::Conflict { field: Some((*field).to_owned()), message: (*message).to_owned() };
            }
            if let sqlx::Error::RowNotFound = err {
                return AppError::NotFound("Resource".into());
            }
            // PostgreSQL refuses NUL in text (22021) and malformed values
            // (22P02): input the request carried, not a fault of ours. The
            // places where text enters name the field first; this is the net.
            if let sqlx::Error::Database(db) = &err
                && matches!(db.code().as_deref(), Some("22021" | "22P02" | "22P05"))
            {
                tracing::info!(error = %err, "input refused by the database");
                return AppError::BadRequest("The request holds characters or values that cannot be stored.".into());
            }
            tracing::error!(error = %err, "database error");
            AppError::Internal
        }
    }

    impl From<anyhow::Error> for AppError {
        fn from(err: anyhow::Error) -> Self {
            tracing::error!(error = ?err, "internal error");
            AppError::Internal
        }
    }

    /// RFC 9457 problem details body.
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct Problem {
        /// A URI naming the kind of problem.
        #[serde(rename = "type")]
        pub kind: String,
        pub title: String,
        pub status: u16,
        pub detail: String,
        /// For validation problems: each bad field and why.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub errors: Vec<FieldError>,
    }

    impl Problem {
        pub fn from_error(err: &AppError) -> Self {
            let status = err.status();
            let title = http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error")
                .to_owned();
            let errors = match err {
                AppError::Validation(errors) | AppError::InvalidQuery(errors) => errors.clone(),
                AppError::Conflict { field: Some(field), message } => vec![FieldError::new(field, message.clone())],
                _ => Vec::new(),
            };
            Problem { kind: format!("/problems/{}", err.kind()), title, status, detail: err.to_string(), errors }
        }
    }

    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let problem = Problem::from_error(&self);
            let status = http::StatusCode::from_u16(problem.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::to_vec(&problem).unwrap_or_default();
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/problem+json"));
            if let AppError::RateLimited { retry_after_secs } = self
                && let Ok(v) = http::HeaderValue::from_str(&retry_after_secs.to_string())
            {
                response.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            if let AppError::Unauthenticated = self {
                response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
            }
            response
        }
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    /// What the REST API sends is read back as the same error, so the pages
    /// that call it show the same messages, under the same fields.
    #[test]
    fn a_problem_body_reads_back_as_the_error_it_was_made_from() {
        let errors = [
            AppError::Unauthenticated,
            AppError::Forbidden,
            AppError::NotFound("Team".into()),
            AppError::Validation(vec![FieldError::new("files[0]", "Use a relative path.")]),
            AppError::InvalidQuery(vec![FieldError::new("limit", "Use a limit from 1 to 200.")]),
            AppError::Conflict { field: Some("name".into()), message: "Taken.".into() },
            AppError::Conflict { field: None, message: "The version is not uploading.".into() },
            AppError::RateLimited { retry_after_secs: 30 },
            AppError::BadRequest("Unreadable upload.".into()),
            AppError::UnsupportedMediaType("Send JSON.".into()),
            AppError::PayloadTooLarge,
            AppError::Internal,
        ];
        for error in errors {
            let body = serde_json::to_string(&ssr::Problem::from_error(&error)).expect("json");
            assert_eq!(AppError::from_problem(error.status(), &body), error, "{body}");
        }
        assert_eq!(AppError::from_problem(502, "<html>bad gateway</html>"), AppError::Transport("HTTP 502".into()));
    }
}
