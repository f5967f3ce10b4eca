//! Adding and removing one `[[storage.pools]]` entry of a configuration text, as the web UI's
//! Storage → Add does, keeping the rest of the document as the person wrote it.
//!
//! A person who set the host up through the browser and then adds storage should not find
//! their comments and layout gone from `mfv.toml`. So the change is made on the text: an added
//! pool is appended as a new `[[storage.pools]]` table, a removed one has its table (and the
//! comment lines right above its header) cut out. The result is then read back and must be
//! exactly the wanted configuration; when the text is laid out so that this edit does not
//! give it (pools written as an inline array, say), the whole configuration is written anew
//! ([`Config::to_toml`]), which is correct but loses the comments.
//!
//! The new pool is checked with the schema's own validation ([`Config::validate`]), so a pool
//! refused here is refused for the same reasons and in the same words as in the file.

use crate::schema::{Config, ConfigErrors, PoolConfig, parse_config};

/// The header of each pool's table.
const POOL_HEADER: &str = "[[storage.pools]]";

/// Why a pool cannot be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum PoolEditError {
    /// The configuration text itself is not valid, so it cannot be changed safely.
    #[error("the configuration is not valid: {0}")]
    InvalidConfig(ConfigErrors),
    /// A field of the new pool is wrong (the first problem found).
    #[error("{field}: {message}")]
    InvalidPool {
        /// The pool's field: `name`, `kind`, `path`, `device`, `server` or `export`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The configuration has no pool of that name.
    #[error("the configuration has no storage pool named {name:?}")]
    NoSuchPool {
        /// The name asked for.
        name: String,
    },
}

/// `text` with `pool` added as the last `[[storage.pools]]` entry.
pub fn add_pool(text: &str, pool: &PoolConfig) -> Result<String, PoolEditError> {
    let current = parse_config(text).map_err(PoolEditError::InvalidConfig)?;
    let mut wanted = current;
    wanted.storage.pools.push(pool.clone());
    if let Err(errors) = wanted.validate() {
        let prefix = format!("storage.pools[{}].", wanted.storage.pools.len() - 1);
        let first = errors
            .errors()
            .iter()
            .find(|error| error.path.starts_with(&prefix))
            .or_else(|| errors.errors().first());
        if let Some(error) = first {
            return Err(PoolEditError::InvalidPool {
                field: error
                    .path
                    .strip_prefix(&prefix)
                    .unwrap_or(&error.path)
                    .to_owned(),
                message: error.message.clone(),
            });
        }
    }
    let mut edited = text.to_owned();
    if !edited.is_empty() && !edited.ends_with('\n') {
        edited.push('\n');
    }
    edited.push('\n');
    edited.push_str(&pool_table(pool));
    Ok(checked(edited, &wanted))
}

/// `text` without the `[[storage.pools]]` entry named `name`. Only the configuration changes:
/// what the pool holds is not touched here.
pub fn remove_pool(text: &str, name: &str) -> Result<String, PoolEditError> {
    let current = parse_config(text).map_err(PoolEditError::InvalidConfig)?;
    let Some(index) = current.storage.pools.iter().position(|p| p.name == name) else {
        return Err(PoolEditError::NoSuchPool {
            name: name.to_owned(),
        });
    };
    let mut wanted = current;
    wanted.storage.pools.remove(index);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let edited = match pool_table_lines(&lines, index) {
        Some(range) => lines
            .iter()
            .enumerate()
            .filter(|(line, _)| !range.contains(line))
            .map(|(_, text)| *text)
            .collect(),
        None => String::new(),
    };
    Ok(checked(edited, &wanted))
}

/// `edited` when it reads back as `wanted`, otherwise `wanted` written anew.
fn checked(edited: String, wanted: &Config) -> String {
    match parse_config(&edited) {
        Ok(config) if config == *wanted => edited,
        _ => wanted.to_toml(),
    }
}

/// The `[[storage.pools]]` table of `pool`, its keys in the schema's order.
fn pool_table(pool: &PoolConfig) -> String {
    let mut table = format!("{POOL_HEADER}\n");
    for (key, value) in [
        ("name", Some(pool.name.as_str())),
        ("kind", Some(pool.kind.as_str())),
        ("path", pool.path.as_deref()),
        ("device", pool.device.as_deref()),
        ("server", pool.server.as_deref()),
        ("export", pool.export.as_deref()),
    ] {
        if let Some(value) = value {
            let quoted = toml::Value::String(value.to_owned());
            table.push_str(&format!("{key} = {quoted}\n"));
        }
    }
    table
}

