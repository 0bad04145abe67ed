//! `cp --recursive`: a folder to a prefix or a prefix to a folder, one file
//! after the other (each with its parts in parallel, resumable as one file).
//!
//! A rerun of an interrupted folder upload resumes the file it stopped in;
//! files finished before are sent again, which a Tessera server completes
//! instantly (it holds their content). A rerun of a folder download fetches
//! finished files again.

use std::path::{Component, Path, PathBuf};

use anyhow::Context;

use super::companions::list;
use super::{download, upload, Ctx, Outcome};

/// `prefix` as a folder: empty, or ending in `/`.
fn folder(prefix: &str) -> String {
    match prefix.is_empty() || prefix.ends_with('/') {
        true => prefix.to_string(),
        false => format!("{prefix}/"),
    }
}

/// Uploads every regular file under `dir` to `prefix` + its relative path.
pub async fn upload_tree(ctx: &Ctx, dir: &Path, bucket: &str, prefix: &str) -> anyhow::Result<Outcome> {
    let prefix = folder(prefix);
    let mut files = Vec::new();
    walk(dir, &mut files).with_context(|| format!("reading {}", dir.display()))?;
    for file in files {
        let relative = file.strip_prefix(dir).unwrap_or(&file);
        let name = relative.to_str().with_context(|| format!("{}: not UTF-8", relative.display()))?;
        let key = format!("{prefix}{name}");
        println!("upload {} s3://{bucket}/{key}", file.display());
        if upload::upload(ctx, &file, bucket, &key).await? == Outcome::Interrupted {
            return Ok(Outcome::Interrupted);
        }
    }
    Ok(Outcome::Done)
}

/// The regular files under `dir`, sorted; symbolic links are not followed.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), files)?;
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
    Ok(())
}

/// Downloads every object under `prefix` into `dir`, at its key's path
/// below the prefix. Keys that would leave `dir` (`..`, empty segments) are
/// refused: a bucket's keys are not trusted with the local file system.
pub async fn download_tree(ctx: &Ctx, bucket: &str, prefix: &str, dir: &Path) -> anyhow::Result<Outcome> {
    let prefix = folder(prefix);
    let objects = list(&ctx.s3, bucket, &prefix, false).await?.objects;
    for object in objects {
        let relative = object.key.strip_prefix(&prefix).unwrap_or(&object.key);
        if relative.is_empty() || relative.ends_with('/') {
            continue; // a folder marker
        }
        let Some(target) = local_path(dir, relative) else {
            eprintln!("tessera cp: skipping s3://{bucket}/{}: the key is not a safe file path", object.key);
            continue;
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        println!("download s3://{bucket}/{} {}", object.key, target.display());
        if download::download(ctx, bucket, &object.key, &target).await? == Outcome::Interrupted {
            return Ok(Outcome::Interrupted);
        }
    }
    Ok(Outcome::Done)
}

/// `dir` joined with the `/`-separated `relative`, if every segment is a
/// plain name.
fn local_path(dir: &Path, relative: &str) -> Option<PathBuf> {
    let mut path = dir.to_path_buf();
    for segment in relative.split('/') {
        let mut parts = Path::new(segment).components();
        match (parts.next(), parts.next()) {
            (Some(Component::Normal(name)), None) if !segment.contains('\0') => path.push(name),
            _ => return None,
        }
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_leave_the_folder() {
        let dir = Path::new("/d");
        assert_eq!(local_path(dir, "a/b.txt"), Some(PathBuf::from("/d/a/b.txt")));
        for bad in ["../x", "a/../../x", "a//b", "./a", "a/.", ""] {
            assert_eq!(local_path(dir, bad), None, "{bad}");
        }
        assert_eq!(folder("p"), "p/");
        assert_eq!(folder(""), "");
    }
}
