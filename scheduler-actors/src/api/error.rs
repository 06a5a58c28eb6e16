//! Every API error as `{"error":{"code":..,"message":..,"field":..}}`, with the words the CLI
//! uses for the same problem.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use store::StoreError;

/// The body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable code: `invalid`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `stale`, `too_large`, `database_unavailable`, ...
    code: String,
    /// In words, as the CLI says it.
    message: String,
    /// The request field it is about, if one.
    field: Option<String>,
}

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// The request field it is about, if one.
    pub(crate) fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The same, about one field of the request.
    pub(crate) fn on(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// 401: no token, or one that is not configured (no hint which).
    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API token is required: Authorization: Bearer <token>",
        )
    }

    /// 403: the token's role may not do this.
    pub(crate) fn forbidden(message: String) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 400: the request itself is wrong.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let (status, code) = match &e {
            StoreError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::Refused { .. } => (StatusCode::BAD_REQUEST, "invalid"),
            StoreError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            StoreError::Stale { .. } => (StatusCode::PRECONDITION_FAILED, "stale"),
            StoreError::ReadOnly(_) => (StatusCode::SERVICE_UNAVAILABLE, "read_only"),
            StoreError::Db(_)
            | StoreError::NoSchema { .. }
            | StoreError::SchemaBehind { .. }
            | StoreError::SchemaAhead { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
            }
        };
        // Database errors are logged in full here and answered without the driver's words.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(target: "cron_task", error = %e, "API request failed on the database");
            return Self::new(status, code, "the database is not available; try again");
        }
        Self::new(status, code, e.to_string())
    }
}

/// A query string that does not parse, in the API's form.
pub(crate) fn query_error(err: actix_web::error::QueryPayloadError) -> actix_web::Error {
    ApiError::invalid(format!("the query string is not valid: {err}")).into()
}

/// The JSON and body size limits' own errors in the API's form: 413 for a body over the limit.
pub(crate) fn json_error(err: actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is over {limit} bytes"),
        ),
        E::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            "the request body must be JSON (Content-Type: application/json)",
        ),
        other => ApiError::invalid(format!("the request body is not valid JSON: {other}")),
    };
    api.into()
}
