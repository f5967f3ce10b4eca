//! Config mode's pages: plain HTML forms that work without scripts, styled by the same
//! stylesheet bundle as normal mode's pages (the content security policy allows nothing
//! inline).
//! Every text that comes from outside the page is escaped.
//!
//! The setup wizard is the one page that needs a script: its steps ask the JSON API (the
//! volumes, the network cards, the checks of the composed `mfv.toml`) as the person goes, so
//! its markup is static (`assets/wizard.html`) and `assets/setup.js`, served by the host like
//! the stylesheet, fills it in.

use warp::http::header::{CONTENT_TYPE, LOCATION};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

/// The wizard's steps, filled in by [`SETUP_SCRIPT`].
const WIZARD: &str = include_str!("../assets/wizard.html");
/// The wizard's script.
const SETUP_SCRIPT: &str = include_str!("../assets/setup.js");

/// The page that asks for the setup token, with `error` above the form when the last try
/// was refused.
pub fn token_page(error: Option<&str>) -> Response {
    let error = error
        .map(|error| format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(error)))
        .unwrap_or_default();
    page(
        "Set up this host",
        &format!(
            "<h2>Set up this host</h2>\n\
             <p>This host has no configuration yet. To prove that you may set it up, type the \
             setup token that the host's console shows.</p>\n{error}\
             <form method=\"post\" action=\"/setup/claim\">\n\
             <label for=\"token\">Setup token</label>\n\
             <input type=\"text\" id=\"token\" name=\"token\" autocomplete=\"off\" \
             autocapitalize=\"none\" spellcheck=\"false\" placeholder=\"xxxxx-xxxxx-xxxxx-xxxxx\" \
             required autofocus>\n\
             <button type=\"submit\">Continue</button>\n</form>\n\
             <p class=\"hint\">The token works once. Compare the certificate fingerprint your \
             browser shows with the one on the console before you type it.</p>\n"
        ),
        None,
    )
}

/// The page a session holder sees: the setup wizard.
pub fn wizard_page() -> Response {
    page(
        "Set up this host",
        &format!(
            "<div class=\"wizard\" id=\"wizard\" data-min-password=\"{min}\">\n\
             <h2>Set up this host</h2>\n\
             <p class=\"lead\">The setup token was accepted: this browser may set up the host, \
             and the token works no more.</p>\n\
             <noscript><p class=\"error\">The setup wizard needs JavaScript. Without it, a \
             program can set the host up with the JSON API under /api/v1/setup (see the \
             README).</p></noscript>\n{WIZARD}</div>\n",
            min = mfv_auth::DEFAULT_MIN_PASSWORD_CHARS
        ),
        Some("/assets/setup.js"),
    )
}

/// The page a confirm link shows when it did not confirm a network change: `message` says
/// what happened, the page what to do.
pub fn confirm_failed_page(status: StatusCode, message: &str) -> Response {
    let mut response = page(
        "Network change not confirmed",
        &format!(
            "<h2>The network change was not confirmed</h2>\n\
             <p class=\"error\" role=\"alert\">{}</p>\n\
             <p>If the host went back to its previous network, open the wizard at the address \
             you used before: that browser still holds the setup session, and you can change \
             the network again there.</p>\n\
             <p>If the change was confirmed already, this link is spent: the browser that \
             opened it first holds the session. Otherwise open the link the wizard showed, \
             exactly as it was, before its time runs out.</p>\n\
             <p><a href=\"/\">Open the setup page at this address</a></p>\n",
            escape(&sentence(message))
        ),
        None,
    );
    *response.status_mut() = status;
    response
}

/// What a browser sees on a host that is set up whose REST API cannot check callers (the
/// web pages are built on it): where the host's configuration is, where the host is managed
/// from.
pub fn set_up_page(device: &str) -> Response {
    let api = "<p class=\"hint\">The REST API cannot check callers on this host now; the \
               host's console shows why.</p>\n";
    page_in_mode(
        "set up",
        "This host is set up",
        &format!(
            "<h2>This host is set up</h2>\n\
             <p>It runs with its configuration on <code>{}</code>, and its first-boot setup is \
             over: the setup token works no more.</p>\n\
             <p>Sign in at the host's console, on its screen or its serial line, with an \
             administrator's name and password. The <code>mfv</code> command there shows the \
             host, its services and its configuration, and runs its virtual machines.</p>\n{api}",
            escape(device)
        ),
        None,
    )
}

/// A 303 redirect to `location`, after a form was handled.
pub fn see_other(location: &'static str) -> Response {
    let mut response = Response::default();
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
        .headers_mut()
        .insert(LOCATION, HeaderValue::from_static(location));
    response
}

/// The wizard's script.
pub fn setup_script() -> Response {
    asset(SETUP_SCRIPT, "text/javascript; charset=utf-8")
}

/// A file of the host's own, `text` of `content_type`.
fn asset(text: &'static str, content_type: &'static str) -> Response {
    let mut response = Response::new(text.into());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A whole page titled `title` around `body`, running the host's `script` if one is named.
fn page(title: &str, body: &str, script: Option<&'static str>) -> Response {
    page_in_mode("config mode", title, body, script)
}

/// A whole page as [`page`] makes it, with `mode` beside the product's name in the header.
fn page_in_mode(mode: &str, title: &str, body: &str, script: Option<&'static str>) -> Response {
    let script = script
        .map(|src| format!("<script src=\"{src}\" defer></script>\n"))
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} - Minifed-Virt</title>\n\
         <link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"{stylesheet}\">\n{script}</head>\n<body>\n\
         <header><h1>Minifed-Virt</h1><span>{mode}</span></header>\n\
         <main>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title),
        mode = escape(mode),
        icon = crate::assets::href(crate::assets::Bundle::IconSvg),
        stylesheet = crate::assets::href(crate::assets::Bundle::AppCss),
    );
    let mut response = Response::new(html.into());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// `fragment` (the API's messages are sentence fragments) as a sentence: a capital first
/// letter and a full stop.
fn sentence(fragment: &str) -> String {
    let mut characters = fragment.trim().chars();
    let Some(first) = characters.next() else {
        return String::new();
    };
    let mut text: String = first.to_uppercase().chain(characters).collect();
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    text
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_sentences() {
        assert_eq!(sentence("the key is wrong"), "The key is wrong.");
        assert_eq!(sentence(" done. "), "Done.");
        assert_eq!(sentence(""), "");
    }

    #[test]
    fn markup_in_a_message_is_shown_as_text() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }
}
