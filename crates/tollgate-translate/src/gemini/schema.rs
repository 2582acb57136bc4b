//! JSON Schema (as OpenAI clients write tool parameters and response formats) → the OpenAPI
//! subset Gemini accepts. Gemini refuses unknown keys with a 400, so the result keeps only the
//! keys it knows and re-expresses what it can:
//! - `$ref` into `$defs` / `definitions` is inlined (recursive schemas are cut off at a depth);
//! - `null` in `type` arrays or `anyOf` becomes `nullable: true`; the other types an `anyOf`;
//! - `const` becomes a one-value `enum`; enums of non-strings are dropped (Gemini's are strings);
//! - objects without properties lose the empty `properties` (refused as "should be non-empty");
//! - response schemas get `propertyOrdering` in declared order, or Gemini sorts keys by name.

use serde_json::{Map, Value};

/// How deep `$ref`s are followed; deeper (recursive) references become plain objects.
const MAX_REF_DEPTH: usize = 8;

const KEPT_KEYS: &[&str] = &[
    "description",
    "title",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
];

/// `format`s Gemini understands; others are dropped.
const KEPT_FORMATS: &[&str] = &["date-time", "enum", "int32", "int64", "float", "double"];

/// Converts a tool's `parameters` (`for_response: false`) or a response format's `schema`.
pub fn to_gemini_schema(schema: &Value, for_response: bool) -> Value {
    let empty = Map::new();
    let root = schema.as_object().unwrap_or(&empty);
    let definitions = Definitions {
        defs: root.get("$defs").and_then(Value::as_object),
        definitions: root.get("definitions").and_then(Value::as_object),
    };
    let converter = Converter {
        definitions,
        for_response,
    };
    converter.convert(schema, 0)
}

struct Definitions<'a> {
    defs: Option<&'a Map<String, Value>>,
    definitions: Option<&'a Map<String, Value>>,
}

impl Definitions<'_> {
    fn resolve(&self, reference: &str) -> Option<&Value> {
        if let Some(name) = reference.strip_prefix("#/$defs/") {
            return self.defs?.get(name);
        }
        if let Some(name) = reference.strip_prefix("#/definitions/") {
            return self.definitions?.get(name);
        }
        None
    }
}

struct Converter<'a> {
    definitions: Definitions<'a>,
    for_response: bool,
}

