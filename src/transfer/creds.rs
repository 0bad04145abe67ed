//! Credentials and region from the usual AWS places, in the AWS CLI's order
//! for the sources supported: the environment, then the shared credentials
//! file. Session tokens (temporary credentials) are not supported.
//! Reference: <https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-envvars.html>

use std::path::PathBuf;

use anyhow::Context;

/// A key pair and the region requests are signed for.
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

impl Credentials {
    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`, else the profile
    /// `AWS_PROFILE` (or `default`) of `AWS_SHARED_CREDENTIALS_FILE` (or
    /// `~/.aws/credentials`); region `AWS_REGION`, `AWS_DEFAULT_REGION`, else
    /// `us-east-1`.
    pub fn resolve() -> anyhow::Result<Credentials> {
        let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")).unwrap_or_else(|| "us-east-1".into());
        if let (Some(access_key), Some(secret_key)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            return Ok(Credentials { access_key, secret_key, region });
        }
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let path = match var("AWS_SHARED_CREDENTIALS_FILE") {
            Some(path) => PathBuf::from(path),
            None => {
                PathBuf::from(var("HOME").context("no credentials: set AWS_ACCESS_KEY_ID")?).join(".aws/credentials")
            }
        };
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("no credentials: AWS_ACCESS_KEY_ID is not set and {} unreadable", path.display())
        })?;
        let (access_key, secret_key) = profile_keys(&text, &profile)
            .with_context(|| format!("{}: no keys for profile `{profile}`", path.display()))?;
        Ok(Credentials { access_key, secret_key, region })
    }
}

/// `aws_access_key_id` and `aws_secret_access_key` of `[profile]` in an
/// INI credentials file (`#` and `;` start comments).
pub fn profile_keys(text: &str, profile: &str) -> Option<(String, String)> {
    let (mut inside, mut access, mut secret) = (false, None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == profile;
            continue;
        }
        let Some((name, value)) = line.split_once('=') else { continue };
        match name.trim() {
            "aws_access_key_id" if inside => access = Some(value.trim().to_string()),
            "aws_secret_access_key" if inside => secret = Some(value.trim().to_string()),
            _ => {}
        }
    }
    access.zip(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_profile() {
        let text = "# keys\n[default]\naws_access_key_id = AK1\naws_secret_access_key=SK1\n\n\
                    [ work ]\n; other\naws_access_key_id=AK2\naws_secret_access_key = S/K+2=\n";
        assert_eq!(profile_keys(text, "default"), Some(("AK1".into(), "SK1".into())));
        assert_eq!(profile_keys(text, "work"), Some(("AK2".into(), "S/K+2=".into())));
        assert_eq!(profile_keys(text, "none"), None);
        assert_eq!(profile_keys("[default]\naws_access_key_id=A\n", "default"), None);
    }
}
