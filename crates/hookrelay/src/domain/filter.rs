//! Payload filters: a webhook's condition on the envelope of an event (`type`, `tenant_id`,
//! `data.…`), checked at fan-out. An event the filter refuses creates no delivery.
//!
//! The language is a small, bounded subset of MongoDB's query documents, the shape most
//! users already know:
//!
//! ```json
//! {"data.channel": {"$eq": "whatsapp"}, "data.amount": {"$gte": 100}}
//! ```
//!
//! - The keys of a filter are paths (dot-separated names; a number indexes an array) or the
//!   logical operators `$and` and `$or` (lists of filters) and `$not` (a filter). Several keys
//!   must all hold.
//! - A path's condition is an object of operators (`$eq $neq $in $nin $gt $gte $lt $lte
//!   $exists $not`), all of which must hold, or a plain value, which means `$eq`.
//! - A missing path equals nothing: `$eq`, `$in` and the comparisons are false for it, `$neq`
//!   and `$nin` true. Comparisons are between numbers or between strings (in byte order, so
//!   RFC 3339 times in UTC compare as times); a value of another type does not match.
//!   Numbers are equal when their values are (`1` equals `1.0`).
//!
//! Parsing checks everything once (operators, paths, types, size and depth) and compiles the
//! filter; matching is pure and allocation-free.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The longest filter, as compact JSON.
pub const MAX_BYTES: usize = 4096;
/// How deep `$and`, `$or` and `$not` may nest.
pub const MAX_DEPTH: usize = 8;
/// Conditions in one filter, each path and each operator counted.
pub const MAX_CONDITIONS: usize = 64;
/// Values in one `$in` or `$nin`, and filters in one `$and` or `$or`.
pub const MAX_LIST: usize = 100;
/// Names in one path.
pub const MAX_PATH_SEGMENTS: usize = 16;
/// The longest path, in characters.
pub const MAX_PATH_CHARS: usize = 256;
/// A path, as the OpenAPI document states it (ECMA-262; the length is stated apart).
pub const PATH_PATTERN: &str = r"^[^.$][^.]*(\.[^.$][^.]*){0,15}$";

/// The operators a path's condition may use.
pub const FIELD_OPERATORS: [&str; 10] = [
    "$eq", "$neq", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$not",
];
/// The operators that combine filters.
pub const LOGICAL_OPERATORS: [&str; 3] = ["$and", "$or", "$not"];

/// Why a filter is refused; the text is what the client reads, under the field
/// [`FilterError::field`] names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFilter {
    #[error(
        "must be an object of conditions, such as {{\"data.channel\": {{\"$eq\": \"whatsapp\"}}}}, or null for none"
    )]
    NotAnObject,
    #[error("must have at least one condition (null removes the filter)")]
    Empty,
    #[error("must be at most {MAX_BYTES} bytes as JSON")]
    TooLarge,
    #[error("nests $and, $or and $not more than {MAX_DEPTH} deep")]
    TooDeep,
    #[error("has more than {MAX_CONDITIONS} conditions")]
    TooManyConditions,
    #[error("is not an operator here: a filter takes paths and $and, $or, $not")]
    NotALogicalOperator,
    #[error(
        "is not an operator: a condition takes $eq, $neq, $in, $nin, $gt, $gte, $lt, $lte, $exists, $not"
    )]
    UnknownOperator,
    #[error("mixes operators with plain keys: write {{\"$eq\": {{…}}}} to match an object")]
    MixedOperators,
    #[error("must have at least one operator")]
    NoOperator,
    #[error("must be a list of filters")]
    NotAFilterList,
    #[error("must be a list of values")]
    NotAValueList,
    #[error("must not be empty")]
    EmptyList,
    #[error("must have at most {MAX_LIST} entries")]
    ListTooLong,
    #[error("must be a number or a string")]
    NotComparable,
    #[error("must be true or false")]
    NotABoolean,
    #[error(
        "is not a path: names separated by dots, none empty or starting with $, at most {MAX_PATH_SEGMENTS} names and {MAX_PATH_CHARS} characters"
    )]
    BadPath,
}

/// A refused filter: where (`filter.$or[1]["data.amount"].$gte`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Where in the filter, after `filter`: `""` for the whole, else `.$or[1]["data.x"]…`.
    pub at: String,
    pub kind: InvalidFilter,
}

