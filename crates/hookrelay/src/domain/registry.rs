//! The event-type registry: the catalogue as data. The 22 CRM types of [`catalog::CATALOG`]
//! are seeded on first start; the operator adds, updates and deprecates types at run time,
//! each with a description, a sample `data` and, optionally, a JSON Schema that every event's
//! `data` must satisfy. A deprecated type is still accepted and delivered, and flagged in the
//! catalogue, so a platform can retire a type without breaking a tenant who still sends it.
//!
//! [`EventTypes`] is one immutable snapshot of the registry, with each schema compiled once;
//! the service swaps in a new snapshot whenever the registry changes (on any node).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::catalog::{self, EventType, GROUP_WILDCARD, WILDCARD};
use super::input::{self, FieldError, Input, Invalid};
use super::time::Timestamp;

/// Most types the registry holds. Types are never deleted (events and subscriptions name
/// them), so this also bounds the names a node ever interns.
pub const MAX_TYPES: usize = 1000;
/// A type's name: a group and an action, lowercase, e.g. `invoice.paid`.
pub const NAME_PATTERN: &str = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$";
pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 500;
/// Bytes of a schema or a sample, as JSON.
pub const SCHEMA_MAX_BYTES: usize = 16 * 1024;
pub const SAMPLE_MAX_BYTES: usize = 16 * 1024;
/// Most schema violations reported for one event's `data`.
pub const DATA_ERRORS_MAX: usize = 10;

