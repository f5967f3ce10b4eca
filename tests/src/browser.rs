//! A real browser for the tests of the web pages: headless Chromium, driven over WebDriver
//! by chromedriver, which runs on a free loopback port under the watchdog of
//! [`crate::server`] (so it never outlives the test process) with the browser's profile in
//! its temp dir.
//!
//! The tests are synchronous, as the rest of the harness is; [`Browser`] wraps the
//! asynchronous WebDriver client (fantoccini) in a runtime of its own and offers what a test
//! does on a page: open it, type into a field, click, read text, wait for text, and take a
//! screenshot a person can look at when a step fails.
//!
//! The browser's console is kept (`goog:loggingPrefs`) so a test can fail on a page's script
//! errors ([`Browser::console_errors`]), and [`Browser::set_window`] gives the page a laptop's
//! or a phone's width for its screenshots.
//!
//! The host's certificate is self-signed, so the session accepts it without a chain; the tests
//! that check it is the one the console shows do so with [`crate::https::HttpsClient`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::Locator;

use crate::free_local_port;
use crate::server::{ServerProcess, require_binary};

/// How long chromedriver may take to listen.
const DRIVER_START: Duration = Duration::from_secs(30);
/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(100);
/// The window a person's laptop would have.
const WINDOW: (u32, u32) = (1280, 900);

