//! Building the console's responses; an API refusal is `{"error": "..."}`.

use http::{Response, StatusCode};

use crate::http::body::{self, Body};

/// An API request refused or failed: its status and a message for the page.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "not signed in, or the session has expired")
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }

    /// A server-side failure: logged with its cause, which the page never sees.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "console request failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; the server log has the cause")
    }

    /// The access log's `code` of this refusal.
    pub fn code(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            408 => "RequestTimeout",
            413 => "TooLarge",
            _ => "InternalError",
        }
    }

    pub fn response(&self) -> Response<Body> {
        json(self.status, &serde_json::json!({ "error": self.message }))
    }
}

pub type ApiResult = Result<Response<Body>, ApiError>;

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let text = value.to_string();
    let len = text.len();
    with_type(status, "application/json", body::full(text), Some(len))
}

pub fn text(status: StatusCode, text: &'static str) -> Response<Body> {
    with_type(status, "text/plain; charset=utf-8", body::full(text), Some(text.len()))
}

pub fn with_type(status: StatusCode, content_type: &'static str, body: Body, len: Option<usize>) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    if let Some(len) = len {
        headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    }
    response
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = status;
    response
}