impl FilterError {
    /// The field to name in a problem answer.
    pub fn field(&self) -> String {
        format!("filter{}", self.at)
    }
}

/// A validated, compiled filter; it keeps the JSON it came from, which is what is stored and
/// shown. Shared, so a webhook carrying one stays small and cheap to clone.
#[derive(Debug, Clone)]
pub struct Filter(std::sync::Arc<Compiled>);

#[derive(Debug)]
struct Compiled {
    source: Value,
    root: Node,
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.0.source == other.0.source
    }
}

impl Eq for Filter {}

#[derive(Debug, Clone)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Field { path: Vec<String>, test: Test },
}

#[derive(Debug, Clone)]
enum Test {
    Eq(Value),
    In(Vec<Value>),
    Compare(Ordering, bool, Bound),
    Exists(bool),
    Not(Box<Test>),
    All(Vec<Test>),
}

#[derive(Debug, Clone)]
enum Bound {
    Number(f64),
    Text(String),
}

impl Filter {
    /// Validates and compiles `value`, the `filter` field of a webhook body.
    pub fn parse(value: &Value) -> Result<Filter, FilterError> {
        let whole = |kind| FilterError {
            at: String::new(),
            kind,
        };
        if !value.is_object() {
            return Err(whole(InvalidFilter::NotAnObject));
        }
        if !matches!(serde_json::to_string(value), Ok(s) if s.len() <= MAX_BYTES) {
            return Err(whole(InvalidFilter::TooLarge));
        }
        let mut parser = Parser {
            at: String::new(),
            conditions: 0,
        };
        let root = parser.filter(value, 0)?;
        Ok(Filter(std::sync::Arc::new(Compiled {
            source: value.clone(),
            root,
        })))
    }

    /// The filter as the client wrote it.
    pub fn source(&self) -> &Value {
        &self.0.source
    }

    /// Whether an event with this envelope passes.
    pub fn matches(&self, envelope: &Value) -> bool {
        self.0.root.matches(envelope)
    }
}

struct Parser {
    /// Where the parser is, for errors.
    at: String,
    conditions: usize,
}

impl Parser {
    fn fail<T>(&self, kind: InvalidFilter) -> Result<T, FilterError> {
        Err(FilterError {
            at: self.at.clone(),
            kind,
        })
    }

    /// Runs `inner` with `step` appended to the location.
    fn within<T>(
        &mut self,
        step: impl std::fmt::Display,
        inner: impl FnOnce(&mut Self) -> Result<T, FilterError>,
    ) -> Result<T, FilterError> {
        let len = self.at.len();
        let _ = write!(self.at, "{step}");
        let result = inner(self);
        self.at.truncate(len);
        result
    }