/// The lines of the `index`-th `[[storage.pools]]` table: its header, the comment lines right
/// above it, and its keys up to the next header, less the comments and blank lines that lead
/// to that header (they belong to what follows).
fn pool_table_lines(lines: &[&str], index: usize) -> Option<std::ops::Range<usize>> {
    let is_header = |line: &str| line.trim_start().starts_with('[');
    let is_comment = |line: &str| line.trim_start().starts_with('#');
    let header = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.trim() == POOL_HEADER)
        .nth(index)?
        .0;
    let mut start = header;
    while start > 0 && is_comment(lines[start - 1]) {
        start -= 1;
    }
    let mut end = lines[header + 1..]
        .iter()
        .position(|line| is_header(line))
        .map_or(lines.len(), |offset| header + 1 + offset);
    while end > header + 1 && {
        let line = lines[end - 1];
        line.trim().is_empty() || is_comment(line)
    } {
        end -= 1;
    }
    // One blank line of the two around the table goes with it.
    let blank = |line: usize| lines.get(line).is_some_and(|text| text.trim().is_empty());
    if blank(end) && (start == 0 || blank(start - 1)) {
        end += 1;
    } else if end == lines.len() && start > 0 && blank(start - 1) {
        start -= 1;
    }
    Some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::PoolKind;

    const BASE: &str =
        "# The lab host.\nversion = 1\n[host]\nhostname = \"vmhost1\" # short name\n";

    fn dir_pool(name: &str, path: &str) -> PoolConfig {
        PoolConfig {
            name: name.to_owned(),
            kind: PoolKind::Dir,
            path: Some(path.to_owned()),
            device: None,
            server: None,
            export: None,
        }
    }

    #[test]
    fn an_added_pool_is_appended_and_the_comments_stay() {
        let text = add_pool(BASE, &dir_pool("images", "/srv/images")).unwrap();
        assert_eq!(
            text,
            format!(
                "{BASE}\n[[storage.pools]]\nname = \"images\"\nkind = \"dir\"\npath = \"/srv/images\"\n"
            )
        );
        let nfs = PoolConfig {
            name: "shared".to_owned(),
            kind: PoolKind::Nfs,
            path: None,
            device: None,
            server: Some("nfs1.example.org".to_owned()),
            export: Some("/exports/\"vms\"".to_owned()),
        };
        let text = add_pool(&text, &nfs).unwrap();
        let config = parse_config(&text).unwrap();
        assert_eq!(
            config.storage.pools,
            [dir_pool("images", "/srv/images"), nfs]
        );
        assert!(text.starts_with(BASE), "{text}");
    }

    #[test]
    fn a_wrong_pool_names_its_field_in_the_schemas_words() {
        let text = add_pool(BASE, &dir_pool("images", "/srv/images")).unwrap();
        let refused = |pool: PoolConfig| match add_pool(&text, &pool).unwrap_err() {
            PoolEditError::InvalidPool { field, message } => format!("{field}: {message}"),
            other => panic!("{other}"),
        };
        assert_eq!(
            refused(dir_pool("images", "/srv/other")),
            "name: duplicate pool \"images\" (already declared in storage.pools[0])"
        );
        assert_eq!(
            refused(dir_pool("fast", "relative")),
            "path: \"relative\" is not an absolute path"
        );
        assert_eq!(
            refused(dir_pool(".hidden", "/srv/h")),
            "name: \".hidden\" is not a pool name (letters, digits, '.', '_' and '-', not \
             starting with '.')"
        );
        let mut lvm = dir_pool("vg", "/srv/x");
        lvm.kind = PoolKind::Logical;
        assert_eq!(
            refused(lvm),
            "path: path is not used with kind = \"logical\""
        );
        assert!(matches!(
            add_pool("version = 1\n", &dir_pool("a", "/a")).unwrap_err(),
            PoolEditError::InvalidConfig(_)
        ));
    }

    #[test]
    fn a_removed_pool_takes_its_table_and_its_comment_and_nothing_else() {
        let text = format!(
            "{BASE}\n# Fast disks.\n[[storage.pools]]\nname = \"fast\"\nkind = \"dir\"\n\
             path = \"/srv/fast\"\n\n# Slow disks.\n[[storage.pools]]\nname = \"slow\"\n\
             kind = \"dir\"\npath = \"/srv/slow\"\n\n# Who signs in.\n[auth]\nbackend = \"sqlite\"\n"
        );
        assert_eq!(
            remove_pool(&text, "fast").unwrap(),
            format!(
                "{BASE}\n# Slow disks.\n[[storage.pools]]\nname = \"slow\"\nkind = \"dir\"\n\
                 path = \"/srv/slow\"\n\n# Who signs in.\n[auth]\nbackend = \"sqlite\"\n"
            )
        );
        assert_eq!(
            remove_pool(&text, "slow").unwrap(),
            format!(
                "{BASE}\n# Fast disks.\n[[storage.pools]]\nname = \"fast\"\nkind = \"dir\"\n\
                 path = \"/srv/fast\"\n\n# Who signs in.\n[auth]\nbackend = \"sqlite\"\n"
            )
        );
        assert!(matches!(
            remove_pool(&text, "other").unwrap_err(),
            PoolEditError::NoSuchPool { name } if name == "other"
        ));
    }

    #[test]
    fn the_last_pool_removed_leaves_the_text_as_it_was_before_it_was_added() {
        let added = add_pool(BASE, &dir_pool("images", "/srv/images")).unwrap();
        assert_eq!(remove_pool(&added, "images").unwrap(), BASE);
    }

    #[test]
    fn pools_written_inline_are_changed_by_writing_the_configuration_anew() {
        let text = format!(
            "{BASE}[storage]\npools = [{{ name = \"a\", kind = \"dir\", path = \"/a\" }}]\n"
        );
        let added = add_pool(&text, &dir_pool("b", "/b")).unwrap();
        assert_eq!(
            parse_config(&added).unwrap().storage.pools,
            [dir_pool("a", "/a"), dir_pool("b", "/b")]
        );
        let removed = remove_pool(&text, "a").unwrap();
        let config = parse_config(&removed).unwrap();
        assert!(config.storage.pools.is_empty());
        assert_eq!(config.host.hostname, "vmhost1");
    }
}
