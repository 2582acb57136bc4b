//! Temporary AWS credentials for signing Bedrock requests: from STS `AssumeRoleWithWebIdentity`
//! (EKS IAM roles for service accounts) or `AssumeRole` (signed with another source's keys),
//! from the ECS / EKS Pod Identity container endpoint, from the EC2 instance metadata service
//! (IMDSv2), or from a profile's `credential_process`. Which one a deployment uses is decided
//! when the config is read (`tollgate_core::config::AwsCredentialSource`).
//!
//! Credentials are fetched on first use and reused until five minutes before they expire; one
//! request refreshes them while the others wait for that one fetch. A request never holds a
//! lock across the network except the one doing the fetch (as `google_auth` does).

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tollgate_core::config::{AwsCredentialSource, SecretSource};
use tollgate_core::error::GatewayError;
use url::form_urlencoded;

use crate::aws_sign::AwsSigner;
use crate::client::{ClientPool, ClientSet};

/// Credentials are replaced this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// How long credentials without an `Expiration` are used before they are fetched again.
const UNDATED_LIFETIME: Duration = Duration::from_secs(3600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// The instance metadata service answers in milliseconds when it is there at all; off EC2 (or
/// past the hop limit) nothing answers, so it is given less time.
const IMDS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// What IMDSv2 session tokens are asked to live (the most it allows: 6 hours).
const IMDS_TOKEN_TTL_SECONDS: &str = "21600";
/// No credential answer is anywhere near this large.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const PROVIDER_NAME: &str = "tollgate";

const IMDS_TOKEN_TTL: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token-ttl-seconds");
const IMDS_TOKEN: HeaderName = HeaderName::from_static("x-aws-ec2-metadata-token");

pub(crate) struct TemporaryCredentials {
    fetch: Fetch,
    /// The source as logs and errors name it (no secrets).
    source: String,
    /// `None` for a process, which needs no connection.
    clients: Option<Arc<ClientSet>>,
    current: RwLock<Option<Cached>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

enum Fetch {
    WebIdentity {
        sts: Uri,
        role_arn: String,
        session_name: String,
        token: SecretSource,
    },
    Container {
        uri: Uri,
        authorization: Option<SecretSource>,
    },
    InstanceMetadata {
        /// The endpoint without a trailing slash.
        endpoint: String,
    },
    Process {
        command: String,
    },
    AssumeRole {
        sts: Uri,
        role_arn: String,
        session_name: String,
        external_id: Option<String>,
        /// Signs the call with the source's keys.
        signer: Box<AwsSigner>,
    },
}

#[derive(Clone)]
struct Cached {
    identity: Identity,
    fetched_at: Instant,
    refresh_at: Instant,
    expires_at: Instant,
}

/// Keys as a credentials endpoint returns them.
struct Keys {
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
    expiration: Option<SystemTime>,
}

impl TemporaryCredentials {
    /// Prepares the client for `source`'s endpoint. Errors are reasons, for the caller to
    /// attach to the config field.
    pub(crate) fn new(
        source: &AwsCredentialSource,
        pool: &ClientPool,
        connect_timeout: Option<Duration>,
    ) -> Result<TemporaryCredentials, String> {
        let uri = |url: &url::Url| {
            Uri::try_from(url.as_str()).map_err(|err| format!("`{url}` is not a valid URL: {err}"))
        };
        let (fetch, clients) = match source {
            AwsCredentialSource::Static { .. } => {
                return Err("static keys are not fetched".to_owned());
            }
            AwsCredentialSource::WebIdentity(identity) => {
                let sts = uri(&identity.sts_endpoint)?;
                let clients = pool.client_set(&sts, connect_timeout);
                let fetch = Fetch::WebIdentity {
                    sts,
                    role_arn: identity.role_arn.clone(),
                    session_name: identity.session_name.clone(),
                    token: identity.token.clone(),
                };
                (fetch, Some(clients))
            }
            AwsCredentialSource::Container {
                uri: url,
                authorization,
            } => {
                let uri = uri(url)?;
                let clients = pool.client_set(&uri, connect_timeout);
                let fetch = Fetch::Container {
                    uri,
                    authorization: authorization.clone(),
                };
                (fetch, Some(clients))
            }
            AwsCredentialSource::InstanceMetadata { endpoint } => {
                let clients = pool.client_set(&uri(endpoint)?, Some(IMDS_CONNECT_TIMEOUT));
                let endpoint = endpoint.as_str().trim_end_matches('/').to_owned();
                (Fetch::InstanceMetadata { endpoint }, Some(clients))
            }
            AwsCredentialSource::Process { command, .. } => {
                let command = command.clone();
                (Fetch::Process { command }, None)
            }
            AwsCredentialSource::AssumeRole(assume) => {
                let sts = uri(&assume.sts_endpoint)?;
                let clients = pool.client_set(&sts, connect_timeout);
                let signer = AwsSigner::for_service(
                    &assume.source,
                    &assume.region,
                    "sts",
                    pool,
                    connect_timeout,
                )?;
                let fetch = Fetch::AssumeRole {
                    sts,
                    role_arn: assume.role_arn.clone(),
                    session_name: assume.session_name.clone(),
                    external_id: assume.external_id.clone(),
                    signer: Box::new(signer),
                };
                (fetch, Some(clients))
            }
        };
        Ok(TemporaryCredentials {
            fetch,
            source: source.to_string(),
            clients,
            current: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The current credentials, fetching or refreshing them when due.
    pub(crate) async fn identity(&self) -> Result<Identity, GatewayError> {
        let asked_at = Instant::now();
        if let Some(cached) = self.cached().filter(|cached| asked_at < cached.refresh_at) {
            return Ok(cached.identity);
        }
        let _refreshing = self.refreshing.lock().await;
        let now = Instant::now();
        let cached = self.cached();
        // Fresh enough, or fetched while this request waited: credentials that expire within
        // the margin are fetched again by the next request, not by every waiting one.
        if let Some(cached) = cached.as_ref().filter(|cached| {
            now < cached.refresh_at || (cached.fetched_at >= asked_at && now < cached.expires_at)
        }) {
            return Ok(cached.identity.clone());
        }
        match self.fetch().await {
            Ok(fetched) => {
                let identity = fetched.identity.clone();
                *self.current.write().expect("credentials lock poisoned") = Some(fetched);
                Ok(identity)
            }
            // Credentials due for refresh but not yet expired still sign.
            Err(err) => match cached.filter(|cached| now < cached.expires_at) {
                Some(cached) => {
                    tracing::warn!(error = %err.message, "refreshing AWS credentials failed; using the current ones until they expire");
                    Ok(cached.identity)
                }
                None => Err(err),
            },
        }
    }

    fn cached(&self) -> Option<Cached> {
        self.current
            .read()
            .expect("credentials lock poisoned")
            .clone()
    }

    fn failed(&self, reason: impl std::fmt::Display) -> GatewayError {
        GatewayError::upstream_unreachable(format!(
            "Could not get AWS credentials from {}: {reason}",
            self.source
        ))
    }

    async fn fetch(&self) -> Result<Cached, GatewayError> {
        let timeout = match self.fetch {
            Fetch::InstanceMetadata { .. } => IMDS_FETCH_TIMEOUT,
            _ => FETCH_TIMEOUT,
        };
        let keys = tokio::time::timeout(timeout, self.fetch_keys())
            .await
            .map_err(|_| self.failed(format!("no answer within {}s", timeout.as_secs())))??;
        let now = Instant::now();
        let lifetime = match keys.expiration {
            Some(expiration) => expiration
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
            None => UNDATED_LIFETIME,
        };
        let identity = Credentials::new(
            keys.access_key_id,
            keys.secret_access_key.expose_secret().to_owned(),
            keys.session_token
                .map(|token| token.expose_secret().to_owned()),
            keys.expiration,
            PROVIDER_NAME,
        )
        .into();
        Ok(Cached {
            identity,
            fetched_at: now,
            refresh_at: now + lifetime.saturating_sub(REFRESH_MARGIN),
            expires_at: now + lifetime,
        })
    }

    async fn fetch_keys(&self) -> Result<Keys, GatewayError> {
        match &self.fetch {
            Fetch::WebIdentity {
                sts,
                role_arn,
                session_name,
                token,
            } => {
                let token = self.read_secret(token, "the web identity token")?;
                let form = form_urlencoded::Serializer::new(String::new())
                    .append_pair("Action", "AssumeRoleWithWebIdentity")
                    .append_pair("Version", "2011-06-15")
                    .append_pair("RoleArn", role_arn)
                    .append_pair("RoleSessionName", session_name)
                    .append_pair("WebIdentityToken", token.expose_secret())
                    .finish();
                let mut request = request(Method::POST, sts.clone(), Bytes::from(form));
                request.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                let (status, body) = self.exchange(request).await?;
                self.sts_keys(status, &body)
            }
            Fetch::AssumeRole {
                sts,
                role_arn,
                session_name,
                external_id,
                signer,
            } => {
                // The serializer is not `Send`: it must be gone before the first await.
                let form = {
                    let mut form = form_urlencoded::Serializer::new(String::new());
                    form.append_pair("Action", "AssumeRole")
                        .append_pair("Version", "2011-06-15")
                        .append_pair("RoleArn", role_arn)
                        .append_pair("RoleSessionName", session_name);
                    if let Some(external_id) = external_id {
                        form.append_pair("ExternalId", external_id);
                    }
                    form.finish()
                };
                let body = Bytes::from(form);
                let mut request = request(Method::POST, sts.clone(), body.clone());
                request.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                // The source's keys may be temporary too, fetched through this same path.
                Box::pin(signer.sign(&mut request, &body)).await?;
                let (status, body) = self.exchange(request).await?;
                self.sts_keys(status, &body)
            }
            Fetch::Container { uri, authorization } => {
                let mut request = request(Method::GET, uri.clone(), Bytes::new());
                request
                    .headers_mut()
                    .insert(ACCEPT, HeaderValue::from_static("application/json"));
                if let Some(authorization) = authorization {
                    let token = self.read_secret(authorization, "the authorization token")?;
                    let mut value =
                        HeaderValue::from_str(token.expose_secret().trim()).map_err(|_| {
                            self.failed("the authorization token is not a valid header value")
                        })?;
                    value.set_sensitive(true);
                    request.headers_mut().insert(AUTHORIZATION, value);
                }
                let (status, body) = self.exchange(request).await?;
                self.json_keys(status, &body)
            }
            Fetch::InstanceMetadata { endpoint } => {
                let uri = |path: &str| {
                    Uri::try_from(format!("{endpoint}{path}")).map_err(|err| {
                        self.failed(format!("`{endpoint}{path}` is not a valid URL: {err}"))
                    })
                };
                let mut put = request(Method::PUT, uri("/latest/api/token")?, Bytes::new());
                put.headers_mut().insert(
                    IMDS_TOKEN_TTL,
                    HeaderValue::from_static(IMDS_TOKEN_TTL_SECONDS),
                );
                let (status, body) = self.exchange(put).await?;
                if !status.is_success() {
                    return Err(self.failed(format!("HTTP {status} for an IMDSv2 session token")));
                }
                let mut token = HeaderValue::from_bytes(body.trim_ascii()).map_err(|_| {
                    self.failed("the IMDSv2 session token is not a valid header value")
                })?;
                token.set_sensitive(true);
                let get = |path: &str| -> Result<Request<Full<Bytes>>, GatewayError> {
                    let mut request = request(Method::GET, uri(path)?, Bytes::new());
                    request.headers_mut().insert(IMDS_TOKEN, token.clone());
                    Ok(request)
                };
                const ROLES: &str = "/latest/meta-data/iam/security-credentials/";
                let (status, body) = self.exchange(get(ROLES)?).await?;
                if status == StatusCode::NOT_FOUND {
                    return Err(self.failed("the instance has no IAM role (instance profile)"));
                }
                if !status.is_success() {
                    return Err(self.failed(format!("HTTP {status} listing the instance's role")));
                }
                let roles = String::from_utf8_lossy(&body);
                let role = roles
                    .lines()
                    .map(str::trim)
                    .find(|line| !line.is_empty())
                    .ok_or_else(|| {
                        self.failed("the instance has no IAM role (instance profile)")
                    })?;
                if !role
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
                {
                    return Err(self.failed(format!("`{role}` is not an IAM role name")));
                }
                let (status, body) = self.exchange(get(&format!("{ROLES}{role}"))?).await?;
                self.json_keys(status, &body)
            }
            Fetch::Process { command } => self.run_process(command).await,
        }
    }

    /// Runs `credential_process` through the shell, as AWS's SDKs do on Unix, and reads the
    /// keys it prints: `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken",
    /// "Expiration"}`. What it writes to stderr is shown when it fails (its first line), what
    /// it prints never.
    async fn run_process(&self, command: &str) -> Result<Keys, GatewayError> {
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|err| self.failed(format!("it could not be started: {err}")))?;
        if !output.status.success() {
            let ended = match output.status.code() {
                Some(code) => format!("it exited with code {code}"),
                None => "it was killed by a signal".to_owned(),
            };
            let stderr = String::from_utf8_lossy(&output.stderr);
            let said: String = stderr
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            return Err(self.failed(
                format!("{ended}: {said}")
                    .trim_end_matches([':', ' '])
                    .to_owned(),
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|_| self.failed("what it printed is not JSON"))?;
        if value.get("Version").and_then(serde_json::Value::as_u64) != Some(1) {
            return Err(self.failed("what it printed is not `Version: 1` credentials"));
        }
        let field = |name: &str| text_field(&value, name);
        self.keys(
            field("AccessKeyId"),
            field("SecretAccessKey"),
            field("SessionToken"),
            field("Expiration"),
        )
    }

    /// A `GET`/`PUT`/`POST` to a credentials endpoint: the status and the whole body.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), GatewayError> {
        let clients = self
            .clients
            .as_ref()
            .ok_or_else(|| self.failed("it has no endpoint to call"))?;
        let response = clients
            .pick()
            .request(request)
            .await
            .map_err(|err| self.failed(crate::root_cause(&err)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|err| self.failed(format!("the answer could not be read: {err}")))?
            .to_bytes();
        Ok((status, body))
    }

    /// The keys in an STS answer (`AssumeRoleResult`, `AssumeRoleWithWebIdentityResult`).
    fn sts_keys(&self, status: StatusCode, body: &[u8]) -> Result<Keys, GatewayError> {
        let text = String::from_utf8_lossy(body);
        if !status.is_success() {
            // STS's error names the problem (`InvalidIdentityToken`, `AccessDenied`) and
            // never echoes a token or key.
            let code = xml::text(&text, "Code").unwrap_or_default();
            let message = xml::text(&text, "Message").unwrap_or_default();
            return Err(self.failed(format!("HTTP {status}: {code}: {message}")));
        }
        let credentials = xml::element(&text, "Credentials")
            .ok_or_else(|| self.failed("STS's answer has no Credentials"))?;
        let field = |name: &str| xml::text(credentials, name).filter(|v| !v.is_empty());
        self.keys(
            field("AccessKeyId"),
            field("SecretAccessKey"),
            field("SessionToken"),
            field("Expiration"),
        )
    }

    /// The container endpoint's and instance metadata's JSON: `AccessKeyId`,
    /// `SecretAccessKey`, `Token`, `Expiration`.
    fn json_keys(&self, status: StatusCode, body: &[u8]) -> Result<Keys, GatewayError> {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let field = |name: &str| text_field(&value, name);
        if !status.is_success() {
            // Error answers carry a code and message at most; nothing else is shown.
            let detail = [
                field("code").or(field("Code")),
                field("message").or(field("Message")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
            return Err(self.failed(format!("HTTP {status} {detail}").trim_end().to_owned()));
        }
        if let Some(code) = field("Code").filter(|code| code != "Success") {
            return Err(self.failed(format!("the endpoint answered `{code}`")));
        }
        self.keys(
            field("AccessKeyId"),
            field("SecretAccessKey"),
            field("Token"),
            field("Expiration"),
        )
    }

    /// Keys from an answer's fields; which fields are missing is said, their values never.
    fn keys(
        &self,
        access_key_id: Option<Cow<'_, str>>,
        secret_access_key: Option<Cow<'_, str>>,
        session_token: Option<Cow<'_, str>>,
        expiration: Option<Cow<'_, str>>,
    ) -> Result<Keys, GatewayError> {
        let (Some(access_key_id), Some(secret_access_key)) = (access_key_id, secret_access_key)
        else {
            return Err(self.failed("the answer has no AccessKeyId and SecretAccessKey"));
        };
        let expiration = match expiration {
            Some(text) => {
                let ms = tollgate_core::calendar::parse_iso8601(&text)
                    .and_then(|ms| u64::try_from(ms).ok())
                    .ok_or_else(|| self.failed(format!("unreadable Expiration `{text}`")))?;
                Some(UNIX_EPOCH + Duration::from_millis(ms))
            }
            None => None,
        };
        Ok(Keys {
            access_key_id: access_key_id.into_owned(),
            secret_access_key: SecretString::from(secret_access_key.into_owned()),
            session_token: session_token.map(|token| SecretString::from(token.into_owned())),
            expiration,
        })
    }

    /// A secret given in the config, or read from its file now (tokens are rotated in place).
    fn read_secret(&self, secret: &SecretSource, what: &str) -> Result<SecretString, GatewayError> {
        match secret {
            SecretSource::Value(value) => Ok(value.clone()),
            // A small file on a local (usually in-memory) volume, read once an hour or so.
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|text| SecretString::from(text.trim().to_owned()))
                .map_err(|err| {
                    self.failed(format!(
                        "cannot read {what} from `{}`: {err}",
                        path.display()
                    ))
                }),
        }
    }
}

/// A non-empty string member of a credentials answer.
fn text_field<'v>(value: &'v serde_json::Value, name: &str) -> Option<Cow<'v, str>> {
    value
        .get(name)
        .and_then(serde_json::Value::as_str)
        .filter(|text| !text.is_empty())
        .map(Cow::Borrowed)
}

fn request(method: Method, uri: Uri, body: Bytes) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    request
}

/// Just enough XML for STS's answers: the contents of an element found by name, and an
/// element's text with XML's escapes undone. No namespaces, no validation.
pub(crate) mod xml {
    use std::borrow::Cow;

    /// The raw contents of the first `<name>` element (attributes allowed); `""` for
    /// `<name/>`; `None` when there is none or it is not closed.
    pub(crate) fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
        let mut from = 0;
        while let Some(found) = xml[from..].find('<') {
            let start = from + found + 1;
            let rest = &xml[start..];
            from = start;
            let Some(after) = rest.strip_prefix(name) else {
                continue;
            };
            // `<AccessKeyId>` and `<AccessKeyId attr="…">`, not `<AccessKeyIdX>`.
            if !after.starts_with(['>', '/', ' ', '\t', '\r', '\n']) {
                continue;
            }
            let open_end = after.find('>')?;
            if after[..open_end].ends_with('/') {
                return Some("");
            }
            let contents = &after[open_end + 1..];
            let close = format!("</{name}");
            let mut search = 0;
            while let Some(at) = contents[search..].find(&close) {
                let end = search + at;
                if contents[end + close.len()..].trim_start().starts_with('>') {
                    return Some(&contents[..end]);
                }
                search = end + close.len();
            }
            return None;
        }
        None
    }

    /// The text of the first `<name>` element, trimmed, with entities (`&amp;`, `&#38;`, …)
    /// and a CDATA section undone.
    pub(crate) fn text<'a>(xml: &'a str, name: &str) -> Option<Cow<'a, str>> {
        let raw = element(xml, name)?.trim();
        if let Some(data) = raw
            .strip_prefix("<![CDATA[")
            .and_then(|rest| rest.strip_suffix("]]>"))
        {
            return Some(Cow::Borrowed(data));
        }
        if !raw.contains('&') {
            return Some(Cow::Borrowed(raw));
        }
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            let decoded = rest.find(';').and_then(|end| {
                let entity = &rest[1..end];
                let character = match entity {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => entity
                        .strip_prefix("#x")
                        .or_else(|| entity.strip_prefix("#X"))
                        .map(|hex| u32::from_str_radix(hex, 16))
                        .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                        .and_then(Result::ok)
                        .and_then(char::from_u32),
                };
                character.map(|c| (c, end + 1))
            });
            match decoded {
                Some((character, length)) => {
                    out.push(character);
                    rest = &rest[length..];
                }
                // A bare `&` is kept as written.
                None => {
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        }
        out.push_str(rest);
        Some(Cow::Owned(out))
    }

    #[cfg(test)]
    mod tests {
        use super::{element, text};

        const ANSWER: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ai:tollgate</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/bedrock/tollgate</Arn>
      <AssumedRoleId>AROA:tollgate</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>FwoGZXIvYXdzE+token/with=signs&amp;more</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>
      <Expiration>2026-11-21T10:10:45Z</Expiration>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
    </Credentials>
    <Provider>oidc.eks.eu-west-1.amazonaws.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>ad4156e9</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#;

        #[test]
        fn sts_credentials_are_found_by_name() {
            let credentials = element(ANSWER, "Credentials").unwrap();
            assert_eq!(text(credentials, "AccessKeyId").unwrap(), "ASIAEXAMPLE");
            assert_eq!(
                text(credentials, "SecretAccessKey").unwrap(),
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
            );
            assert_eq!(
                text(credentials, "SessionToken").unwrap(),
                "FwoGZXIvYXdzE+token/with=signs&more"
            );
            assert_eq!(
                text(credentials, "Expiration").unwrap(),
                "2026-11-21T10:10:45Z"
            );
            // `<AssumedRoleId>` does not answer for `<AssumedRole…>` prefixes, nor `Arn` for
            // `AssumedRoleUser`'s children found from the top.
            assert_eq!(
                text(ANSWER, "Arn").unwrap(),
                "arn:aws:sts::123456789012:assumed-role/bedrock/tollgate"
            );
            assert!(element(ANSWER, "AssumedRole").is_none());
            assert!(element(ANSWER, "Missing").is_none());
        }

        #[test]
        fn errors_attributes_escapes_and_odd_shapes() {
            let error = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>InvalidIdentityToken</Code>
    <Message>Couldn&apos;t retrieve verification key from your identity provider, &#x201C;x&#8221;</Message>
  </Error>
  <RequestId>1</RequestId>
</ErrorResponse>"#;
            assert_eq!(text(error, "Code").unwrap(), "InvalidIdentityToken");
            assert_eq!(
                text(error, "Message").unwrap(),
                "Couldn't retrieve verification key from your identity provider, \u{201C}x\u{201D}"
            );
            assert_eq!(text("<A id=\"1\">\n  v \n</A>", "A").unwrap(), "v");
            assert_eq!(text("<A/><A>later</A>", "A").unwrap(), "");
            assert_eq!(text("<A><![CDATA[a<b&c]]></A>", "A").unwrap(), "a<b&c");
            assert_eq!(
                text("<A>a & b &bogus; &#xZZ;</A>", "A").unwrap(),
                "a & b &bogus; &#xZZ;"
            );
            assert_eq!(text("<A>x</A >", "A").unwrap(), "x");
            assert!(element("<A>never closed", "A").is_none());
            assert!(element("<A", "A").is_none());
            assert_eq!(text("<AB>no</AB><A>yes</A>", "A").unwrap(), "yes");
        }
    }
}
