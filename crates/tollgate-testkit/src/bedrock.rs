//! A mock of Amazon Bedrock's runtime API on a real socket, written from the AWS API
//! reference: `POST /model/{modelId}/converse` and `/converse-stream` (AWS event-stream frames),
//! `/invoke` and `/invoke-with-response-stream` (Claude's Messages body; Titan and Cohere
//! embeddings), Bedrock's error bodies and `x-amzn-ErrorType`.
//!
//! Every request must be SigV4-signed for service `bedrock` in the mock's region with
//! `ACCESS_KEY_ID` / `SECRET_ACCESS_KEY`, or with `TEMPORARY_ACCESS_KEY_ID` /
//! `TEMPORARY_SECRET_ACCESS_KEY` and a session token the mock issued (the signature is
//! recomputed and compared), or carry `Authorization: Bearer API_KEY`. Converse bodies are
//! checked as Bedrock checks them: known fields only, one key per content block, alternating
//! roles starting with the user, tool blocks only with tools declared.
//!
//! The same socket serves the places temporary keys come from, each issuing the temporary key
//! pair with a new session token (`mock-temporary-session-<n>`) that expires after the mock's
//! credential lifetime:
//! - STS `AssumeRoleWithWebIdentity` (`POST /`, a form; XML answer), for `WEB_IDENTITY_TOKEN`
//!   and `ROLE_ARN` only, and `AssumeRole` for `ROLE_ARN`, signed for `sts` with the static
//!   keys;
//! - the container credentials endpoint: `GET /v1/credentials` (EKS Pod Identity, which wants
//!   `Authorization: CONTAINER_AUTHORIZATION`) and `GET /v2/credentials/<id>` (ECS);
//! - EC2 instance metadata, IMDSv2 only: `PUT /latest/api/token`, then
//!   `GET /latest/meta-data/iam/security-credentials/` (the role, `INSTANCE_ROLE`) and
//!   `…/security-credentials/<role>` with the session token.
//!
//! Behaviour by model id: `error-400` (input too long), `error-403`, `error-429` (throttled);
//! `stream-error` streams a text delta then a `throttlingException`; anything else echoes the
//! last user text, calls the first tool when tools are declared (and the turn does not follow
//! a tool result), thinks first when Claude's `thinking` is on, and reports cache usage when
//! the request has a `cachePoint`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::event_stream::{Header, HeaderValue as FrameHeader, Message};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::recorder::{CancelGuard, Recorder};
use crate::server::MockProvider;
use crate::sse::{Ending, SseBody, json_response};

pub const ACCESS_KEY_ID: &str = "AKIAMOCKTOLLGATE0001";
pub const SECRET_ACCESS_KEY: &str = "mock/secret/AbCdEf0123456789";
pub const SESSION_TOKEN: &str = "mock-session-token";
pub const API_KEY: &str = "bedrock-api-key-mock";
pub const REGION: &str = "eu-west-1";
/// The key pair every credentials endpoint issues, with a session token of its own each time.
pub const TEMPORARY_ACCESS_KEY_ID: &str = "ASIAMOCKTOLLGATE0002";
pub const TEMPORARY_SECRET_ACCESS_KEY: &str = "mock/temporary/ZyXwVu9876543210";
/// The OIDC token and role STS accepts.
pub const WEB_IDENTITY_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.mock-web-identity.c2lnbmF0dXJl";
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/tollgate-bedrock";
/// What EKS Pod Identity's agent wants in `Authorization`.
pub const CONTAINER_AUTHORIZATION: &str = "mock-pod-identity-authorization";
pub const INSTANCE_ROLE: &str = "tollgate-instance-role";
const IMDS_SESSION_TOKEN: &str = "mock-imds-session-token";
/// Reasoning text and signature of Claude's thinking on Converse.
pub const REASONING: &str = "Thinking it over.";
pub const SIGNATURE: &str = "bW9jay1iZWRyb2NrLXNpZ25hdHVyZQ==";
pub const CACHE_READ: u64 = 11;

const CONVERSE_FIELDS: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "additionalModelRequestFields",
    "guardrailConfig",
    "performanceConfig",
    "requestMetadata",
    "promptVariables",
    "additionalModelResponseFieldPaths",
    "serviceTier",
];
const BLOCK_KEYS: &[&str] = &[
    "text",
    "image",
    "document",
    "toolUse",
    "toolResult",
    "reasoningContent",
    "cachePoint",
];

pub struct MockBedrock;

