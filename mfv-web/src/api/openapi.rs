//! The OpenAPI 3.1 document, generated from the route table: every route's path, method,
//! operation id, summary, path and query parameters, the JSON Schema of the body it takes
//! and of what it answers, and who may call it (`security`, and `x-mfv-permission` naming
//! the permission the role must allow).
//!
//! The schemas come from the Rust types the handlers deserialize and serialize
//! ([`super::doc`]), in two generators: bodies as serde reads them (a field with a default
//! is optional) and answers as serde writes them (a field left out when empty is optional).
//! A type whose two schemas differ (`VmSpec`: defaults on the way in, every field on the way
//! out) gets both components, the one a request takes named `…Input`.

use std::collections::BTreeMap;

use schemars::SchemaGenerator;
use schemars::generate::{Contract, SchemaSettings};
use serde_json::{Map, Value, json};
use warp::http::{Method, StatusCode};

use super::doc::{Answer, schema};
use super::path::parameter_names;
use super::table::{Access, Call, HandlerFuture, Route};
use super::tasks::TaskAnswer;
use crate::reply::{ErrorBody, json_response};

/// Where schemas are kept in the document.
const COMPONENTS: &str = "#/components/schemas/";

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: Method::GET,
        path: "/api/v1/openapi.json",
        access: Access::Anyone,
        max_body: 0,
        query: &[],
        request: None,
        answer: Answer::Ok(openapi_schema),
        operation: "openapi",
        summary: "This API's OpenAPI 3.1 document",
        handler: serve,
    }]
}

/// This document's own schema, as far as this document says: an OpenAPI object.
fn openapi_schema(_generator: &mut SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "required": ["openapi", "info", "paths", "components"],
        "properties": {"openapi": {"const": "3.1.0"}},
    })
}

fn serve(_call: Call) -> HandlerFuture {
    Box::pin(async move {
        Ok(json_response(
            StatusCode::OK,
            &document(&super::table::routes()),
        ))
    })
}

/// A schema generator writing components under `#/components/schemas/`.
fn generator(contract: Contract) -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas/".into();
            settings.meta_schema = None;
            settings.contract = contract;
        })
        .into_generator()
}

/// The document for `routes`.
pub fn document(routes: &[Route]) -> Value {
    let mut requests = generator(Contract::Deserialize);
    let mut answers = generator(Contract::Serialize);
    let error = answers.subschema_for::<ErrorBody>().to_value();
    let mut operations = Vec::new();
    for route in routes {
        let mut taken = json!({"parameters": [], "requestBody": null});
        taken["parameters"] = Value::Array(parameters(route, &mut requests));
        if let Some(body) = request_body(route, &mut requests) {
            taken["requestBody"] = body;
        }
        operations.push((route, taken, responses(route, &mut answers)));
    }
    let mut schemas = answers.take_definitions(true);
    let mut renames = BTreeMap::new();
    let inputs = requests.take_definitions(true);
    for (name, definition) in &inputs {
        if schemas
            .get(name)
            .is_some_and(|answered| answered != definition)
        {
            renames.insert(
                format!("{COMPONENTS}{name}"),
                format!("{COMPONENTS}{name}Input"),
            );
        }
    }
    for (name, mut definition) in inputs {
        rename_refs(&mut definition, &renames);
        let key = if renames.contains_key(&format!("{COMPONENTS}{name}")) {
            format!("{name}Input")
        } else {
            name
        };
        schemas.insert(key, definition);
    }
    let mut paths = Map::new();
    for (route, mut taken, responses) in operations {
        rename_refs(&mut taken, &renames);
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(
                route.method.as_str().to_lowercase(),
                operation(route, taken, responses),
            );
        }
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Minifed-Virt host API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every change made with the session cookie carries the session's \
                            CSRF token in the X-CSRF-Token header. Errors are \
                            {kind, message, field, errors}: `kind` is a stable word \
                            (invalid_request, not_found, conflict, unavailable, ...), `field` \
                            the request's field or query parameter at fault. Bodies with \
                            unknown fields and query strings with unknown parameters are \
                            refused.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": super::SESSION_COOKIE},
                "token": {"type": "http", "scheme": "bearer"},
            },
            "responses": {
                "Error": {
                    "description": "the error, with its kind and the field at fault",
                    "content": {"application/json": {"schema": error}},
                },
            },
            "schemas": schemas,
        },
    })
}

