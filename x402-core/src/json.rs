//! Strict JSON reading: bounded size and depth, and no duplicate object keys anywhere.
//!
//! serde's derive rejects a duplicated *field*, but a duplicated key inside free-form data
//! (`payload`, `extra`, `extensions`) would silently keep the last value, while other parsers may
//! keep the first. Two components must never read different amounts from one document
//! (threat-model S2), so every document from outside is scanned once before it is deserialized.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Limits applied to an untrusted JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// The largest document, in bytes.
    pub max_bytes: usize,
    /// The deepest nesting of arrays and objects.
    pub max_depth: usize,
}

impl JsonLimits {
    /// Limits for facilitator request bodies and payment headers.
    pub const DEFAULT: Self = Self {
        max_bytes: 64 * 1024,
        max_depth: 32,
    };
}

impl Default for JsonLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a JSON document was refused.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The document is larger than allowed.
    #[error("document is {size} bytes, larger than the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not valid JSON, nested too deep, a duplicate key, or not the expected shape.
    #[error("{0}")]
    Invalid(#[from] serde_json::Error),
}

/// Scans `bytes` for duplicate keys and excessive depth without building anything.
pub fn check(bytes: &[u8], limits: JsonLimits) -> Result<(), JsonError> {
    if bytes.len() > limits.max_bytes {
        return Err(JsonError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Scan {
        depth_left: limits.max_depth,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(())
}

/// Checks `bytes` (see [`check`]) and deserializes them.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8], limits: JsonLimits) -> Result<T, JsonError> {
    check(bytes, limits)?;
    Ok(serde_json::from_slice(bytes)?)
}

/// A visitor that walks any JSON value, refusing duplicate keys and nesting past a limit.
struct Scan {
    depth_left: usize,
}

impl Scan {
    fn deeper<E: de::Error>(&self) -> Result<Scan, E> {
        self.depth_left
            .checked_sub(1)
            .map(|depth_left| Scan { depth_left })
            .ok_or_else(|| E::custom("JSON nested too deeply"))
    }
}

impl<'de> DeserializeSeed<'de> for Scan {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        while seq
            .next_element_seed(Scan {
                depth_left: inner.depth_left,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        // Keys are borrowed from the text unless escaped; a small object's are compared in a
        // list, a larger one's go to a set (no quadratic scan for made-up objects).
        let mut few: Vec<Key<'de>> = Vec::new();
        let mut many: HashSet<Key<'de>> = HashSet::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let fresh = if many.is_empty() && few.len() < FEW_KEYS {
                !few.contains(&key) && {
                    few.push(key.clone());
                    true
                }
            } else {
                if many.is_empty() {
                    many.extend(few.drain(..));
                }
                many.insert(key.clone())
            };
            if !fresh {
                return Err(de::Error::custom(format_args!("duplicate key {:?}", key.0)));
            }
            map.next_value_seed(Scan {
                depth_left: inner.depth_left,
            })?;
        }
        Ok(())
    }
}

/// Up to how many keys an object's are checked for duplicates in a list.
const FEW_KEYS: usize = 16;

/// An object key, borrowed from the text unless it has escapes (then unescaped).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(key.to_owned())))
            }
            fn visit_string<E>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(key)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        check(s.as_bytes(), JsonLimits::DEFAULT).is_ok()
    }

    #[test]
    fn duplicates_rejected_at_any_depth() {
        assert!(ok(r#"{"a":1,"b":{"c":[1,{"d":2}]}}"#));
        assert!(!ok(r#"{"amount":"1","amount":"2"}"#));
        assert!(!ok(
            r#"{"payload":{"authorization":{"value":"1","value":"9"}}}"#
        ));
        assert!(!ok(r#"[{"x":1,"x":1}]"#));
        // escaped spellings of one key are the same key
        assert!(!ok(r#"{"a":1,"\u0061":2}"#));
        let err = check(br#"{"k":1,"k":2}"#, JsonLimits::DEFAULT).unwrap_err();
        assert!(err.to_string().contains("duplicate key \"k\""), "{err}");
    }

    #[test]
    fn duplicates_rejected_in_large_objects() {
        for n in [15, 16, 17, 40] {
            let keys: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            assert!(ok(&format!("{{{}}}", keys.join(","))), "{n} distinct keys");
            for dup in [0, n / 2, n - 1] {
                let text = format!("{{{},\"k{dup}\":0}}", keys.join(","));
                assert!(!ok(&text), "{n} keys, k{dup} again");
                let escaped = format!("{{{},\"\\u006b{dup}\":0}}", keys.join(","));
                assert!(!ok(&escaped), "{n} keys, k{dup} again escaped");
            }
        }
    }

    #[test]
    fn depth_size_and_garbage() {
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(!ok(&deep));
        let fine = format!("{}{}", "[".repeat(10), "]".repeat(10));
        assert!(ok(&fine));
        let limits = JsonLimits {
            max_bytes: 8,
            max_depth: 4,
        };
        assert!(matches!(
            check(br#"{"a":"123456"}"#, limits),
            Err(JsonError::TooLarge { .. })
        ));
        assert!(!ok(r#"{"a":1} trailing"#));
        assert!(!ok(r#"{"a":1"#));
        assert!(!ok(""));
        assert!(check(b"{\"a\":\"\xff\"}", JsonLimits::DEFAULT).is_err());
    }
}
