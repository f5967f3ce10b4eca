//! The one way `mfv` reports: every command family returns an [`Output`], and `main` writes
//! it and turns its [`Status`] into the exit code. Data is rendered once, as text or (with
//! `--json`) as pretty JSON, by [`Output::data`]. What a command shows while it runs and waits
//! for the operator (a console stream, a password prompt, "press Enter to keep this") is
//! interaction, written as it happens; the result is the `Output`.
//!
//! Everything written is passed through [`escape_lines`]: a command's text quotes volumes,
//! files, packets and other users' input, and none of it may drive the operator's terminal.
//! The escapes are JSON's and TOML's own, so `--json` output stays valid JSON.
//!
//! Exit codes: 0 success, 1 the operation failed (also every error, printed as `mfv: ERROR`
//! with its causes), 2 wrong usage (clap's own).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use mfv_linux::terminal_text::escape_lines;
use serde::Serialize;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit status 0.
    Success,
    /// Exit status 1: the operation failed, and standard error says why.
    Failure,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        match status {
            Status::Success => ExitCode::SUCCESS,
            Status::Failure => ExitCode::FAILURE,
        }
    }
}

/// What a command prints and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// For standard output.
    pub stdout: String,
    /// For standard error (warnings, or why it failed).
    pub stderr: String,
    /// The exit status.
    pub status: Status,
}

impl Output {
    /// Success, printing `stdout`.
    pub fn ok(stdout: impl Into<String>) -> Output {
        Output {
            stdout: stdout.into(),
            stderr: String::new(),
            status: Status::Success,
        }
    }

    /// Failure, with why on standard error.
    pub fn failed(stderr: impl Into<String>) -> Output {
        Output {
            stdout: String::new(),
            stderr: stderr.into(),
            status: Status::Failure,
        }
    }

    /// Success, printing `value` as pretty JSON when `json` is set, else as `text` renders it.
    pub fn data<T: Serialize + ?Sized>(
        value: &T,
        json: bool,
        text: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<Output> {
        if !json {
            return Ok(Output::ok(text(value)));
        }
        let mut rendered = serde_json::to_string_pretty(value).context("the output as JSON")?;
        rendered.push('\n');
        Ok(Output::ok(rendered))
    }

    /// The same output with `stderr` (warnings) before its own standard error.
    pub fn with_warnings(mut self, stderr: String) -> Output {
        self.stderr.insert_str(0, &stderr);
        self
    }

    /// Writes standard output and standard error; the exit code of the status.
    pub fn write(&self, stdout: &mut impl Write, stderr: &mut impl Write) -> ExitCode {
        // Output that cannot be written (a closed pipe) has nowhere to be reported.
        let _ = stdout.write_all(escape_lines(&self.stdout).as_bytes());
        let _ = stdout.flush();
        let _ = stderr.write_all(escape_lines(&self.stderr).as_bytes());
        self.status.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_text_or_pretty_json() {
        let value = serde_json::json!({"name": "web1"});
        let text = Output::data(&value, false, |value| format!("{}\n", value["name"])).unwrap();
        assert_eq!(text, Output::ok("\"web1\"\n"));
        let json = Output::data(&value, true, |_| unreachable!()).unwrap();
        assert_eq!(json.stdout, "{\n  \"name\": \"web1\"\n}\n");
        assert_eq!(json.status, Status::Success);
    }

    #[test]
    fn control_characters_are_escaped_on_both_streams() {
        let output = Output::failed("mfv: label \x1b]0;x\x07 refused\n");
        let mut text = Output::ok("name: \u{9b}2J\nnext\n");
        text.stderr = "mfv: warning: \x7f\n".into();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        output.write(&mut out, &mut err);
        text.write(&mut out, &mut err);
        assert_eq!(String::from_utf8(out).unwrap(), "name: \\u009b2J\nnext\n");
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "mfv: label \\u001b]0;x\\u0007 refused\nmfv: warning: \\u007f\n"
        );
    }

    #[test]
    fn warnings_come_first_and_failure_is_exit_status_1() {
        let output = Output::failed("mfv: refused\n").with_warnings("mfv: warning: x\n".into());
        assert_eq!(output.stderr, "mfv: warning: x\nmfv: refused\n");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(output.write(&mut out, &mut err), ExitCode::FAILURE);
        assert!(out.is_empty());
        assert_eq!(err, output.stderr.as_bytes());
    }
}
