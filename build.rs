//! Embeds the web console's page (every file under `src/console/assets/`)
//! in the binary: writes `$OUT_DIR/console_assets.rs`, a table of
//! `(path, include_bytes!(file))`. A build script rather than a list kept
//! by hand, so a file the page gains is never left out; rather than a crate
//! (`rust-embed`, `include_dir`), because this is all they would do here.
//! docs/dependencies.md says more.

use std::path::{Path, PathBuf};
use std::{env, fs, io};

const ASSETS: &str = "src/console/assets";

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed={ASSETS}");
    // Read when the script runs, not when it was compiled: a build script
    // reused from another checkout of the same target folder must still
    // embed this checkout's page.
    let manifest = env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| io::Error::other("CARGO_MANIFEST_DIR not set"))?;
    let root = Path::new(&manifest).join(ASSETS);
    let mut files = Vec::new();
    walk(&root, &mut files).map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", root.display())))?;
    files.sort();
    let mut table = String::from("&[\n");
    for file in &files {
        let name = file.strip_prefix(&root).map_err(io::Error::other)?;
        let name = name.to_string_lossy().replace('\\', "/");
        println!("cargo:rerun-if-changed={}", file.display());
        table.push_str(&format!("    ({name:?}, include_bytes!({:?}).as_slice()),\n", file.display().to_string()));
    }
    table.push(']');
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| io::Error::other("OUT_DIR not set"))?);
    fs::write(out.join("console_assets.rs"), table)
}

/// Every regular file under `dir`, hidden ones (editor swap files) left out.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}
