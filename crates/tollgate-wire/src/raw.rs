//! A borrowed JSON field that remembers whether it was present, even when its value is `null`.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A field captured as the raw JSON text it had in the body.
///
/// `Option<&RawValue>` turns `"field": null` into `None`, which hides that the key exists; the
/// gateway must know, because it edits bodies in place and must never write a key twice.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawField<'a>(pub Option<&'a RawValue>);

impl<'a> RawField<'a> {
    pub fn get(&self) -> Option<&'a RawValue> {
        self.0
    }

    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }

    /// Present and not `null`.
    pub fn value(&self) -> Option<&'a RawValue> {
        self.0.filter(|raw| raw.get() != "null")
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(deserializer).map(|raw| RawField(Some(raw)))
    }
}

/// The JSON type of a raw value, from its first byte, for error messages and cheap checks.
pub fn json_type(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't') | Some(b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// A field that is either a string or a list (message content, `stop`, `system`, …).
///
/// Written by hand rather than as an untagged enum: serde buffers untagged input, which both
/// costs a copy and breaks `RawValue` fields inside the list items.
#[derive(Debug, Clone, PartialEq)]
pub enum TextOr<'a, T> {
    Text(std::borrow::Cow<'a, str>),
    List(Vec<T>),
}

impl<'de: 'a, 'a, T: serde::Deserialize<'de>> serde::Deserialize<'de> for TextOr<'a, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextOrVisitor<'a, T>(std::marker::PhantomData<(&'a (), T)>);

        impl<'de: 'a, 'a, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for TextOrVisitor<'a, T> {
            type Value = TextOr<'a, T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                text: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(TextOr::Text(std::borrow::Cow::Borrowed(text)))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(TextOr::Text(std::borrow::Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(TextOr::Text(std::borrow::Cow::Owned(text)))
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> Result<Self::Value, S::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(TextOr::List(items))
            }
        }

        deserializer.deserialize_any(TextOrVisitor(std::marker::PhantomData))
    }
}

impl<T: serde::Serialize> serde::Serialize for TextOr<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TextOr::Text(text) => serializer.serialize_str(text),
            TextOr::List(items) => items.serialize(serializer),
        }
    }
}

/// A JSON string literal, quotes and escapes included, ready to be written into another JSON
/// document as it is: borrowed from the provider's bytes when it can be, owned when the
/// gateway had to make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonStr<'a>(std::borrow::Cow<'a, str>);

impl<'a> JsonStr<'a> {
    /// A literal taken from JSON input (`"a\nb"`). `None` if `raw` is not a string.
    pub fn from_raw(raw: &'a RawValue) -> Option<Self> {
        raw.get()
            .starts_with('"')
            .then(|| JsonStr(std::borrow::Cow::Borrowed(raw.get())))
    }

    /// A literal for plain text, escaped here.
    pub fn from_text(text: &str) -> JsonStr<'static> {
        JsonStr(std::borrow::Cow::Owned(
            serde_json::to_string(text).expect("a string serialises"),
        ))
    }

    /// The literal, with its quotes.
    pub fn as_literal(&self) -> &str {
        &self.0
    }

    /// The literal with escapes resolved.
    pub fn decode(&self) -> std::borrow::Cow<'_, str> {
        serde_json::from_str(&self.0).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.len() <= 2
    }

    pub fn into_owned(self) -> JsonStr<'static> {
        JsonStr(std::borrow::Cow::Owned(self.0.into_owned()))
    }
}

/// Object fields kept as written (`key`, raw JSON value), in order; serialises as a map, so it
/// can be flattened into a struct being written.
#[derive(Debug, Default, Clone)]
pub struct RawFields<'a>(pub Vec<(std::borrow::Cow<'a, str>, &'a RawValue)>);

impl<'a> RawFields<'a> {
    pub fn push(&mut self, key: std::borrow::Cow<'a, str>, value: &'a RawValue) {
        self.0.push((key, value));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(key, _)| key.as_ref())
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| *value)
    }
}

impl serde::Serialize for RawFields<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}
