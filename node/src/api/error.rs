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
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
        }
    }

    /// The error with a reason code under its code.
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
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
            reason: self.reason.map(str::to_owned),
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

/// `axum::Json` with rejections in the API's error shape, for request bodies that are JSON
/// objects.
///
/// serde's derived structs also accept a JSON array of their fields in order (`["penalty"]`
/// as `{"reason": "penalty"}`, `[]` as an empty reinstate request): a second, undocumented
/// shape of every body. A body that is not an object is refused (`invalid_body`) even when
/// it would parse.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "expected Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| {
                let code = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ErrorCode::BodyTooLarge
                } else {
                    ErrorCode::MalformedBody
                };
                ApiError::new(code, r.body_text())
            })?;
        let axum::Json(v) = axum::Json::<T>::from_bytes(&bytes)?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                "the body must be a JSON object",
            ));
        }
        Ok(ApiJson(v))
    }
}

/// `application/json`, or an `application/…+json` type, as axum's own `Json` takes.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every body shape the extractor meets and the code it answers.
    #[tokio::test]
    async fn bodies_are_json_objects_of_the_requested_type() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            reason: String,
        }
        let cases: [(&str, &[u8], Result<(), ErrorCode>); 9] = [
            ("application/json", br#"{"reason": "x"}"#, Ok(())),
            (
                "application/json; charset=utf-8",
                br#" {"reason": "x"}"#,
                Ok(()),
            ),
            ("application/problem+json", br#"{"reason": "x"}"#, Ok(())),
            ("application/json", br#"["x"]"#, Err(ErrorCode::InvalidBody)),
            ("application/json", b"[]", Err(ErrorCode::InvalidBody)),
            (
                "application/json",
                br#"{"reason": "x", "officer": "y"}"#,
                Err(ErrorCode::InvalidBody),
            ),
            (
                "application/json",
                b"{reason",
                Err(ErrorCode::MalformedBody),
            ),
            (
                "text/json",
                br#"{"reason": "x"}"#,
                Err(ErrorCode::UnsupportedMediaType),
            ),
            (
                "",
                br#"{"reason": "x"}"#,
                Err(ErrorCode::UnsupportedMediaType),
            ),
        ];
        for (content_type, body, expected) in cases {
            let mut req = axum::http::Request::post("/");
            if !content_type.is_empty() {
                req = req.header(axum::http::header::CONTENT_TYPE, content_type);
            }
            let req = req
                .body(axum::body::Body::from(body.to_vec()))
                .expect("request");
            let got = ApiJson::<Body>::from_request(req, &())
                .await
                .map(drop)
                .map_err(|e| e.code);
            assert_eq!(
                got,
                expected,
                "{content_type} {}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn every_code_has_a_status_axum_knows() {
        for code in ErrorCode::ALL {
            let e = ApiError::new(code, "x");
            assert_eq!(e.status().as_u16(), code.http_status());
        }
    }
}