#[derive(Clone)]
struct MockState {
    recorder: Arc<Recorder>,
    /// Session tokens issued with the temporary keys, in order.
    issued: Arc<Mutex<Vec<String>>>,
    credential_lifetime: Duration,
}

impl MockBedrock {
    pub async fn start() -> MockProvider {
        Self::start_at("127.0.0.1:0").await
    }

    pub async fn start_at(address: &str) -> MockProvider {
        Self::serve(address, Duration::from_secs(3600)).await
    }

    /// A mock whose temporary keys expire `lifetime` after they are issued.
    pub async fn start_with_credential_lifetime(lifetime: Duration) -> MockProvider {
        Self::serve("127.0.0.1:0", lifetime).await
    }

    async fn serve(address: &str, lifetime: Duration) -> MockProvider {
        let recorder = Arc::new(Recorder::default());
        let state = MockState {
            recorder: recorder.clone(),
            issued: Arc::default(),
            credential_lifetime: lifetime,
        };
        let app = Router::new().fallback(handle).with_state(state);
        MockProvider::spawn(app, recorder, address, false).await
    }
}

async fn handle(State(state): State<MockState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let raw_body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let recorder = state.recorder.clone();
    let body = recorder.record(&parts, raw_body.clone());

    if let Some(response) = credentials_endpoint(&state, &parts, &raw_body) {
        return response;
    }
    let issued = state.issued.lock().expect("lock").clone();
    if let Err(message) = authenticate(&parts, &raw_body, &issued, "bedrock") {
        return aws_error(403, "InvalidSignatureException", &message);
    }
    let path = parts.uri.path().to_owned();
    let Some(rest) = path.strip_prefix("/model/") else {
        return aws_error(404, "UnknownOperationException", "Unknown operation");
    };
    let Some((encoded_model, action)) = rest.rsplit_once('/') else {
        return aws_error(404, "UnknownOperationException", "Unknown operation");
    };
    let model = percent_decode(encoded_model);
    if model.contains('/') && !encoded_model.contains("%2F") {
        return aws_error(
            404,
            "UnknownOperationException",
            "The model id must be one path segment.",
        );
    }
    match model.as_str() {
        "error-400" => {
            return aws_error(
                400,
                "ValidationException",
                "Input is too long for requested model.",
            );
        }
        "error-403" => {
            return aws_error(
                403,
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            );
        }
        "error-429" => {
            return aws_error(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            );
        }
        _ => {}
    }
    match action {
        "converse" | "converse-stream" => {
            if let Err(message) = check_converse(&body) {
                return aws_error(400, "ValidationException", &message);
            }
            let answer = Answer::for_request(&body);
            if action == "converse" {
                return json_response(StatusCode::OK, &answer.response());
            }
            let mut frames = answer.stream_frames();
            if model == "stream-error" {
                frames.truncate(2);
                frames.push_back(frame(
                    "exception",
                    "throttlingException",
                    &json!({"message": "Too many tokens, please wait before trying again."}),
                ));
            }
            let guard = CancelGuard::new(recorder);
            SseBody::new(frames, Duration::ZERO, Ending::Done, guard)
                .into_response("application/vnd.amazon.eventstream")
        }
        "invoke" | "invoke-with-response-stream" => {
            if model.contains("titan-embed") {
                return titan_embed(&body);
            }
            if model.contains("cohere.embed") {
                return cohere_embed(&body);
            }
            if body["anthropic_version"] != "bedrock-2023-05-31" {
                return aws_error(
                    400,
                    "ValidationException",
                    "anthropic_version: bedrock-2023-05-31 is required",
                );
            }
            for forbidden in ["model", "stream"] {
                if body.get(forbidden).is_some() {
                    return aws_error(
                        400,
                        "ValidationException",
                        &format!(
                            "Malformed input request: extraneous key [{forbidden}] is not permitted"
                        ),
                    );
                }
            }
            let stream = action == "invoke-with-response-stream";
            let events = match crate::anthropic::answer_events(&body, &model, stream) {
                Ok(events) => events,
                Err(response) => return *response,
            };
            if !stream {
                return json_response(StatusCode::OK, &events[0]);
            }
            let count = events.len();
            let frames: VecDeque<Bytes> = events
                .into_iter()
                .enumerate()
                .map(|(i, mut event)| {
                    if i + 1 == count {
                        event["amazon-bedrock-invocationMetrics"] = json!({"inputTokenCount": 3, "outputTokenCount": 2, "invocationLatency": 10, "firstByteLatency": 5});
                    }
                    let payload = json!({"bytes": STANDARD.encode(event.to_string())});
                    frame("event", "chunk", &payload)
                })
                .collect();
            SseBody::new(
                frames,
                Duration::ZERO,
                Ending::Done,
                CancelGuard::new(recorder),
            )
            .into_response("application/vnd.amazon.eventstream")
        }
        _ => aws_error(404, "UnknownOperationException", "Unknown operation"),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn aws_error(status: u16, kind: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &json!({"message": message}));
    response.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_str(&format!(
            "{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        ))
        .expect("a header value"),
    );
    response
}

/// Answers the requests for temporary keys; `None` for everything else.
fn credentials_endpoint(
    state: &MockState,
    parts: &http::request::Parts,
    body: &[u8],
) -> Option<Response> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let path = parts.uri.path();
    let method = parts.method.as_str();
    const ROLES: &str = "/latest/meta-data/iam/security-credentials/";
    Some(match (method, path) {
        ("POST", "/") => {
            let form: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(body).into_owned().collect();
            let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
            if field("Action") == "AssumeRole" && field("Version") == "2011-06-15" {
                return Some(assume_role(state, parts, body, &form));
            }
            if field("Action") != "AssumeRoleWithWebIdentity" || field("Version") != "2011-06-15" {
                return Some(sts_error(400, "InvalidAction", "Could not find operation"));
            }
            if field("WebIdentityToken") != WEB_IDENTITY_TOKEN {
                return Some(sts_error(
                    400,
                    "InvalidIdentityToken",
                    "Couldn't retrieve verification key from your identity provider",
                ));
            }
            let result = format!(
                "<SubjectFromWebIdentityToken>system:serviceaccount:ai:tollgate</SubjectFromWebIdentityToken>
    {{assumed}}
    <Provider>oidc.eks.{REGION}.amazonaws.com</Provider>
    <Audience>sts.amazonaws.com</Audience>"
            );
            assumed_role_answer(state, "AssumeRoleWithWebIdentity", &form, &result)
        }
        ("GET", "/v1/credentials") if header("authorization") != CONTAINER_AUTHORIZATION => {
            json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"code": "InvalidToken", "message": "The authorization token is not valid"}),
            )
        }
        ("GET", "/v1/credentials") => temporary_keys_json(state),
        ("GET", path) if path.starts_with("/v2/credentials/") => temporary_keys_json(state),
        ("PUT", "/latest/api/token") => {
            if header("x-aws-ec2-metadata-token-ttl-seconds").is_empty() {
                return Some(text_response(400, "text/plain", "Bad Request".into()));
            }
            text_response(200, "text/plain", IMDS_SESSION_TOKEN.into())
        }
        ("GET", path) if path.starts_with("/latest/") => {
            // IMDSv2 only: without the session token, 401.
            if header("x-aws-ec2-metadata-token") != IMDS_SESSION_TOKEN {
                return Some(text_response(401, "text/plain", "Unauthorized".into()));
            }
            match path.strip_prefix(ROLES) {
                Some("") => text_response(200, "text/plain", INSTANCE_ROLE.into()),
                Some(INSTANCE_ROLE) => temporary_keys_json(state),
                _ => text_response(404, "text/html", "Not Found".into()),
            }
        }
        _ => return None,
    })
}

