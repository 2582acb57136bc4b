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
