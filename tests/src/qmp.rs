//! A minimal QMP (QEMU Machine Protocol) client: enough to send commands such as `send-key`
//! or `query-status` and read their answers.
//!
//! The protocol is one JSON object per line. On connect QEMU sends a greeting (`{"QMP": ...}`);
//! the client answers `qmp_capabilities` to leave negotiation mode. Each command then gets
//! either `{"return": ...}` or `{"error": {"class": ..., "desc": ...}}`; asynchronous events
//! (`{"event": ...}`) may arrive in between and are skipped.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A QMP session over a reader and a writer (the two halves of QEMU's QMP socket).
#[derive(Debug)]
pub(crate) struct QmpClient<R, W> {
    reader: R,
    writer: W,
}

impl<R: BufRead, W: Write> QmpClient<R, W> {
    /// Reads the greeting and negotiates capabilities.
    pub(crate) fn handshake(reader: R, writer: W) -> anyhow::Result<Self> {
        let mut client = QmpClient { reader, writer };
        let greeting = client.read_message().context("reading the QMP greeting")?;
        if greeting.get("QMP").is_none() {
            bail!("expected a QMP greeting, got {greeting}");
        }
        client.execute("qmp_capabilities", Value::Null)?;
        Ok(client)
    }

    /// Runs `execute` with `arguments` (`Value::Null` for none) and returns its `return` value.
    pub(crate) fn execute(&mut self, execute: &str, arguments: Value) -> anyhow::Result<Value> {
        let command = if arguments.is_null() {
            json!({ "execute": execute })
        } else {
            json!({ "execute": execute, "arguments": arguments })
        };
        let mut line = command.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .and_then(|()| self.writer.flush())
            .with_context(|| format!("sending QMP command {execute}"))?;
        loop {
            let message = self
                .read_message()
                .with_context(|| format!("reading the answer to QMP command {execute}"))?;
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = message.get("error") {
                let class = error
                    .get("class")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                let desc = error
                    .get("desc")
                    .and_then(Value::as_str)
                    .unwrap_or("no description");
                bail!("QMP command {execute} failed: {class}: {desc}");
            }
            if message.get("event").is_none() {
                bail!("unexpected QMP message while waiting for {execute}: {message}");
            }
        }
    }

    fn read_message(&mut self) -> anyhow::Result<Value> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("QMP connection closed");
            }
            if !line.trim().is_empty() {
                return serde_json::from_str(&line)
                    .with_context(|| format!("QMP sent invalid JSON: {}", line.trim_end()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}"#;

    fn client(server_says: &str) -> anyhow::Result<QmpClient<Cursor<Vec<u8>>, Vec<u8>>> {
        QmpClient::handshake(Cursor::new(server_says.as_bytes().to_vec()), Vec::new())
    }

    fn sent(client: &QmpClient<Cursor<Vec<u8>>, Vec<u8>>) -> Vec<Value> {
        String::from_utf8(client.writer.clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn handshake_then_command_skipping_events() {
        let script = format!(
            "{GREETING}\n{{\"return\": {{}}}}\n\
             {{\"event\": \"RESET\", \"data\": {{}}}}\n\
             {{\"return\": {{\"status\": \"running\", \"running\": true}}}}\n"
        );
        let mut client = client(&script).unwrap();
        let status = client.execute("query-status", Value::Null).unwrap();
        assert_eq!(status["status"], "running");
        assert_eq!(
            sent(&client),
            [
                json!({"execute": "qmp_capabilities"}),
                json!({"execute": "query-status"})
            ]
        );
    }

    #[test]
    fn arguments_are_sent() {
        let script = format!("{GREETING}\n{{\"return\": {{}}}}\n{{\"return\": {{}}}}\n");
        let mut client = client(&script).unwrap();
        let keys = json!({"keys": [{"type": "qcode", "data": "ctrl"}]});
        client.execute("send-key", keys.clone()).unwrap();
        assert_eq!(
            sent(&client)[1],
            json!({"execute": "send-key", "arguments": keys})
        );
    }

    #[test]
    fn error_answer_carries_class_and_description() {
        let script = format!(
            "{GREETING}\n{{\"return\": {{}}}}\n\
             {{\"error\": {{\"class\": \"CommandNotFound\", \"desc\": \"The command nope has not been found\"}}}}\n"
        );
        let mut client = client(&script).unwrap();
        let error = client.execute("nope", Value::Null).unwrap_err().to_string();
        assert!(
            error.contains("CommandNotFound: The command nope has not been found"),
            "{error}"
        );
    }

    #[test]
    fn missing_greeting_is_an_error() {
        let error = client("{\"return\": {}}\n").unwrap_err().to_string();
        assert!(error.contains("expected a QMP greeting"), "{error}");
    }

    #[test]
    fn closed_connection_is_an_error() {
        let error = format!(
            "{:#}",
            client(&format!("{GREETING}\n{{\"return\": {{}}}}\n"))
                .unwrap()
                .execute("query-status", Value::Null)
                .unwrap_err()
        );
        assert!(error.contains("QMP connection closed"), "{error}");
    }

    #[test]
    fn invalid_json_is_an_error() {
        let error = format!("{:#}", client("not json\n").unwrap_err());
        assert!(error.contains("invalid JSON: not json"), "{error}");
    }

    #[test]
    fn unexpected_message_is_an_error() {
        let error = client(&format!("{GREETING}\n{{\"surprise\": 1}}\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unexpected QMP message"), "{error}");
    }
}
