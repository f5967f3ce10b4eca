//! What the browser tests of the pages do alike: sign in through the login page, wait for an
//! address, fail on console errors, and keep a screenshot of a page at each size a person uses.

use std::time::{Duration, Instant};

use mfv_tests::browser::{Browser, screenshot_dir};

/// The sizes every page's screenshot is kept at: a laptop's and a phone's.
pub const SIZES: [(&str, u32, u32); 2] = [("1280x720", 1280, 720), ("375x812", 375, 812)];

/// Fails naming every error the browser's console holds, after `page`.
pub fn no_console_errors(browser: &Browser, page: &str) {
    let errors = browser.console_errors().unwrap();
    assert!(errors.is_empty(), "the console after {page}: {errors:#?}");
}

/// Waits up to `within` until the page's address ends with `path`, and gives the address.
pub fn wait_for_url(browser: &Browser, path: &str, within: Duration) -> String {
    let start = Instant::now();
    loop {
        let url = browser.url().unwrap();
        if url.ends_with(path) {
            return url;
        }
        assert!(
            start.elapsed() < within,
            "the page stayed at {url}, not {path}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Saves the page's screenshot as `NAME-SIZE.png` at each of [`SIZES`], then goes back to the
/// laptop's size.
pub fn screenshots(browser: &Browser, name: &str) {
    for (size, width, height) in SIZES {
        browser.set_window(width, height).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        browser
            .screenshot(&screenshot_dir().join(format!("{name}-{size}.png")))
            .unwrap();
    }
    browser.set_window(1280, 720).unwrap();
}

/// Opens `base` + `path`, is led to the login, signs `username` in with
/// [`super::PASSWORD`] and comes back to `path`, each step within `within`.
pub fn sign_in(browser: &Browser, base: &str, username: &str, path: &str, within: Duration) {
    browser.open(&format!("{base}{path}")).unwrap();
    wait_for_url(
        browser,
        &format!("/login?next={}", path.replace('/', "%2F")),
        within,
    );
    browser.type_into("#username", username, within).unwrap();
    browser
        .type_into("#password", super::PASSWORD, within)
        .unwrap();
    browser.click("#sign-in", within).unwrap();
    wait_for_url(browser, path, within);
}
