//! OAuth access tokens for Vertex AI, from a service-account key (a signed JWT exchanged at
//! the key's `token_uri`), from `gcloud` user credentials (a refresh token), from the
//! metadata server of the VM or pod the gateway runs on, or through workload identity
//! federation (an outside token exchanged at Google's STS, then for a service account's).
//!
//! A token is fetched on first use and reused until five minutes before it expires; one
//! request refreshes it while the others wait for that one fetch. A request never holds a
//! lock across the network except the one doing the refresh.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::time::Instant;
use tollgate_core::config::{GoogleCredentials, SubjectToken, SubjectTokenSource};
use tollgate_core::error::GatewayError;
use url::form_urlencoded;

use crate::client::{ClientPool, ClientSet};

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// A token is replaced this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct TokenSource {
    grant: Grant,
    token_uri: Uri,
    clients: Arc<ClientSet>,
    current: RwLock<Option<Token>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

enum Grant {
    ServiceAccount {
        client_email: String,
        key_id: Option<String>,
        key: Box<RsaKeyPair>,
    },
    RefreshToken {
        form: SecretString,
    },
    MetadataServer,
    ExternalAccount(Box<ExternalAccount>),
}

struct ExternalAccount {
    audience: String,
    subject_token_type: String,
    subject_token: SubjectToken,
    /// For a subject token read from a URL.
    subject_clients: Option<(Uri, Arc<ClientSet>)>,
    /// IAM Credentials' `generateAccessToken` for the service account to act as.
    impersonation: Option<(Uri, Arc<ClientSet>)>,
}

#[derive(Clone)]
struct Token {
    header: HeaderValue,
    refresh_at: Instant,
    expires_at: Instant,
}

impl Token {
    /// A token that lives `lifetime` from now, refreshed five minutes before (or halfway, for
    /// short-lived ones).
    fn new(header: HeaderValue, lifetime: Duration) -> Token {
        let now = Instant::now();
        Token {
            header,
            refresh_at: now + lifetime.saturating_sub(REFRESH_MARGIN).max(lifetime / 2),
            expires_at: now + lifetime,
        }
    }
}

