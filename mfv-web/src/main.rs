//! `mfv-web`: the appliance's HTTPS web UI and REST API.
//!
//! This release ships the binary in the image so the image layout is final, but it serves
//! nothing yet: it answers `--version` and otherwise refuses to start with a clear message and
//! exit code 2, so a supervisor never mistakes it for a running server.

use std::process::ExitCode;

/// Exit code for every invocation other than `--version`.
const EXIT_NOT_SERVING: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (message, code) = respond(&args);
    if code == ExitCode::SUCCESS {
        println!("{message}");
    } else {
        eprintln!("{message}");
    }
    code
}

/// What to print for these arguments, and the exit code.
fn respond(args: &[String]) -> (String, ExitCode) {
    match args {
        [flag] if flag == "--version" || flag == "-V" => (
            format!("mfv-web {}", env!("CARGO_PKG_VERSION")),
            ExitCode::SUCCESS,
        ),
        _ => (
            "mfv-web: this build has no web server yet; only --version is supported".to_owned(),
            ExitCode::from(EXIT_NOT_SERVING),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_printed() {
        let (message, code) = respond(&["--version".to_owned()]);
        assert_eq!(message, format!("mfv-web {}", env!("CARGO_PKG_VERSION")));
        assert_eq!(code, ExitCode::SUCCESS);
    }

    #[test]
    fn anything_else_refuses_to_start() {
        let (message, code) = respond(&[]);
        assert!(message.contains("no web server yet"), "{message}");
        assert_eq!(code, ExitCode::from(EXIT_NOT_SERVING));
    }
}
