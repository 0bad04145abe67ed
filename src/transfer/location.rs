//! The two ends of a copy: a local path or `s3://bucket/key`.

use std::path::{Path, PathBuf};

/// One end of a copy, parsed once from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    /// `key` may be empty or end in `/`: the local file's name completes it.
    Remote {
        bucket: String,
        key: String,
    },
}

impl Location {
    pub fn parse(text: &str) -> anyhow::Result<Location> {
        let Some(rest) = text.strip_prefix("s3://") else { return Ok(Location::Local(PathBuf::from(text))) };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        // S3 bucket names are 3 to 63 characters.
        // Reference: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>
        if !(3..=63).contains(&bucket.len()) {
            anyhow::bail!("`{text}`: a bucket name is 3 to 63 characters");
        }
        Ok(Location::Remote { bucket: bucket.to_string(), key: key.to_string() })
    }
}

/// The object key an upload of `source` goes to: `key`, or `key` + the file
/// name when `key` is empty or ends in `/` (as `aws s3 cp` does).
pub fn key_for(key: &str, source: &Path) -> anyhow::Result<String> {
    if !key.is_empty() && !key.ends_with('/') {
        return Ok(key.to_string());
    }
    let name = source.file_name().and_then(|n| n.to_str());
    let name = name.ok_or_else(|| anyhow::anyhow!("{}: no file name to use as the key", source.display()))?;
    Ok(format!("{key}{name}"))
}

/// The file a download writes: `path`, or inside it the key's last segment
/// when `path` is an existing folder.
pub fn target_for(path: PathBuf, key: &str) -> PathBuf {
    let name = key.rsplit('/').next().filter(|n| !n.is_empty());
    match name {
        Some(name) if path.is_dir() => path.join(name),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_ends() {
        assert_eq!(Location::parse("a/b.txt").unwrap(), Location::Local("a/b.txt".into()));
        let remote = |b: &str, k: &str| Location::Remote { bucket: b.into(), key: k.into() };
        assert_eq!(Location::parse("s3://bkt/a/b c").unwrap(), remote("bkt", "a/b c"));
        assert_eq!(Location::parse("s3://bkt").unwrap(), remote("bkt", ""));
        assert!(Location::parse("s3://ab/k").is_err());
        assert_eq!(key_for("dir/", Path::new("/x/f.bin")).unwrap(), "dir/f.bin");
        assert_eq!(key_for("", Path::new("f.bin")).unwrap(), "f.bin");
        assert_eq!(key_for("k", Path::new("f.bin")).unwrap(), "k");
    }
}
