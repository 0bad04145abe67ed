//! CORS for the web console's page on the S3 listener: the page (on the
//! console's origin) sends its presigned requests straight here. Requests
//! whose `Origin` is one of the console's get a fixed answer, whatever the
//! bucket's own CORS rules say (those still apply to every other origin).
//!
//! This grants nothing by itself: CORS only lets a page read responses to
//! requests that are still signed, and checked, like any other.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use crate::http::body::{self, Body};

const ALLOW_METHODS: &str = "GET, HEAD, PUT, POST, DELETE";
const EXPOSE: &str = "ETag, x-amz-version-id, x-amz-checksum-sha256, x-amz-checksum-crc64nvme, \
    x-amz-checksum-crc32, x-amz-checksum-crc32c, x-amz-checksum-sha1, x-amz-checksum-type, x-amz-delete-marker, \
    x-amz-request-id, content-length, content-range, content-type, last-modified, accept-ranges, \
    x-tessera-instant-upload";
const MAX_AGE: &str = "600";
const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// The request's `Origin` when it is one of the console's.
pub fn console_origin(origins: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    origins.iter().any(|o| o.as_bytes() == origin.as_bytes()).then(|| origin.clone())
}

/// The answer to a console page's preflight: every method the page uses,
/// whatever request headers it asks for.
pub fn preflight(origin: &HeaderValue, headers: &HeaderMap) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::OK;
    let out = response.headers_mut();
    out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
    if let Some(asked) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
    add_headers(origin, out);
    response
}

/// The headers of every response to a console page's request, errors
/// included (the page must read a 403 to report it). The response's own
/// `x-amz-meta-*` names are exposed too, so the page can show an object's
/// metadata: `Access-Control-Expose-Headers` allows no wildcard on requests
/// that carry credentials, and its names are the object's own business.
pub fn add_headers(origin: &HeaderValue, out: &mut HeaderMap) {
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose(out));
    out.append(header::VARY, HeaderValue::from_static(VARY));
}

/// [`EXPOSE`] plus the names of the `x-amz-meta-*` headers in `out`.
fn expose(out: &HeaderMap) -> HeaderValue {
    let mut names = EXPOSE.to_string();
    for name in out.keys().filter(|name| name.as_str().starts_with("x-amz-meta-")) {
        names.push_str(", ");
        names.push_str(name.as_str());
    }
    HeaderValue::from_str(&names).unwrap_or_else(|_| HeaderValue::from_static(EXPOSE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_consoles_origins_get_the_answer() {
        let origins = vec!["http://127.0.0.1:9001".to_string(), "http://localhost:9001".to_string()];
        let mut headers = HeaderMap::new();
        assert!(console_origin(&origins, &headers).is_none(), "no Origin");
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://localhost:9001"));
        let origin = console_origin(&origins, &headers).expect("a console origin");
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://localhost:9002"));
        assert!(console_origin(&origins, &headers).is_none(), "another port");
        headers.insert(header::ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_static("content-type,x-amz-meta-a"));
        let answer = preflight(&origin, &headers);
        let got = |name| answer.headers().get(name).and_then(|v| v.to_str().ok());
        assert_eq!(got(header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("http://localhost:9001"));
        assert_eq!(got(header::ACCESS_CONTROL_ALLOW_HEADERS), Some("content-type,x-amz-meta-a"));
        assert_eq!(got(header::ACCESS_CONTROL_MAX_AGE), Some("600"));
        assert!(got(header::ACCESS_CONTROL_EXPOSE_HEADERS).is_some_and(|e| e.contains("x-amz-version-id")));
    }

    #[test]
    fn an_objects_metadata_names_are_exposed() {
        let origin = HeaderValue::from_static("http://127.0.0.1:9001");
        let mut out = HeaderMap::new();
        out.insert("x-amz-meta-camera", HeaderValue::from_static("x100"));
        out.insert("x-amz-meta-taken-at", HeaderValue::from_static("2026"));
        add_headers(&origin, &mut out);
        let exposed = out.get(header::ACCESS_CONTROL_EXPOSE_HEADERS).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(exposed.starts_with(EXPOSE), "{exposed}");
        assert!(exposed.ends_with(", x-amz-meta-camera, x-amz-meta-taken-at"), "{exposed}");
    }
}