impl TokenSource {
    /// Checks the credentials (the private key must parse) and prepares the token endpoint's
    /// client. Errors are reasons, for the caller to attach to the config field.
    pub(crate) fn new(
        credentials: &GoogleCredentials,
        pool: &ClientPool,
        connect_timeout: Option<Duration>,
    ) -> Result<TokenSource, String> {
        let (grant, token_uri) = match credentials {
            GoogleCredentials::ServiceAccount {
                client_email,
                private_key_id,
                private_key,
                token_uri,
            } => {
                let der = PrivateKeyDer::from_pem_slice(private_key.expose_secret().as_bytes())
                    .map_err(|err| {
                        format!("the service account's private_key is unreadable: {err}")
                    })?;
                let PrivateKeyDer::Pkcs8(pkcs8) = der else {
                    return Err("the service account's private_key is not a PKCS#8 key".into());
                };
                let key = RsaKeyPair::from_pkcs8(pkcs8.secret_pkcs8_der()).map_err(|err| {
                    format!("the service account's private_key is not a usable RSA key: {err}")
                })?;
                let grant = Grant::ServiceAccount {
                    client_email: client_email.clone(),
                    key_id: private_key_id.clone(),
                    key: Box::new(key),
                };
                (grant, token_uri.clone())
            }
            GoogleCredentials::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => {
                let form = form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "refresh_token")
                    .append_pair("client_id", client_id)
                    .append_pair("client_secret", client_secret.expose_secret())
                    .append_pair("refresh_token", refresh_token.expose_secret())
                    .finish();
                let grant = Grant::RefreshToken {
                    form: SecretString::from(form),
                };
                (grant, token_uri.clone())
            }
            GoogleCredentials::MetadataServer { token_uri } => {
                (Grant::MetadataServer, token_uri.clone())
            }
            GoogleCredentials::ExternalAccount {
                audience,
                subject_token_type,
                token_uri,
                subject_token,
                impersonation_url,
            } => {
                let endpoint = |url: &str, what: &str| {
                    let uri = Uri::try_from(url)
                        .map_err(|err| format!("{what} `{url}` is not a valid URL: {err}"))?;
                    let clients = pool.client_set(&uri, connect_timeout);
                    Ok::<_, String>((uri, clients))
                };
                let subject_clients = match &subject_token.source {
                    SubjectTokenSource::Url { url, .. } => {
                        Some(endpoint(url, "credential_source.url")?)
                    }
                    SubjectTokenSource::File(_) => None,
                };
                let impersonation = impersonation_url
                    .as_deref()
                    .map(|url| endpoint(url, "service_account_impersonation_url"))
                    .transpose()?;
                let grant = Grant::ExternalAccount(Box::new(ExternalAccount {
                    audience: audience.clone(),
                    subject_token_type: subject_token_type.clone(),
                    subject_token: subject_token.clone(),
                    subject_clients,
                    impersonation,
                }));
                (grant, token_uri.clone())
            }
        };
        let token_uri = Uri::try_from(token_uri.as_str())
            .map_err(|err| format!("token_uri `{token_uri}` is not a valid URL: {err}"))?;
        Ok(TokenSource {
            grant,
            clients: pool.client_set(&token_uri, connect_timeout),
            token_uri,
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// `Bearer <token>`, fetching or refreshing the token when due.
    pub(crate) async fn authorization(&self) -> Result<HeaderValue, GatewayError> {
        let now = Instant::now();
        if let Some(token) = self.cached().filter(|token| now < token.refresh_at) {
            return Ok(token.header);
        }
        let _refreshing = self.refreshing.lock().await;
        let now = Instant::now();
        let cached = self.cached();
        if let Some(token) = cached.as_ref().filter(|token| now < token.refresh_at) {
            return Ok(token.header.clone());
        }
        match self.fetch().await {
            Ok(token) => {
                let header = token.header.clone();
                *self.current.write().expect("token lock poisoned") = Some(token);
                Ok(header)
            }
            // A token that is due for refresh but not yet expired still works.
            Err(err) => match cached.filter(|token| now < token.expires_at) {
                Some(token) => {
                    tracing::warn!(error = %err, "refreshing the Vertex AI access token failed; using the current one until it expires");
                    Ok(token.header)
                }
                None => Err(err),
            },
        }
    }

    fn cached(&self) -> Option<Token> {
        self.current.read().expect("token lock poisoned").clone()
    }

    async fn fetch(&self) -> Result<Token, GatewayError> {
        let mut request = match &self.grant {
            Grant::ServiceAccount {
                client_email,
                key_id,
                key,
            } => {
                let assertion = self.signed_assertion(client_email, key_id.as_deref(), key)?;
                let form = form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                    .append_pair("assertion", &assertion)
                    .finish();
                form_request(form)
            }
            Grant::RefreshToken { form } => form_request(form.expose_secret().to_owned()),
            Grant::MetadataServer => {
                let mut request = Request::new(Full::new(Bytes::new()));
                request.headers_mut().insert(
                    http::header::HeaderName::from_static("metadata-flavor"),
                    HeaderValue::from_static("Google"),
                );
                request
            }
            Grant::ExternalAccount(account) => {
                let subject_token = self.subject_token(account).await?;
                let form = form_urlencoded::Serializer::new(String::new())
                    .append_pair(
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    )
                    .append_pair("audience", &account.audience)
                    .append_pair("scope", SCOPE)
                    .append_pair(
                        "requested_token_type",
                        "urn:ietf:params:oauth:token-type:access_token",
                    )
                    .append_pair("subject_token", subject_token.expose_secret())
                    .append_pair("subject_token_type", &account.subject_token_type)
                    .finish();
                form_request(form)
            }
        };
        *request.uri_mut() = self.token_uri.clone();

        let (status, body) = self.call(&self.token_uri, &self.clients, request).await?;
        let failed = |reason: String| self.failed(&self.token_uri, reason);
        if !status.is_success() {
            // Google's token errors (`invalid_grant`, …) name the problem and carry no secrets.
            let detail = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
            return Err(failed(format!("HTTP {status}: {detail}")));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|err| failed(format!("unreadable token response: {err}")))?;
        let mut header = HeaderValue::try_from(format!("Bearer {}", parsed.access_token))
            .map_err(|_| failed("the access token is not a valid header value".into()))?;
        header.set_sensitive(true);
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
        let token = Token::new(header, lifetime);
        match &self.grant {
            Grant::ExternalAccount(account) => match &account.impersonation {
                Some((uri, clients)) => self.impersonate(uri, clients, &token).await,
                None => Ok(token),
            },
            _ => Ok(token),
        }
    }

    fn failed(&self, endpoint: &Uri, reason: String) -> GatewayError {
        GatewayError::upstream_unreachable(format!(
            "Could not get a Vertex AI access token from {}: {reason}",
            endpoint.host().unwrap_or_default()
        ))
    }

    /// One call to a token endpoint: its status and whole body.
    async fn call(
        &self,
        endpoint: &Uri,
        clients: &ClientSet,
        request: Request<Full<Bytes>>,
    ) -> Result<(http::StatusCode, Bytes), GatewayError> {
        let failed = |reason: String| self.failed(endpoint, reason);
        let exchange = async {
            let response = clients
                .pick()
                .request(request)
                .await
                .map_err(|err| failed(crate::root_cause(&err)))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|err| failed(err.to_string()))?
                .to_bytes();
            Ok::<_, GatewayError>((status, body))
        };
        tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .map_err(|_| failed(format!("no answer within {}s", FETCH_TIMEOUT.as_secs())))?
    }

    /// The workload's own token: a file's text, or what a URL answers (text, or one field of
    /// its JSON), read again at each exchange.
    async fn subject_token(&self, account: &ExternalAccount) -> Result<SecretString, GatewayError> {
        let text = match (&account.subject_token.source, &account.subject_clients) {
            (SubjectTokenSource::File(path), _) => {
                std::fs::read_to_string(path).map_err(|err| {
                    self.failed(
                        &self.token_uri,
                        format!(
                            "cannot read the subject token from `{}`: {err}",
                            path.display()
                        ),
                    )
                })?
            }
            (SubjectTokenSource::Url { headers, .. }, Some((uri, clients))) => {
                let mut request = Request::new(Full::new(Bytes::new()));
                *request.uri_mut() = uri.clone();
                for (name, value) in headers {
                    if let (Ok(name), Ok(value)) = (
                        http::header::HeaderName::try_from(name.as_str()),
                        HeaderValue::try_from(value.as_str()),
                    ) {
                        request.headers_mut().insert(name, value);
                    }
                }
                let (status, body) = self.call(uri, clients, request).await?;
                if !status.is_success() {
                    return Err(self.failed(uri, format!("HTTP {status} for the subject token")));
                }
                String::from_utf8_lossy(&body).into_owned()
            }
            (SubjectTokenSource::Url { .. }, None) => {
                return Err(GatewayError::internal(
                    "the subject token URL has no client",
                ));
            }
        };
        let token = match &account.subject_token.json_field {
            None => text.trim().to_owned(),
            Some(field) => serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|value| value.get(field)?.as_str().map(str::to_owned))
                .ok_or_else(|| {
                    self.failed(
                        &self.token_uri,
                        format!("the subject token source's JSON has no `{field}`"),
                    )
                })?,
        };
        Ok(SecretString::from(token))
    }

