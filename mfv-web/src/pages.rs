//! Config mode's pages: plain HTML forms that work without scripts, styled by one
//! stylesheet of the host's own (the content security policy allows nothing inline).
//! Every text that comes from outside the page is escaped.

use warp::http::header::{CONTENT_TYPE, LOCATION};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

/// The stylesheet every page links.
const STYLESHEET: &str = include_str!("../assets/mfv.css");

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
    )
}

/// The page a session holder sees.
pub fn setup_page() -> Response {
    page(
        "Set up this host",
        "<h2>Setting up this host</h2>\n\
         <p>The setup token was accepted: this browser may set up the host, and the token \
         works no more.</p>\n\
         <ol>\n<li>Administrator account</li>\n<li>Where the configuration lives</li>\n\
         <li>Host name and network</li>\n<li>User directory</li>\n<li>Review and save</li>\n</ol>\n",
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

/// The stylesheet.
pub fn stylesheet() -> Response {
    let mut response = Response::new(STYLESHEET.into());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    response
}

/// A whole page titled `title` around `body`.
fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} - Minifed-Virt</title>\n\
         <link rel=\"stylesheet\" href=\"/assets/mfv.css\">\n</head>\n<body>\n\
         <header><h1>Minifed-Virt</h1><span>config mode</span></header>\n\
         <main>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title)
    );
    let mut response = Response::new(html.into());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
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
    fn markup_in_a_message_is_shown_as_text() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }
}
