//! The S3 operations the scenarios use, each checking what it gets back:
//! ETags against the MD5 of what was sent, every body byte against the pattern.

use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest, Md5};

use super::body::ReqBody;
use super::client::{error_chain, Error, Request, S3};
use super::pattern::{Content, Pattern};
use super::xml;

/// S3's cap on keys per ListObjectsV2 page and per DeleteObjects request.
pub const MAX_BATCH: usize = 1000;

/// One bucket on one endpoint, and the content every object is cut from.
pub struct Target {
    pub s3: S3,
    pub pattern: Arc<Pattern>,
    pub bucket: String,
}

/// An object to write: its key, content, and the MD5 the server must answer.
#[derive(Debug, Clone)]
pub struct Obj {
    pub key: String,
    pub content: Content,
    pub md5: [u8; 16],
}

pub struct ListPage {
    pub keys: Vec<String>,
    pub next: Option<String>,
}

impl Target {
    fn req(&self, op: &'static str, method: Method, key: Option<&str>) -> Request {
        Request::new(op, method, &self.bucket, key)
    }

    /// CreateBucket; a bucket we already own is fine (`--bucket` may name one).
    pub async fn create_bucket(&self) -> Result<(), Error> {
        match self.s3.call_doc(self.req("CreateBucket", Method::PUT, None)).await {
            Err(Error::Status { code, .. }) if code == "BucketAlreadyOwnedByYou" => Ok(()),
            other => other.map(drop),
        }
    }

    /// PutBucketVersioning `Enabled`.
    pub async fn enable_versioning(&self) -> Result<(), Error> {
        let doc = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
        let req = self.req("PutBucketVersioning", Method::PUT, None).query("versioning", "");
        self.s3.call_doc(req.body(ReqBody::full(doc.to_string()))).await.map(drop)
    }

