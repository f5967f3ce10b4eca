//! The OpenAPI 3.1 document, generated from the route table: every route's path, method,
//! operation id, summary, path parameters, body, and who may call it (`security`, and
//! `x-mfv-permission` naming the permission the role must allow).

use serde_json::{Map, Value, json};
use warp::http::{Method, StatusCode};

use super::path::parameter_names;
use super::table::{Access, Call, HandlerFuture, Route};
use crate::reply::json_response;

/// The routes.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: Method::GET,
        path: "/api/v1/openapi.json",
        access: Access::Anyone,
        max_body: 0,
        operation: "openapi",
        summary: "This API's OpenAPI 3.1 document",
        handler: serve,
    }]
}

fn serve(_call: Call) -> HandlerFuture {
    Box::pin(async move {
        Ok(json_response(
            StatusCode::OK,
            &document(&super::table::routes()),
        ))
    })
}

/// The document for `routes`.
pub fn document(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(route.method.as_str().to_lowercase(), operation(route));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Minifed-Virt host API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every change made with the session cookie carries the session's \
                            CSRF token in the X-CSRF-Token header. Errors are \
                            {kind, message, field}.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": super::SESSION_COOKIE},
                "token": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["kind", "message"],
                    "properties": {
                        "kind": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": ["string", "null"]},
                    },
                },
            },
        },
    })
}

fn operation(route: &Route) -> Value {
    let parameters: Vec<Value> = parameter_names(route.path)
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect();
    let error = json!({
        "description": "the error, with its kind",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    });
    let mut operation = json!({
        "operationId": route.operation,
        "summary": route.summary,
        "parameters": parameters,
        "responses": {
            "200": {"description": "done: JSON, or for /metrics Prometheus' text format"},
            "default": error,
        },
    });
    let security = match route.access {
        Access::Anyone => json!([]),
        Access::SignedIn | Access::Allowed(_) => json!([{"session": []}, {"token": []}]),
    };
    operation["security"] = security;
    if let Access::Allowed(permission) = route.access {
        operation["x-mfv-permission"] = json!(permission.as_str());
    }
    if route.max_body > 0 {
        let media = if route.streams() {
            "application/octet-stream"
        } else {
            "application/json"
        };
        operation["requestBody"] = json!({
            "required": true,
            "content": {media: {}},
            "x-mfv-max-bytes": route.max_body,
        });
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
}
