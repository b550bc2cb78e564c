//! The ops of live collaboration (docs/collaboration.md, "Ops"): `set` and `delete` at a path
//! of object keys and array matchers, over the live document `{"design", "layout"}`. The
//! console applies the same rules (`console/web/app/collab.js`); every replica applies every
//! edit in the server's order, so all end with the same document.

use serde_json::{Map, Value};

/// Most ops in one edit.
pub const MAX_OPS: usize = 256;
/// Most segments in one path.
pub const MAX_PATH: usize = 32;
/// Longest object key in a path.
pub const MAX_KEY_CHARS: usize = 200;
/// Most fields in a matcher.
pub const MAX_MATCH_FIELDS: usize = 4;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Key(String),
    /// The first array element whose fields equal all of these.
    Match(Map<String, Value>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Set { path: Vec<Segment>, value: Value },
    Delete { path: Vec<Segment> },
}

/// Reads an edit's ops; the error says which op and what is wrong with it.
pub fn parse(ops: &Value) -> Result<Vec<Op>, String> {
    let list = ops
        .as_array()
        .ok_or("ops must be an array of ops".to_string())?;
    if list.is_empty() || list.len() > MAX_OPS {
        return Err(format!(
            "an edit has 1 to {MAX_OPS} ops, not {}",
            list.len()
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, op)| parse_op(op).map_err(|e| format!("ops[{i}]: {e}")))
        .collect()
}

fn parse_op(op: &Value) -> Result<Op, String> {
    let obj = op.as_object().ok_or("an op is an object")?;
    for k in obj.keys() {
        if !matches!(k.as_str(), "op" | "path" | "value") {
            return Err(format!("unknown field {k:?}"));
        }
    }
    let path = parse_path(obj.get("path").ok_or("path is missing")?)?;
    match obj.get("op").and_then(Value::as_str) {
        Some("set") => {
            let value = obj.get("value").ok_or("a set needs a value")?.clone();
            if path.len() == 1 && !value.is_object() {
                return Err("the design and the layout are objects".into());
            }
            Ok(Op::Set { path, value })
        }
        Some("delete") => {
            if path.len() == 1 {
                return Err("the design or the layout cannot be deleted".into());
            }
            if obj.contains_key("value") {
                return Err("a delete has no value".into());
            }
            Ok(Op::Delete { path })
        }
        Some(other) => Err(format!("op must be set or delete, not {other:?}")),
        None => Err("op must be set or delete".into()),
    }
}

fn parse_path(path: &Value) -> Result<Vec<Segment>, String> {
    let list = path.as_array().ok_or("path must be an array")?;
    if list.is_empty() || list.len() > MAX_PATH {
        return Err(format!("a path has 1 to {MAX_PATH} segments"));
    }
    if !matches!(list[0].as_str(), Some("design" | "layout")) {
        return Err("a path starts with \"design\" or \"layout\"".into());
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| match s {
            Value::String(k) if k.chars().count() <= MAX_KEY_CHARS => Ok(Segment::Key(k.clone())),
            Value::String(_) => Err(format!(
                "path[{i}]: a key is at most {MAX_KEY_CHARS} characters"
            )),
            Value::Object(m)
                if i > 0
                    && (1..=MAX_MATCH_FIELDS).contains(&m.len())
                    && m.values().all(|v| v.is_string() || v.is_number()) =>
            {
                Ok(Segment::Match(m.clone()))
            }
            Value::Object(_) => Err(format!(
                "path[{i}]: a matcher has 1 to {MAX_MATCH_FIELDS} fields of strings or numbers"
            )),
            _ => Err(format!(
                "path[{i}]: a segment is a key (string) or a matcher (object); indices are not stable"
            )),
        })
        .collect()
}

/// Whether `element` has every field of the matcher; numbers compare by value (1 matches
/// 1.0), as they do in the page.
fn matches(element: &Value, m: &Map<String, Value>) -> bool {
    m.iter().all(|(k, v)| match (element.get(k), v) {
        (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (got, want) => got == Some(want),
    })
}

/// One step down; None when it finds nothing.
fn step<'a>(at: &'a mut Value, seg: &Segment) -> Option<&'a mut Value> {
    match (at, seg) {
        (Value::Object(o), Segment::Key(k)) => o.get_mut(k),
        (Value::Array(a), Segment::Match(m)) => a.iter_mut().find(|e| matches(e, m)),
        _ => None,
    }
}

