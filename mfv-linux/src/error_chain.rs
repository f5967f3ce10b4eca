//! An error with all its causes on one line (`cannot open /x: No such file or directory`), the
//! way console lines, reports and the `mfv` command show errors.

use std::error::Error;

/// `error` and every cause after it, `: `-separated.
pub fn error_chain(error: &dyn Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        message.push_str(": ");
        message.push_str(&error.to_string());
        cause = error.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the lease file")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_follows_the_error() {
        let error = Outer(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ));
        assert_eq!(
            error_chain(&error),
            "cannot read the lease file: no such file"
        );
        assert_eq!(error_chain(&error.0), "no such file");
    }
}
