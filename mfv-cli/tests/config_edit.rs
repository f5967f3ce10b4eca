//! `mfv config edit`: the stored configuration in the operator's editor, validated when the
//! editor exits, reopened with its errors while invalid, saved once valid. The editors here
//! are small shell scripts standing in for an operator.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::Context;

const VALID: &str = "version = 1\n\n# The name on the console.\n[host]\nhostname = \"vmhost1\"\n";

fn mfv(args: &[&str], editor: &str) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_mfv"))
        .args(args)
        .env_remove("VISUAL")
        .env("EDITOR", editor)
        .output()
}

/// A store holding [`VALID`] as generation 1.
fn store() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("valid.toml");
    std::fs::write(&file, VALID)?;
    let store = dir.path().join("store");
    std::fs::create_dir(&store)?;
    let output = Command::new(env!("CARGO_BIN_EXE_mfv"))
        .args(["config", "save", "--store"])
        .args([&store, &file])
        .output()?;
    anyhow::ensure!(output.status.success(), "{output:?}");
    Ok(dir)
}

fn edit(dir: &Path, editor: &str) -> anyhow::Result<Output> {
    let store = dir.join("store");
    let store = store.to_str().context("a UTF-8 temp path")?;
    Ok(mfv(&["config", "edit", "--store", store], editor)?)
}

/// The stored text, without the store's header line.
fn stored(dir: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(dir.join("store/mfv.toml"))?;
    let (_, body) = text.split_once('\n').context("a header line")?;
    Ok(body.to_owned())
}

#[test]
fn an_edit_is_saved_as_written() -> anyhow::Result<()> {
    let dir = store()?;
    let output = edit(dir.path(), "sed -i s/vmhost1/vmhost2/")?;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "saved as generation 2\n"
    );
    assert_eq!(stored(dir.path())?, VALID.replace("vmhost1", "vmhost2"));
    Ok(())
}

#[test]
fn an_invalid_edit_comes_back_with_its_errors_until_it_is_fixed() -> anyhow::Result<()> {
    let dir = store()?;
    let script = dir.path().join("editor.sh");
    // First round: break the host name. Second round: the notes are there; fix it and keep
    // a copy of what the operator saw.
    std::fs::write(
        &script,
        "if grep -q '^# mfv: ' \"$1\"; then cp \"$1\" SEEN_PATH; sed -i s/-bad-/vmhost3/ \"$1\"; \
         else sed -i s/vmhost1/-bad-/ \"$1\"; fi\n"
            .replace(
                "SEEN_PATH",
                &dir.path().join("seen.toml").display().to_string(),
            ),
    )?;
    let output = edit(dir.path(), &format!("sh {}", script.display()))?;
    assert!(output.status.success(), "{output:?}");
    let seen = std::fs::read_to_string(dir.path().join("seen.toml"))?;
    assert!(
        seen.starts_with("# mfv: the configuration is invalid (1 error(s)); fix it and save"),
        "{seen}"
    );
    assert!(seen.contains("# mfv:   5:12: host.hostname: "), "{seen}");
    assert_eq!(stored(dir.path())?, VALID.replace("vmhost1", "vmhost3"));
    Ok(())
}

#[test]
fn an_emptied_file_a_failing_editor_and_no_change_save_nothing() -> anyhow::Result<()> {
    let dir = store()?;
    let output = edit(dir.path(), "truncate -s 0")?;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "mfv: config edit abandoned: nothing was saved\n"
    );
    let output = edit(dir.path(), "false")?;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("mfv: the editor failed: the editor exited with exit status: 1"),
        "{stderr}"
    );
    let output = edit(dir.path(), "true")?;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "no change: nothing was saved\n"
    );
    assert_eq!(stored(dir.path())?, VALID);
    Ok(())
}
