//! `POST /api/presign`: SigV4 presigned URLs for the page's S3 requests
//! (an empty bucket names the service: `GET /` is ListBuckets),
//! signed with the session user's own key, so the S3 listener grants each
//! exactly what it would grant that user signing it themself. The page
//! never holds a secret.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use time::macros::format_description;
use time::OffsetDateTime;

use super::api::{read_json, Identity};
use super::listen::RequestBody;
use super::reply::{self, ApiError, ApiResult};
use super::Console;
use crate::auth::sigv4::{self, Presign};

/// The most URLs one request asks for (a 10,000-part upload takes ten).
const MAX_REQUESTS: usize = 1000;
/// SigV4's longest validity, seven days.
const MAX_EXPIRES: u32 = 604_800;
const DEFAULT_EXPIRES: u32 = 900;
/// Query parameters of the signature itself, which the caller may not set.
const RESERVED: [&str; 8] = [
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-signedheaders",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

#[derive(serde::Deserialize)]
struct Batch {
    requests: Vec<Wanted>,
}

/// One URL asked for.
#[derive(serde::Deserialize)]
struct Wanted {
    method: String,
    bucket: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    query: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    expires: Option<u32>,
}

pub async fn handle(console: &Console, who: &Identity, body: RequestBody) -> ApiResult {
    let batch: Batch = read_json(console, body).await?;
    if batch.requests.len() > MAX_REQUESTS {
        return Err(ApiError::bad_request(format!("at most {MAX_REQUESTS} URLs per request")));
    }
    let amz_date = OffsetDateTime::now_utc()
        .format(format_description!("[year][month][day]T[hour][minute][second]Z"))
        .map_err(ApiError::internal)?;
    let urls = batch.requests.iter().map(|w| url(console, who, w, &amz_date)).collect::<Result<Vec<_>, _>>()?;
    Ok(reply::json(StatusCode::OK, &serde_json::json!({ "urls": urls })))
}

/// The presigned URL of one request, or why it cannot be made.
fn url(console: &Console, who: &Identity, w: &Wanted, amz_date: &str) -> Result<String, ApiError> {
    let method = match Method::from_bytes(w.method.to_ascii_uppercase().as_bytes()) {
        Ok(m) if [Method::GET, Method::HEAD, Method::PUT, Method::POST, Method::DELETE].contains(&m) => m,
        _ => return Err(ApiError::bad_request(format!("method `{}`: only GET HEAD PUT POST DELETE", w.method))),
    };
    let key = w.key.as_deref().filter(|k| !k.is_empty());
    // No bucket: the service itself (`GET /`, ListBuckets), with no key.
    let bucket_ok = match w.bucket.is_empty() {
        true => key.is_none(),
        false => !w.bucket.contains('/') && !w.bucket.starts_with('_'),
    };
    if !bucket_ok {
        return Err(ApiError::bad_request(format!("`{}` is not a bucket name", w.bucket)));
    }
    let expires = w.expires.unwrap_or(DEFAULT_EXPIRES);
    if !(1..=MAX_EXPIRES).contains(&expires) {
        return Err(ApiError::bad_request(format!("expires must be 1 to {MAX_EXPIRES} seconds")));
    }
    if let Some(name) = w.query.keys().find(|k| RESERVED.contains(&k.to_ascii_lowercase().as_str())) {
        return Err(ApiError::bad_request(format!("query parameter `{name}` is the signature's own")));
    }
    let headers = signed_headers(console, &w.headers)?;
    let mut path = format!("/{}", sigv4::uri_encode(&w.bucket, true));
    if let Some(key) = key {
        path.push('/');
        path.push_str(&sigv4::uri_encode(key, false));
    }
    let query: Vec<(String, String)> = w.query.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let signed = sigv4::presign(&Presign {
        method: method.as_str(),
        path: &path,
        query: &query,
        headers: &headers,
        access_key: &who.access_key,
        secret: &who.secret,
        region: &console.app.region,
        amz_date,
        expires,
    });
    Ok(format!("{}{path}?{signed}", console.s3_url))
}

/// The headers a URL is signed for: `host` (the S3 endpoint's authority) and
/// every header asked for, each checked to be one a client can send.
fn signed_headers(console: &Console, wanted: &BTreeMap<String, String>) -> Result<HeaderMap, ApiError> {
    let mut headers = HeaderMap::new();
    let host = HeaderValue::from_str(&console.s3_host).map_err(ApiError::internal)?;
    headers.insert(http::header::HOST, host);
    for (name, value) in wanted {
        let refused = || ApiError::bad_request(format!("header `{name}` cannot be presigned"));
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| refused())?;
        if header == http::header::HOST || header == http::header::AUTHORIZATION {
            return Err(refused());
        }
        headers.append(header, HeaderValue::from_str(value).map_err(|_| refused())?);
    }
    Ok(headers)
}
