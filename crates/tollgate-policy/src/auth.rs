//! Gateway authentication: the credential a client presents, checked against the master key
//! and then the virtual keys.
//!
//! Keys are handled as SHA-256 digests: the master key is compared in constant time, so
//! neither timing nor length reveals how much of a guess was right; virtual keys are looked up
//! by digest (which says nothing about the key). No key itself is kept beyond start-up.

use std::sync::Arc;

use http::header::{AUTHORIZATION, HeaderName};
use http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tollgate_core::error::{ErrorKind, GatewayError, Origin};

use crate::keys::{KeyCache, VirtualKey, now_ms};

/// Who the caller is, once authenticated.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No master key is configured: the gateway is open.
    Anonymous,
    /// The caller presented the master key.
    Master,
    /// The caller presented a virtual key, usable now.
    Key(Arc<VirtualKey>),
}

impl Caller {
    /// The model group a request for `model` goes to, when the caller may use it.
    pub fn resolve_model<'m>(&'m self, model: &'m str) -> Result<&'m str, GatewayError> {
        match self {
            Caller::Key(key) => key.resolve_model(model),
            Caller::Anonymous | Caller::Master => Ok(model),
        }
    }

    /// Whether the caller may use `model` (for listing models).
    pub fn may_use(&self, model: &str) -> bool {
        match self {
            Caller::Key(key) => key.may_use(model),
            Caller::Anonymous | Caller::Master => true,
        }
    }

    /// Refuses everyone but the master key (and everyone on an open gateway, which has no
    /// admin): the management API.
    pub fn require_admin(&self) -> Result<(), GatewayError> {
        match self {
            Caller::Master => Ok(()),
            Caller::Anonymous => Err(GatewayError::new(
                StatusCode::FORBIDDEN,
                Origin::Client,
                ErrorKind::Permission,
                "The management API needs general_settings.master_key to be configured.",
            )),
            Caller::Key(_) => Err(GatewayError::new(
                StatusCode::FORBIDDEN,
                Origin::Client,
                ErrorKind::Permission,
                "This route needs the master key.",
            )),
        }
    }
}

/// Headers that may carry the key, after any custom one, in LiteLLM's order of precedence.
const KEY_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-litellm-api-key"),
    HeaderName::from_static("api-key"),
    HeaderName::from_static("x-api-key"),
];

#[derive(Debug)]
pub struct Authenticator {
    master_key_digest: Option<[u8; 32]>,
    custom_header: Option<HeaderName>,
    pub keys: KeyCache,
}

impl Authenticator {
    /// `custom_header`: `general_settings.litellm_key_header_name`, checked first.
    pub fn new(master_key: Option<&SecretString>, custom_header: Option<HeaderName>) -> Self {
        Authenticator {
            master_key_digest: master_key.map(|key| digest(key.expose_secret())),
            custom_header,
            keys: KeyCache::default(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.master_key_digest.is_none()
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, GatewayError> {
        let Some(expected) = &self.master_key_digest else {
            return Ok(Caller::Anonymous);
        };
        let presented = digest(presented_key(headers, self.custom_header.as_ref())?);
        if bool::from(presented.ct_eq(expected)) {
            return Ok(Caller::Master);
        }
        match self.keys.get(&presented) {
            Some(key) => {
                key.check_usable(now_ms())?;
                Ok(Caller::Key(key))
            }
            None => Err(GatewayError::unauthorized("Invalid API key.")),
        }
    }
}

fn presented_key<'a>(
    headers: &'a HeaderMap,
    custom_header: Option<&HeaderName>,
) -> Result<&'a str, GatewayError> {
    let header_text = |name: &HeaderName| -> Result<Option<&'a str>, GatewayError> {
        match headers.get(name) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .map(|text| Some(strip_bearer(text.trim())))
                .map_err(|_| {
                    GatewayError::unauthorized(format!("The `{name}` header is not valid text."))
                }),
        }
    };

    if let Some(name) = custom_header
        && let Some(key) = header_text(name)?
    {
        return non_empty(key);
    }
    if let Some(key) = header_text(&KEY_HEADERS[0])? {
        return non_empty(key);
    }
    if let Some(value) = headers.get(AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| GatewayError::unauthorized("The Authorization header is not valid text."))?
            .trim();
        let scheme_len = "bearer ".len();
        return match text.get(..scheme_len) {
            Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => {
                non_empty(text[scheme_len..].trim())
            }
            _ => Err(GatewayError::unauthorized(
                "Malformed Authorization header: expected `Authorization: Bearer <key>`.",
            )),
        };
    }
    for name in &KEY_HEADERS[1..] {
        if let Some(key) = header_text(name)? {
            return non_empty(key);
        }
    }
    Err(GatewayError::unauthorized(
        "Missing API key: pass it as `Authorization: Bearer <key>` (or in an `api-key` / `x-api-key` header).",
    )
    .with_code("missing_api_key"))
}

fn strip_bearer(text: &str) -> &str {
    match text.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => text[7..].trim(),
        _ => text,
    }
}

fn non_empty(key: &str) -> Result<&str, GatewayError> {
    if key.is_empty() {
        Err(GatewayError::unauthorized("The API key is empty.").with_code("missing_api_key"))
    } else {
        Ok(key)
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(
            Some(&SecretString::from("sk-master")),
            Some(HeaderName::from_static("x-custom-key")),
        )
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn accepts_the_master_key_in_every_supported_header() {
        for pair in [
            ("authorization", "Bearer sk-master"),
            ("authorization", "bearer   sk-master"),
            ("api-key", "sk-master"),
            ("x-api-key", "sk-master"),
            ("x-litellm-api-key", "Bearer sk-master"),
            ("x-custom-key", "sk-master"),
        ] {
            assert!(
                matches!(
                    auth().authenticate(&headers(&[pair])).unwrap(),
                    Caller::Master
                ),
                "{pair:?}"
            );
        }
    }

    #[test]
    fn refuses_missing_wrong_and_malformed_keys() {
        let missing = auth().authenticate(&headers(&[])).unwrap_err();
        assert_eq!(missing.status.as_u16(), 401);
        assert_eq!(missing.code.as_deref(), Some("missing_api_key"));

        let wrong = auth()
            .authenticate(&headers(&[("authorization", "Bearer sk-master2")]))
            .unwrap_err();
        assert_eq!(wrong.code.as_deref(), Some("invalid_api_key"));

        let malformed = auth()
            .authenticate(&headers(&[("authorization", "Basic abc")]))
            .unwrap_err();
        assert!(malformed.message.contains("Malformed"));
    }

    #[test]
    fn an_open_gateway_needs_no_key() {
        let open = Authenticator::new(None, None);
        assert!(open.is_open());
        assert!(matches!(
            open.authenticate(&headers(&[])).unwrap(),
            Caller::Anonymous
        ));
    }
}