/// A type as the store keeps it: JSON as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypeRecord {
    pub name: String,
    pub description: String,
    /// A JSON Schema for `data`, as JSON text.
    pub schema: Option<String>,
    /// A JSON object, as text.
    pub sample: String,
    pub deprecated_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl EventTypeRecord {
    /// The record seeded for a built-in type.
    pub fn builtin(t: &EventType, now: Timestamp) -> Self {
        EventTypeRecord {
            name: t.name.to_owned(),
            description: t.description.to_owned(),
            schema: None,
            sample: t.sample.to_owned(),
            deprecated_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// One type of a snapshot, its schema compiled.
#[derive(Debug, Clone)]
pub struct RegisteredType {
    /// Interned: events carry their type as `&'static str`.
    pub name: &'static str,
    pub description: String,
    pub schema: Option<Value>,
    pub sample: Value,
    pub deprecated_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    validator: Option<Arc<jsonschema::Validator>>,
}

impl RegisteredType {
    /// Whether hookrelay ships this type (seeded on first start).
    pub fn builtin(&self) -> bool {
        catalog::find(self.name).is_some()
    }

    pub fn deprecated(&self) -> bool {
        self.deprecated_at.is_some()
    }

    /// Checks an event's `data` against the type's schema, if it has one. Each violation is
    /// named by where it is (`data.contact.phone`, `data.items[2]`), at most
    /// [`DATA_ERRORS_MAX`] of them; the values themselves are not echoed back.
    pub fn check_data(&self, data: &RawValue) -> Result<(), Vec<FieldError>> {
        let Some(validator) = &self.validator else {
            return Ok(());
        };
        let Ok(value) = serde_json::from_str::<Value>(data.get()) else {
            return Err(vec![FieldError::new("data", "must be a JSON object")]);
        };
        let errors: Vec<FieldError> = validator
            .iter_errors(&value)
            .take(DATA_ERRORS_MAX)
            .map(|error| {
                FieldError::new(field_of(error.instance_path()), error.masked().to_string())
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// `data.a.b[3]` for the JSON pointer `/a/b/3` inside `data`.
fn field_of(path: &jsonschema::paths::Location) -> String {
    let mut field = String::from("data");
    for segment in path {
        match segment {
            jsonschema::paths::LocationSegment::Property(key) => {
                field.push('.');
                field.push_str(&key);
            }
            jsonschema::paths::LocationSegment::Index(i) => {
                field.push_str(&format!("[{i}]"));
            }
        }
    }
    field
}

/// One snapshot of the registry: the built-in types in catalogue order, then the others in
/// the order they were created.
#[derive(Debug, Clone, Default)]
pub struct EventTypes {
    types: Vec<RegisteredType>,
    index: HashMap<&'static str, usize>,
}

impl EventTypes {
    /// The built-in catalogue alone: what a registry holds on first start.
    pub fn builtin() -> Self {
        let now = Timestamp(0);
        Self::from_records(
            catalog::CATALOG
                .iter()
                .map(|t| EventTypeRecord::builtin(t, now))
                .collect(),
        )
    }

    /// Compiles every schema once. A stored schema that no longer compiles (it was checked
    /// when written) is logged and not enforced: refusing every event of the type would lose
    /// what the platform sends.
    pub fn from_records(mut records: Vec<EventTypeRecord>) -> Self {
        let rank = |name: &str| {
            catalog::CATALOG
                .iter()
                .position(|t| t.name == name)
                .unwrap_or(usize::MAX)
        };
        records.sort_by(|a, b| {
            (rank(&a.name), a.created_at, &a.name).cmp(&(rank(&b.name), b.created_at, &b.name))
        });
        let mut snapshot = EventTypes::default();
        for record in records {
            let schema = record
                .schema
                .as_deref()
                .and_then(|text| serde_json::from_str::<Value>(text).ok());
            let validator = schema.as_ref().and_then(|schema| match compile(schema) {
                Ok(validator) => Some(Arc::new(validator)),
                Err(error) => {
                    tracing::error!(event_type = %record.name, %error,
                        "a stored event-type schema does not compile; it is not enforced");
                    None
                }
            });
            let name = intern(&record.name);
            snapshot.index.insert(name, snapshot.types.len());
            snapshot.types.push(RegisteredType {
                name,
                description: record.description,
                schema,
                sample: serde_json::from_str(&record.sample)
                    .unwrap_or_else(|_| Value::Object(Map::new())),
                deprecated_at: record.deprecated_at,
                created_at: record.created_at,
                updated_at: record.updated_at,
                validator,
            });
        }
        snapshot
    }

    pub fn find(&self, name: &str) -> Option<&RegisteredType> {
        self.index.get(name).map(|&i| &self.types[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = &RegisteredType> {
        self.types.iter()
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Whether `name` may appear in a webhook's `events`: a registered type (deprecated ones
    /// included, so existing subscriptions stay valid), a group's `group.*`, or `*`.
    pub fn is_subscribable(&self, name: &str) -> bool {
        name == WILDCARD
            || self.index.contains_key(name)
            || name.strip_suffix(GROUP_WILDCARD).is_some_and(|prefix| {
                !prefix.is_empty()
                    && self
                        .types
                        .iter()
                        .any(|t| catalog::group(t.name) == Some(prefix))
            })
    }

    /// Every value a webhook's `events` may list: each type, each group's `group.*`, `*`.
    pub fn subscribable(&self) -> Vec<String> {
        let mut names: Vec<String> = self.types.iter().map(|t| t.name.to_owned()).collect();
        let mut groups = HashSet::new();
        for t in &self.types {
            if let Some(group) = catalog::group(t.name)
                && groups.insert(group)
            {
                names.push(format!("{group}{GROUP_WILDCARD}"));
            }
        }
        names.push(WILDCARD.to_owned());
        names
    }
}

/// Events carry their type as `&'static str` from parsing to the store. Registered names are
/// interned once per process; since types are never deleted and at most [`MAX_TYPES`] exist,
/// what this keeps is bounded by the registry itself.
fn intern(name: &str) -> &'static str {
    if let Some(t) = catalog::find(name) {
        return t.name;
    }
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(&known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// Builds a validator for a schema: JSON Schema 2020-12 unless it says otherwise, checked
/// against its meta-schema, no reference fetched from anywhere (no network, no files), and
/// `pattern` run by the linear-time `regex` engine, so no schema can make validation slow.
fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(schema)
        .map_err(|error| error.to_string())
}

/// Why a field of an event type is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEventType {
    #[error(transparent)]
    Input(#[from] Invalid),
    #[error(
        "must be a lowercase group and action, e.g. \"invoice.paid\" (letters, digits, _), \
         at most {NAME_MAX} characters"
    )]
    Name,
    #[error("must be a JSON object")]
    NotAnObject,
    #[error("must be at most {max} bytes as JSON")]
    TooLarge { max: usize },
    #[error("is not a usable JSON Schema: {0}")]
    Schema(String),
    #[error("does not satisfy the type's schema: {0}")]
    SampleRejected(String),
}

const CREATE_FIELDS: &[&str] = &["name", "description", "schema", "sample"];
const PATCH_FIELDS: &[&str] = &["description", "schema", "sample", "deprecated"];

/// A validated `POST /event-types` body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEventType {
    pub name: String,
    pub description: String,
    pub schema: Option<Value>,
    pub sample: Value,
}

impl NewEventType {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut input = Input::new(body, CREATE_FIELDS);
        let name = input.required("name", parse_name);
        let description = input.required("description", parse_description);
        let schema = input.optional("schema", parse_schema).flatten();
        let sample = input.optional("sample", parse_sample);
        let sample = sample.unwrap_or_else(|| Value::Object(Map::new()));
        if let Some(schema) = &schema
            && let Err(error) = check_sample(schema, &sample)
        {
            input.push(FieldError::new("sample", error));
        }
        input.finish(|| NewEventType {
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
            schema,
            sample,
        })
    }

    pub fn record(&self, now: Timestamp) -> EventTypeRecord {
        EventTypeRecord {
            name: self.name.clone(),
            description: self.description.clone(),
            schema: self.schema.as_ref().map(Value::to_string),
            sample: self.sample.to_string(),
            deprecated_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A validated `PATCH /event-types/{name}` body: absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventTypePatch {
    pub description: Option<String>,
    /// `Some(None)` removes the schema.
    pub schema: Option<Option<Value>>,
    pub sample: Option<Value>,
    pub deprecated: Option<bool>,
}

impl EventTypePatch {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut input = Input::new(body, PATCH_FIELDS);
        let patch = EventTypePatch {
            description: input.optional("description", parse_description),
            schema: input.optional("schema", parse_schema),
            sample: input.optional("sample", parse_sample),
            deprecated: input.optional("deprecated", input::boolean),
        };
        input.finish(|| patch)
    }

    /// The record after this patch. The sample must satisfy the schema that results, whichever
    /// of the two changed; the error names the field that was sent.
    pub fn apply(
        &self,
        current: &EventTypeRecord,
        now: Timestamp,
    ) -> Result<EventTypeRecord, Vec<FieldError>> {
        let schema = match &self.schema {
            Some(schema) => schema.clone(),
            None => current
                .schema
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
        };
        let sample = match &self.sample {
            Some(sample) => sample.clone(),
            None => serde_json::from_str(&current.sample).unwrap_or(Value::Object(Map::new())),
        };
        if let Some(schema) = &schema
            && let Err(error) = check_sample(schema, &sample)
        {
            let field = if self.sample.is_some() {
                "sample"
            } else {
                "schema"
            };
            return Err(vec![FieldError::new(field, error)]);
        }
        let deprecated_at = match self.deprecated {
            Some(true) => current.deprecated_at.or(Some(now)),
            Some(false) => None,
            None => current.deprecated_at,
        };
        Ok(EventTypeRecord {
            name: current.name.clone(),
            description: self
                .description
                .clone()
                .unwrap_or_else(|| current.description.clone()),
            schema: schema.as_ref().map(Value::to_string),
            sample: sample.to_string(),
            deprecated_at,
            created_at: current.created_at,
            updated_at: now,
        })
    }
}

/// Whether `name` is a well-formed type name (`group.action`).
pub fn is_valid_name(name: &str) -> bool {
    let Some((group, action)) = name.split_once('.') else {
        return false;
    };
    let part = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    name.len() <= NAME_MAX && part(group) && part(action)
}

fn parse_name(v: &Value) -> Result<String, InvalidEventType> {
    let Some(name) = v.as_str() else {
        return Err(Invalid::NotAString.into());
    };
    if is_valid_name(name) {
        Ok(name.to_owned())
    } else {
        Err(InvalidEventType::Name)
    }
}

/// Required text a reader can see: the rule of names, longer.
fn parse_description(v: &Value) -> Result<String, InvalidEventType> {
    Ok(input::name(v, DESCRIPTION_MAX)?)
}

fn parse_schema(v: &Value) -> Result<Option<Value>, InvalidEventType> {
    match v {
        Value::Null => Ok(None),
        Value::Object(_) => {
            let size = v.to_string().len();
            if size > SCHEMA_MAX_BYTES {
                return Err(InvalidEventType::TooLarge {
                    max: SCHEMA_MAX_BYTES,
                });
            }
            compile(v).map_err(InvalidEventType::Schema)?;
            Ok(Some(v.clone()))
        }
        _ => Err(InvalidEventType::NotAnObject),
    }
}

fn parse_sample(v: &Value) -> Result<Value, InvalidEventType> {
    match v {
        Value::Object(_) if v.to_string().len() <= SAMPLE_MAX_BYTES => Ok(v.clone()),
        Value::Object(_) => Err(InvalidEventType::TooLarge {
            max: SAMPLE_MAX_BYTES,
        }),
        _ => Err(InvalidEventType::NotAnObject),
    }
}

fn check_sample(schema: &Value, sample: &Value) -> Result<(), InvalidEventType> {
    let validator = compile(schema).map_err(InvalidEventType::Schema)?;
    match validator.iter_errors(sample).next() {
        None => Ok(()),
        Some(error) => {
            let at = field_of(error.instance_path());
            Err(InvalidEventType::SampleRejected(format!(
                "{} (at {at})",
                error.masked()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    fn raw(v: Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).expect("JSON")
    }

    fn invoice_types() -> EventTypes {
        let new = NewEventType::parse(&body(json!({
            "name": "invoice.paid",
            "description": "An invoice was paid.",
            "schema": {
                "type": "object",
                "required": ["amount", "lines"],
                "properties": {
                    "amount": {"type": "integer", "minimum": 0},
                    "lines": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
                    "customer": {"type": "object", "properties": {"email": {"type": "string", "pattern": "^[^@]+@[^@]+$"}}}
                }
            },
            "sample": {"amount": 100, "lines": [{"sku": "A-1"}]}
        })))
        .expect("valid");
        let mut records: Vec<EventTypeRecord> = catalog::CATALOG
            .iter()
            .map(|t| EventTypeRecord::builtin(t, Timestamp(0)))
            .collect();
        records.push(new.record(Timestamp(5)));
        EventTypes::from_records(records)
    }

    #[test]
    fn the_builtin_registry_is_the_catalogue_in_order() {
        let types = EventTypes::builtin();
        let names: Vec<&str> = types.iter().map(|t| t.name).collect();
        let catalogue: Vec<&str> = catalog::CATALOG.iter().map(|t| t.name).collect();
        assert_eq!(names, catalogue);
        assert!(types.iter().all(|t| t.builtin() && !t.deprecated()));
        assert!(types.iter().all(|t| t.sample.is_object()));
    }

    #[test]
    fn a_registered_type_and_its_group_are_subscribable() {
        let types = invoice_types();
        assert!(types.is_subscribable("invoice.paid"));
        assert!(types.is_subscribable("invoice.*"));
        assert!(types.is_subscribable("message.*") && types.is_subscribable("*"));
        assert!(!types.is_subscribable("invoice.sent") && !types.is_subscribable("refund.*"));
        assert!(!types.is_subscribable(".*"));
        let all = types.subscribable();
        assert_eq!(all.last().map(String::as_str), Some("*"));
        assert!(all.iter().any(|n| n == "invoice.*") && all.iter().any(|n| n == "invoice.paid"));
        assert_eq!(all.iter().filter(|n| *n == "message.*").count(), 1);
        assert!(!types.find("invoice.paid").expect("registered").builtin());
    }

    #[test]
    fn data_is_checked_against_the_schema_and_each_violation_named_by_its_path() {
        let types = invoice_types();
        let t = types.find("invoice.paid").expect("registered");
        assert_eq!(
            t.check_data(&raw(json!({"amount": 5, "lines": []}))),
            Ok(())
        );
        let errors = t
            .check_data(&raw(json!({
                "amount": "five",
                "lines": [{"sku": "A"}, {}],
                "customer": {"email": "nope"}
            })))
            .expect_err("three violations");
        let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["data.amount", "data.customer.email", "data.lines[1]"]
        );
        // The value sent is not echoed back.
        assert!(
            errors.iter().all(|e| !e.message.contains("five")),
            "{errors:?}"
        );
        let missing = t.check_data(&raw(json!({}))).expect_err("required");
        assert!(missing.iter().all(|e| e.field == "data"), "{missing:?}");
        // A type without a schema takes any object.
        let plain = types.find("message.new").expect("builtin");
        assert_eq!(plain.check_data(&raw(json!({"anything": [1, 2]}))), Ok(()));
    }

    #[test]
    fn violations_reported_are_bounded() {
        let types = invoice_types();
        let t = types.find("invoice.paid").expect("registered");
        let lines: Vec<Value> = (0..50).map(|_| json!({})).collect();
        let errors = t
            .check_data(&raw(json!({"amount": 1, "lines": lines})))
            .expect_err("fifty violations");
        assert_eq!(errors.len(), DATA_ERRORS_MAX);
    }

    #[test]
    fn names_are_a_lowercase_group_and_action() {
        for good in ["invoice.paid", "a.b", "crm_v2.deal_won2"] {
            assert!(is_valid_name(good), "{good}");
        }
        let long = format!("a.{}", "b".repeat(NAME_MAX));
        for bad in [
            "invoice",
            "Invoice.paid",
            "invoice.",
            ".paid",
            "invoice.paid.twice",
            "in voice.paid",
            "invoice.*",
            "*",
            "2fa.enabled",
            "invoice._x",
            "",
            long.as_str(),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        let pattern = regex::Regex::new(NAME_PATTERN).expect("the pattern compiles");
        for name in [
            "invoice.paid",
            "a.b",
            "invoice.paid.twice",
            "invoice._x",
            "2fa.x",
        ] {
            assert_eq!(pattern.is_match(name), is_valid_name(name), "{name}");
        }
    }

    #[test]
    fn a_create_body_is_checked_field_by_field() {
        let errors = NewEventType::parse(&body(json!({
            "name": "Invoice",
            "description": "",
            "schema": {"type": 5},
            "sample": [],
            "colour": "red"
        })))
        .expect_err("every field is wrong");
        let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["colour", "description", "name", "sample", "schema"]
        );
        let missing = NewEventType::parse(&body(json!({}))).expect_err("required");
        let fields: Vec<&str> = missing.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "description"]);
    }

    #[test]
    fn a_schema_fetches_nothing_and_must_accept_its_own_sample() {
        for schema in [
            json!({"$ref": "https://example.com/schema.json"}),
            json!({"$ref": "file:///etc/passwd"}),
        ] {
            let errors = NewEventType::parse(&body(json!({
                "name": "a.b", "description": "x", "schema": schema
            })))
            .expect_err("a remote reference is refused");
            assert_eq!(errors[0].field, "schema", "{errors:?}");
        }
        let errors = NewEventType::parse(&body(json!({
            "name": "a.b", "description": "x",
            "schema": {"type": "object", "required": ["id"]},
            "sample": {"other": 1}
        })))
        .expect_err("the sample breaks the schema");
        assert_eq!(errors[0].field, "sample");
        let big = json!({ "description": "x".repeat(SCHEMA_MAX_BYTES) });
        let errors = NewEventType::parse(&body(
            json!({"name": "a.b", "description": "x", "schema": big}),
        ))
        .expect_err("too large");
        assert_eq!(errors[0].message, "must be at most 16384 bytes as JSON");
        // Local references are fine.
        let local = json!({
            "$defs": {"money": {"type": "integer"}},
            "type": "object",
            "properties": {"amount": {"$ref": "#/$defs/money"}}
        });
        let ok = NewEventType::parse(&body(json!({
            "name": "a.b", "description": "x", "schema": local, "sample": {"amount": 3}
        })));
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn a_patch_keeps_the_sample_and_the_schema_consistent() {
        let now = Timestamp(10);
        let current = NewEventType::parse(&body(json!({
            "name": "a.b", "description": "x", "sample": {"id": "1"}
        })))
        .expect("valid")
        .record(Timestamp(1));
        let strict = EventTypePatch::parse(&body(
            json!({"schema": {"type": "object", "required": ["id", "amount"]}}),
        ))
        .expect("valid");
        let errors = strict
            .apply(&current, now)
            .expect_err("the old sample lacks amount");
        assert_eq!(errors[0].field, "schema");
        let both = EventTypePatch::parse(&body(json!({
            "schema": {"type": "object", "required": ["id", "amount"]},
            "sample": {"id": "1", "amount": 2},
            "deprecated": true
        })))
        .expect("valid");
        let updated = both.apply(&current, now).expect("consistent");
        assert_eq!(updated.deprecated_at, Some(now));
        assert_eq!(updated.created_at, current.created_at);
        assert_eq!(updated.updated_at, now);
        let again = EventTypePatch::parse(&body(json!({"deprecated": true, "schema": null})))
            .expect("valid")
            .apply(&updated, Timestamp(99))
            .expect("valid");
        assert_eq!(
            again.deprecated_at,
            Some(now),
            "deprecated once, dated once"
        );
        assert_eq!(again.schema, None);
        let errors = EventTypePatch::parse(&body(json!({"name": "c.d", "deprecated": "yes"})))
            .expect_err("name is fixed; deprecated is a boolean");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "deprecated"]);
    }

    #[test]
    fn names_are_interned_once() {
        let a = intern("zz_interned.once");
        let b = intern(&String::from("zz_interned.once"));
        assert!(std::ptr::eq(a, b));
        assert!(std::ptr::eq(
            intern("message.new"),
            catalog::CATALOG[0].name
        ));
    }
}