    /// The service account's token, asked for with the federated one.
    async fn impersonate(
        &self,
        uri: &Uri,
        clients: &ClientSet,
        federated: &Token,
    ) -> Result<Token, GatewayError> {
        let body = json!({"scope": [SCOPE]}).to_string();
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, federated.header.clone());
        let (status, body) = self.call(uri, clients, request).await?;
        let failed = |reason: String| self.failed(uri, reason);
        if !status.is_success() {
            let detail = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
            return Err(failed(format!("HTTP {status}: {detail}")));
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Impersonated {
            access_token: String,
            expire_time: String,
        }
        let parsed: Impersonated = serde_json::from_slice(&body)
            .map_err(|err| failed(format!("unreadable generateAccessToken answer: {err}")))?;
        let mut header = HeaderValue::try_from(format!("Bearer {}", parsed.access_token))
            .map_err(|_| failed("the access token is not a valid header value".into()))?;
        header.set_sensitive(true);
        let expires_ms = tollgate_core::calendar::parse_iso8601(&parsed.expire_time)
            .ok_or_else(|| failed(format!("unreadable expireTime `{}`", parsed.expire_time)))?;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let lifetime = u64::try_from(i128::from(expires_ms) - now_ms as i128)
            .map(Duration::from_millis)
            .unwrap_or_default();
        Ok(Token::new(header, lifetime))
    }

    /// The RS256 JWT a service account trades for an access token.
    fn signed_assertion(
        &self,
        client_email: &str,
        key_id: Option<&str>,
        key: &RsaKeyPair,
    ) -> Result<String, GatewayError> {
        let issued_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let header = match key_id {
            Some(kid) => json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            None => json!({"alg": "RS256", "typ": "JWT"}),
        };
        let claims = json!({
            "iss": client_email,
            "scope": SCOPE,
            "aud": self.token_uri.to_string(),
            "iat": issued_at,
            "exp": issued_at + 3600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| GatewayError::internal("Signing the service-account token request failed."))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

fn form_request(form: String) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(Bytes::from(form)));
    *request.method_mut() = Method::POST;
    request.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    request
}
