//! An operator's allow-list from configuration. It is required: accepting everything is a
//! decision written down as `"any"`, never what a missing key means.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};

/// What a configured allow-list admits: the items listed, or anything (`"any"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowList<T> {
    /// Only these.
    Only(Vec<T>),
    /// Anything (configured as the string `"any"`).
    Any,
}

impl<T> AllowList<T> {
    /// The items, or `None` for [`AllowList::Any`].
    pub fn only(&self) -> Option<&[T]> {
        match self {
            Self::Only(items) => Some(items),
            Self::Any => None,
        }
    }

    /// The items, or `None` for [`AllowList::Any`].
    pub fn into_only(self) -> Option<Vec<T>> {
        match self {
            Self::Only(items) => Some(items),
            Self::Any => None,
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for AllowList<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s == "any" => Ok(Self::Any),
            list @ serde_json::Value::Array(_) => serde_json::from_value(list)
                .map(Self::Only)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "expected a list or \"any\", not {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Options {
        assets: AllowList<u8>,
    }

    fn parse(json: &str) -> Result<Options, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_list_or_any_and_nothing_else() {
        assert_eq!(
            parse(r#"{"assets": [1, 2]}"#).unwrap().assets,
            AllowList::Only(vec![1, 2])
        );
        assert_eq!(
            parse(r#"{"assets": "any"}"#).unwrap().assets,
            AllowList::Any
        );
        assert_eq!(AllowList::<u8>::Any.only(), None);
        assert!(parse("{}").unwrap_err().contains("missing field `assets`"));
        assert!(
            parse(r#"{"assets": "all"}"#)
                .unwrap_err()
                .contains("\"any\"")
        );
        // A bad item keeps its own message.
        assert!(parse(r#"{"assets": [300]}"#).unwrap_err().contains("300"));
    }
}
