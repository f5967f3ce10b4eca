//! Embeds the front-end bundles: reads `web/dist/manifest.json`, which `cargo xtask web`
//! writes (`web/build.mjs`), and generates `OUT_DIR/assets.rs`, the table that
//! `src/assets.rs` serves from: each bundle's logical name, hashed file name, content type,
//! and its plain, gzip and brotli bytes by `include_bytes!`.
//!
//! Without `web/dist/` the build stops and says to run `cargo xtask web`: the bundles come
//! from npm packages, which this script neither installs nor builds (a build script that
//! reaches for the network or for node would make `cargo build` depend on both in secret).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    if let Err(message) = generate() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

/// Reads the manifest and writes the table, or says what is wrong.
fn generate() -> Result<(), String> {
    let crate_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let dist = crate_dir.join("web").join("dist");
    let manifest_path = dist.join("manifest.json");
    println!("cargo:rerun-if-changed={}", manifest_path.display());
    let text = std::fs::read_to_string(&manifest_path).map_err(|error| {
        format!(
            "mfv-web embeds its front-end bundles from {}, which cannot be read ({error}): \
             run `cargo xtask web` (it installs the npm packages with `npm ci` and builds \
             the bundles), then build again",
            manifest_path.display()
        )
    })?;
    let manifest: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|error| {
        format!(
            "{} is not a JSON object of logical name to file name ({error}): run `cargo \
             xtask web` again",
            manifest_path.display()
        )
    })?;
    if manifest.is_empty() {
        return Err(format!("{} names no bundle", manifest_path.display()));
    }

    let mut variants = String::new();
    let mut names = std::collections::BTreeSet::new();
    let mut table = String::new();
    for (index, (logical, file)) in manifest.iter().enumerate() {
        let content_type = content_type(logical).ok_or_else(|| {
            format!(
                "{}: {logical:?} is no bundle name (a name of letters, digits, `-` and `_`, \
                 then .js or .css)",
                manifest_path.display()
            )
        })?;
        if !is_hashed_name_of(file, logical) {
            return Err(format!(
                "{}: {logical:?} maps to {file:?}, which is not its hashed name \
                 (NAME.HASH.EXT, HASH 10 hex digits)",
                manifest_path.display()
            ));
        }
        let variant = variant_name(logical);
        if !names.insert(variant.clone()) {
            return Err(format!(
                "{}: two bundles are both called {variant} in Rust: rename {logical:?}",
                manifest_path.display()
            ));
        }
        let plain = existing(&dist, file)?;
        let gzip = existing(&dist, &format!("{file}.gz"))?;
        let brotli = existing(&dist, &format!("{file}.br"))?;
        let _ = writeln!(
            variants,
            "    /// `{logical}`, served as `/assets/{file}`.\n    {variant} = {index},"
        );
        let _ = writeln!(
            table,
            "    Embedded {{\n        logical: {logical:?},\n        file: {file:?},\n        \
             href: \"/assets/{file}\",\n        content_type: {content_type:?},\n        \
             plain: include_bytes!({plain:?}),\n        gzip: include_bytes!({gzip:?}),\n        \
             brotli: include_bytes!({brotli:?}),\n    }},"
        );
    }
    let count = manifest.len();
    let code = format!(
        "/// A bundle built from `mfv-web/web/src/`, by its logical name: [`href`] gives the \
         address a page links.\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n\
         pub enum Bundle {{\n{variants}}}\n\n\
         /// The embedded bundles, in the order of [`Bundle`].\n\
         static EMBEDDED: [Embedded; {count}] = [\n{table}];\n"
    );
    let out = PathBuf::from(env("OUT_DIR")?).join("assets.rs");
    std::fs::write(&out, code).map_err(|error| format!("write {}: {error}", out.display()))
}

/// The environment variable `name` that cargo sets for build scripts.
fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("cargo did not set {name}"))
}

/// The path of `file` in `dist` as a string for `include_bytes!`, if the file is there.
fn existing(dist: &Path, file: &str) -> Result<String, String> {
    let path = dist.join(file);
    if !path.is_file() {
        return Err(format!(
            "{} is missing though the manifest names it: run `cargo xtask web` again",
            path.display()
        ));
    }
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))
}

/// The content type of the bundle `logical`, if it is a bundle name: a stem of ASCII
/// letters, digits, `-` and `_` that starts with a letter, then `.js`, `.css` or `.svg`.
fn content_type(logical: &str) -> Option<&'static str> {
    let (stem, extension) = logical.rsplit_once('.')?;
    let plain_stem = stem.starts_with(|first: char| first.is_ascii_alphabetic())
        && stem
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_'));
    match extension {
        "js" if plain_stem => Some("text/javascript; charset=utf-8"),
        "css" if plain_stem => Some("text/css; charset=utf-8"),
        "svg" if plain_stem => Some("image/svg+xml"),
        _ => None,
    }
}

/// Whether `file` is `logical` with a hash of 10 lower-case hex digits before its extension.
fn is_hashed_name_of(file: &str, logical: &str) -> bool {
    let (Some((stem, extension)), Some((file_rest, file_extension))) =
        (logical.rsplit_once('.'), file.rsplit_once('.'))
    else {
        return false;
    };
    let Some((file_stem, hash)) = file_rest.rsplit_once('.') else {
        return false;
    };
    file_stem == stem
        && file_extension == extension
        && hash.len() == 10
        && hash
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// `logical` as a Rust type name: `serial.css` becomes `SerialCss`, `wizard-step.js`
/// `WizardStepJs`.
fn variant_name(logical: &str) -> String {
    logical
        .split(['.', '-', '_'])
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut characters = word.chars();
            characters
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + characters.as_str())
                .unwrap_or_default()
        })
        .collect()
}
