//! Running external programs: show the command line, check the exit status, capture output.

use std::ffi::OsStr;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// The command line as a shell would read it (arguments with spaces or quotes are quoted).
pub fn display(command: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in command.get_envs() {
        if let Some(value) = value {
            words.push(format!("{}={}", key.to_string_lossy(), quote(value)));
        }
    }
    words.push(quote(command.get_program()));
    words.extend(command.get_args().map(quote));
    words.join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs the command with inherited stdio; fails unless it exits 0.
pub fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot start `{}`", display(command)))?;
    if !status.success() {
        bail!("`{}` failed: {status}", display(command));
    }
    Ok(())
}

/// Runs the command with `input` on its stdin and stdout and stderr captured; fails unless it
/// exits 0, quoting its stderr.
pub fn run_with_stdin(command: &mut Command, input: &[u8]) -> Result<()> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{}`", display(command)))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .with_context(|| format!("cannot write to `{}`", display(command)))?;
    }
    let output = child
        .wait_with_output()
        .with_context(|| format!("waiting for `{}`", display(command)))?;
    if !output.status.success() {
        bail!(
            "`{}` failed: {}: {}",
            display(command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Runs the command capturing stdout and stderr, whatever its exit status.
pub fn capture(command: &mut Command) -> Result<Output> {
    command
        .output()
        .with_context(|| format!("cannot start `{}`", display(command)))
}

/// Runs the command and returns its stdout; fails unless it exits 0, quoting its stderr.
pub fn stdout(command: &mut Command) -> Result<String> {
    let output = capture(command)?;
    if !output.status.success() {
        bail!(
            "`{}` failed: {}: {}",
            display(command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout)
        .with_context(|| format!("`{}` printed something that is not UTF-8", display(command)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let mut command = Command::new("qemu-system-x86_64");
        command.env("DEBIAN_FRONTEND", "noninteractive").args([
            "-append",
            "console=ttyS0 mfv.halt=poweroff",
            "-m",
            "1G",
            "it's",
        ]);
        assert_eq!(
            display(&command),
            "DEBIAN_FRONTEND=noninteractive qemu-system-x86_64 -append 'console=ttyS0 mfv.halt=poweroff' -m 1G 'it'\\''s'"
        );
    }

    #[test]
    fn run_reports_the_failing_command() {
        let error = run(Command::new("false").arg("now")).unwrap_err();
        assert!(error.to_string().contains("`false now` failed"), "{error}");
    }

    #[test]
    fn run_reports_a_missing_program() {
        let error = run(&mut Command::new("/nonexistent/program")).unwrap_err();
        assert!(error.to_string().contains("cannot start"), "{error}");
    }

    #[test]
    fn run_with_stdin_feeds_the_input_and_quotes_stderr() {
        run_with_stdin(
            Command::new("sh").args(["-c", "read line; test \"$line\" = secret"]),
            b"secret\n",
        )
        .unwrap();
        let error = run_with_stdin(
            Command::new("sh").args(["-c", "read line; echo \"no $line\" >&2; exit 4"]),
            b"entry\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("no entry") && error.contains("exit status: 4"),
            "{error}"
        );
    }

    #[test]
    fn stdout_returns_output_or_quotes_stderr() {
        assert_eq!(stdout(Command::new("echo").arg("hi")).unwrap(), "hi\n");
        let error = stdout(Command::new("sh").args(["-c", "echo oops >&2; exit 3"])).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("oops") && text.contains("exit status: 3"),
            "{text}"
        );
    }
}
