//! A JSON object that keeps its members in order, as JavaScript objects do.
//!
//! Extension declarations are compared byte for byte with what the reference SDKs emit, whose
//! objects keep insertion order (`{...a, key}` replaces a member in place or appends it).
//! `serde_json::Value` sorts keys, so declarations are built from this type instead; member
//! values are raw JSON text, kept exactly as written.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::wire::Raw;

/// A JSON object whose members keep their order; values are raw JSON.
#[derive(Debug, Clone, Default)]
pub struct JsonObject(Vec<(String, Raw)>);

impl PartialEq for JsonObject {
    /// Equal when the members are equal as JSON values (order and spacing aside).
    fn eq(&self, other: &Self) -> bool {
        self.to_value() == other.to_value()
    }
}

impl JsonObject {
    /// An empty object.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Sets `key` to `value`: replaces the member in place when present, appends it otherwise
    /// (JavaScript's `{...object, key: value}`).
    pub fn set(&mut self, key: impl Into<String>, value: Raw) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(member) => member.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// [`JsonObject::set`] with any serializable value.
    pub fn set_value<T: Serialize + ?Sized>(&mut self, key: impl Into<String>, value: &T) {
        // Serializing a `Serialize` into JSON text fails only for maps with non-string keys,
        // which no caller builds; such a member is left out.
        if let Ok(raw) = serde_json::value::to_raw_value(value) {
            self.set(key, raw);
        }
    }

    /// Builder form of [`JsonObject::set_value`].
    #[must_use]
    pub fn with<T: Serialize + ?Sized>(mut self, key: impl Into<String>, value: &T) -> Self {
        self.set_value(key, value);
        self
    }

    /// Appends every member of `other` with [`JsonObject::set`] (JavaScript's `{...self, ...other}`).
    pub fn extend(&mut self, other: &JsonObject) {
        for (k, v) in &other.0 {
            self.set(k.clone(), v.clone());
        }
    }

    /// The member `key`, as raw JSON.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    /// The member `key` read as an object, when it is one.
    pub fn object(&self, key: &str) -> Option<JsonObject> {
        self.get(key)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// The member `key` when it is a string.
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key)
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
    }

    /// Whether `key` is a member.
    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Raw> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(at).1)
    }

    /// The member names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// The members, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), &**v))
    }

    /// Whether the object has no member.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The object as compact JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// The object as raw JSON.
    pub fn to_raw(&self) -> Raw {
        serde_json::value::to_raw_value(self).unwrap_or_default()
    }

    /// The object as a `serde_json::Value` (members sorted: for reading, not for writing).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.to_json()).unwrap_or_default()
    }

    /// Reads an object from JSON text.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl Serialize for JsonObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = JsonObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<JsonObject, A::Error> {
                let mut object = JsonObject::new();
                while let Some((k, v)) = access.next_entry::<String, Raw>()? {
                    // A repeated member: the last wins, in the first's place (JSON.parse).
                    object.set(k, v);
                }
                Ok(object)
            }
        }
        deserializer.deserialize_map(Members)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_replaces_in_place() {
        let mut o = JsonObject::parse(r#"{"b":1,"a":{"z":2, "y":3}}"#).unwrap();
        o.set_value("b", &5);
        o.set_value("c", "x");
        assert_eq!(o.to_json(), r#"{"b":5,"a":{"z":2, "y":3},"c":"x"}"#);
        assert_eq!(o.keys().collect::<Vec<_>>(), ["b", "a", "c"]);
        assert!(JsonObject::parse("[1]").is_err());
        assert_eq!(
            JsonObject::parse(r#"{"a":1,"b":2}"#).unwrap(),
            JsonObject::parse(r#"{"b":2,"a":1}"#).unwrap()
        );
    }
}