impl Converter<'_> {
    fn convert(&self, node: &Value, depth: usize) -> Value {
        let Some(node) = node.as_object() else {
            // `true` / `{}`-like schemas: anything. Gemini needs a type; a string is the
            // least surprising.
            return serde_json::json!({"type": "STRING"});
        };
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let mut resolved = match self.definitions.resolve(reference) {
                Some(target) if depth < MAX_REF_DEPTH => self.convert(target, depth + 1),
                _ => serde_json::json!({"type": "OBJECT"}),
            };
            if let (Some(description), Some(out)) =
                (node.get("description"), resolved.as_object_mut())
            {
                out.insert("description".into(), description.clone());
            }
            return resolved;
        }

        let mut out = Map::new();
        let mut nullable = node
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        // `anyOf` / `oneOf` (Gemini knows only `anyOf`); null branches mean nullable.
        let branches = node
            .get("anyOf")
            .or_else(|| node.get("oneOf"))
            .and_then(Value::as_array);
        if let Some(branches) = branches {
            let mut kept: Vec<Value> = Vec::new();
            for branch in branches {
                if branch.get("type").and_then(Value::as_str) == Some("null") {
                    nullable = true;
                } else {
                    kept.push(self.convert(branch, depth));
                }
            }
            if kept.len() == 1 {
                let mut single = kept.pop().expect("one branch");
                if let Some(single) = single.as_object_mut() {
                    copy_kept(node, single);
                    if nullable {
                        single.insert("nullable".into(), Value::Bool(true));
                    }
                }
                return single;
            }
            copy_kept(node, &mut out);
            out.insert("anyOf".into(), Value::Array(kept));
            if nullable {
                out.insert("nullable".into(), Value::Bool(true));
            }
            return Value::Object(out);
        }
        if let Some(parts) = node.get("allOf").and_then(Value::as_array) {
            let mut merged = node.clone();
            merged.remove("allOf");
            for part in parts {
                let part = match part.get("$ref").and_then(Value::as_str) {
                    Some(reference) => self.definitions.resolve(reference).unwrap_or(part),
                    None => part,
                };
                merge_into(&mut merged, part);
            }
            return self.convert(&Value::Object(merged), depth);
        }

        let mut types: Vec<&str> = match node.get("type") {
            Some(Value::String(kind)) => vec![kind.as_str()],
            Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if types.contains(&"null") {
            nullable = true;
            types.retain(|kind| *kind != "null");
        }
        if types.is_empty() {
            types.push(if node.contains_key("properties") {
                "object"
            } else if node.contains_key("items") {
                "array"
            } else if node.contains_key("enum") || node.contains_key("const") {
                "string"
            } else {
                "object"
            });
        }
        if types.len() > 1 {
            // `type: ["string", "number"]`: Gemini has no type lists; an anyOf says the same.
            let branches = types
                .iter()
                .map(|kind| {
                    let mut single = node.clone();
                    single.insert("type".into(), Value::String((*kind).to_owned()));
                    self.convert(&Value::Object(single), depth)
                })
                .collect();
            copy_kept(node, &mut out);
            out.insert("anyOf".into(), Value::Array(branches));
            if nullable {
                out.insert("nullable".into(), Value::Bool(true));
            }
            return Value::Object(out);
        }
        let kind = types[0];
        out.insert("type".into(), Value::String(kind.to_ascii_uppercase()));
        copy_kept(node, &mut out);
        if let Some(format) = node
            .get("format")
            .and_then(Value::as_str)
            .filter(|format| KEPT_FORMATS.contains(format))
        {
            out.insert("format".into(), Value::String(format.to_owned()));
        }
        if nullable {
            out.insert("nullable".into(), Value::Bool(true));
        }

        let values = match (node.get("enum"), node.get("const")) {
            (Some(Value::Array(values)), _) => Some(values.clone()),
            (None, Some(value)) => Some(vec![value.clone()]),
            _ => None,
        };
        if let Some(mut values) = values {
            // `null` among the values is what `nullable` says.
            if values.iter().any(Value::is_null) {
                values.retain(|value| !value.is_null());
                out.insert("nullable".into(), Value::Bool(true));
            }
            if kind == "string" && !values.is_empty() && values.iter().all(Value::is_string) {
                out.insert("enum".into(), Value::Array(values));
            }
        }

        match kind {
            "object" => {
                if let Some(properties) = node.get("properties").and_then(Value::as_object)
                    && !properties.is_empty()
                {
                    let converted: Map<String, Value> = properties
                        .iter()
                        .map(|(name, schema)| (name.clone(), self.convert(schema, depth)))
                        .collect();
                    if let Some(required) = node.get("required").and_then(Value::as_array) {
                        let required: Vec<Value> = required
                            .iter()
                            .filter(|name| {
                                name.as_str()
                                    .is_some_and(|name| converted.contains_key(name))
                            })
                            .cloned()
                            .collect();
                        if !required.is_empty() {
                            out.insert("required".into(), Value::Array(required));
                        }
                    }
                    if self.for_response {
                        let ordering = converted.keys().cloned().map(Value::String).collect();
                        out.insert("propertyOrdering".into(), Value::Array(ordering));
                    }
                    out.insert("properties".into(), Value::Object(converted));
                }
            }
            "array" => {
                let items = match node.get("items") {
                    Some(Value::Object(items)) if !items.is_empty() => {
                        self.convert(&Value::Object(items.clone()), depth)
                    }
                    // Tuple-style `items: [...]`: the first entry's schema stands for all.
                    Some(Value::Array(items)) if !items.is_empty() => {
                        self.convert(&items[0], depth)
                    }
                    _ => serde_json::json!({"type": "STRING"}),
                };
                out.insert("items".into(), items);
            }
            _ => {}
        }
        Value::Object(out)
    }
}

