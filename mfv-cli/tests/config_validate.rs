//! `mfv config validate` on a hostile file: what the file holds reaches the terminal escaped,
//! one error per line.

use std::process::Command;

#[test]
fn a_hostile_file_is_reported_without_driving_the_terminal() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("evil\x1b[2J.toml");
    std::fs::write(
        &file,
        "\"x\\u001b]0;owned\\u0007\\nforged: ok\" = 1\nversion = 1\n[host]\nhostname = \"h\"\n",
    )?;
    let output = Command::new(env!("CARGO_BIN_EXE_mfv"))
        .args(["config", "validate"])
        .arg(&file)
        .output()?;
    assert!(!output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout)?;
    let stderr = String::from_utf8(output.stderr)?;
    let shown = format!("{stdout}{stderr}");
    assert!(!shown.contains(['\x1b', '\x07']), "{shown:?}");
    assert!(
        shown.lines().all(|line| !line.starts_with("forged")),
        "{shown:?}"
    );
    assert!(shown.contains("evil\\u001b[2J.toml"), "{shown:?}");
    assert!(
        shown.contains("x\\u001b]0;owned\\u0007\\u000aforged: ok"),
        "{shown:?}"
    );
    Ok(())
}
