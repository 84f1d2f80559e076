//! One error shape for every failure: `huren_api::ErrorBody`, with the HTTP status that
//! `huren_api::ErrorCode` assigns to its code (the one table; no handler picks a status).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use huren_api::{ErrorBody, ErrorCode, ErrorDetail};
use serde::de::DeserializeOwned;

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Logs the detail and shows only a generic 500: internal errors are not for clients.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(ErrorCode::Internal, "internal error; see the node's log")
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status())
            .expect("ErrorCode::http_status names only valid statuses")
    }

    pub fn detail(self) -> ErrorDetail {
        ErrorDetail {
            code: self.code,
            message: self.message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        (
            status,
            axum::Json(ErrorBody {
                error: self.detail(),
            }),
        )
            .into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let code = match &r {
            JsonRejection::JsonDataError(_) => ErrorCode::InvalidBody,
            JsonRejection::MissingJsonContentType(_) => ErrorCode::UnsupportedMediaType,
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ErrorCode::BodyTooLarge
            }
            _ => ErrorCode::MalformedBody,
        };
        Self::new(code, r.body_text())
    }
}

/// `axum::Json` with rejections in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_axum_knows() {
        for code in ErrorCode::ALL {
            let e = ApiError::new(code, "x");
            assert_eq!(e.status().as_u16(), code.http_status());
        }
    }
}
