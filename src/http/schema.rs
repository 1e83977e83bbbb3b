//! The OpenAPI schemas that no derive can write: those built from the code's own tables (job
//! states, event types), the path parameters of the extractors in [`super::body`] and their
//! siblings, and the shapes of replies written without a Rust type of their own (events and
//! audit records are rendered by hand in the broker; `/healthz` and `/readyz` with `json!`).
//!
//! `docs/openapi.json` is the document these go into; `tests/openapi.rs` keeps it current.

use std::borrow::Cow;

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, RefOr, Required, SchemaFormat};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::body::{JobIdParam, PathText, QueueName};
use super::cursors::CursorName;
use super::schedules::ScheduleName;
use super::wire::JobInput;
use crate::auth::Scope;
use crate::broker::TYPES;
use crate::broker::limits::MAX_HEADERS;
use crate::job::JobState;

/// A string that is one of `values`.
fn one_of_strings<'a>(values: impl IntoIterator<Item = &'a str>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
}

/// A job's state.
pub fn job_state() -> ObjectBuilder {
    one_of_strings(JobState::ALL.map(JobState::as_str))
}

/// The state an enqueue reports: a job's, or `purged` for a duplicate whose original is no
/// longer stored.
pub fn enqueued_state() -> ObjectBuilder {
    one_of_strings(
        JobState::ALL
            .map(JobState::as_str)
            .into_iter()
            .chain(["purged"]),
    )
}

/// A queue's jobs per state: one count for every state.
pub fn job_counts() -> ObjectBuilder {
    let count = || {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
    };
    all_required(JobState::ALL.map(|state| (state.as_str(), count())))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// The headers of a job or a message as a client sends them: at most 32, names 1-128 bytes,
/// values at most 4096 bytes; `null`: none.
pub fn input_headers() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .property_names(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1))))
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
        .max_properties(Some(MAX_HEADERS))
        .description(Some(
            "At most 32; names 1-128 bytes, values at most 4096 bytes (a schedule's job: at most 30 besides wharf-schedule and wharf-due-at).",
        ))
}

/// A list of scope names (`*`: every scope).
pub fn scope_names() -> ArrayBuilder {
    let names = std::iter::once("*").chain(Scope::ALL.map(Scope::as_str));
    ArrayBuilder::new().items(one_of_strings(names))
}

/// A state whose jobs `GET /v1/queues/{queue}/jobs` lists.
pub fn listed_state() -> ObjectBuilder {
    one_of_strings(super::queues::LISTED.map(JobState::as_str))
}

/// A follow-up job of an ack: a job object (without `emit`) and the queue it goes to. Taken
/// from [`JobInput`]'s own schema, so the two cannot drift apart.
pub fn follow_up() -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut job)) = JobInput::schema() else {
        return JobInput::schema();
    };
    job.properties.remove("emit");
    job.properties.insert(
        "queue".to_owned(),
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "The queue it goes to, in the acker's tenant (a queue name).",
            ))
            .into(),
    );
    job.required.push("queue".to_owned());
    job.description = Some("A job enqueued in the same commit as the ack: a job object (as for an enqueue, without `emit`) and its `queue`.".to_owned());
    Schema::Object(job).into()
}

/// An object whose every field is required.
fn all_required<'a>(fields: impl IntoIterator<Item = (&'a str, ObjectBuilder)>) -> ObjectBuilder {
    fields
        .into_iter()
        .fold(ObjectBuilder::new(), |object, (name, schema)| {
            object.property(name, schema).required(name)
        })
}

/// An ack's follow-up jobs (`null`: none).
pub fn follow_ups() -> ArrayBuilder {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(follow_up())
}

/// A time in RFC 3339, UTC, with milliseconds.
fn time() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

/// A queue, schedule or cursor name: `[A-Za-z0-9._-]{1,128}` (not `.` or `..`); an operator
/// key may name another tenant's as `tenant:name`.
const NAME_PATTERN: &str = "^([A-Za-z0-9._-]{1,64}:)?[A-Za-z0-9._-]{1,128}$";

/// One required path parameter.
fn path_parameter(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn name_parameter(name: &str, description: &str) -> Vec<Parameter> {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(NAME_PATTERN));
    vec![path_parameter(name, description, schema)]
}

impl IntoParams for QueueName {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        name_parameter(
            "queue",
            "The queue: 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-', other than '.' and '..' (else 400 invalid_queue_name). An operator key names another tenant's as tenant:name.",
        )
    }
}

impl IntoParams for ScheduleName {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        name_parameter(
            "name",
            "The schedule, named as a queue is (else 400 invalid_schedule_name).",
        )
    }
}