/// A new session token for the temporary keys, and when they expire (ISO 8601).
fn issue(state: &MockState) -> (String, String) {
    let mut issued = state.issued.lock().expect("lock");
    let token = format!("mock-temporary-session-{}", issued.len() + 1);
    issued.push(token.clone());
    let expires = SystemTime::now() + state.credential_lifetime;
    let ms = expires
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let text = tollgate_core::calendar::iso8601(i64::try_from(ms).unwrap_or(i64::MAX));
    // AWS writes whole seconds.
    (token, format!("{}Z", &text[..19]))
}

/// The container endpoint's and instance metadata's answer.
fn temporary_keys_json(state: &MockState) -> Response {
    let (session_token, expiration) = issue(state);
    json_response(
        StatusCode::OK,
        &json!({"Code": "Success", "LastUpdated": "2026-01-01T00:00:00Z", "Type": "AWS-HMAC",
                "AccessKeyId": TEMPORARY_ACCESS_KEY_ID, "SecretAccessKey": TEMPORARY_SECRET_ACCESS_KEY,
                "Token": session_token, "Expiration": expiration,
                "RoleArn": ROLE_ARN}),
    )
}

/// STS `AssumeRole`: signed for `sts` with the mock's static keys, for [`ROLE_ARN`].
fn assume_role(
    state: &MockState,
    parts: &http::request::Parts,
    body: &[u8],
    form: &std::collections::HashMap<String, String>,
) -> Response {
    let issued = state.issued.lock().expect("lock").clone();
    if let Err(message) = authenticate(parts, body, &issued, "sts") {
        return sts_error(403, "SignatureDoesNotMatch", &message);
    }
    assumed_role_answer(state, "AssumeRole", form, "{assumed}")
}

