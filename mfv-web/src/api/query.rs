//! Query strings: `name=value` pairs, percent-decoded (`+` is a space), each name once.
//!
//! Routes read the pairs into a typed struct of their own and refuse names they do not take,
//! so a misspelt parameter is an error naming it rather than a filter silently not applied.

use super::ApiError;

/// The pairs of `query` (without its `?`), in order; a name given twice, or a part that does
/// not decode to UTF-8, is refused naming the parameter.
pub(crate) fn pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in query.split('&').filter(|part| !part.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = decode(name).ok_or_else(|| {
            ApiError::invalid(
                "query",
                format!("the query parameter {name:?} is not UTF-8"),
            )
        })?;
        let value = decode(value).ok_or_else(|| {
            ApiError::invalid(name.as_str(), format!("the value of {name} is not UTF-8"))
        })?;
        if pairs.iter().any(|(seen, _)| *seen == name) {
            return Err(ApiError::invalid(
                name.as_str(),
                format!("the query parameter {name} is given more than once"),
            ));
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// `text` with `+` as a space and `%XX` decoded, if it is UTF-8 then.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'%' => {
                let hex = text.get(at + 1..at + 3)?;
                decoded.push(u8::from_str_radix(hex, 16).ok()?);
                at += 3;
            }
            b'+' => {
                decoded.push(b' ');
                at += 1;
            }
            byte => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8(decoded).ok()
}

/// An unknown parameter `name` of a route that takes `known`.
pub(crate) fn unknown(name: &str, known: &[&str]) -> ApiError {
    ApiError::invalid(
        name,
        format!(
            "unknown query parameter {name:?}; this route takes {}",
            known.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_decoded_in_order() {
        assert_eq!(
            pairs("user=ada%20b&event=login&limit=").unwrap(),
            [
                ("user".to_owned(), "ada b".to_owned()),
                ("event".to_owned(), "login".to_owned()),
                ("limit".to_owned(), String::new()),
            ]
        );
        assert_eq!(pairs("").unwrap(), []);
        assert_eq!(pairs("a=x+y&&b").unwrap()[0].1, "x y");
    }

    #[test]
    fn repeated_and_undecodable_parameters_are_refused_by_name() {
        let twice = pairs("limit=1&limit=2").unwrap_err();
        assert_eq!(twice.body.field.as_deref(), Some("limit"));
        let broken = pairs("user=%ff").unwrap_err();
        assert_eq!(broken.body.field.as_deref(), Some("user"));
        let short = pairs("user=%4").unwrap_err();
        assert_eq!(short.body.field.as_deref(), Some("user"));
    }
}