fn copy_kept(from: &Map<String, Value>, into: &mut Map<String, Value>) {
    for key in KEPT_KEYS {
        if let Some(value) = from.get(*key) {
            into.entry(key.to_string()).or_insert_with(|| value.clone());
        }
    }
}

/// `allOf`: the parts' properties and required lists joined; other keys of the first part win.
fn merge_into(target: &mut Map<String, Value>, part: &Value) {
    let Some(part) = part.as_object() else {
        return;
    };
    for (key, value) in part {
        match (key.as_str(), target.get_mut(key)) {
            ("properties", Some(Value::Object(existing))) => {
                if let Some(more) = value.as_object() {
                    for (name, schema) in more {
                        existing.insert(name.clone(), schema.clone());
                    }
                }
            }
            ("required", Some(Value::Array(existing))) => {
                if let Some(more) = value.as_array() {
                    existing.extend(more.iter().cloned());
                }
            }
            (_, Some(_)) => {}
            (_, None) => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_unknown_keys_and_uppercases_types() {
        let schema = json!({
            "type": "object",
            "additionalProperties": false,
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {
                "city": {"type": "string", "description": "City", "examples": ["Paris"]},
                "days": {"type": "integer", "exclusiveMinimum": 0, "format": "uint32"}
            },
            "required": ["city", "missing"],
            "strict": true
        });
        assert_eq!(
            to_gemini_schema(&schema, false),
            json!({
                "type": "OBJECT",
                "required": ["city"],
                "properties": {
                    "city": {"type": "STRING", "description": "City"},
                    "days": {"type": "INTEGER"}
                }
            })
        );
    }

    #[test]
    fn null_unions_become_nullable_and_other_unions_any_of() {
        let schema = json!({
            "type": "object",
            "properties": {
                "note": {"type": ["string", "null"]},
                "tag": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "d"},
                "id": {"type": ["string", "integer"]}
            }
        });
        let converted = to_gemini_schema(&schema, false);
        assert_eq!(
            converted["properties"]["note"],
            json!({"type": "STRING", "nullable": true})
        );
        assert_eq!(
            converted["properties"]["tag"],
            json!({"type": "STRING", "description": "d", "nullable": true})
        );
        assert_eq!(
            converted["properties"]["id"],
            json!({"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]})
        );
    }

    #[test]
    fn inlines_refs_and_cuts_recursion() {
        let schema = json!({
            "type": "object",
            "$defs": {
                "Step": {"type": "object", "properties": {"then": {"$ref": "#/$defs/Step"}, "say": {"type": "string"}}}
            },
            "properties": {"first": {"$ref": "#/$defs/Step", "description": "start"}}
        });
        let converted = to_gemini_schema(&schema, false);
        let first = &converted["properties"]["first"];
        assert_eq!(first["description"], "start");
        assert_eq!(first["properties"]["say"], json!({"type": "STRING"}));
        // Followed to the depth limit, then a plain object.
        let mut node = first;
        for _ in 0..MAX_REF_DEPTH - 1 {
            node = &node["properties"]["then"];
        }
        assert_eq!(node["properties"]["then"], json!({"type": "OBJECT"}));
    }

    #[test]
    fn response_schemas_keep_declared_property_order() {
        let schema = json!({
            "type": "object",
            "properties": {"zeta": {"type": "string"}, "alpha": {"const": "x"}},
        });
        let converted = to_gemini_schema(&schema, true);
        assert_eq!(converted["propertyOrdering"], json!(["zeta", "alpha"]));
        assert_eq!(
            converted["properties"]["alpha"],
            json!({"type": "STRING", "enum": ["x"]})
        );
        assert!(
            to_gemini_schema(&schema, false)
                .get("propertyOrdering")
                .is_none()
        );
    }

    #[test]
    fn empty_objects_lose_their_empty_properties() {
        let schema = json!({"type": "object", "properties": {}});
        assert_eq!(to_gemini_schema(&schema, false), json!({"type": "OBJECT"}));
    }
}