/// STS's answer to `action` (`AssumeRole`, `AssumeRoleWithWebIdentity`) for [`ROLE_ARN`]:
/// `result` is the result element's contents, where `{assumed}` stands for the assumed role
/// and its new temporary keys. Any other role is refused.
fn assumed_role_answer(
    state: &MockState,
    action: &str,
    form: &std::collections::HashMap<String, String>,
    result: &str,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let session = field("RoleSessionName");
    if field("RoleArn") != ROLE_ARN || session.is_empty() {
        return sts_error(
            403,
            "AccessDenied",
            &format!("Not authorized to perform sts:{action}"),
        );
    }
    let result = result.replace("{assumed}", &assumed_role(state, session));
    let xml = format!(
        r#"<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <{action}Result>
    {result}
  </{action}Result>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</{action}Response>"#
    );
    text_response(200, "text/xml", xml)
}

/// The assumed role and its new temporary keys.
fn assumed_role(state: &MockState, session: &str) -> String {
    let (session_token, expiration) = issue(state);
    format!(
        r#"<AssumedRoleUser>
      <Arn>{ROLE_ARN}/{session}</Arn>
      <AssumedRoleId>AROAMOCK:{session}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{session_token}</SessionToken>
      <SecretAccessKey>{TEMPORARY_SECRET_ACCESS_KEY}</SecretAccessKey>
      <Expiration>{expiration}</Expiration>
      <AccessKeyId>{TEMPORARY_ACCESS_KEY_ID}</AccessKeyId>
    </Credentials>"#
    )
}

fn sts_error(status: u16, code: &str, message: &str) -> Response {
    let xml = format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>{code}</Code>
    <Message>{message}</Message>
  </Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>"#
    );
    text_response(status, "text/xml", xml)
}

fn text_response(status: u16, content_type: &'static str, text: String) -> Response {
    let mut response = Response::new(axum::body::Body::from(text));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    response
}