    fn count(&mut self) -> Result<(), FilterError> {
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return self.fail(InvalidFilter::TooManyConditions);
        }
        Ok(())
    }

    /// A filter object: paths and logical operators, all of which must hold.
    fn filter(&mut self, value: &Value, depth: usize) -> Result<Node, FilterError> {
        let Value::Object(map) = value else {
            return self.fail(InvalidFilter::NotAnObject);
        };
        if map.is_empty() {
            return self.fail(InvalidFilter::Empty);
        }
        let mut nodes = Vec::with_capacity(map.len());
        for (key, inner) in map {
            let node = if key.starts_with('$') {
                self.within(format_args!(".{key}"), |p| p.logical(key, inner, depth + 1))?
            } else {
                self.within(format_args!("[{}]", Value::String(key.clone())), |p| {
                    let path = p.path(key)?;
                    let test = p.condition(inner, depth)?;
                    Ok(Node::Field { path, test })
                })?
            };
            nodes.push(node);
        }
        Ok(one_or_all(nodes, Node::All))
    }

    fn logical(&mut self, op: &str, value: &Value, depth: usize) -> Result<Node, FilterError> {
        if depth > MAX_DEPTH {
            return self.fail(InvalidFilter::TooDeep);
        }
        match op {
            "$not" => Ok(Node::Not(Box::new(self.filter(value, depth)?))),
            "$and" | "$or" => {
                let Value::Array(items) = value else {
                    return self.fail(InvalidFilter::NotAFilterList);
                };
                self.list_bounds(items)?;
                let mut nodes = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    nodes.push(self.within(format_args!("[{i}]"), |p| p.filter(item, depth))?);
                }
                Ok(if op == "$and" {
                    Node::All(nodes)
                } else {
                    Node::Any(nodes)
                })
            }
            _ => self.fail(InvalidFilter::NotALogicalOperator),
        }
    }

    fn list_bounds(&self, items: &[Value]) -> Result<(), FilterError> {
        if items.is_empty() {
            return self.fail(InvalidFilter::EmptyList);
        }
        if items.len() > MAX_LIST {
            return self.fail(InvalidFilter::ListTooLong);
        }
        Ok(())
    }

    fn path(&mut self, key: &str) -> Result<Vec<String>, FilterError> {
        self.count()?;
        let segments: Vec<String> = key.split('.').map(str::to_owned).collect();
        let valid = key.chars().count() <= MAX_PATH_CHARS
            && segments.len() <= MAX_PATH_SEGMENTS
            && segments
                .iter()
                .all(|s| !s.is_empty() && !s.starts_with('$'));
        if !valid {
            return self.fail(InvalidFilter::BadPath);
        }
        Ok(segments)
    }

    /// A path's condition: an object of operators, or a value to equal.
    fn condition(&mut self, value: &Value, depth: usize) -> Result<Test, FilterError> {
        let Value::Object(map) = value else {
            return Ok(Test::Eq(value.clone()));
        };
        let operators = map.keys().filter(|k| k.starts_with('$')).count();
        if operators == 0 {
            // A plain object is a value to equal, as any other plain value.
            return Ok(Test::Eq(value.clone()));
        }
        if operators < map.len() {
            return self.fail(InvalidFilter::MixedOperators);
        }
        self.operators(map, depth)
    }

    fn operators(&mut self, map: &Map<String, Value>, depth: usize) -> Result<Test, FilterError> {
        if map.is_empty() {
            return self.fail(InvalidFilter::NoOperator);
        }
        let mut tests = Vec::with_capacity(map.len());
        for (op, operand) in map {
            let test = self.within(format_args!(".{op}"), |p| {
                p.count()?;
                p.operator(op, operand, depth)
            })?;
            tests.push(test);
        }
        Ok(if tests.len() == 1 {
            tests.remove(0)
        } else {
            Test::All(tests)
        })
    }

    fn operator(&mut self, op: &str, operand: &Value, depth: usize) -> Result<Test, FilterError> {
        let compare = |p: &Self, ordering, or_equal| match operand {
            Value::Number(n) => match n.as_f64() {
                Some(n) => Ok(Test::Compare(ordering, or_equal, Bound::Number(n))),
                None => p.fail(InvalidFilter::NotComparable),
            },
            Value::String(s) => Ok(Test::Compare(ordering, or_equal, Bound::Text(s.clone()))),
            _ => p.fail(InvalidFilter::NotComparable),
        };
        match op {
            "$eq" => Ok(Test::Eq(operand.clone())),
            "$neq" => Ok(Test::Not(Box::new(Test::Eq(operand.clone())))),
            "$in" | "$nin" => {
                let Value::Array(items) = operand else {
                    return self.fail(InvalidFilter::NotAValueList);
                };
                self.list_bounds(items)?;
                let test = Test::In(items.clone());
                Ok(if op == "$in" {
                    test
                } else {
                    Test::Not(Box::new(test))
                })
            }
            "$gt" => compare(self, Ordering::Greater, false),
            "$gte" => compare(self, Ordering::Greater, true),
            "$lt" => compare(self, Ordering::Less, false),
            "$lte" => compare(self, Ordering::Less, true),
            "$exists" => match operand {
                Value::Bool(b) => Ok(Test::Exists(*b)),
                _ => self.fail(InvalidFilter::NotABoolean),
            },
            "$not" => {
                if depth + 1 > MAX_DEPTH {
                    return self.fail(InvalidFilter::TooDeep);
                }
                let Value::Object(map) = operand else {
                    // `{"$not": "x"}` reads as "not equal to x".
                    return Ok(Test::Not(Box::new(Test::Eq(operand.clone()))));
                };
                if map.keys().any(|k| !k.starts_with('$')) {
                    return self.fail(InvalidFilter::MixedOperators);
                }
                Ok(Test::Not(Box::new(self.operators(map, depth + 1)?)))
            }
            _ => self.fail(InvalidFilter::UnknownOperator),
        }
    }
}

