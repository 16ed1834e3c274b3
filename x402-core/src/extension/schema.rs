//! A small JSON Schema (draft 2020-12) checker for extension declarations.
//!
//! It checks the keywords extension schemas use — `type`, `const`, `enum`, `properties`,
//! `required`, `additionalProperties`, `items`, `minLength`/`maxLength`,
//! `minimum`/`maximum`, `minItems`/`maxItems`, `allOf`/`anyOf`/`oneOf`/`not` — and, like the reference's
//! non-strict validator, ignores keywords it does not know (`pattern`, `format`, local `$ref`).
//! A schema naming an external document (`$ref`/`$id` not starting with `#`) is refused, as the
//! reference refuses it: a facilitator never fetches what a stranger points it to.

use serde_json::Value;

/// How deep schemas and values may nest before the check gives up (refusing).
pub const MAX_DEPTH: usize = 32;

/// Checks `value` against `schema`; the errors name the JSON pointer of each failure.
pub fn validate(schema: &Value, value: &Value) -> Result<(), Vec<String>> {
    if has_external_reference(schema, 0) {
        return Err(vec![
            "schema must not contain external $ref/$id references".to_owned(),
        ]);
    }
    let mut errors = Vec::new();
    check(schema, value, "", 0, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Whether `node` names a document outside itself (or nests too deep to tell).
pub fn has_external_reference(node: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return true;
    }
    match node {
        Value::Array(items) => items.iter().any(|i| has_external_reference(i, depth + 1)),
        Value::Object(map) => map.iter().any(|(k, v)| {
            ((k == "$ref" || k == "$id") && !v.as_str().is_some_and(|s| s.starts_with('#')))
                || has_external_reference(v, depth + 1)
        }),
        _ => false,
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

fn at(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

fn check(schema: &Value, value: &Value, path: &str, depth: usize, errors: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        errors.push(format!("{}: nested too deep", at(path)));
        return;
    }
    let schema = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            errors.push(format!("{}: no value is allowed here", at(path)));
            return;
        }
        Value::Object(map) => map,
        _ => return,
    };
    match schema.get("type") {
        Some(Value::String(t)) if !type_matches(t, value) => {
            errors.push(format!("{}: must be {t}", at(path)));
            return;
        }
        Some(Value::Array(ts))
            if !ts
                .iter()
                .filter_map(Value::as_str)
                .any(|t| type_matches(t, value)) =>
        {
            errors.push(format!("{}: has none of the allowed types", at(path)));
            return;
        }
        _ => {}
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        errors.push(format!("{}: must be equal to constant {c}", at(path)));
    }
    if let Some(Value::Array(options)) = schema.get("enum")
        && !options.contains(value)
    {
        errors.push(format!(
            "{}: must be equal to one of the allowed values",
            at(path)
        ));
    }
    let count = |key: &str| schema.get(key).and_then(Value::as_u64);
    if let Value::String(s) = value {
        let len = s.chars().count() as u64;
        if count("minLength").is_some_and(|m| len < m) {
            errors.push(format!("{}: is too short", at(path)));
        }
        if count("maxLength").is_some_and(|m| len > m) {
            errors.push(format!("{}: is too long", at(path)));
        }
    }
    if let Some(n) = value.as_f64() {
        if schema
            .get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n < m)
        {
            errors.push(format!("{}: is below the minimum", at(path)));
        }
        if schema
            .get("maximum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n > m)
        {
            errors.push(format!("{}: is above the maximum", at(path)));
        }
    }
    if let Value::Object(members) = value {
        if let Some(Value::Array(required)) = schema.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !members.contains_key(r) {
                    errors.push(format!("{}: must have required property '{r}'", at(path)));
                }
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (k, v) in members {
            let here = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
            match properties.and_then(|p| p.get(k)) {
                Some(sub) => check(sub, v, &here, depth + 1, errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => errors.push(format!(
                        "{}: must NOT have additional property '{k}'",
                        at(path)
                    )),
                    Some(sub @ Value::Object(_)) => check(sub, v, &here, depth + 1, errors),
                    _ => {}
                },
            }
        }
    }
    if let Value::Array(items) = value {
        let len = items.len() as u64;
        if count("minItems").is_some_and(|m| len < m) {
            errors.push(format!("{}: has too few items", at(path)));
        }
        if count("maxItems").is_some_and(|m| len > m) {
            errors.push(format!("{}: has too many items", at(path)));
        }
        if let Some(sub) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(sub, item, &format!("{path}/{i}"), depth + 1, errors);
            }
        }
    }
    let passes = |sub: &Value| {
        let mut e = Vec::new();
        check(sub, value, path, depth + 1, &mut e);
        e.is_empty()
    };
    if let Some(Value::Array(all)) = schema.get("allOf") {
        for sub in all {
            check(sub, value, path, depth + 1, errors);
        }
    }
    if let Some(Value::Array(any)) = schema.get("anyOf")
        && !any.iter().any(passes)
    {
        errors.push(format!("{}: must match a schema in anyOf", at(path)));
    }
    if let Some(Value::Array(one)) = schema.get("oneOf")
        && one.iter().filter(|s| passes(s)).count() != 1
    {
        errors.push(format!(
            "{}: must match exactly one schema in oneOf",
            at(path)
        ));
    }
    if let Some(not) = schema.get("not")
        && passes(not)
    {
        errors.push(format!("{}: must NOT be valid", at(path)));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_the_keywords_extensions_use() {
        let schema = json!({
            "type": "object",
            "properties": {
                "input": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "const": "http"},
                        "method": {"type": "string", "enum": ["GET", "HEAD"]},
                    },
                    "required": ["type", "method"],
                    "additionalProperties": false
                }
            },
            "required": ["input"]
        });
        assert!(
            validate(
                &schema,
                &json!({"input": {"type": "http", "method": "GET"}})
            )
            .is_ok()
        );
        let errors = validate(
            &schema,
            &json!({"input": {"type": "mcp", "method": "POST", "x": 1}}),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors.iter().any(|e| e.starts_with("/input/type")),
            "{errors:?}"
        );
        assert!(validate(&schema, &json!({})).is_err());
        assert!(validate(&schema, &json!([])).is_err());
    }

    #[test]
    fn refuses_external_references_and_deep_nesting() {
        let external = json!({"properties": {"a": {"$ref": "https://evil.example/s.json"}}});
        assert!(validate(&external, &json!({})).is_err());
        assert!(validate(&json!({"$ref": "#/$defs/a"}), &json!({})).is_ok());
        let mut deep = json!({});
        for _ in 0..40 {
            deep = json!({"items": deep});
        }
        assert!(validate(&deep, &json!([])).is_err());
    }
}