impl IntoParams for CursorName {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        name_parameter(
            "name",
            "The cursor, named as a queue is (else 400 invalid_cursor_name).",
        )
    }
}

impl IntoParams for JobIdParam {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^(0|[1-9][0-9]*)$"));
        vec![path_parameter(
            "id",
            "The job id, in decimal (no sign, no leading zero). Anything else names no job: 404 job_not_found.",
            schema,
        )]
    }
}

impl IntoParams for PathText {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = ObjectBuilder::new().schema_type(Type::String);
        vec![path_parameter(
            "id",
            "The key id (16 hex digits, the part of the token after wk_).",
            schema,
        )]
    }
}

/// One event of the change log, as `GET /v1/events` lists it and the stream sends it (written
/// by hand in `broker::events::render`, whose tests pin the shape).
pub struct EventOut;

impl PartialSchema for EventOut {
    fn schema() -> RefOr<Schema> {
        let nullable_string =
            || ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]));
        let fields: [(&str, ObjectBuilder); 7] = [
            (
                "seq",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            ),
            ("at", time()),
            ("type", one_of_strings(TYPES)),
            ("tenant", ObjectBuilder::new().schema_type(Type::String)),
            ("queue", nullable_string()),
            ("job_id", nullable_string()),
            ("data", ObjectBuilder::new().schema_type(Type::Object)),
        ];
        all_required(fields)
            .description(Some(
                "A change: its seq (from 1, gap-free), when it happened, its type, the tenant and queue it concerns, the job (or null) and the type's data (docs/api.md, \"Event types\").",
            ))
            .into()
    }
}

impl ToSchema for EventOut {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Event")
    }
}

/// One record of the audit trail (written by hand in `broker::events::render`).
pub struct AuditEntryOut;

impl PartialSchema for AuditEntryOut {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let nullable_string =
            || ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]));
        let by = all_required([
            ("key_id", nullable_string()),
            ("tenant", string()),
            ("peer", nullable_string()),
        ]);
        // The audited routes' actions, and those the SQS endpoint's actions record.
        let mut actions: Vec<&str> = super::audit::AUDITED
            .iter()
            .map(|(.., action)| *action)
            .chain(crate::sqs::Action::ALL.iter().filter_map(|a| a.audited()))
            .collect();
        actions.sort_unstable();
        actions.dedup();
        let fields: [(&str, ObjectBuilder); 9] = [
            (
                "seq",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            ),
            ("at", time()),
            ("tenant", string()),
            ("by", by),
            ("action", one_of_strings(actions)),
            ("target", nullable_string()),
            ("status", ObjectBuilder::new().schema_type(Type::Integer)),
            ("outcome", one_of_strings(["ok", "refused", "failed"])),
            ("error", nullable_string()),
        ];
        all_required(fields)
            .description(Some(
                "An audited request: who, what, and how it was answered.",
            ))
            .into()
    }
}

impl ToSchema for AuditEntryOut {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("AuditEntry")
    }
}

/// `GET /healthz`'s reply: `{"status": "ok"}`.
pub struct HealthOut;

impl PartialSchema for HealthOut {
    fn schema() -> RefOr<Schema> {
        all_required([("status", one_of_strings(["ok"]))]).into()
    }
}

impl ToSchema for HealthOut {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Health")
    }
}

/// `GET /readyz`'s reply when ready: `{"status": "ready", "disk": {...}}`.
pub struct ReadyOut;

impl PartialSchema for ReadyOut {
    fn schema() -> RefOr<Schema> {
        let bytes = || {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
        };
        let disk = all_required([
            ("available_bytes", bytes()),
            ("floor_bytes", bytes()),
            ("low", ObjectBuilder::new().schema_type(Type::Boolean)),
            ("pending_checkpoint_bytes", bytes()),
        ])
        .description(Some(
            "The data volume: free bytes, the floor below which writes that add data are refused (507), whether they are refused now, and the journal not yet folded into the data file.",
        ));
        all_required([("status", one_of_strings(["ready"])), ("disk", disk)]).into()
    }
}

impl ToSchema for ReadyOut {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Ready")
    }
}

/// An OpenAPI document, as far as `GET /v1/openapi.json` promises what it holds.
pub struct OpenApiDocument;

impl PartialSchema for OpenApiDocument {
    fn schema() -> RefOr<Schema> {
        let object = || ObjectBuilder::new().schema_type(Type::Object);
        all_required([
            ("openapi", one_of_strings(["3.1.0"])),
            ("info", object()),
            ("paths", object()),
        ])
        .description(Some("An OpenAPI 3.1 document."))
        .into()
    }
}

impl ToSchema for OpenApiDocument {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("OpenApiDocument")
    }
}
