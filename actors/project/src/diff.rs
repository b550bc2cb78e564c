//! The structured difference between two versions of a design: top-level fields changed,
//! components and connections added, removed, renamed or changed (with the fields). Pure:
//! works on the JSON documents, drafts included.
//!
//! Components are matched by their stable id when the layouts carry one
//! (`layout.ids: {"<component name>": "<id>"}`), so renaming a component is a rename, not a
//! removal and an addition; without ids they are matched by name. A connection is known by
//! its ends, after renames.

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct DesignDiff {
    /// Top-level fields (duration, seed, traffic-wide settings, chaos, alerts...) changed.
    pub fields: Vec<FieldChange>,
    pub components: ComponentChanges,
    pub connections: ConnectionChanges,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub from: Value,
    pub to: Value,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ComponentChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub renamed: Vec<Renamed>,
    /// Components present in both whose settings differ (named as in the newer version).
    pub changed: Vec<Changed>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Renamed {
    pub id: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Changed {
    pub name: String,
    /// The settings that differ (`replicas`, `service_time`...).
    pub fields: Vec<String>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ConnectionChanges {
    pub added: Vec<Edge>,
    pub removed: Vec<Edge>,
    pub changed: Vec<ChangedEdge>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct ChangedEdge {
    pub from: String,
    pub to: String,
    pub fields: Vec<String>,
}

/// The components of a design by name, each with its object.
fn components(design: &Value) -> BTreeMap<String, Map<String, Value>> {
    design
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let obj = c.as_object()?;
            let name = obj.get("name")?.as_str()?.to_string();
            Some((name, obj.clone()))
        })
        .collect()
}

/// The stable id of each component name, from a layout.
fn ids(layout: &Value) -> BTreeMap<String, String> {
    layout
        .get("ids")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(name, id)| Some((name.clone(), id.as_str()?.to_string())))
        .collect()
}

fn connections(
    design: &Value,
    rename: &BTreeMap<String, String>,
) -> BTreeMap<Edge, Map<String, Value>> {
    design
        .get("connections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let obj = c.as_object()?;
            let end = |k: &str| -> Option<String> {
                let n = obj.get(k)?.as_str()?;
                Some(rename.get(n).cloned().unwrap_or_else(|| n.to_string()))
            };
            Some((
                Edge {
                    from: end("from")?,
                    to: end("to")?,
                },
                obj.clone(),
            ))
        })
        .collect()
}