/// Headless Chromium with its chromedriver; both stop when it is dropped (or the test
/// process ends).
#[derive(Debug)]
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<fantoccini::Client>,
    /// Kept for its watchdog: chromedriver and the browser it started die with it.
    _driver: ServerProcess,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; fails naming the Debian package
    /// when either is missing.
    pub fn start() -> Result<Browser> {
        let chromium = require_binary("chromium", "chromium")?;
        let chromedriver = require_binary("chromedriver", "chromium-driver")?;
        let port = free_local_port()?;
        let mut driver = ServerProcess::new("chromedriver", |_| {
            (
                chromedriver,
                vec![
                    format!("--port={port}"),
                    "--allowed-ips=127.0.0.1".to_owned(),
                ],
            )
        })?;
        driver.start()?;
        driver.wait_for_port(port, DRIVER_START)?;
        let profile = driver.dir().join("profile");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the browser's runtime")?;
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--no-first-run",
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            bail!("the capabilities are not a JSON object");
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = runtime
            .block_on(
                fantoccini::ClientBuilder::new(connector)
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .with_context(|| {
                format!(
                    "starting a Chromium session through chromedriver; its log:\n{}",
                    driver.log()
                )
            })?;
        Ok(Browser {
            runtime,
            client: Some(client),
            _driver: driver,
        })
    }

    fn client(&self) -> Result<&fantoccini::Client> {
        self.client
            .as_ref()
            .context("the browser session is closed")
    }

    /// Opens `url` and waits until the page loaded.
    pub fn open(&self, url: &str) -> Result<()> {
        let client = self.client()?;
        self.runtime
            .block_on(client.goto(url))
            .with_context(|| format!("opening {url}"))
    }

    /// The address of the page shown.
    pub fn url(&self) -> Result<String> {
        let client = self.client()?;
        let url = self
            .runtime
            .block_on(client.current_url())
            .context("reading the page's address")?;
        Ok(url.to_string())
    }

    /// The element `css` selects, waiting up to `within` for it to be there and visible.
    fn visible(&self, css: &str, within: Duration) -> Result<fantoccini::elements::Element> {
        let client = self.client()?;
        let start = Instant::now();
        loop {
            let found = self.runtime.block_on(client.find(Locator::Css(css))).ok();
            if let Some(element) = found {
                if self
                    .runtime
                    .block_on(element.is_displayed())
                    .unwrap_or(false)
                {
                    return Ok(element);
                }
            }
            if start.elapsed() > within {
                bail!("no visible element {css} on the page after {within:?}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// Clears the field `css` selects and types `text` into it, as a person would.
    pub fn type_into(&self, css: &str, text: &str, within: Duration) -> Result<()> {
        let element = self.visible(css, within)?;
        self.runtime
            .block_on(async {
                element.clear().await?;
                element.send_keys(text).await
            })
            .with_context(|| format!("typing into {css}"))
    }

    /// Presses the keys of `text` on whatever has the focus (a terminal's hidden input, which
    /// a field-typing command would refuse as not interactable), as a person would; `\n`
    /// presses Enter.
    pub fn press_keys(&self, text: &str) -> Result<()> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let client = self.client()?;
        let mut keys = KeyActions::new("keyboard".to_owned());
        for character in text.chars() {
            let value = if character == '\n' {
                '\u{e007}'
            } else {
                character
            };
            keys = keys
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value });
        }
        self.runtime
            .block_on(client.perform_actions(keys))
            .with_context(|| format!("pressing the keys of {text:?}"))
    }

    /// Clicks what `css` selects, once it is visible.
    pub fn click(&self, css: &str, within: Duration) -> Result<()> {
        let element = self.visible(css, within)?;
        self.runtime
            .block_on(element.click())
            .with_context(|| format!("clicking {css}"))
    }

    /// The text of what `css` selects, once it is visible.
    pub fn text(&self, css: &str, within: Duration) -> Result<String> {
        let element = self.visible(css, within)?;
        self.runtime
            .block_on(element.text())
            .with_context(|| format!("reading the text of {css}"))
    }

    /// Waits until the visible text of what `css` selects contains `needle`, and returns it.
    pub fn wait_for_text(&self, css: &str, needle: &str, within: Duration) -> Result<String> {
        let start = Instant::now();
        loop {
            let remaining = within.saturating_sub(start.elapsed());
            let text = self.text(css, remaining).unwrap_or_default();
            if text.contains(needle) {
                return Ok(text);
            }
            if start.elapsed() > within {
                bail!(
                    "{css} did not show {needle:?} within {within:?}; it shows {text:?}, the page:\n{}",
                    self.text("body", Duration::ZERO).unwrap_or_default()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Resizes the window to `width` x `height` CSS pixels.
    pub fn set_window(&self, width: u32, height: u32) -> Result<()> {
        let client = self.client()?;
        self.runtime
            .block_on(client.set_window_size(width, height))
            .with_context(|| format!("resizing the window to {width}x{height}"))
    }

    /// Runs `script` in the page (a function body; `return` gives its value).
    pub fn execute(&self, script: &str) -> Result<serde_json::Value> {
        let client = self.client()?;
        self.runtime
            .block_on(client.execute(script, Vec::new()))
            .context("running a script in the page")
    }

    /// Empties the browser's HTTP cache (Chromium's DevTools `Network.clearBrowserCache`), so
    /// the next page loads as on a first visit.
    pub fn clear_cache(&self) -> Result<()> {
        let client = self.client()?;
        self.runtime
            .block_on(client.issue_cmd(ChromedriverCommand::dev_tools("Network.clearBrowserCache")))
            .context("clearing the browser's cache")?;
        Ok(())
    }

    /// The console entries of level SEVERE (script errors, failed loads) since the last call,
    /// each as `LEVEL message`; reading them empties chromedriver's buffer.
    pub fn console_errors(&self) -> Result<Vec<String>> {
        let client = self.client()?;
        let entries = self
            .runtime
            .block_on(client.issue_cmd(ChromedriverCommand::browser_log()))
            .context("reading the browser's console log")?;
        Ok(entries
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| {
                format!(
                    "{} {}",
                    entry["level"].as_str().unwrap_or_default(),
                    entry["message"].as_str().unwrap_or_default()
                )
            })
            .collect())
    }

    /// Saves a PNG of the window to `path`, making its directory.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        let client = self.client()?;
        let png = self
            .runtime
            .block_on(client.screenshot())
            .context("taking a screenshot")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Saves a screenshot to `path` after a step failed, and returns `failure` naming it.
    pub fn failed_at(&self, failure: anyhow::Error, path: PathBuf) -> anyhow::Error {
        match self.screenshot(&path) {
            Ok(()) => failure.context(format!("the page at that moment: {}", path.display())),
            Err(error) => failure.context(format!("no screenshot: {error:#}")),
        }
    }
}

/// One of chromedriver's own commands (not in the W3C protocol): a POST of `body` to
/// `session/{id}/PATH`.
#[derive(Debug)]
struct ChromedriverCommand {
    path: &'static str,
    body: serde_json::Value,
}

impl ChromedriverCommand {
    /// The browser's console log since the last time it was read.
    fn browser_log() -> ChromedriverCommand {
        ChromedriverCommand {
            path: "se/log",
            body: serde_json::json!({"type": "browser"}),
        }
    }

    /// A Chromium DevTools command without parameters.
    fn dev_tools(command: &str) -> ChromedriverCommand {
        ChromedriverCommand {
            path: "goog/cdp/execute",
            body: serde_json::json!({"cmd": command, "params": {}}),
        }
    }
}

impl fantoccini::wd::WebDriverCompatibleCommand for ChromedriverCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (hyper::Method, Option<String>) {
        (hyper::Method::POST, Some(self.body.to_string()))
    }
}

/// Where the screenshots of the web pages' tests go: `ui-screenshots/` in the target
/// directory (`CARGO_TARGET_DIR`, or the one the test binary was built in).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let binary = std::env::current_exe().ok()?;
            // target/debug/deps/NAME-HASH
            Some(binary.parent()?.parent()?.parent()?.to_owned())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("ui-screenshots")
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // The watchdog stops chromedriver and its browser whatever this answers.
            let _ = self.runtime.block_on(client.close());
        }
    }
}