    /// Every (key, version id) under `prefix`, versions and delete markers.
    pub async fn list_versions(&self, prefix: &str) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut req =
                self.req("ListObjectVersions", Method::GET, None).query("versions", "").query("prefix", prefix);
            if let Some((key, version)) = &markers {
                req = req.query("key-marker", key.clone()).query("version-id-marker", version.clone());
            }
            let (_, doc) = self.s3.call_doc(req).await?;
            out.extend(xml::texts(&doc, "Key").zip(xml::texts(&doc, "VersionId")));
            if xml::texts(&doc, "IsTruncated").next().is_none_or(|t| t != "true") {
                return Ok(out);
            }
            let key = xml::texts(&doc, "NextKeyMarker").next();
            let version = xml::texts(&doc, "NextVersionIdMarker").next();
            match key.zip(version) {
                Some(next) => markers = Some(next),
                None => return Err(Error::invalid("ListObjectVersions", "truncated page without next markers")),
            }
        }
    }

    pub async fn delete_bucket(&self) -> Result<(), Error> {
        self.s3.call_doc(self.req("DeleteBucket", Method::DELETE, None)).await.map(drop)
    }

    /// PutObject of the whole object; returns the bytes sent.
    pub async fn put(&self, obj: &Obj) -> Result<u64, Error> {
        let body = ReqBody::pattern(self.pattern.clone(), obj.content, 0, obj.content.len);
        let (headers, _) = self.s3.call_doc(self.req("PutObject", Method::PUT, Some(&obj.key)).body(body)).await?;
        check_etag("PutObject", headers.get("etag"), &hex::encode(obj.md5))?;
        Ok(obj.content.len)
    }

    /// GetObject of the whole object or of `len` bytes from `start`, every byte
    /// checked as it arrives; returns the bytes read.
    pub async fn get(&self, key: &str, content: Content, range: Option<(u64, u64)>) -> Result<u64, Error> {
        let mut req = self.req("GetObject", Method::GET, Some(key));
        let (start, len) = range.unwrap_or((0, content.len));
        if let Some((start, len)) = range {
            req = req.header("range", format!("bytes={start}-{}", start + len - 1));
        }
        let response = self.s3.call(req).await?;
        let want = if range.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
        if response.status() != want {
            return Err(Error::invalid("GetObject", format!("status {} instead of {want}", response.status())));
        }
        self.read_checked(response.into_body(), content, start, len).await
    }

    async fn read_checked(&self, mut body: Incoming, content: Content, start: u64, len: u64) -> Result<u64, Error> {
        let op = "GetObject";
        let mut at = start;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Transport { op, detail: error_chain(&e) })?;
            let Ok(data) = frame.into_data() else { continue };
            if at + data.len() as u64 > start + len {
                return Err(Error::invalid(op, format!("more than the {len} bytes asked for")));
            }
            self.pattern.check(content.phase, at, &data).map_err(|wrong| {
                Error::invalid(op, format!("wrong byte at offset {wrong} (object phase {})", content.phase))
            })?;
            at += data.len() as u64;
        }
        match at - start {
            n if n == len => Ok(len),
            n => Err(Error::invalid(op, format!("{n} bytes instead of {len}"))),
        }
    }

    pub async fn head_size(&self, key: &str) -> Result<u64, Error> {
        let (headers, _) = self.s3.call_doc(self.req("HeadObject", Method::HEAD, Some(key))).await?;
        let length = headers.get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        length.ok_or_else(|| Error::invalid("HeadObject", "no Content-Length"))
    }

    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        self.s3.call_doc(self.req("DeleteObject", Method::DELETE, Some(key))).await.map(drop)
    }

    /// DeleteObjects of up to 1,000 keys; every key must come back `<Deleted>`.
    pub async fn delete_batch(&self, keys: &[String]) -> Result<(), Error> {
        let keys: Vec<(String, Option<String>)> = keys.iter().map(|k| (k.clone(), None)).collect();
        self.delete_versions(&keys).await
    }

    /// DeleteObjects of up to 1,000 keys, each with a version id or none.
    pub async fn delete_versions(&self, keys: &[(String, Option<String>)]) -> Result<(), Error> {
        let mut doc = String::from("<Delete><Quiet>false</Quiet>");
        for (key, version) in keys {
            let _ = write!(doc, "<Object><Key>{}</Key>", xml::escape(key));
            if let Some(version) = version {
                let _ = write!(doc, "<VersionId>{}</VersionId>", xml::escape(version));
            }
            doc.push_str("</Object>");
        }
        doc.push_str("</Delete>");
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(doc.as_bytes()));
        let req = self.req("DeleteObjects", Method::POST, None).query("delete", "").header("content-md5", md5);
        let (_, reply) = self.s3.call_doc(req.body(ReqBody::full(doc))).await?;
        let deleted = xml::texts(&reply, "Deleted").count();
        let failed = xml::texts(&reply, "Code").next();
        match failed {
            Some(code) => Err(Error::invalid("DeleteObjects", format!("a key failed: {code}"))),
            None if deleted != keys.len() => {
                Err(Error::invalid("DeleteObjects", format!("{deleted} of {} keys deleted", keys.len())))
            }
            None => Ok(()),
        }
    }

    /// One ListObjectsV2 page of at most `max_keys` keys under `prefix`.
    pub async fn list_page(&self, prefix: &str, token: Option<&str>, max_keys: usize) -> Result<ListPage, Error> {
        let mut req = self.req("ListObjectsV2", Method::GET, None).query("list-type", "2").query("prefix", prefix);
        req = req.query("max-keys", max_keys.to_string());
        if let Some(token) = token {
            req = req.query("continuation-token", token);
        }
        let (_, doc) = self.s3.call_doc(req).await?;
        let keys: Vec<String> = xml::texts(&doc, "Key").collect();
        let truncated = xml::texts(&doc, "IsTruncated").next().is_some_and(|t| t == "true");
        let next = xml::texts(&doc, "NextContinuationToken").next();
        match (truncated, next) {
            (true, None) => Err(Error::invalid("ListObjectsV2", "truncated page without NextContinuationToken")),
            (true, next) => Ok(ListPage { keys, next }),
            (false, _) => Ok(ListPage { keys, next: None }),
        }
    }

    /// Every key under `prefix`, page by page.
    pub async fn list_all(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self.list_page(prefix, token.as_deref(), MAX_BATCH).await?;
            keys.extend(page.keys);
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(keys),
            }
        }
    }
}

/// Compares a quoted ETag header with the hex digest it must carry.
pub fn check_etag(op: &'static str, header: Option<&http::HeaderValue>, want: &str) -> Result<(), Error> {
    let got = header.and_then(|v| v.to_str().ok()).unwrap_or_default();
    check_etag_text(op, got, want)
}

pub fn check_etag_text(op: &'static str, got: &str, want: &str) -> Result<(), Error> {
    if got.trim_matches('"') == want {
        Ok(())
    } else {
        Err(Error::invalid(op, format!("ETag {got} instead of \"{want}\"")))
    }
}
