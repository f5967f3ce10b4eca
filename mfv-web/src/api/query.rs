//! Query strings: `?source=service&service=libvirtd&lines=50` read strictly.
//!
//! A route names the parameters it takes; anything else, a parameter given twice, an escape
//! that does not decode or a value out of range is refused with `400 invalid_request` naming
//! the parameter, so a misspelt `?line=5` is an error instead of a silent default.

use super::ApiError;
use super::path::percent_decode;

/// A query string's parameters, each known to the route and given once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(&'static str, String)>,
}

impl Query {
    /// The parameters of `raw` (the query string without `?`), which may only be among
    /// `allowed`.
    pub fn parse(raw: &str, allowed: &[&'static str]) -> Result<Query, ApiError> {
        let mut pairs: Vec<(&'static str, String)> = Vec::new();
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key).ok_or_else(|| {
                ApiError::invalid(
                    "query",
                    format!("{key:?} is not a well-formed parameter name"),
                )
            })?;
            let Some(name) = allowed.iter().find(|name| **name == key) else {
                let takes = if allowed.is_empty() {
                    "no parameters".to_owned()
                } else {
                    allowed.join(", ")
                };
                return Err(ApiError::invalid(
                    key.clone(),
                    format!("unknown query parameter {key:?}; this route takes {takes}"),
                ));
            };
            let value = decode(value).ok_or_else(|| {
                ApiError::invalid(*name, "the value's %-escapes do not decode to UTF-8 text")
            })?;
            if pairs.iter().any(|(have, _)| have == name) {
                return Err(ApiError::invalid(*name, "given more than once"));
            }
            pairs.push((name, value));
        }
        Ok(Query { pairs })
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find_map(|(key, value)| (*key == name).then_some(value.as_str()))
    }

    /// The value of `name` as a whole number from `min` to `max`, if given.
    pub fn number(&self, name: &'static str, min: u32, max: u32) -> Result<Option<u32>, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        match text.parse::<u32>() {
            Ok(number) if (min..=max).contains(&number) => Ok(Some(number)),
            _ => Err(ApiError::invalid(
                name,
                format!("must be a whole number from {min} to {max}, got {text:?}"),
            )),
        }
    }

    /// The value of `name`, which must be one of `choices`, if given.
    pub fn choice(
        &self,
        name: &'static str,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        choices
            .iter()
            .find(|choice| **choice == text)
            .copied()
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(
                    name,
                    format!("must be one of {}, got {text:?}", choices.join(", ")),
                )
            })
    }
}

/// A form-encoded query component: `+` is a space, then `%XX` escapes.
fn decode(component: &str) -> Option<String> {
    percent_decode(&component.replace('+', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_parameters_are_decoded_once_each() {
        let query = Query::parse(
            "service=lib%76irtd&lines=5&note=a+b",
            &["service", "lines", "note"],
        )
        .unwrap();
        assert_eq!(query.get("service"), Some("libvirtd"));
        assert_eq!(query.get("note"), Some("a b"));
        assert_eq!(query.number("lines", 1, 10).unwrap(), Some(5));
        assert_eq!(query.get("source"), None);
        assert_eq!(Query::parse("", &[]).unwrap().get("x"), None);
    }

    #[test]
    fn refusals_name_the_parameter() {
        let field = |raw: &str| {
            let error = Query::parse(raw, &["lines", "source"])
                .and_then(|query| {
                    query.number("lines", 1, 10)?;
                    query.choice("source", &["boot", "service"])?;
                    Ok(())
                })
                .unwrap_err();
            assert_eq!(error.body.kind, "invalid_request", "{raw}");
            error.body.field.unwrap_or_default()
        };
        assert_eq!(field("line=5"), "line");
        assert_eq!(field("lines=5&lines=6"), "lines");
        assert_eq!(field("lines=0"), "lines");
        assert_eq!(field("lines=11"), "lines");
        assert_eq!(field("lines=ten"), "lines");
        assert_eq!(field("lines=%zz"), "lines");
        assert_eq!(field("source=kernel"), "source");
    }
}