/// Applies one op to `doc` (`{"design", "layout"}`); answers whether it changed anything
/// it reached (a skipped op answers false).
pub fn apply(doc: &mut Value, op: &Op) -> bool {
    let path = match op {
        Op::Set { path, .. } | Op::Delete { path } => path,
    };
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut at = doc;
    for seg in parents {
        match step(at, seg) {
            Some(next) => at = next,
            None => return false,
        }
    }
    match (op, at, last) {
        (Op::Set { value, .. }, Value::Object(o), Segment::Key(k)) => {
            if path.len() == 1 && !value.is_object() {
                return false;
            }
            o.insert(k.clone(), value.clone());
            true
        }
        (Op::Set { value, .. }, Value::Array(a), Segment::Match(m)) => {
            match a.iter_mut().find(|e| matches(e, m)) {
                Some(e) => *e = value.clone(),
                None => a.push(value.clone()),
            }
            true
        }
        (Op::Delete { .. }, Value::Object(o), Segment::Key(k)) => {
            path.len() > 1 && o.remove(k).is_some()
        }
        (Op::Delete { .. }, Value::Array(a), Segment::Match(m)) => {
            match a.iter().position(|e| matches(e, m)) {
                Some(i) => {
                    a.remove(i);
                    true
                }
                None => false,
            }
        }
        _ => false,
    }
}