/// The keys whose values differ between two objects, `skip` aside.
fn changed_keys(a: &Map<String, Value>, b: &Map<String, Value>, skip: &[&str]) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| !skip.contains(&k.as_str()) && a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// What changed from (`old`, `old_layout`) to (`new`, `new_layout`).
pub fn diff(old: &Value, old_layout: &Value, new: &Value, new_layout: &Value) -> DesignDiff {
    let mut d = DesignDiff::default();
    let empty = Map::new();
    let (oa, na) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    for field in changed_keys(oa, na, &["components", "connections"]) {
        d.fields.push(FieldChange {
            from: oa.get(&field).cloned().unwrap_or(Value::Null),
            to: na.get(&field).cloned().unwrap_or(Value::Null),
            field,
        });
    }

    let (oc, nc) = (components(old), components(new));
    let (oid, nid) = (ids(old_layout), ids(new_layout));
    // id -> name on each side, for components whose layout gives one.
    let old_by_id: BTreeMap<&String, &String> = oid
        .iter()
        .filter(|(n, _)| oc.contains_key(*n))
        .map(|(n, id)| (id, n))
        .collect();
    // Old name -> new name for every component found on both sides.
    let mut matched: BTreeMap<String, String> = BTreeMap::new();
    for name in nc.keys() {
        let by_id = nid
            .get(name)
            .and_then(|id| old_by_id.get(id))
            .map(|n| (*n).clone());
        if let Some(old_name) = by_id {
            if old_name != *name {
                d.components.renamed.push(Renamed {
                    id: nid[name].clone(),
                    from: old_name.clone(),
                    to: name.clone(),
                });
            }
            matched.insert(old_name, name.clone());
        } else if oc.contains_key(name)
            && oid.get(name).is_none_or(|id| nid.get(name) == Some(id))
            && !matched.contains_key(name)
        {
            matched.insert(name.clone(), name.clone());
        }
    }
    let new_matched: BTreeSet<&String> = matched.values().collect();
    d.components.added = nc
        .keys()
        .filter(|n| !new_matched.contains(n))
        .cloned()
        .collect();
    d.components.removed = oc
        .keys()
        .filter(|n| !matched.contains_key(*n))
        .cloned()
        .collect();
    for (old_name, new_name) in &matched {
        let fields = changed_keys(&oc[old_name], &nc[new_name], &["name"]);
        if !fields.is_empty() {
            d.components.changed.push(Changed {
                name: new_name.clone(),
                fields,
            });
        }
    }

    // Connections, with the old ends renamed to the new names.
    let (oe, ne) = (
        connections(old, &matched),
        connections(new, &BTreeMap::new()),
    );
    d.connections.added = ne
        .keys()
        .filter(|e| !oe.contains_key(*e))
        .cloned()
        .collect();
    d.connections.removed = oe
        .keys()
        .filter(|e| !ne.contains_key(*e))
        .cloned()
        .collect();
    for (edge, n) in &ne {
        if let Some(o) = oe.get(edge) {
            let fields = changed_keys(o, n, &["from", "to"]);
            if !fields.is_empty() {
                d.connections.changed.push(ChangedEdge {
                    from: edge.from.clone(),
                    to: edge.to.clone(),
                    fields,
                });
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn design(components: Value, connections: Value) -> Value {
        json!({"duration_s": 60, "components": components, "connections": connections})
    }

    #[test]
    fn a_rename_with_stable_ids_is_a_rename_and_its_edges_follow() {
        let old = design(
            json!([{"name": "lb", "kind": "nginx_lb"}, {"name": "web", "kind": "web_server", "replicas": 2}]),
            json!([{"from": "lb", "to": "web"}]),
        );
        let new = design(
            json!([{"name": "lb", "kind": "nginx_lb"}, {"name": "frontend", "kind": "web_server", "replicas": 3}]),
            json!([{"from": "lb", "to": "frontend"}]),
        );
        let layout = |web: &str| json!({"ids": {"lb": "c1", web: "c2"}});
        let d = diff(&old, &layout("web"), &new, &layout("frontend"));
        assert_eq!(
            d.components.renamed,
            vec![Renamed {
                id: "c2".into(),
                from: "web".into(),
                to: "frontend".into()
            }]
        );
        assert!(
            d.components.added.is_empty() && d.components.removed.is_empty(),
            "{d:?}"
        );
        assert_eq!(
            d.components.changed,
            vec![Changed {
                name: "frontend".into(),
                fields: vec!["replicas".into()]
            }]
        );
        assert!(
            d.connections.added.is_empty() && d.connections.removed.is_empty(),
            "{d:?}"
        );
    }

    #[test]
    fn without_ids_a_rename_is_a_removal_and_an_addition() {
        let old = design(json!([{"name": "web", "kind": "web_server"}]), json!([]));
        let new = design(json!([{"name": "app", "kind": "web_server"}]), json!([]));
        let d = diff(&old, &json!({}), &new, &json!({}));
        assert_eq!(d.components.added, vec!["app".to_string()]);
        assert_eq!(d.components.removed, vec!["web".to_string()]);
        assert!(d.components.renamed.is_empty());
    }

    #[test]
    fn fields_and_edges_added_removed_and_changed() {
        let old = json!({"duration_s": 60, "seed": 1,
            "components": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
            "connections": [{"from": "a", "to": "b"}, {"from": "b", "to": "c", "latency_ms": 1.0}]});
        let new = json!({"duration_s": 120, "seed": 1,
            "components": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
            "connections": [{"from": "a", "to": "c"}, {"from": "b", "to": "c", "latency_ms": 5.0}]});
        let d = diff(&old, &json!({}), &new, &json!({}));
        assert_eq!(
            d.fields,
            vec![FieldChange {
                field: "duration_s".into(),
                from: json!(60),
                to: json!(120)
            }]
        );
        assert_eq!(
            d.connections.added,
            vec![Edge {
                from: "a".into(),
                to: "c".into()
            }]
        );
        assert_eq!(
            d.connections.removed,
            vec![Edge {
                from: "a".into(),
                to: "b".into()
            }]
        );
        assert_eq!(d.connections.changed.len(), 1);
        assert_eq!(
            d.connections.changed[0].fields,
            vec!["latency_ms".to_string()]
        );
    }

    #[test]
    fn identical_designs_differ_in_nothing() {
        let v = design(json!([{"name": "a"}]), json!([]));
        assert_eq!(diff(&v, &json!({}), &v, &json!({})), DesignDiff::default());
    }
}