/// Checks the bearer key, or recomputes the SigV4 signature over what arrived: with the
/// static keys, or with the temporary ones and a session token in `issued`.
fn authenticate(
    parts: &http::request::Parts,
    body: &[u8],
    issued: &[String],
    service: &str,
) -> Result<(), String> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let authorization = header("authorization");
    if let Some(key) = authorization.strip_prefix("Bearer ") {
        return if key == API_KEY {
            Ok(())
        } else {
            Err("The API key is not valid.".into())
        };
    }
    let credential = authorization
        .strip_prefix("AWS4-HMAC-SHA256 Credential=")
        .and_then(|rest| rest.split(',').next())
        .ok_or("Missing Authentication Token")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, _date, region, scope_service, "aws4_request"] = scope.as_slice() else {
        return Err(format!("Malformed credential scope {credential}"));
    };
    let session_token = header("x-amz-security-token");
    let secret = match *access_key {
        ACCESS_KEY_ID => SECRET_ACCESS_KEY,
        TEMPORARY_ACCESS_KEY_ID if issued.iter().any(|token| token == session_token) => {
            TEMPORARY_SECRET_ACCESS_KEY
        }
        _ => return Err("The security token included in the request is invalid.".into()),
    };
    if *region != REGION || *scope_service != service {
        return Err(format!(
            "Credential should be scoped to a valid region and service '{service}' in {REGION}"
        ));
    }
    let amz_date = header("x-amz-date");
    let time = parse_amz_date(amz_date).ok_or("Missing or malformed x-amz-date")?;
    let age = SystemTime::now().duration_since(time).unwrap_or_default();
    if age > Duration::from_secs(300) {
        return Err("Signature expired".into());
    }
    let identity: Identity = Credentials::new(
        *access_key,
        secret,
        (!session_token.is_empty()).then(|| session_token.to_owned()),
        None,
        "mock",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let host = header("host");
    let uri = format!("http://{host}{}", parts.uri.path());
    let content_type = header("content-type");
    let signable = SignableRequest::new(
        "POST",
        uri,
        [("content-type", content_type)].into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let expected = instructions
        .headers()
        .find(|(name, _)| *name == "authorization")
        .map(|(_, value)| value.to_owned())
        .unwrap_or_default();
    if expected != authorization {
        return Err(
            "The request signature we calculated does not match the signature you provided.".into(),
        );
    }
    Ok(())
}

/// `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    if text.len() != 16 {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

fn check_converse(body: &Value) -> Result<(), String> {
    let object = body
        .as_object()
        .ok_or("The request body must be a JSON object")?;
    for key in object.keys() {
        if !CONVERSE_FIELDS.contains(&key.as_str()) {
            return Err(format!(
                "Malformed input request: extraneous key [{key}] is not permitted"
            ));
        }
    }
    let messages = body["messages"].as_array().ok_or("messages is required")?;
    let has_tools = body["toolConfig"]["tools"]
        .as_array()
        .is_some_and(|t| !t.is_empty());
    let mut expected = "user";
    for (index, message) in messages.iter().enumerate() {
        if message["role"] != expected {
            return Err(format!(
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again. (messages.{index})"
            ));
        }
        expected = if expected == "user" {
            "assistant"
        } else {
            "user"
        };
        let content = message["content"].as_array().ok_or("content is required")?;
        if content.is_empty() {
            return Err(format!("messages.{index}.content must not be empty"));
        }
        for block in content {
            let keys: Vec<&String> = block
                .as_object()
                .map(|b| b.keys().collect())
                .unwrap_or_default();
            if keys.len() != 1 || !BLOCK_KEYS.contains(&keys[0].as_str()) {
                return Err(format!(
                    "messages.{index}: a content block must have exactly one member, got {keys:?}"
                ));
            }
            if (block.get("toolUse").is_some() || block.get("toolResult").is_some()) && !has_tools {
                return Err("The toolConfig field must be defined when using toolUse and toolResult content blocks.".into());
            }
            if let Some(text) = block["text"].as_str()
                && message["role"] == "assistant"
                && text.ends_with(char::is_whitespace)
            {
                return Err(
                    "The final assistant content cannot end with trailing whitespace".into(),
                );
            }
        }
    }
    for tool in body["toolConfig"]["tools"].as_array().into_iter().flatten() {
        if let Some(name) = tool["toolSpec"]["name"].as_str()
            && (name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            return Err(format!(
                "Value '{name}' at 'toolConfig.tools.member.toolSpec.name' failed to satisfy constraint"
            ));
        }
    }
    Ok(())
}

fn text_of(message: &Value) -> String {
    message["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|block| block["text"].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

struct Answer {
    text: String,
    tool: Option<String>,
    thinking: bool,
    input_tokens: u64,
    cached: bool,
}

impl Answer {
    fn for_request(body: &Value) -> Answer {
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let after_tool_result = messages
            .last()
            .and_then(|m| m["content"].as_array())
            .is_some_and(|blocks| blocks.iter().any(|b| b.get("toolResult").is_some()));
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user" && !text_of(m).is_empty())
            .map(text_of)
            .unwrap_or_default();
        let choice = &body["toolConfig"]["toolChoice"];
        let tools: Vec<String> = body["toolConfig"]["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["toolSpec"]["name"].as_str().map(str::to_owned))
            .filter(|name| name != "tollgate_no_tools")
            .collect();
        let forced = choice["tool"]["name"].as_str().map(str::to_owned);
        let tool = match (forced, after_tool_result) {
            (Some(name), _) => Some(name),
            (None, true) => None,
            (None, false) => tools.first().cloned(),
        };
        let system_words: u64 = body["system"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["text"].as_str())
            .map(words)
            .sum();
        let message_words: u64 = messages.iter().map(|m| words(&text_of(m))).sum();
        Answer {
            text: if after_tool_result {
                "done".to_owned()
            } else {
                last_user
            },
            tool,
            thinking: body["additionalModelRequestFields"]["thinking"]["type"] == "enabled",
            input_tokens: system_words + message_words,
            cached: body.to_string().contains("\"cachePoint\""),
        }
    }

    fn output_tokens(&self) -> u64 {
        words(&self.text).max(1)
    }

    fn usage(&self) -> Value {
        let read = if self.cached { CACHE_READ } else { 0 };
        let output = self.output_tokens();
        json!({"inputTokens": self.input_tokens, "outputTokens": output,
               "totalTokens": self.input_tokens + read + output,
               "cacheReadInputTokens": read, "cacheWriteInputTokens": 0})
    }

    fn stop_reason(&self) -> &'static str {
        if self.tool.is_some() {
            "tool_use"
        } else {
            "end_turn"
        }
    }

    fn response(&self) -> Value {
        let mut content = Vec::new();
        if self.thinking {
            content.push(json!({"reasoningContent": {"reasoningText": {"text": REASONING, "signature": SIGNATURE}}}));
        }
        match &self.tool {
            Some(name) => content.push(json!({"toolUse": {"toolUseId": "tooluse_mock1", "name": name, "input": {"echo": self.text}}})),
            None => content.push(json!({"text": self.text})),
        }
        json!({"output": {"message": {"role": "assistant", "content": content}},
               "stopReason": self.stop_reason(), "usage": self.usage(), "metrics": {"latencyMs": 12}})
    }

    fn stream_frames(&self) -> VecDeque<Bytes> {
        let mut frames = VecDeque::new();
        let mut event =
            |kind: &str, payload: Value| frames.push_back(frame("event", kind, &payload));
        event("messageStart", json!({"role": "assistant"}));
        let mut index = 0;
        if self.thinking {
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"text": REASONING}}}),
            );
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"signature": SIGNATURE}}}),
            );
            event("contentBlockStop", json!({"contentBlockIndex": index}));
            index += 1;
        }
        match &self.tool {
            Some(name) => {
                event(
                    "contentBlockStart",
                    json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": "tooluse_mock1", "name": name}}}),
                );
                let input = json!({"echo": self.text}).to_string();
                let middle = input.len() / 2;
                for piece in [&input[..middle], &input[middle..]] {
                    event(
                        "contentBlockDelta",
                        json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}}),
                    );
                }
            }
            None => {
                for (i, word) in self.text.split(' ').enumerate() {
                    let piece = if i == 0 {
                        word.to_owned()
                    } else {
                        format!(" {word}")
                    };
                    event(
                        "contentBlockDelta",
                        json!({"contentBlockIndex": index, "delta": {"text": piece}}),
                    );
                }
            }
        }
        event("contentBlockStop", json!({"contentBlockIndex": index}));
        event("messageStop", json!({"stopReason": self.stop_reason()}));
        event(
            "metadata",
            json!({"usage": self.usage(), "metrics": {"latencyMs": 12}}),
        );
        frames
    }
}