fn one_or_all(mut nodes: Vec<Node>, all: fn(Vec<Node>) -> Node) -> Node {
    if nodes.len() == 1 {
        nodes.remove(0)
    } else {
        all(nodes)
    }
}

impl Node {
    fn matches(&self, envelope: &Value) -> bool {
        match self {
            Node::All(nodes) => nodes.iter().all(|n| n.matches(envelope)),
            Node::Any(nodes) => nodes.iter().any(|n| n.matches(envelope)),
            Node::Not(node) => !node.matches(envelope),
            Node::Field { path, test } => test.holds(resolve(envelope, path)),
        }
    }
}

impl Test {
    /// Whether the test holds for the value at its path (`None`: the path is missing).
    fn holds(&self, value: Option<&Value>) -> bool {
        match self {
            Test::Eq(expected) => value.is_some_and(|v| json_eq(v, expected)),
            Test::In(options) => value.is_some_and(|v| options.iter().any(|o| json_eq(v, o))),
            Test::Compare(ordering, or_equal, bound) => {
                let found = match (value, bound) {
                    (Some(Value::Number(n)), Bound::Number(b)) => {
                        n.as_f64().and_then(|n| n.partial_cmp(b))
                    }
                    (Some(Value::String(s)), Bound::Text(b)) => Some(s.as_str().cmp(b.as_str())),
                    _ => None,
                };
                found.is_some_and(|o| o == *ordering || (*or_equal && o == Ordering::Equal))
            }
            Test::Exists(wanted) => value.is_some() == *wanted,
            Test::Not(test) => !test.holds(value),
            Test::All(tests) => tests.iter().all(|t| t.holds(value)),
        }
    }
}

