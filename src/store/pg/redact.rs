//! Passwords out of database URLs, for every place a URL is shown: log
//! lines, error messages, `Debug` output. Apart from the rest of `pg` so a
//! build without the `postgres` feature still hides what `--meta` holds.

/// `url` with its password replaced by `***`: the `user:password@` of a
/// URL (split where tokio-postgres splits it, at the first `@`) and every
/// `password=` value of a query string or a `key=value` string.
pub fn redact(url: &str) -> String {
    let text = match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", redact_userinfo(rest)),
        None => url.to_string(),
    };
    redact_password_options(&text)
}

fn redact_userinfo(rest: &str) -> String {
    match rest.split_once('@') {
        Some((creds, host)) => match creds.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => rest.to_string(),
        },
        None => rest.to_string(),
    }
}

/// Replaces the value after each `password=` (any case), up to `&`, a
/// space, or the closing quote of a quoted `key='value'`.
fn redact_password_options(text: &str) -> String {
    const KEY: &str = "password=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.to_ascii_lowercase().find(KEY) {
        let (before, after) = rest.split_at(at + KEY.len());
        out.push_str(before);
        out.push_str("***");
        rest = after.get(value_len(after)..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// The length of an option value at the start of `text`: quoted (with
/// `\'` escapes, as tokio-postgres reads them) or up to `&` or whitespace.
fn value_len(text: &str) -> usize {
    let Some(quoted) = text.strip_prefix('\'') else {
        return text.find(|c: char| c == '&' || c.is_whitespace()).unwrap_or(text.len());
    };
    let mut escaped = false;
    for (i, c) in quoted.char_indices() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '\'') => return i + 2,
            _ => {}
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_url_passwords() {
        assert_eq!(redact("postgres://u:s3cret@db:5432/x"), "postgres://u:***@db:5432/x");
        assert_eq!(redact("postgresql://u@db/x"), "postgresql://u@db/x");
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact("postgres://u:p%40ss@db/x?sslmode=require"), "postgres://u:***@db/x?sslmode=require");
        assert_eq!(
            redact("postgres://u@db/x?password=abc&sslmode=disable"),
            "postgres://u@db/x?password=***&sslmode=disable"
        );
    }

    #[test]
    fn redacts_key_value_passwords() {
        assert_eq!(redact("host=db user=u password=abc dbname=x"), "host=db user=u password=*** dbname=x");
        assert_eq!(redact("host=db PASSWORD='a b\\' c' user=u"), "host=db PASSWORD=*** user=u");
        assert_eq!(redact("password='unterminated"), "password=***");
    }
}
