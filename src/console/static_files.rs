//! The page's files, embedded at build time (`build.rs` lists every file
//! under `src/console/assets/`): the binary is the whole console, with no
//! folder to install beside it and nothing fetched at run time.

/// `(path under assets/, bytes)`, sorted by path.
static ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// The embedded file at `path` (relative, `/`-separated): a table lookup,
/// so no request can name a file outside the table.
pub fn get(path: &str) -> Option<&'static [u8]> {
    ASSETS.binary_search_by(|(name, _)| name.cmp(&path)).ok().and_then(|i| ASSETS.get(i)).map(|(_, bytes)| *bytes)
}

/// The `Content-Type` of a file, by its extension; browsers refuse a script
/// or stylesheet served as anything else (`X-Content-Type-Options: nosniff`).
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "wasm" => "application/wasm",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_lookups_stay_inside_it() {
        assert!(ASSETS.windows(2).all(|w| w[0].0 < w[1].0), "binary search needs a sorted table");
        for (name, bytes) in ASSETS {
            assert_eq!(get(name), Some(*bytes));
        }
        assert_eq!(get("../Cargo.toml"), None);
        assert_eq!(get(""), None);
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("app.JS"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x/style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
