//! Virtual keys on the request path: every key the store holds, in memory, by the SHA-256 of
//! the key, so a request is checked without a database round trip; the management API updates
//! the cache at once when it changes a key.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

use base64::Engine;
use sha2::{Digest, Sha256};
use tollgate_core::error::GatewayError;
use tollgate_store::{EntityKind, KeyRecord};

use crate::budgets::{Budget, BudgetCheck};
use crate::directory::ModelAccess;

/// A virtual key as a request sees it.
#[derive(Debug)]
pub struct VirtualKey {
    pub record: KeyRecord,
    pub access: ModelAccess,
    pub budget: Option<Budget>,
    /// Its budgets for single models (`model_max_budget`), by model name.
    pub model_budgets: Vec<(String, Budget)>,
}

impl VirtualKey {
    pub fn new(record: KeyRecord) -> Self {
        VirtualKey {
            access: ModelAccess::new(&record.models),
            budget: Budget::of(&record.budget),
            model_budgets: Budget::per_model(&record),
            record,
        }
    }

    /// The key's budget for `model`, if it has one.
    pub fn model_budget(&self, model: &str) -> Option<BudgetCheck<'_>> {
        let (model, budget) = self.model_budgets.iter().find(|(name, _)| name == model)?;
        Some(BudgetCheck {
            kind: EntityKind::KeyModel,
            id: Cow::Owned(key_model_id(&self.record.token, model)),
            label: Cow::Owned(format!("key {} on model {model}", self.record.key_name)),
            budget: *budget,
        })
    }

    /// Refuses a blocked or expired key (401, as LiteLLM answers).
    pub fn check_usable(&self, now_ms: i64) -> Result<(), GatewayError> {
        if self.record.blocked {
            return Err(GatewayError::unauthorized(format!(
                "Key `{}` is blocked.",
                self.record.key_name
            ))
            .with_code("key_blocked"));
        }
        if self
            .record
            .expires_at
            .is_some_and(|expires| expires <= now_ms)
        {
            return Err(GatewayError::unauthorized(format!(
                "Key `{}` has expired.",
                self.record.key_name
            ))
            .with_code("key_expired"));
        }
        Ok(())
    }
}

/// How the budget book and the store name a key's spend on one model.
pub fn key_model_id(token: &str, model: &str) -> String {
    format!("{token}/{model}")
}

/// Hashes a key's SHA-256 by its first eight bytes: a digest is uniform already, and only
/// stored keys are in the map, so no caller can crowd a bucket. (SipHash over 32 bytes was a
/// measurable share of a virtual-key request.)
#[derive(Default)]
struct DigestHasher(u64);

type ByDigest = HashMap<[u8; 32], Arc<VirtualKey>, BuildHasherDefault<DigestHasher>>;

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let taken = bytes.len().min(8);
        word[..taken].copy_from_slice(&bytes[..taken]);
        self.0 ^= u64::from_le_bytes(word);
    }

    /// Slices hash their length first; every digest has the same one.
    fn write_usize(&mut self, _: usize) {}
}

/// Every virtual key, by the SHA-256 of the key.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: RwLock<ByDigest>,
}

impl KeyCache {
    pub fn new(records: impl IntoIterator<Item = KeyRecord>) -> Self {
        let cache = KeyCache::default();
        for record in records {
            cache.put(record);
        }
        cache
    }

    pub fn get(&self, digest: &[u8; 32]) -> Option<Arc<VirtualKey>> {
        self.read().get(digest).cloned()
    }

    /// Adds or replaces a key (records whose token is not a SHA-256 are ignored).
    pub fn put(&self, record: KeyRecord) {
        if let Some(digest) = token_digest(&record.token) {
            self.write()
                .insert(digest, Arc::new(VirtualKey::new(record)));
        }
    }

    pub fn remove(&self, token: &str) {
        if let Some(digest) = token_digest(token) {
            self.write().remove(&digest);
        }
    }

