//! What a route takes and answers, as JSON Schemas for the OpenAPI document.
//!
//! Why schemas generated from the Rust types: the body a handler deserializes and the answer
//! it serializes are the types named in its route's line, so the document cannot drift from
//! what the server does (a field added to a type is documented with it). Types of other
//! crates (mfv-vm's `VmSpec`, mfv-api's host status) derive their schemas behind those
//! crates' `schemars` feature, which only mfv-web turns on.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;

/// Makes a type's schema, adding the types it refers to to the generator's components.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// `T`'s schema (a `$ref` to its component for a named type).
pub fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What a route answers when it succeeds.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// `200 OK` with a JSON body of this schema.
    Ok(SchemaFn),
    /// `201 Created` with a JSON body of this schema.
    Created(SchemaFn),
    /// `202 Accepted` with a JSON body of this schema: the work goes on after the answer.
    Accepted(SchemaFn),
    /// `202 Accepted` with `{"task": Task}`; the schema is that of the task's `result` once
    /// it succeeded.
    Task(SchemaFn),
    /// `200 OK`, a `text/event-stream` of JSON events.
    Events,
    /// `200 OK`, Prometheus' text format.
    Metrics,
    /// `101 Switching Protocols`: the connection becomes a websocket.
    Websocket,
}

/// The answer of a change that has nothing to say but that it is done: `{}`.
#[derive(Debug, Default, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Done {}
