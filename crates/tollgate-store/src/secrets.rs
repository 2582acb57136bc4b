//! Provider secrets at rest: the fields of a stored deployment that hold credentials are
//! sealed with ChaCha20-Poly1305 under a key derived (SHA-256) from the operator's salt key,
//! each with a fresh random nonce. A sealed value reads `enc:v1:` + base64url(nonce ‖
//! ciphertext ‖ tag), so a value stored before encryption, or written by hand, is still told
//! apart.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Fields whose values are credentials: sealed at rest, masked in the audit log and in
/// answers.
pub const SECRET_FIELDS: &[&str] = &[
    "api_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_web_identity_token",
    "vertex_credentials",
    "password",
    "client_secret",
    "master_key",
];

const PREFIX: &str = "enc:v1:";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("`{0}` cannot be decrypted: it was sealed under another salt key, or altered")]
    Unreadable(String),
}

/// Seals and opens secrets under one salt key.
pub struct SecretBox {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox")
    }
}

impl SecretBox {
    pub fn new(salt_key: &str) -> SecretBox {
        let digest = Sha256::digest(salt_key.as_bytes());
        let key = UnboundKey::new(&CHACHA20_POLY1305, &digest).expect("a 32-byte key");
        SecretBox {
            key: LessSafeKey::new(key),
            random: SystemRandom::new(),
        }
    }

    pub fn seal(&self, secret: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .expect("the operating system's random source works");
        let mut sealed = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::empty(),
                &mut sealed,
            )
            .expect("sealing cannot fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// The secret in `value`; a value that was never sealed is returned as it is.
    pub fn open(&self, field: &str, value: &str) -> Result<String, SealError> {
        let Some(encoded) = value.strip_prefix(PREFIX) else {
            return Ok(value.to_owned());
        };
        let unreadable = || SealError::Unreadable(field.to_owned());
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| unreadable())?;
        if bytes.len() < NONCE_LEN {
            return Err(unreadable());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unreadable())?;
        let mut sealed = sealed.to_vec();
        let opened = self
            .key
            .open_in_place(nonce, ring::aead::Aad::empty(), &mut sealed)
            .map_err(|_| unreadable())?;
        String::from_utf8(opened.to_vec()).map_err(|_| unreadable())
    }

    /// `params` with every secret field's text sealed.
    pub fn seal_fields(&self, params: &Map<String, Value>) -> Map<String, Value> {
        let mut sealed = params.clone();
        for (name, value) in sealed.iter_mut() {
            if let (true, Value::String(text)) = (SECRET_FIELDS.contains(&name.as_str()), &*value) {
                *value = Value::String(self.seal(text));
            }
        }
        sealed
    }

    /// `params` with every sealed secret field opened.
    pub fn open_fields(
        &self,
        params: &Map<String, Value>,
    ) -> Result<Map<String, Value>, SealError> {
        let mut opened = params.clone();
        for (name, value) in opened.iter_mut() {
            if let Value::String(text) = &*value {
                *value = Value::String(self.open(name, text)?);
            }
        }
        Ok(opened)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_seal_and_open_under_the_same_key_only() {
        let sealer = SecretBox::new("salt-one");
        let sealed = sealer.seal("sk-provider");
        assert!(sealed.starts_with("enc:v1:") && !sealed.contains("sk-provider"));
        assert_ne!(
            sealed,
            sealer.seal("sk-provider"),
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open("api_key", &sealed).unwrap(), "sk-provider");
        assert!(SecretBox::new("salt-two").open("api_key", &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        assert!(sealer.open("api_key", &tampered).is_err());
        assert_eq!(sealer.open("api_key", "plain").unwrap(), "plain");
    }

    #[test]
    fn only_secret_fields_are_sealed() {
        let sealer = SecretBox::new("salt");
        let params = json!({"model": "openai/gpt-4o", "api_key": "sk-x", "rpm": 10});
        let sealed = sealer.seal_fields(params.as_object().unwrap());
        assert_eq!(sealed["model"], "openai/gpt-4o");
        assert_eq!(sealed["rpm"], 10);
        assert!(sealed["api_key"].as_str().unwrap().starts_with("enc:v1:"));
        assert_eq!(
            &sealer.open_fields(&sealed).unwrap(),
            params.as_object().unwrap()
        );
    }
}