    /// `put`, unless the key held was changed later (by this instance, while the record was
    /// being read from the store).
    pub fn put_unless_newer(&self, record: KeyRecord) {
        let Some(digest) = token_digest(&record.token) else {
            return;
        };
        let mut keys = self.write();
        if keys
            .get(&digest)
            .is_none_or(|held| held.record.updated_at <= record.updated_at)
        {
            keys.insert(digest, Arc::new(VirtualKey::new(record)));
        }
    }

    /// `remove`, unless the key held was changed after `at_ms`.
    pub fn remove_unless_newer(&self, token: &str, at_ms: i64) {
        let Some(digest) = token_digest(token) else {
            return;
        };
        let mut keys = self.write();
        if keys
            .get(&digest)
            .is_some_and(|held| held.record.updated_at <= at_ms)
        {
            keys.remove(&digest);
        }
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// The keys that have a budget of their own or name a shared one.
    pub fn budgeted(&self) -> Vec<Arc<VirtualKey>> {
        self.read()
            .values()
            .filter(|key| {
                key.budget.is_some()
                    || key.record.budget.budget_id.is_some()
                    || !key.model_budgets.is_empty()
            })
            .cloned()
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ByDigest> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ByDigest> {
        self.keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A new key: `sk-` and 32 URL-safe characters (24 bytes from the operating system's CSPRNG).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source works");
    format!(
        "sk-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a key: its SHA-256, in hex (LiteLLM's).
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// A key as lists show it: `sk-...` and its last four characters.
pub fn mask_key(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-...{tail}")
}

/// A key given to the management API, as a stored token: `sk-…` keys are hashed, anything
/// else is taken as a token already.
pub fn token_of(key_or_token: &str) -> String {
    if key_or_token.starts_with("sk-") {
        hash_key(key_or_token)
    } else {
        key_or_token.to_ascii_lowercase()
    }
}

/// Now, as key records count time: milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn token_digest(token: &str) -> Option<[u8; 32]> {
    if token.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (index, pair) in token.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        digest[index] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(digest)
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    pub(crate) fn record(models: &[&str]) -> KeyRecord {
        KeyRecord {
            token: hash_key("sk-test"),
            key_name: mask_key("sk-test"),
            key_alias: None,
            user_id: None,
            team_id: None,
            organization_id: None,
            models: models.iter().map(|m| m.to_string()).collect(),
            aliases: json!({"fast": "gpt-4o-mini"}).as_object().unwrap().clone(),
            metadata: Default::default(),
            tags: vec![],
            permissions: Default::default(),
            tpm_limit: None,
            rpm_limit: None,
            max_parallel_requests: None,
            blocked: false,
            expires_at: None,
            created_at: 0,
            updated_at: 0,
            created_by: None,
            budget: Default::default(),
            model_max_budget: Default::default(),
        }
    }

    #[test]
    fn keys_are_random_long_and_stored_as_litellm_hashes() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert!(a.starts_with("sk-") && a.len() == 35, "{a}");
        // LiteLLM's token for a key is the hex SHA-256 of the whole key.
        assert_eq!(
            hash_key("sk-1234"),
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
        assert_eq!(mask_key("sk-abcdefgh"), "sk-...efgh");
        assert_eq!(token_of("sk-abc"), hash_key("sk-abc"));
        assert_eq!(token_of("ABCDEF"), "abcdef");
    }

    #[test]
    fn blocked_and_expired_keys_are_refused() {
        let mut blocked = record(&[]);
        blocked.blocked = true;
        assert_eq!(
            VirtualKey::new(blocked)
                .check_usable(0)
                .unwrap_err()
                .code
                .as_deref(),
            Some("key_blocked")
        );
        let mut expired = record(&[]);
        expired.expires_at = Some(1_000);
        let expired = VirtualKey::new(expired);
        assert!(expired.check_usable(999).is_ok());
        assert_eq!(
            expired.check_usable(1_000).unwrap_err().code.as_deref(),
            Some("key_expired")
        );
    }

    #[test]
    fn the_cache_follows_puts_and_removes() {
        let cache = KeyCache::new([record(&[])]);
        let digest: [u8; 32] = Sha256::digest(b"sk-test").into();
        assert!(cache.get(&digest).is_some());
        cache.remove(&hash_key("sk-test"));
        assert!(cache.get(&digest).is_none());
    }
}