/// Applies an edit's ops in order.
pub fn apply_all(doc: &mut Value, ops: &[Op]) {
    for op in ops {
        apply(doc, op);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, ops: Value) -> Value {
        let mut doc = doc;
        apply_all(&mut doc, &parse(&ops).unwrap());
        doc
    }

    fn base() -> Value {
        json!({
            "design": {"components": [{"name": "api", "replicas": 1}, {"name": "db"}],
                       "connections": [{"from": "api", "to": "db"}]},
            "layout": {"ids": {"api": "a1"}, "positions": {"a1": {"x": 1, "y": 2}}}
        })
    }

    #[test]
    fn set_by_key_and_by_matcher() {
        let d = run(
            base(),
            json!([
                {"op": "set", "path": ["layout", "positions", "a1"], "value": {"x": 5, "y": 6}},
                {"op": "set", "path": ["design", "components", {"name": "api"}, "replicas"], "value": 3},
                {"op": "set", "path": ["design", "connections", {"from": "api", "to": "db"}, "latency_ms"], "value": 2}
            ]),
        );
        assert_eq!(d["layout"]["positions"]["a1"], json!({"x": 5, "y": 6}));
        assert_eq!(d["design"]["components"][0]["replicas"], 3);
        assert_eq!(d["design"]["connections"][0]["latency_ms"], 2);
    }

    #[test]
    fn a_matcher_at_the_end_replaces_or_appends_and_deletes() {
        let d = run(
            base(),
            json!([
                {"op": "set", "path": ["design", "components", {"name": "cache"}], "value": {"name": "cache", "kind": "redis"}},
                {"op": "set", "path": ["design", "components", {"name": "db"}], "value": {"name": "db", "kind": "postgresql"}},
                {"op": "delete", "path": ["design", "connections", {"from": "api", "to": "db"}]},
                {"op": "delete", "path": ["layout", "ids", "api"]}
            ]),
        );
        assert_eq!(
            d["design"]["components"],
            json!([{"name": "api", "replicas": 1}, {"name": "db", "kind": "postgresql"}, {"name": "cache", "kind": "redis"}])
        );
        assert_eq!(d["design"]["connections"], json!([]));
        assert_eq!(d["layout"]["ids"], json!({}));
    }

    #[test]
    fn what_finds_nothing_is_skipped_alike() {
        let before = base();
        let d = run(
            before.clone(),
            json!([
                {"op": "set", "path": ["design", "components", {"name": "gone"}, "replicas"], "value": 2},
                {"op": "set", "path": ["layout", "missing", "x"], "value": 1},
                {"op": "delete", "path": ["design", "components", {"name": "gone"}]},
                {"op": "delete", "path": ["layout", "nothing"]},
                {"op": "set", "path": ["design", "components", "api"], "value": 1},
                {"op": "set", "path": ["layout", {"name": "x"}], "value": 1},
                {"op": "set", "path": ["design", "components", {"name": "api"}, "replicas", "deeper"], "value": 1}
            ]),
        );
        assert_eq!(d, before);
    }

    #[test]
    fn numbers_match_by_value() {
        let d = run(
            json!({"design": {"c": [{"port": 1.0}]}, "layout": {}}),
            json!([{"op": "set", "path": ["design", "c", {"port": 1}, "up"], "value": true}]),
        );
        assert_eq!(d["design"]["c"][0]["up"], true);
    }

    #[test]
    fn a_whole_part_is_replaced_by_an_object_only() {
        let d = run(
            base(),
            json!([{"op": "set", "path": ["layout"], "value": {"ids": {}}}]),
        );
        assert_eq!(d["layout"], json!({"ids": {}}));
        assert!(parse(&json!([{"op": "set", "path": ["design"], "value": 3}])).is_err());
        assert!(parse(&json!([{"op": "delete", "path": ["design"]}])).is_err());
    }

    #[test]
    fn malformed_edits_are_named() {
        let cases = [
            (json!({}), "array"),
            (json!([]), "1 to"),
            (
                json!([{"op": "move", "path": ["design"]}]),
                "ops[0]: op must be set or delete",
            ),
            (
                json!([{"op": "set", "path": ["x"], "value": 1}]),
                "starts with",
            ),
            (
                json!([{"op": "set", "path": ["design", 0], "value": 1}]),
                "path[1]",
            ),
            (
                json!([{"op": "set", "path": ["design", "a"]}]),
                "needs a value",
            ),
            (
                json!([{"op": "set", "path": ["design", {}], "value": 1}]),
                "matcher",
            ),
            (
                json!([{"op": "set", "path": ["design", "a"], "value": 1, "extra": 1}]),
                "unknown field",
            ),
            (
                json!([{"op": "delete", "path": ["design", "a"], "value": 1}]),
                "no value",
            ),
            (
                json!([{"op": "set", "path": "design", "value": 1}]),
                "path must be an array",
            ),
        ];
        for (ops, says) in cases {
            let e = parse(&ops).unwrap_err();
            assert!(e.contains(says), "{ops}: {e}");
        }
        let long: Vec<Value> = (0..=MAX_OPS)
            .map(|_| json!({"op": "delete", "path": ["layout", "a"]}))
            .collect();
        assert!(parse(&Value::Array(long)).is_err());
    }

    #[test]
    fn the_same_edits_in_the_same_order_give_the_same_document() {
        // Two replicas, one order: the later set of a field wins on both.
        let edits = [
            json!([{"op": "set", "path": ["design", "components", {"name": "api"}, "replicas"], "value": 2}]),
            json!([{"op": "delete", "path": ["design", "components", {"name": "db"}]}]),
            json!([{"op": "set", "path": ["design", "components", {"name": "api"}, "replicas"], "value": 7}]),
            json!([{"op": "set", "path": ["design", "components", {"name": "db"}, "replicas"], "value": 9}]),
        ];
        let (mut a, mut b) = (base(), base());
        for e in &edits {
            apply_all(&mut a, &parse(e).unwrap());
        }
        for e in &edits {
            apply_all(&mut b, &parse(e).unwrap());
        }
        assert_eq!(a, b);
        assert_eq!(
            a["design"]["components"],
            json!([{"name": "api", "replicas": 7}])
        );
    }
}
