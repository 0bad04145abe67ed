//! `tessera ls`, `tessera mb` and `tessera rm`: the few bucket and object
//! commands a user of `cp` needs, on the same client and credentials.

use std::fmt::Write as _;

use clap::Args;
use http::Method;

use super::location::Location;
use super::ops;
use crate::bench::body::ReqBody;
use crate::bench::client::{Error, Request, S3};
use crate::bench::xml;

/// The endpoint option every command shares.
#[derive(Debug, Clone, Args)]
pub struct EndpointArgs {
    /// The S3 endpoint: http://, or https:// with the certificate checked
    /// against AWS_CA_BUNDLE's CAs, else the system's.
    #[arg(long, env = "AWS_ENDPOINT_URL", default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
}

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Nothing for the buckets, `s3://bucket` or `s3://bucket/prefix` for keys.
    pub target: Option<String>,
    /// Every key under the prefix, not one level of `/` folders.
    #[arg(long)]
    pub recursive: bool,
    #[command(flatten)]
    pub remote: EndpointArgs,
}

#[derive(Debug, Clone, Args)]
pub struct MbArgs {
    /// `s3://bucket`
    pub bucket: String,
    #[command(flatten)]
    pub remote: EndpointArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// `s3://bucket/key`, or with `--recursive` `s3://bucket/prefix`.
    pub target: String,
    /// Every key under the prefix (DeleteObjects, 1,000 keys a request).
    #[arg(long)]
    pub recursive: bool,
    #[command(flatten)]
    pub remote: EndpointArgs,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: String,
}

/// A listing: the objects, and with a delimiter the folders (common prefixes).
#[derive(Debug, Default)]
pub struct Listing {
    pub objects: Vec<Listed>,
    pub folders: Vec<String>,
}

fn remote(text: &str) -> anyhow::Result<(String, String)> {
    match Location::parse(text)? {
        Location::Remote { bucket, key } => Ok((bucket, key)),
        Location::Local(_) => anyhow::bail!("`{text}`: expected s3://bucket[/key]"),
    }
}

/// Prints buckets, or the keys under a prefix (`PRE folder/` for folders
/// unless `--recursive`), as `aws s3 ls` does: date, size, key.
pub async fn ls(s3: &S3, args: &LsArgs) -> anyhow::Result<()> {
    let Some(target) = &args.target else {
        let (_, doc) = ops::retry(|| s3.call_doc(Request::new("ListBuckets", Method::GET, "", None))).await?;
        let dates = xml::texts(&doc, "CreationDate");
        for (name, date) in xml::texts(&doc, "Name").zip(dates) {
            println!("{date} {name}");
        }
        return Ok(());
    };
    let (bucket, prefix) = remote(target)?;
    let listing = list(s3, &bucket, &prefix, !args.recursive).await?;
    for folder in &listing.folders {
        println!("{:>24} {:>12} {folder}", "", "PRE");
    }
    for object in &listing.objects {
        println!("{:>24} {:>12} {}", object.modified, object.size, object.key);
    }
    Ok(())
}

/// Every object under `prefix` (ListObjectsV2, page after page); with
/// `folders`, one level: keys past the next `/` are folded into folders.
pub async fn list(s3: &S3, bucket: &str, prefix: &str, folders: bool) -> Result<Listing, Error> {
    let mut listing = Listing::default();
    let mut token: Option<String> = None;
    loop {
        let (_, doc) = ops::retry(|| {
            let mut req = Request::new("ListObjectsV2", Method::GET, bucket, None).query("list-type", "2");
            req = req.query("prefix", prefix);
            if folders {
                req = req.query("delimiter", "/");
            }
            if let Some(token) = &token {
                req = req.query("continuation-token", token.clone());
            }
            s3.call_doc(req)
        })
        .await?;
        listing.objects.extend(doc.split("<Contents>").skip(1).filter_map(parse_contents));
        let prefixes = doc.split("<CommonPrefixes>").skip(1);
        listing.folders.extend(prefixes.filter_map(|p| xml::texts(p, "Prefix").next()));
        let truncated = xml::texts(&doc, "IsTruncated").next().as_deref() == Some("true");
        let next = xml::texts(&doc, "NextContinuationToken").next();
        match next {
            Some(next) if truncated && !next.is_empty() => token = Some(next),
            _ if truncated => return Err(Error::invalid("ListObjectsV2", "truncated without a continuation token")),
            _ => return Ok(listing),
        }
    }
}

fn parse_contents(part: &str) -> Option<Listed> {
    Some(Listed {
        key: xml::texts(part, "Key").next()?,
        size: xml::texts(part, "Size").next()?.trim().parse().ok()?,
        modified: xml::texts(part, "LastModified").next().unwrap_or_default(),
    })
}

/// CreateBucket.
pub async fn mb(s3: &S3, args: &MbArgs) -> anyhow::Result<()> {
    let (bucket, key) = remote(&args.bucket)?;
    anyhow::ensure!(key.is_empty(), "`{}`: a bucket has no key", args.bucket);
    ops::retry(|| s3.call(Request::new("CreateBucket", Method::PUT, &bucket, None))).await?;
    println!("make_bucket: {bucket}");
    Ok(())
}

/// DeleteObject, or DeleteObjects of every key under the prefix.
pub async fn rm(s3: &S3, args: &RmArgs) -> anyhow::Result<()> {
    let (bucket, key) = remote(&args.target)?;
    if !args.recursive {
        anyhow::ensure!(!key.is_empty(), "`{}`: name the object (or use --recursive)", args.target);
        ops::retry(|| s3.call(Request::new("DeleteObject", Method::DELETE, &bucket, Some(&key)))).await?;
        println!("delete: s3://{bucket}/{key}");
        return Ok(());
    }
    let keys: Vec<String> = list(s3, &bucket, &key, false).await?.objects.into_iter().map(|o| o.key).collect();
    for batch in keys.chunks(1000) {
        delete_batch(s3, &bucket, batch).await?;
        for key in batch {
            println!("delete: s3://{bucket}/{key}");
        }
    }
    Ok(())
}

/// DeleteObjects of up to 1,000 keys; any key it could not delete is an error.
async fn delete_batch(s3: &S3, bucket: &str, keys: &[String]) -> anyhow::Result<()> {
    let mut doc = String::from("<Delete><Quiet>true</Quiet>");
    for key in keys {
        let _ = write!(doc, "<Object><Key>{}</Key></Object>", xml::escape(key));
    }
    doc.push_str("</Delete>");
    let md5 = base64_md5(doc.as_bytes());
    let (_, reply) = ops::retry(|| {
        let req = Request::new("DeleteObjects", Method::POST, bucket, None).query("delete", "");
        s3.call_doc(req.header("content-md5", md5.clone()).body(ReqBody::full(doc.clone())))
    })
    .await?;
    let failed: Vec<String> = xml::texts(&reply, "Error").collect();
    anyhow::ensure!(failed.is_empty(), "DeleteObjects refused {} keys: {}", failed.len(), failed.join("; "));
    Ok(())
}

/// Content-MD5, which DeleteObjects requires.
fn base64_md5(bytes: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes))
}
