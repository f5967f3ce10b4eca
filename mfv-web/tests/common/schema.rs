//! A checker of JSON values against the OpenAPI document's schemas: the subset of JSON Schema
//! 2020-12 the document uses. A keyword it does not know fails the check, so a schema it
//! cannot judge is never passed by mistake.

use serde_json::Value;

/// How strictly objects are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objects {
    /// As the schema says (`additionalProperties` absent allows any other property).
    AsWritten,
    /// An object schema with `properties` allows no other property unless it says so: an
    /// answer holding a field the document does not name fails.
    Closed,
}

/// Keywords that only describe.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "format",
    "contentMediaType",
    "$schema",
];

/// Checks `value` against `schema`, resolving `$ref`s in `document`; the error names where
/// (`path`) and what.
pub fn check(
    document: &Value,
    schema: &Value,
    value: &Value,
    objects: Objects,
) -> Result<(), String> {
    check_at(document, schema, value, objects, "$")
}

fn check_at(
    document: &Value,
    schema: &Value,
    value: &Value,
    objects: Objects,
    path: &str,
) -> Result<(), String> {
    let schema = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(format!("{path}: nothing is allowed here")),
        Value::Object(schema) => schema,
        other => return Err(format!("{path}: {other} is not a schema")),
    };
    for (keyword, argument) in schema {
        match keyword.as_str() {
            "$ref" => {
                let target = resolve(document, argument.as_str().unwrap_or_default())?;
                check_at(document, target, value, objects, path)?;
            }
            "type" => {
                let types: Vec<&str> = match argument {
                    Value::String(one) => vec![one.as_str()],
                    Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("{path}: bad type {argument}")),
                };
                if !types.iter().any(|name| is_type(value, name)) {
                    return Err(format!("{path}: {value} is not of type {argument}"));
                }
            }
            "enum" => {
                if !argument
                    .as_array()
                    .is_some_and(|choices| choices.contains(value))
                {
                    return Err(format!("{path}: {value} is not one of {argument}"));
                }
            }
            "const" => {
                if argument != value {
                    return Err(format!("{path}: {value} is not {argument}"));
                }
            }
            "required" => {
                if let Value::Object(object) = value {
                    for name in argument.as_array().into_iter().flatten() {
                        let name = name.as_str().unwrap_or_default();
                        if !object.contains_key(name) {
                            return Err(format!("{path}: lacks the required {name:?}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Value::Object(object) = value {
                    for (name, inner) in object {
                        if let Some(property) = argument.get(name) {
                            check_at(
                                document,
                                property,
                                inner,
                                objects,
                                &format!("{path}.{name}"),
                            )?;
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Value::Object(object) = value {
                    let named = schema.get("properties");
                    for (name, inner) in object {
                        if named.and_then(|named| named.get(name)).is_none() {
                            check_at(
                                document,
                                argument,
                                inner,
                                objects,
                                &format!("{path}.{name}"),
                            )?;
                        }
                    }
                }
            }
            "items" => {
                if let Value::Array(items) = value {
                    for (index, item) in items.iter().enumerate() {
                        check_at(
                            document,
                            argument,
                            item,
                            objects,
                            &format!("{path}[{index}]"),
                        )?;
                    }
                }
            }
            "minimum" | "maximum" => {
                if let (Some(number), Some(bound)) = (value.as_f64(), argument.as_f64()) {
                    let within = if keyword == "minimum" {
                        number >= bound
                    } else {
                        number <= bound
                    };
                    if !within {
                        return Err(format!("{path}: {number} is beyond the {keyword} {bound}"));
                    }
                }
            }
            "minItems" | "maxItems" => {
                if let (Some(items), Some(bound)) = (value.as_array(), argument.as_u64()) {
                    let count = items.len() as u64;
                    if (keyword == "minItems" && count < bound)
                        || (keyword == "maxItems" && count > bound)
                    {
                        return Err(format!(
                            "{path}: {count} items is beyond the {keyword} {bound}"
                        ));
                    }
                }
            }
            "allOf" => {
                for (index, branch) in argument.as_array().into_iter().flatten().enumerate() {
                    check_at(document, branch, value, Objects::AsWritten, path)
                        .map_err(|error| format!("{error} (allOf[{index}])"))?;
                }
            }
            "anyOf" | "oneOf" => {
                let branches = argument.as_array().cloned().unwrap_or_default();
                let errors: Vec<String> = branches
                    .iter()
                    .filter_map(|branch| check_at(document, branch, value, objects, path).err())
                    .collect();
                let passed = branches.len() - errors.len();
                let fits = if keyword == "oneOf" {
                    passed == 1
                } else {
                    passed >= 1
                };
                if !fits {
                    return Err(format!(
                        "{path}: {passed} branches of {keyword} fit {value}: {}",
                        errors.join("; ")
                    ));
                }
            }
            known if ANNOTATIONS.contains(&known) => {}
            unknown => return Err(format!("{path}: the checker does not know {unknown:?}")),
        }
    }
    let closed = objects == Objects::Closed && !schema.contains_key("additionalProperties");
    if let (true, Some(Value::Object(named)), Value::Object(object)) =
        (closed, schema.get("properties"), value)
    {
        if let Some(name) = object.keys().find(|name| !named.contains_key(*name)) {
            return Err(format!("{path}: {name:?} is not in the document"));
        }
    }
    Ok(())
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => false,
    }
}

/// The schema `#/components/schemas/NAME` points at.
pub fn resolve<'a>(document: &'a Value, reference: &str) -> Result<&'a Value, String> {
    reference
        .strip_prefix('#')
        .and_then(|pointer| document.pointer(pointer))
        .ok_or_else(|| format!("$ref {reference:?} resolves to nothing"))
}

/// The JSON answer schema of `method path` with status `status`.
pub fn answer_schema<'a>(document: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    &document["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"]
}

/// The JSON body schema of `method path`.
pub fn request_schema<'a>(document: &'a Value, method: &str, path: &str) -> &'a Value {
    &document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
}
