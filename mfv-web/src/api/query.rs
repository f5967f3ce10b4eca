//! Query strings: `?source=service&service=libvirtd&lines=50` read strictly.
//!
//! A route names the parameters it takes; anything else, a parameter given twice, an escape
//! that does not decode or a value out of range is refused with `400 invalid_request` naming
//! the parameter, so a misspelt `?line=5` is an error instead of a silent default.
//!
//! The route's declaration ([`Param`]s in its [`Route::query`](super::table::Route::query))
//! is both what the dispatcher parses against and what the OpenAPI document shows, with the
//! ranges, choices and defaults the readers here apply: the two cannot disagree.

use schemars::SchemaGenerator;
use serde_json::{Value, json};

use super::ApiError;
use super::doc::SchemaFn;
use super::path::percent_decode;

/// One query parameter a route takes: what the reader accepts and the document shows.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// What values it takes.
    pub kind: ParamKind,
    /// What it means, for people.
    pub about: &'static str,
}

/// The values a query parameter takes.
#[derive(Debug, Clone, Copy)]
pub enum ParamKind {
    /// Any text the handler checks itself.
    Text,
    /// A whole number (an id).
    Integer,
    /// A whole number from `min` to `max`, `default` when left out.
    Number {
        /// The least value taken.
        min: u32,
        /// The greatest value taken.
        max: u32,
        /// The value when the parameter is left out.
        default: u32,
    },
    /// One of `choices`, `default` when left out.
    Choice {
        /// The values taken.
        choices: &'static [&'static str],
        /// The value when the parameter is left out, if any.
        default: Option<&'static str>,
    },
    /// A value of a type the handler reads, shown by that type's schema (an enum).
    Typed(SchemaFn),
    /// An RFC 3339 date and time (`2026-11-26T04:53:00Z`).
    DateTime,
}

impl Param {
    /// The parameter as an OpenAPI parameter object.
    pub fn openapi(&self, generator: &mut SchemaGenerator) -> Value {
        let schema = match self.kind {
            ParamKind::Text => json!({"type": "string"}),
            ParamKind::Integer => json!({"type": "integer", "format": "int64"}),
            ParamKind::Number { min, max, default } => {
                json!({"type": "integer", "minimum": min, "maximum": max, "default": default})
            }
            ParamKind::Choice { choices, default } => {
                let mut schema = json!({"type": "string", "enum": choices});
                if let Some(default) = default {
                    schema["default"] = json!(default);
                }
                schema
            }
            ParamKind::Typed(schema) => schema(generator).to_value(),
            ParamKind::DateTime => json!({"type": "string", "format": "date-time"}),
        };
        json!({
            "name": self.name,
            "in": "query",
            "required": false,
            "description": self.about,
            "schema": schema,
        })
    }
}

/// A query string's parameters, each known to the route and given once.
#[derive(Debug, Clone)]
pub struct Query {
    params: &'static [Param],
    pairs: Vec<(&'static str, String)>,
}

impl Query {
    /// The parameters of `raw` (the query string without `?`), which may only be among
    /// `params`.
    pub fn parse(raw: &str, params: &'static [Param]) -> Result<Query, ApiError> {
        let mut pairs: Vec<(&'static str, String)> = Vec::new();
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key).ok_or_else(|| {
                ApiError::invalid(
                    "query",
                    format!("{key:?} is not a well-formed parameter name"),
                )
            })?;
            let Some(param) = params.iter().find(|param| param.name == key) else {
                let takes = if params.is_empty() {
                    "no parameters".to_owned()
                } else {
                    let names: Vec<&str> = params.iter().map(|param| param.name).collect();
                    names.join(", ")
                };
                return Err(ApiError::invalid(
                    key.clone(),
                    format!("unknown query parameter {key:?}; this route takes {takes}"),
                ));
            };
            let name = param.name;
            let value = decode(value).ok_or_else(|| {
                ApiError::invalid(name, "the value's %-escapes do not decode to UTF-8 text")
            })?;
            if pairs.iter().any(|(have, _)| *have == name) {
                return Err(ApiError::invalid(name, "given more than once"));
            }
            pairs.push((name, value));
        }
        Ok(Query { params, pairs })
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find_map(|(key, value)| (*key == name).then_some(value.as_str()))
    }

    /// How the route declares `name`.
    fn kind(&self, name: &str) -> Option<ParamKind> {
        self.params
            .iter()
            .find(|param| param.name == name)
            .map(|param| param.kind)
    }