/// The value at `path` in `root`: names step into objects, numbers into arrays.
fn resolve<'v>(root: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(root, |value, segment| match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// JSON equality where numbers are equal by value (`1` and `1.0`), at any depth.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope() -> Value {
        json!({
            "id": "evt_01",
            "type": "message.received",
            "tenant_id": "ten_01",
            "created_at": "2026-12-04T10:00:00.000Z",
            "data": {
                "channel": "whatsapp",
                "amount": 150,
                "ratio": 0.5,
                "vip": true,
                "note": null,
                "tags": ["new", "lead"],
                "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}],
                "contact": {"name": "Ana", "country": "BR"}
            }
        })
    }

    fn passes(filter: Value) -> bool {
        Filter::parse(&filter)
            .unwrap_or_else(|e| panic!("{filter} should be valid: {e:?}"))
            .matches(&envelope())
    }

    fn refused(filter: Value) -> (String, InvalidFilter) {
        match Filter::parse(&filter) {
            Ok(_) => panic!("{filter} should be refused"),
            Err(e) => (e.field(), e.kind),
        }
    }

    #[test]
    fn eq() {
        assert!(passes(json!({"data.channel": {"$eq": "whatsapp"}})));
        assert!(!passes(json!({"data.channel": {"$eq": "email"}})));
        assert!(passes(json!({"type": {"$eq": "message.received"}})));
        assert!(passes(json!({"data.vip": {"$eq": true}})));
        assert!(passes(json!({"data.note": {"$eq": null}})));
        // Numbers by value, objects and arrays whole.
        assert!(passes(json!({"data.amount": {"$eq": 150.0}})));
        assert!(passes(
            json!({"data.contact": {"$eq": {"country": "BR", "name": "Ana"}}})
        ));
        assert!(passes(json!({"data.tags": {"$eq": ["new", "lead"]}})));
        assert!(!passes(json!({"data.tags": {"$eq": ["lead", "new"]}})));
        assert!(!passes(json!({"data.tags": {"$eq": "new"}})));
    }

    #[test]
    fn a_plain_value_means_eq() {
        assert!(passes(json!({"data.channel": "whatsapp"})));
        assert!(!passes(json!({"data.channel": "sms"})));
        assert!(passes(
            json!({"data.contact": {"name": "Ana", "country": "BR"}})
        ));
        assert!(!passes(json!({"data.contact": {"name": "Ana"}})));
    }

    #[test]
    fn neq() {
        assert!(passes(json!({"data.channel": {"$neq": "email"}})));
        assert!(!passes(json!({"data.channel": {"$neq": "whatsapp"}})));
        assert!(
            passes(json!({"data.missing": {"$neq": "x"}})),
            "missing is unequal"
        );
        assert!(!passes(json!({"data.amount": {"$neq": 150}})));
    }

    #[test]
    fn in_and_nin() {
        assert!(passes(
            json!({"data.channel": {"$in": ["sms", "whatsapp"]}})
        ));
        assert!(!passes(json!({"data.channel": {"$in": ["sms", "email"]}})));
        assert!(passes(json!({"data.amount": {"$in": [1, 150.0]}})));
        assert!(!passes(json!({"data.missing": {"$in": [null]}})));
        assert!(passes(json!({"data.channel": {"$nin": ["sms", "email"]}})));
        assert!(!passes(json!({"data.channel": {"$nin": ["whatsapp"]}})));
        assert!(passes(json!({"data.missing": {"$nin": ["x"]}})));
    }

    #[test]
    fn gt() {
        assert!(passes(json!({"data.amount": {"$gt": 100}})));
        assert!(!passes(json!({"data.amount": {"$gt": 150}})));
        assert!(passes(json!({"data.ratio": {"$gt": 0.25}})));
    }

    #[test]
    fn gte() {
        assert!(passes(json!({"data.amount": {"$gte": 150}})));
        assert!(!passes(json!({"data.amount": {"$gte": 150.5}})));
    }

    #[test]
    fn lt() {
        assert!(passes(json!({"data.amount": {"$lt": 151}})));
        assert!(!passes(json!({"data.amount": {"$lt": 150}})));
        assert!(passes(json!({"data.amount": {"$lt": 1e300}})));
    }

    #[test]
    fn lte() {
        assert!(passes(json!({"data.amount": {"$lte": 150}})));
        assert!(!passes(json!({"data.amount": {"$lte": -150}})));
    }

    #[test]
    fn strings_compare_in_byte_order_so_utc_times_compare_as_times() {
        assert!(passes(
            json!({"created_at": {"$gte": "2026-12-04T00:00:00Z"}})
        ));
        assert!(!passes(
            json!({"created_at": {"$lt": "2026-12-04T00:00:00Z"}})
        ));
        assert!(passes(
            json!({"data.channel": {"$gt": "sms", "$lt": "xmpp"}})
        ));
    }

    #[test]
    fn exists() {
        assert!(passes(json!({"data.channel": {"$exists": true}})));
        assert!(
            passes(json!({"data.note": {"$exists": true}})),
            "null is present"
        );
        assert!(passes(json!({"data.missing": {"$exists": false}})));
        assert!(!passes(json!({"data.missing": {"$exists": true}})));
        assert!(!passes(json!({"data.channel": {"$exists": false}})));
    }

    #[test]
    fn not_on_a_path() {
        assert!(passes(json!({"data.amount": {"$not": {"$gt": 500}}})));
        assert!(!passes(json!({"data.amount": {"$not": {"$gt": 100}}})));
        assert!(passes(json!({"data.missing": {"$not": {"$gt": 100}}})));
        assert!(passes(json!({"data.channel": {"$not": "sms"}})));
        assert!(!passes(json!({"data.channel": {"$not": "whatsapp"}})));
    }

    #[test]
    fn and_or_not() {
        let wa = json!({"data.channel": "whatsapp"});
        let sms = json!({"data.channel": "sms"});
        assert!(passes(json!({"$and": [wa, {"data.amount": {"$gt": 1}}]})));
        assert!(!passes(json!({"$and": [wa, sms]})));
        assert!(passes(json!({"$or": [sms, wa]})));
        assert!(!passes(json!({"$or": [sms, {"data.amount": {"$lt": 1}}]})));
        assert!(passes(json!({"$not": sms})));
        assert!(!passes(json!({"$not": wa})));
    }

    #[test]
    fn nesting() {
        let filter = json!({
            "type": {"$in": ["message.received", "message.sent"]},
            "$or": [
                {"data.contact.country": "PT"},
                {"$and": [
                    {"data.contact.country": "BR"},
                    {"$not": {"data.tags.0": {"$eq": "spam"}}},
                    {"data.items.1.qty": {"$gte": 1, "$lte": 5}}
                ]}
            ]
        });
        assert!(passes(filter));
        assert!(!passes(json!({"$or": [
            {"data.contact.country": "PT"},
            {"$and": [{"data.contact.country": "BR"}, {"data.items.1.sku": "A1"}]}
        ]})));
    }

    #[test]
    fn several_keys_and_several_operators_must_all_hold() {
        assert!(passes(
            json!({"data.channel": "whatsapp", "data.amount": {"$gte": 100, "$lt": 200}})
        ));
        assert!(!passes(
            json!({"data.channel": "whatsapp", "data.amount": {"$gte": 100, "$lt": 120}})
        ));
        assert!(!passes(
            json!({"data.channel": "sms", "data.amount": {"$gte": 100}})
        ));
    }

    #[test]
    fn missing_paths_match_nothing_but_their_negations() {
        for path in [
            "data.nope",
            "data.channel.deeper",
            "data.tags.5",
            "data.tags.first",
            "data.items.0.sku.x",
            "nothing.at.all",
        ] {
            for op in ["$eq", "$gt", "$gte", "$lt", "$lte"] {
                assert!(!passes(json!({path: {op: 1}})), "{path} {op}");
            }
            assert!(!passes(json!({path: {"$in": [1]}})), "{path} $in");
            assert!(passes(json!({path: {"$neq": 1}})), "{path} $neq");
            assert!(passes(json!({path: {"$nin": [1]}})), "{path} $nin");
            assert!(passes(json!({path: {"$exists": false}})), "{path} $exists");
        }
        assert!(
            passes(json!({"data.items.0.sku": "A1"})),
            "a number indexes an array"
        );
    }

    #[test]
    fn type_mismatches_do_not_match() {
        assert!(
            !passes(json!({"data.channel": {"$gt": 1}})),
            "string against number"
        );
        assert!(
            !passes(json!({"data.amount": {"$gt": "100"}})),
            "number against string"
        );
        assert!(!passes(json!({"data.vip": {"$gte": 0}})), "boolean");
        assert!(!passes(json!({"data.note": {"$lt": 1}})), "null");
        assert!(!passes(json!({"data.tags": {"$gt": "a"}})), "array");
        assert!(
            !passes(json!({"data.amount": {"$eq": "150"}})),
            "no coercion"
        );
        assert!(!passes(json!({"data.vip": {"$eq": 1}})));
        // Their negations hold.
        assert!(passes(json!({"data.channel": {"$not": {"$gt": 1}}})));
    }

    #[test]
    fn the_source_is_kept_and_compared() {
        let value = json!({"data.channel": "whatsapp"});
        let filter = Filter::parse(&value).unwrap();
        assert_eq!(filter.source(), &value);
        assert_eq!(filter, Filter::parse(&value).unwrap());
        assert_ne!(
            filter,
            Filter::parse(&json!({"data.channel": "sms"})).unwrap()
        );
    }

    #[test]
    fn errors_name_where_and_why() {
        use InvalidFilter::*;
        let cases = [
            (json!("x"), "filter", NotAnObject),
            (json!([]), "filter", NotAnObject),
            (json!({}), "filter", Empty),
            (
                json!({"data.a": {"$regex": "x"}}),
                "filter[\"data.a\"].$regex",
                UnknownOperator,
            ),
            (json!({"$nor": []}), "filter.$nor", NotALogicalOperator),
            (json!({"$eq": 1}), "filter.$eq", NotALogicalOperator),
            (
                json!({"data.a": {"$eq": 1, "b": 2}}),
                "filter[\"data.a\"]",
                MixedOperators,
            ),
            (json!({"data..a": 1}), "filter[\"data..a\"]", BadPath),
            (json!({"data.$a": 1}), "filter[\"data.$a\"]", BadPath),
            (json!({"": 1}), "filter[\"\"]", BadPath),
            (json!({"$and": {}}), "filter.$and", NotAFilterList),
            (json!({"$or": []}), "filter.$or", EmptyList),
            (
                json!({"$or": [{"a": 1}, "b"]}),
                "filter.$or[1]",
                NotAnObject,
            ),
            (
                json!({"$or": [{"a": 1}, {"b": {"$gte": true}}]}),
                "filter.$or[1][\"b\"].$gte",
                NotComparable,
            ),
            (
                json!({"a": {"$in": "x"}}),
                "filter[\"a\"].$in",
                NotAValueList,
            ),
            (json!({"a": {"$nin": []}}), "filter[\"a\"].$nin", EmptyList),
            (
                json!({"a": {"$exists": 1}}),
                "filter[\"a\"].$exists",
                NotABoolean,
            ),
            (
                json!({"a": {"$lt": null}}),
                "filter[\"a\"].$lt",
                NotComparable,
            ),
            (
                json!({"a": {"$not": {"$eq": 1, "b": 1}}}),
                "filter[\"a\"].$not",
                MixedOperators,
            ),
            (json!({"$not": {}}), "filter.$not", Empty),
        ];
        for (filter, field, kind) in cases {
            assert_eq!(
                refused(filter.clone()),
                (field.to_owned(), kind),
                "{filter}"
            );
        }
    }

    #[test]
    fn size_depth_and_counts_are_bounded() {
        let long = "x".repeat(MAX_BYTES);
        assert_eq!(refused(json!({"a": long})).1, InvalidFilter::TooLarge);

        let mut deep = json!({"a": 1});
        for _ in 0..MAX_DEPTH {
            deep = json!({"$not": deep});
        }
        assert!(
            Filter::parse(&deep).is_ok(),
            "{MAX_DEPTH} levels are allowed"
        );
        let (field, kind) = refused(json!({"$or": [deep]}));
        assert_eq!(kind, InvalidFilter::TooDeep);
        assert!(field.starts_with("filter.$or[0].$not"), "{field}");

        let mut many = Map::new();
        for i in 0..MAX_CONDITIONS {
            many.insert(format!("p{i}"), json!(i));
        }
        assert!(Filter::parse(&Value::Object(many.clone())).is_ok());
        many.insert("one.more".to_owned(), json!(1));
        assert_eq!(
            refused(Value::Object(many)).1,
            InvalidFilter::TooManyConditions
        );

        let list: Vec<Value> = (0..=MAX_LIST).map(|i| json!(i)).collect();
        assert_eq!(
            refused(json!({"a": {"$in": list}})).1,
            InvalidFilter::ListTooLong
        );
        let path = vec!["a"; MAX_PATH_SEGMENTS + 1].join(".");
        assert_eq!(refused(json!({path: 1})).1, InvalidFilter::BadPath);
        let path = vec!["a"; MAX_PATH_SEGMENTS].join(".");
        assert!(Filter::parse(&json!({path: 1})).is_ok());
    }

    /// The path pattern the OpenAPI document publishes agrees with the parser.
    #[test]
    fn the_published_path_pattern_is_the_rule() {
        let pattern = regex::Regex::new(PATH_PATTERN).unwrap();
        let deepest = vec!["a"; MAX_PATH_SEGMENTS].join(".");
        let too_deep = vec!["a"; MAX_PATH_SEGMENTS + 1].join(".");
        for path in [
            "data",
            "data.channel",
            "a$b.c",
            "data.items.0.sku",
            "é.ü",
            " ",
            "a-b_c",
            "",
            ".a",
            "a.",
            "a..b",
            "$a",
            "a.$b",
            "$and",
            deepest.as_str(),
            too_deep.as_str(),
        ] {
            let parsed = Filter::parse(&json!({path: 1})).is_ok();
            assert_eq!(pattern.is_match(path), parsed, "{path:?}");
        }
    }

    #[test]
    fn every_operator_is_listed() {
        for op in FIELD_OPERATORS {
            let operand = match op {
                "$in" | "$nin" => json!([1]),
                "$exists" => json!(true),
                "$not" => json!({"$eq": 1}),
                _ => json!(1),
            };
            assert!(Filter::parse(&json!({"a": {op: operand}})).is_ok(), "{op}");
        }
        for op in LOGICAL_OPERATORS {
            let operand = if op == "$not" {
                json!({"a": 1})
            } else {
                json!([{"a": 1}])
            };
            assert!(Filter::parse(&json!({op: operand})).is_ok(), "{op}");
        }
    }
}