/// One AWS event-stream frame.
fn frame(message_type: &str, kind: &str, payload: &Value) -> Bytes {
    let type_header = if message_type == "exception" {
        ":exception-type"
    } else {
        ":event-type"
    };
    let message = Message::new(Bytes::from(payload.to_string()))
        .add_header(Header::new(
            ":message-type",
            FrameHeader::String(message_type.to_owned().into()),
        ))
        .add_header(Header::new(
            type_header,
            FrameHeader::String(kind.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            FrameHeader::String("application/json".into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out).expect("a frame encodes");
    Bytes::from(out)
}

fn titan_embed(body: &Value) -> Response {
    let Some(text) = body["inputText"].as_str() else {
        return aws_error(
            400,
            "ValidationException",
            "Malformed input request: #: required key [inputText] not found",
        );
    };
    let dimensions = body["dimensions"].as_u64().unwrap_or(1024) as usize;
    let embedding: Vec<f64> = (0..dimensions)
        .map(|i| ((text.len() + i) % 13) as f64 / 13.0)
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"embedding": embedding, "inputTextTokenCount": words(text)}),
    )
}

fn cohere_embed(body: &Value) -> Response {
    let Some(texts) = body["texts"].as_array() else {
        return aws_error(
            400,
            "ValidationException",
            "Malformed input request: #: required key [texts] not found",
        );
    };
    if body["input_type"].as_str().is_none() {
        return aws_error(
            400,
            "ValidationException",
            "Malformed input request: #: required key [input_type] not found",
        );
    }
    let embeddings: Vec<Vec<f64>> = texts
        .iter()
        .map(|t| {
            let text = t.as_str().unwrap_or_default();
            (0..6)
                .map(|i| ((text.len() + i) % 7) as f64 / 7.0)
                .collect()
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"id": "emb-mock", "texts": texts, "embeddings": embeddings, "response_type": "embeddings_floats"}),
    )
}