    /// The value of the whole number `name`, declared [`ParamKind::Integer`], if given.
    pub fn integer(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|text| {
                text.parse().map_err(|_| {
                    ApiError::invalid(name, format!("must be a whole number, got {text:?}"))
                })
            })
            .transpose()
    }

    /// The value of `name`, declared [`ParamKind::DateTime`], in seconds since the Unix
    /// epoch, if given.
    pub fn date_time(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        let Some(ParamKind::DateTime) = self.kind(name) else {
            return Err(undeclared(name));
        };
        self.get(name)
            .map(|text| {
                mfv_linux::utc::UtcTime::parse_rfc3339(text)
                    .map_err(|error| ApiError::invalid(name, error.to_string()))
            })
            .transpose()
    }

    /// The value of `name`, declared [`ParamKind::Number`]: within its range, its default
    /// when left out.
    pub fn number(&self, name: &'static str) -> Result<u32, ApiError> {
        let Some(ParamKind::Number { min, max, default }) = self.kind(name) else {
            return Err(undeclared(name));
        };
        let Some(text) = self.get(name) else {
            return Ok(default);
        };
        match text.parse::<u32>() {
            Ok(number) if (min..=max).contains(&number) => Ok(number),
            _ => Err(ApiError::invalid(
                name,
                format!("must be a whole number from {min} to {max}, got {text:?}"),
            )),
        }
    }

    /// The value of `name`, declared [`ParamKind::Choice`]: one of its choices, its default
    /// (if any) when left out.
    pub fn choice(&self, name: &'static str) -> Result<Option<&'static str>, ApiError> {
        let Some(ParamKind::Choice { choices, default }) = self.kind(name) else {
            return Err(undeclared(name));
        };
        let Some(text) = self.get(name) else {
            return Ok(default);
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

/// A handler reading a parameter its route does not declare as that kind: the server's
/// fault, which the route tests catch.
fn undeclared(name: &str) -> ApiError {
    ApiError::new(
        warp::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("the route reads query parameter {name:?} it does not declare"),
    )
}

/// A form-encoded query component: `+` is a space, then `%XX` escapes.
fn decode(component: &str) -> Option<String> {
    percent_decode(&component.replace('+', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: &[Param] = &[
        Param {
            name: "service",
            kind: ParamKind::Text,
            about: "",
        },
        Param {
            name: "lines",
            kind: ParamKind::Number {
                min: 1,
                max: 10,
                default: 3,
            },
            about: "",
        },
        Param {
            name: "note",
            kind: ParamKind::Text,
            about: "",
        },
        Param {
            name: "source",
            kind: ParamKind::Choice {
                choices: &["boot", "service"],
                default: None,
            },
            about: "",
        },
        Param {
            name: "before",
            kind: ParamKind::Integer,
            about: "",
        },
    ];

    #[test]
    fn known_parameters_are_decoded_once_each() {
        let query = Query::parse("service=lib%76irtd&lines=5&note=a+b&before=-2", PARAMS).unwrap();
        assert_eq!(query.get("service"), Some("libvirtd"));
        assert_eq!(query.get("note"), Some("a b"));
        assert_eq!(query.number("lines").unwrap(), 5);
        assert_eq!(query.integer("before").unwrap(), Some(-2));
        assert_eq!(query.get("source"), None);
        assert_eq!(query.choice("source").unwrap(), None);
        assert_eq!(Query::parse("", &[]).unwrap().get("x"), None);
    }

    #[test]
    fn a_left_out_parameter_has_its_declared_default() {
        let query = Query::parse("", PARAMS).unwrap();
        assert_eq!(query.number("lines").unwrap(), 3);
        assert_eq!(query.integer("before").unwrap(), None);
    }

    #[test]
    fn reading_an_undeclared_parameter_is_the_servers_fault() {
        let query = Query::parse("", PARAMS).unwrap();
        let error = query.number("service").unwrap_err();
        assert_eq!(error.status, warp::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(query.choice("missing").is_err());
    }

    #[test]
    fn refusals_name_the_parameter() {
        let field = |raw: &str| {
            let error = Query::parse(raw, PARAMS)
                .and_then(|query| {
                    query.number("lines")?;
                    query.choice("source")?;
                    query.integer("before")?;
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
        assert_eq!(field("before=x"), "before");
    }

    #[test]
    fn parameters_are_documented_with_their_range_choices_and_default() {
        let mut generator = SchemaGenerator::default();
        let lines = PARAMS[1].openapi(&mut generator);
        assert_eq!(lines["in"], "query");
        assert_eq!(lines["schema"]["maximum"], 10);
        assert_eq!(lines["schema"]["default"], 3);
        let source = PARAMS[3].openapi(&mut generator);
        assert_eq!(source["schema"]["enum"], json!(["boot", "service"]));
    }
}