/// Points every `$ref` named in `renames` at its new name.
fn rename_refs(value: &mut Value, renames: &BTreeMap<String, String>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object.iter_mut() {
                match inner {
                    Value::String(target) if key == "$ref" => {
                        if let Some(renamed) = renames.get(target.as_str()) {
                            renamed.clone_into(target);
                        }
                    }
                    _ => rename_refs(inner, renames),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rename_refs(item, renames)),
        _ => {}
    }
}

/// The route's path parameters, then its query parameters.
fn parameters(route: &Route, requests: &mut SchemaGenerator) -> Vec<Value> {
    parameter_names(route.path)
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .chain(route.query.iter().map(|param| param.openapi(requests)))
        .collect()
}

/// The body the route takes, if any.
fn request_body(route: &Route, requests: &mut SchemaGenerator) -> Option<Value> {
    let content = if route.streams() {
        json!({"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}})
    } else {
        let body = route.request?;
        json!({"application/json": {"schema": body(requests).to_value()}})
    };
    Some(json!({
        "required": true,
        "content": content,
        "x-mfv-max-bytes": route.max_body,
    }))
}

/// The route's answers: its success, and the error shape for the rest.
fn responses(route: &Route, answers: &mut SchemaGenerator) -> Value {
    let json_body = |description: &str, schema: Value| json!({"description": description, "content": {"application/json": {"schema": schema}}});
    let (status, success) = match route.answer {
        Answer::Ok(body) => ("200", json_body("done", body(answers).to_value())),
        Answer::Created(body) => ("201", json_body("made", body(answers).to_value())),
        Answer::Accepted(body) => ("202", json_body("under way", body(answers).to_value())),
        Answer::Task(result) => {
            let mut started = json_body(
                "accepted: a task does the work; follow it at the Location header",
                schema::<TaskAnswer>(answers).to_value(),
            );
            started["headers"] = json!({
                "Location": {"description": "the task's URL", "schema": {"type": "string"}},
            });
            started["x-mfv-task-result"] = result(answers).to_value();
            ("202", started)
        }
        Answer::Events => (
            "200",
            json!({
                "description": "server-sent events, each's data a JSON object, kept open",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }),
        ),
        Answer::Websocket => (
            "101",
            json!({
                "description": "the connection becomes a websocket (a GET with \
                                Upgrade: websocket; the page's Origin must be this host); \
                                bytes both ways in binary frames",
            }),
        ),
        Answer::Metrics => (
            "200",
            json!({
                "description": "Prometheus' text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }),
        ),
    };
    let error = json!({"$ref": "#/components/responses/Error"});
    json!({status: success, "4XX": error, "5XX": error})
}

fn operation(route: &Route, taken: Value, responses: Value) -> Value {
    let mut operation = json!({
        "operationId": route.operation,
        "summary": route.summary,
        "parameters": taken["parameters"],
        "responses": responses,
    });
    if !taken["requestBody"].is_null() {
        operation["requestBody"] = taken["requestBody"].clone();
    }
    let security = match route.access {
        Access::Anyone => json!([]),
        Access::SignedIn | Access::Allowed(_) => json!([{"session": []}, {"token": []}]),
    };
    operation["security"] = security;
    if let Access::Allowed(permission) = route.access {
        operation["x-mfv-permission"] = json!(permission.as_str());
    }
    operation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let routes = super::super::table::routes();
        let document = document(&routes);
        let mut documented = Vec::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
        let mut served: Vec<String> = routes
            .iter()
            .map(|route| format!("{} {}", route.method, route.path))
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }

    #[test]
    fn a_streamed_body_is_documented_as_bytes() {
        let document = document(&super::super::table::routes());
        let chunk = &document["paths"]["/api/v1/uploads/{id}"]["put"]["requestBody"];
        assert!(
            chunk["content"]["application/octet-stream"].is_object(),
            "{chunk}"
        );
        let volume = &document["paths"]["/api/v1/pools/{pool}/volumes"]["post"]["requestBody"];
        assert!(
            volume["content"]["application/json"].is_object(),
            "{volume}"
        );
    }

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(object) => {
                for (key, inner) in object {
                    match inner {
                        Value::String(target) if key == "$ref" => found.push(target),
                        _ => refs(inner, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_within_the_document() {
        let document = document(&super::super::table::routes());
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(found.len() > 50, "{}", found.len());
        for target in found {
            let pointer = target.strip_prefix('#').unwrap();
            assert!(document.pointer(pointer).is_some(), "{target}");
        }
    }

    #[test]
    fn every_json_body_has_a_schema_and_every_route_a_documented_success() {
        let routes = super::super::table::routes();
        let document = document(&routes);
        for route in &routes {
            let takes_json = route.max_body > 0 && !route.streams();
            assert_eq!(
                takes_json,
                route.request.is_some(),
                "{} {}",
                route.method,
                route.path
            );
            let operation =
                &document["paths"][route.path][route.method.as_str().to_lowercase().as_str()];
            let body = &operation["requestBody"]["content"];
            if takes_json {
                assert!(
                    body["application/json"]["schema"].is_object(),
                    "{}",
                    route.path
                );
            }
            let responses = operation["responses"].as_object().unwrap();
            let success: Vec<&String> = responses
                .keys()
                .filter(|status| status.starts_with('2') || *status == "101")
                .collect();
            assert_eq!(success.len(), 1, "{} {}", route.method, route.path);
            assert_eq!(responses["4XX"]["$ref"], "#/components/responses/Error");
            if success[0] == "101" {
                // A websocket: the connection is taken over, no body is answered.
                continue;
            }
            let content = &responses[success[0].as_str()]["content"];
            let schema = content
                .as_object()
                .and_then(|media| media.values().next())
                .map(|media| &media["schema"]);
            assert!(
                schema.is_some_and(Value::is_object),
                "{} {}",
                route.method,
                route.path
            );
            assert_eq!(responses["4XX"]["$ref"], "#/components/responses/Error");
        }
    }

    #[test]
    fn request_bodies_refuse_unknown_fields_and_name_their_enums() {
        let document = document(&super::super::table::routes());
        let schemas = &document["components"]["schemas"];
        for name in [
            "Login",
            "AddUser",
            "CreateToken",
            "NewVolume",
            "PowerRequest",
        ] {
            assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
        }
        let roles: Vec<&Value> = schemas["Role"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|choice| &choice["const"])
            .collect();
        assert_eq!(
            roles,
            [&json!("viewer"), &json!("operator"), &json!("admin")]
        );
        let spec = &document["paths"]["/api/v1/vms"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"];
        let spec = document
            .pointer(spec.as_str().unwrap().strip_prefix('#').unwrap())
            .unwrap();
        assert_eq!(spec["additionalProperties"], false, "{spec}");
        assert!(
            spec["required"]
                .as_array()
                .unwrap()
                .contains(&json!("name"))
        );
    }

    #[test]
    fn long_operations_answer_a_task_and_streams_their_media_type() {
        let document = document(&super::super::table::routes());
        let create = &document["paths"]["/api/v1/vms"]["post"]["responses"]["202"];
        assert_eq!(
            create["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/TaskAnswer"
        );
        assert!(create["x-mfv-task-result"].is_object(), "{create}");
        let events = &document["paths"]["/api/v1/events"]["get"]["responses"]["200"];
        assert!(events["content"]["text/event-stream"].is_object());
        let metrics = &document["paths"]["/metrics"]["get"]["responses"]["200"];
        assert!(metrics["content"]["text/plain"].is_object());
        let delete = &document["paths"]["/api/v1/vms/{name}"]["delete"]["parameters"];
        assert_eq!(delete[1]["schema"]["enum"], json!(["keep", "delete"]));
        assert_eq!(delete[1]["schema"]["default"], "keep");
    }
}
