//! A mock of Google's Gemini API and of Vertex AI on a real socket, written from Google's API
//! reference:
//! - Gemini API: `/v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`
//!   (CRLF-framed events, no end marker), `:countTokens`, `:batchEmbedContents`; the key in
//!   `x-goog-api-key` (an unknown key is Google's 400 `API_KEY_INVALID`);
//! - Vertex AI: the same methods under `/v1/projects/{p}/locations/{l}/publishers/google/…`,
//!   `:predict` for text embeddings, Claude under `…/publishers/anthropic/models/{m}:rawPredict`
//!   and `:streamRawPredict`; every call needs a bearer token the mock issued;
//! - an OAuth token endpoint (`/token`) that checks a service account's RS256 JWT against the
//!   test key in `fixtures/test-service-account-key.pem` (made for these tests, never used
//!   anywhere else) and issues short-lived tokens; and the metadata server's token endpoint
//!   (`/computeMetadata/v1/instance/service-accounts/default/token`, `Metadata-Flavor: Google`);
//! - workload identity federation: Google's STS (`POST /v1/token`, an RFC 8693 token exchange
//!   of [`WORKLOAD_IDENTITY_TOKEN`] for [`WORKLOAD_AUDIENCE`]) and service account impersonation
//!   (`POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`, with a token the mock
//!   issued).
//!
//! Requests are checked as Gemini checks them: unknown fields and schema keywords outside
//! Gemini's subset are 400s naming them, and a Gemini 3 model refuses a function call in the
//! history without a thought signature.
//!
//! Behaviour is chosen by the model name:
//! - `error-<status>`: that status with a Google error body (`error-400` is a context-window
//!   overflow; 429 is `RESOURCE_EXHAUSTED`; 503 `UNAVAILABLE`);
//! - `blocked`: the prompt is blocked (`promptFeedback.blockReason`), no candidates;
//! - `stream-error`: one text chunk, then an error event;
//! - anything else echoes the last user text; with function declarations (and a mode that
//!   allows calls) it calls the first allowed function with `{"echo": <text>}`; after a
//!   function response it answers `done`; with `includeThoughts` it thinks first. Gemini 3
//!   models (`gemini-3…`) give calls an id and a thought signature.

use std::collections::HashSet;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::StatusCode;
use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

use crate::recorder::{CancelGuard, Recorder};
use crate::server::MockProvider;
use crate::sse::{Ending, SseBody, json_response};

/// The only API key the Gemini API mock accepts.
pub const API_KEY: &str = "gemini-test-key";
/// The test service account's private key (PKCS#8 PEM).
pub const SERVICE_ACCOUNT_KEY: &str = include_str!("../fixtures/test-service-account-key.pem");
pub const SERVICE_ACCOUNT_EMAIL: &str = "tollgate-test@tollgate-test.iam.gserviceaccount.com";
/// The thought signature Gemini 3 calls carry.
pub const SIGNATURE: &str = "Z2VtaW5pLXNpZ25hdHVyZQ==";
/// The OIDC token a workload presents to Google's STS, and the pool provider it is for.
pub const WORKLOAD_IDENTITY_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.mock-workload.c2ln";
pub const WORKLOAD_AUDIENCE: &str = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/tollgate/providers/k8s";
/// Thinking tokens reported when thoughts are included.
pub const THOUGHT_TOKENS: u64 = 5;
pub const THOUGHT: &str = "Considering the question.";

/// Top-level request fields Gemini knows (camelCase and the snake_case the API also accepts).
const REQUEST_FIELDS: &[&str] = &[
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "generationConfig",
    "generation_config",
    "safetySettings",
    "safety_settings",
    "cachedContent",
    "cached_content",
    "labels",
];

/// Schema keywords in Gemini's OpenAPI subset.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
];

pub struct MockGemini;

#[derive(Default)]
struct Tokens {
    issued: Mutex<HashSet<String>>,
    counter: AtomicU64,
}

#[derive(Clone)]
struct MockState {
    recorder: Arc<Recorder>,
    tokens: Arc<Tokens>,
    public_key: Arc<Vec<u8>>,
    token_lifetime: u64,
}

impl MockGemini {
    pub async fn start() -> MockProvider {
        Self::start_at("127.0.0.1:0", 3599).await
    }

    /// A mock whose tokens expire after `seconds` (for token refresh tests).
    pub async fn start_with_token_lifetime(seconds: u64) -> MockProvider {
        Self::start_at("127.0.0.1:0", seconds).await
    }

    /// A mock on `address` whose tokens live `token_lifetime` seconds.
    pub async fn start_at(address: &str, token_lifetime: u64) -> MockProvider {
        let recorder = Arc::new(Recorder::default());
        let der = PrivateKeyDer::from_pem_slice(SERVICE_ACCOUNT_KEY.as_bytes()).expect("test key");
        let PrivateKeyDer::Pkcs8(pkcs8) = der else {
            panic!("the test key is PKCS#8");
        };
        let key = RsaKeyPair::from_pkcs8(pkcs8.secret_pkcs8_der()).expect("an RSA key");
        let state = MockState {
            recorder: recorder.clone(),
            tokens: Arc::new(Tokens::default()),
            public_key: Arc::new(key.public_key().as_ref().to_vec()),
            token_lifetime,
        };
        let app = Router::new().fallback(handle).with_state(state);
        MockProvider::spawn(app, recorder, address, false).await
    }

    /// A service-account key file's JSON whose `token_uri` is this mock's token endpoint.
    pub fn service_account_json(mock: &MockProvider) -> String {
        json!({
            "type": "service_account",
            "project_id": "tollgate-test",
            "private_key_id": "test-key-1",
            "private_key": SERVICE_ACCOUNT_KEY,
            "client_email": SERVICE_ACCOUNT_EMAIL,
            "client_id": "1234567890",
            "token_uri": format!("{}/token", mock.root_url()),
        })
        .to_string()
    }
}

async fn handle(State(state): State<MockState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let raw_body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    if path == "/token" {
        state.recorder.record(&parts, raw_body.clone());
        return issue_token(&state, &raw_body, &format!("http://{}/token", host(&parts)));
    }
    if path == "/v1/token" {
        state.recorder.record(&parts, raw_body.clone());
        return exchange_token(&state, &raw_body);
    }
    if let Some(account) = path
        .strip_prefix("/v1/projects/-/serviceAccounts/")
        .and_then(|rest| rest.strip_suffix(":generateAccessToken"))
    {
        state.recorder.record(&parts, raw_body.clone());
        return impersonate(&state, &parts, &raw_body, account);
    }
    if path == "/computeMetadata/v1/instance/service-accounts/default/token" {
        state.recorder.record(&parts, raw_body);
        if parts
            .headers
            .get("metadata-flavor")
            .and_then(|v| v.to_str().ok())
            != Some("Google")
        {
            return google_error(
                403,
                "PERMISSION_DENIED",
                "Missing Metadata-Flavor:Google header.",
            );
        }
        return json_response(StatusCode::OK, &state.new_token());
    }
    let body = state.recorder.record(&parts, raw_body);

    // `/v1beta/models/{model}:{method}` or `/v1/projects/…/publishers/{publisher}/models/{model}:{method}`.
    let Some((resource, method)) = path.rsplit_once(':') else {
        return google_error(404, "NOT_FOUND", &format!("Unknown path {path}"));
    };
    let (vertex, publisher, model) = if let Some(model) = resource.strip_prefix("/v1beta/models/") {
        (false, "google", model.to_owned())
    } else if resource.starts_with("/v1/projects/") {
        let mut segments = resource.split('/').skip(1);
        let _v1 = segments.next();
        let layout: Vec<&str> = segments.collect();
        match layout.as_slice() {
            [
                "projects",
                _,
                "locations",
                _,
                "publishers",
                publisher,
                "models",
                model,
            ] => (true, *publisher, (*model).to_owned()),
            _ => return google_error(404, "NOT_FOUND", &format!("Unknown path {path}")),
        }
    } else {
        return google_error(404, "NOT_FOUND", &format!("Unknown path {path}"));
    };

    if vertex {
        if !state.issued_bearer(&parts) {
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            );
        }
    } else {
        match parts
            .headers
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok())
        {
            None => {
                return google_error(
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                );
            }
            Some(API_KEY) => {}
            Some(_) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}),
                );
            }
        }
    }

    if publisher == "anthropic" {
        return claude_on_vertex(state.recorder, &body, &model, method, &parts.headers);
    }
    if let Some(status) = model
        .strip_prefix("error-")
        .and_then(|code| code.parse::<u16>().ok())
    {
        return match status {
            400 => google_error(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
            429 => google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
            ),
            503 => google_error(
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
            ),
            other => google_error(other, "INTERNAL", "An internal error has occurred."),
        };
    }
    match method {
        "generateContent" | "streamGenerateContent" => {
            if let Err(message) = check_request(&body, &model) {
                return google_error(400, "INVALID_ARGUMENT", &message);
            }
            let answer = Answer::for_request(&body, &model);
            if method == "generateContent" {
                return json_response(StatusCode::OK, &answer.response(&model));
            }
            if query != "alt=sse" {
                // Without `alt=sse` the stream is one JSON array.
                return json_response(StatusCode::OK, &Value::Array(answer.chunks(&model)));
            }
            let mut chunks = answer.chunks(&model);
            if model == "stream-error" {
                chunks.truncate(1);
                chunks.push(json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}));
            }
            let events: VecDeque<Bytes> = chunks
                .into_iter()
                .map(|chunk| Bytes::from(format!("data: {chunk}\r\n\r\n")))
                .collect();
            SseBody::new(
                events,
                Duration::ZERO,
                Ending::Done,
                CancelGuard::new(state.recorder),
            )
            .into_response("text/event-stream")
        }
        "countTokens" => count_tokens(&body, vertex),
        "batchEmbedContents" if !vertex => batch_embed(&body, &model),
        "predict" if vertex => vertex_embed(&body),
        other => google_error(
            404,
            "NOT_FOUND",
            &format!("Method {other} is not found for {model}."),
        ),
    }
}

/// `:countTokens`. The Gemini API takes `contents`, or a whole `generateContentRequest` naming
/// its model; Vertex AI takes `contents`, `systemInstruction`, `tools` and `generationConfig`.
fn count_tokens(body: &Value, vertex: bool) -> Response {
    let allowed: &[&str] = if vertex {
        &[
            "contents",
            "systemInstruction",
            "tools",
            "generationConfig",
            "model",
            "instances",
        ]
    } else {
        &["contents", "generateContentRequest"]
    };
    if let Some(unknown) = body
        .as_object()
        .and_then(|fields| fields.keys().find(|key| !allowed.contains(&key.as_str())))
    {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            &format!(
                "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
            ),
        );
    }
    let counted = match body.get("generateContentRequest") {
        Some(request)
            if !request["model"]
                .as_str()
                .is_some_and(|m| m.starts_with("models/")) =>
        {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "generateContentRequest.model is required and must start with models/.",
            );
        }
        Some(request) => request,
        None => body,
    };
    json_response(
        StatusCode::OK,
        &json!({"totalTokens": prompt_words(counted)}),
    )
}

fn host(parts: &http::request::Parts) -> String {
    parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost")
        .to_owned()
}

fn google_error(status: u16, code_name: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(
        status,
        &json!({"error": {"code": status.as_u16(), "message": message, "status": code_name}}),
    )
}

/// The token endpoint: a JWT-bearer grant signed by the test service account.
fn issue_token(state: &MockState, body: &[u8], audience: &str) -> Response {
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body).into_owned().collect();
    let refuse = |description: &str| {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_grant", "error_description": description}),
        )
    };
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return refuse("unsupported grant_type");
    }
    let Some(assertion) = form.get("assertion") else {
        return refuse("missing assertion");
    };
    let pieces: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = pieces.as_slice() else {
        return refuse("malformed JWT");
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    let (Some(header_json), Some(claims_json), Some(signature)) =
        (decode(header), decode(claims), decode(signature))
    else {
        return refuse("JWT parts are not unpadded base64url");
    };
    let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, state.public_key.as_slice());
    if key
        .verify(format!("{header}.{claims}").as_bytes(), &signature)
        .is_err()
    {
        return refuse("Invalid JWT Signature.");
    }
    let header: Value = serde_json::from_slice(&header_json).unwrap_or_default();
    let claims: Value = serde_json::from_slice(&claims_json).unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let iat = claims["iat"].as_u64().unwrap_or(0);
    let exp = claims["exp"].as_u64().unwrap_or(0);
    if header["alg"] != "RS256" || header["kid"] != "test-key-1" {
        return refuse("JWT header must be RS256 with the key's id");
    }
    if claims["iss"] != SERVICE_ACCOUNT_EMAIL
        || claims["scope"] != "https://www.googleapis.com/auth/cloud-platform"
        || claims["aud"] != audience
    {
        return refuse("Invalid JWT claims (iss, scope or aud).");
    }
    if iat > now + 60 || exp <= now || exp - iat > 3600 {
        return refuse(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        );
    }
    json_response(StatusCode::OK, &state.new_token())
}

/// Google's STS: a workload's OIDC token for a federated access token.
fn exchange_token(state: &MockState, body: &[u8]) -> Response {
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let refuse = |error: &str, description: &str| {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": error, "error_description": description}),
        )
    };
    if field("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange"
        || field("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token"
        || field("scope") != "https://www.googleapis.com/auth/cloud-platform"
    {
        return refuse(
            "invalid_request",
            "not a token exchange for an access token",
        );
    }
    if field("audience") != WORKLOAD_AUDIENCE {
        return refuse(
            "invalid_target",
            "The target service indicated by the \"audience\" parameters is invalid.",
        );
    }
    if field("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt"
        || field("subject_token") != WORKLOAD_IDENTITY_TOKEN
    {
        return refuse("invalid_grant", "The subject token is invalid.");
    }
    let mut token = state.new_token();
    token["issued_token_type"] = json!("urn:ietf:params:oauth:token-type:access_token");
    json_response(StatusCode::OK, &token)
}

/// IAM Credentials' `generateAccessToken` for the test service account, authorised by a token
/// the mock issued.
fn impersonate(
    state: &MockState,
    parts: &http::request::Parts,
    body: &[u8],
    account: &str,
) -> Response {
    if !state.issued_bearer(parts) {
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        );
    }
    if account != SERVICE_ACCOUNT_EMAIL {
        return google_error(
            403,
            "PERMISSION_DENIED",
            "Permission 'iam.serviceAccounts.getAccessToken' denied",
        );
    }
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    if request["scope"] != json!(["https://www.googleapis.com/auth/cloud-platform"]) {
        return google_error(400, "INVALID_ARGUMENT", "scope must be cloud-platform");
    }
    let token = state.new_token();
    let expires = SystemTime::now() + Duration::from_secs(state.token_lifetime);
    let ms = expires
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let text = tollgate_core::calendar::iso8601(i64::try_from(ms).unwrap_or(i64::MAX));
    json_response(
        StatusCode::OK,
        &json!({"accessToken": token["access_token"], "expireTime": format!("{}Z", &text[..19])}),
    )
}

impl MockState {
    /// Whether the request's bearer token is one the mock issued.
    fn issued_bearer(&self, parts: &http::request::Parts) -> bool {
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        self.tokens.issued.lock().expect("lock").contains(token)
    }

    /// A token response for a newly issued token.
    fn new_token(&self) -> Value {
        let number = self.tokens.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("ya29.mock-token-{number}");
        self.tokens
            .issued
            .lock()
            .expect("lock")
            .insert(token.clone());
        json!({"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})
    }
}

/// Claude on Vertex: the Messages body without `model`, with `anthropic_version` in it.
fn claude_on_vertex(
    recorder: Arc<Recorder>,
    body: &Value,
    model: &str,
    method: &str,
    headers: &http::HeaderMap,
) -> Response {
    let invalid = |message: &str| {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
        )
    };
    if model == "count-tokens" && method == "rawPredict" {
        return crate::anthropic::count_tokens(body);
    }
    if body["anthropic_version"] != "vertex-2023-10-16" {
        return invalid("anthropic_version: vertex-2023-10-16 is required in the body");
    }
    if body.get("model").is_some() {
        return invalid("model: Extra inputs are not permitted");
    }
    let streaming = method == "streamRawPredict";
    if streaming != (body["stream"] == true) {
        return invalid("stream must be true on streamRawPredict and absent on rawPredict");
    }
    crate::anthropic::messages(recorder, body, model, headers)
}

/// Checks a `generateContent` body as Gemini does: known fields, roles, schema subset,
/// Gemini 3's signatures.
fn check_request(body: &Value, model: &str) -> Result<(), String> {
    let object = body
        .as_object()
        .ok_or("The request body must be a JSON object.")?;
    for key in object.keys() {
        if !REQUEST_FIELDS.contains(&key.as_str()) {
            return Err(format!(
                "Invalid JSON payload received. Unknown name \"{key}\": Cannot find field."
            ));
        }
    }
    let contents = body["contents"]
        .as_array()
        .ok_or("contents is not specified")?;
    if contents.is_empty() {
        return Err("contents is not specified".into());
    }
    let gemini_3 = model.starts_with("gemini-3");
    for (index, content) in contents.iter().enumerate() {
        match content["role"].as_str() {
            Some("user" | "model") | None => {}
            Some(other) => {
                return Err(format!(
                    "Please use a valid role: user, model. Got {other} at contents[{index}]."
                ));
            }
        }
        let parts = content["parts"].as_array().ok_or("parts is required")?;
        if parts.is_empty() {
            return Err(format!("contents[{index}].parts must not be empty."));
        }
        if gemini_3 && content["role"] == "model" {
            let first_call = parts.iter().find(|p| p.get("functionCall").is_some());
            if let Some(call) = first_call
                && call.get("thoughtSignature").is_none()
            {
                return Err(format!(
                    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{}` , position {}.",
                    call["functionCall"]["name"].as_str().unwrap_or_default(),
                    index + 1
                ));
            }
        }
        for part in parts {
            if let Some(response) = part.get("functionResponse")
                && !response["response"].is_object()
            {
                return Err("functionResponse.response must be a JSON object".into());
            }
        }
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        for declaration in tool["functionDeclarations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(parameters) = declaration.get("parameters") {
                check_schema(parameters, "parameters")?;
            }
        }
    }
    if let Some(schema) = body["generationConfig"].get("responseSchema") {
        check_schema(schema, "response_schema")?;
    }
    Ok(())
}

fn check_schema(schema: &Value, at: &str) -> Result<(), String> {
    let Some(object) = schema.as_object() else {
        return Err(format!("{at}: a schema must be an object"));
    };
    for (key, value) in object {
        if !SCHEMA_KEYS.contains(&key.as_str()) {
            return Err(format!(
                "Invalid JSON payload received. Unknown name \"{key}\" at '{at}': Cannot find field."
            ));
        }
        match key.as_str() {
            "type" if !value.is_string() => {
                return Err(format!(
                    "{at}.type: Proto field is not repeating, cannot start list."
                ));
            }
            "properties" => {
                let properties = value.as_object().ok_or("properties must be an object")?;
                if properties.is_empty()
                    && object
                        .get("type")
                        .and_then(Value::as_str)
                        .map(str::to_ascii_uppercase)
                        .as_deref()
                        == Some("OBJECT")
                {
                    return Err(format!(
                        "{at}.properties: should be non-empty for OBJECT type"
                    ));
                }
                for (name, property) in properties {
                    check_schema(property, &format!("{at}.properties[{name}]"))?;
                }
            }
            "items" => check_schema(value, &format!("{at}.items"))?,
            "anyOf" => {
                for (i, branch) in value.as_array().into_iter().flatten().enumerate() {
                    check_schema(branch, &format!("{at}.any_of[{i}]"))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn text_of(content: &Value) -> String {
    content["parts"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p.get("thought").is_none())
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn prompt_words(body: &Value) -> u64 {
    let system = words(&text_of(&body["systemInstruction"]));
    let contents: u64 = body["contents"]
        .as_array()
        .map(|c| c.iter().map(|c| words(&text_of(c))).sum())
        .unwrap_or(0);
    system + contents
}

struct Answer {
    text: String,
    call: Option<String>,
    thinking: bool,
    gemini_3: bool,
    blocked: bool,
    prompt_tokens: u64,
}

impl Answer {
    fn for_request(body: &Value, model: &str) -> Answer {
        let contents = body["contents"].as_array().cloned().unwrap_or_default();
        let last = contents.last().cloned().unwrap_or_default();
        let after_function_response = last["parts"]
            .as_array()
            .is_some_and(|parts| parts.iter().any(|p| p.get("functionResponse").is_some()));
        let last_user_text = contents
            .iter()
            .rev()
            .find(|c| c["role"] == "user" && !text_of(c).is_empty())
            .map(text_of)
            .unwrap_or_default();
        let config = &body["toolConfig"]["functionCallingConfig"];
        let mode = config["mode"].as_str().unwrap_or("AUTO");
        let declared: Vec<String> = body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| {
                t["functionDeclarations"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect();
        let allowed = config["allowedFunctionNames"]
            .as_array()
            .and_then(|names| names.first())
            .and_then(Value::as_str)
            .map(str::to_owned);
        let call = match mode {
            "NONE" => None,
            _ if after_function_response && mode != "ANY" => None,
            _ => allowed.or_else(|| declared.first().cloned()),
        };
        Answer {
            text: if after_function_response {
                "done".to_owned()
            } else {
                last_user_text
            },
            call,
            thinking: body["generationConfig"]["thinkingConfig"]["includeThoughts"] == true,
            gemini_3: model.starts_with("gemini-3"),
            blocked: model == "blocked",
            prompt_tokens: prompt_words(body),
        }
    }

    fn output_tokens(&self) -> u64 {
        if self.call.is_some() {
            3
        } else {
            words(&self.text).max(1)
        }
    }

    fn usage(&self, candidates: u64, thoughts: u64) -> Value {
        let mut usage = json!({
            "promptTokenCount": self.prompt_tokens,
            "totalTokenCount": self.prompt_tokens + candidates + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": self.prompt_tokens}],
        });
        if candidates > 0 {
            usage["candidatesTokenCount"] = json!(candidates);
        }
        if thoughts > 0 {
            usage["thoughtsTokenCount"] = json!(thoughts);
        }
        usage
    }

    fn call_part(&self) -> Option<Value> {
        let name = self.call.as_ref()?;
        let mut call = json!({"name": name, "args": {"echo": self.text}});
        let mut part = json!({});
        if self.gemini_3 {
            call["id"] = json!("fc-mock-1");
            part["thoughtSignature"] = json!(SIGNATURE);
        }
        part["functionCall"] = call;
        Some(part)
    }

    fn thoughts(&self) -> u64 {
        if self.thinking { THOUGHT_TOKENS } else { 0 }
    }

    fn response(&self, model: &str) -> Value {
        if self.blocked {
            return json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": self.usage(0, 0),
                          "modelVersion": model, "responseId": "mock-response-1"});
        }
        let mut parts = Vec::new();
        if self.thinking {
            parts.push(json!({"text": THOUGHT, "thought": true}));
        }
        match self.call_part() {
            Some(call) => parts.push(call),
            None => parts.push(json!({"text": self.text})),
        }
        json!({
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": self.usage(self.output_tokens(), self.thoughts()),
            "modelVersion": model,
            "responseId": "mock-response-1",
        })
    }

    /// The stream: thought, then the text word by word (or the call), then the finish.
    fn chunks(&self, model: &str) -> Vec<Value> {
        let chunk = |parts: Vec<Value>, finish: Option<&str>, usage: Value| {
            let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
            if let Some(finish) = finish {
                candidate["finishReason"] = json!(finish);
            }
            json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "mock-response-1"})
        };
        if self.blocked {
            return vec![
                json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": self.usage(0, 0),
                               "modelVersion": model, "responseId": "mock-response-1"}),
            ];
        }
        let mut chunks = Vec::new();
        if self.thinking {
            chunks.push(chunk(
                vec![json!({"text": THOUGHT, "thought": true})],
                None,
                self.usage(0, self.thoughts()),
            ));
        }
        match self.call_part() {
            Some(call) => chunks.push(chunk(vec![call], None, self.usage(3, self.thoughts()))),
            None => {
                for (i, word) in self.text.split(' ').enumerate() {
                    let piece = if i == 0 {
                        word.to_owned()
                    } else {
                        format!(" {word}")
                    };
                    chunks.push(chunk(
                        vec![json!({"text": piece})],
                        None,
                        self.usage(i as u64 + 1, self.thoughts()),
                    ));
                }
            }
        }
        chunks.push(chunk(
            vec![json!({"text": ""})],
            Some("STOP"),
            self.usage(self.output_tokens(), self.thoughts()),
        ));
        chunks
    }
}

/// A deterministic embedding: the text's length and word count, spread over `dimensions`.
fn embedding(text: &str, dimensions: usize) -> Vec<f64> {
    (0..dimensions)
        .map(|i| ((text.len() + i * words(text) as usize) % 97) as f64 / 97.0)
        .collect()
}

fn batch_embed(body: &Value, model: &str) -> Response {
    let requests = body["requests"].as_array().cloned().unwrap_or_default();
    if requests.is_empty() {
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "* BatchEmbedContentsRequest.requests: must not be empty",
        );
    }
    let mut embeddings = Vec::new();
    for (index, request) in requests.iter().enumerate() {
        if request["model"] != format!("models/{model}") {
            return google_error(
                400,
                "INVALID_ARGUMENT",
                &format!(
                    "* BatchEmbedContentsRequest.requests[{index}].model: unexpected model name format"
                ),
            );
        }
        let dimensions = request["outputDimensionality"].as_u64().unwrap_or(8) as usize;
        embeddings.push(json!({"values": embedding(&text_of(&request["content"]), dimensions)}));
    }
    json_response(StatusCode::OK, &json!({"embeddings": embeddings}))
}

fn vertex_embed(body: &Value) -> Response {
    let dimensions = body["parameters"]["outputDimensionality"]
        .as_u64()
        .unwrap_or(8) as usize;
    let predictions: Vec<Value> = body["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|instance| {
            let text = instance["content"].as_str().unwrap_or_default();
            json!({"embeddings": {"values": embedding(text, dimensions),
                                  "statistics": {"token_count": words(text), "truncated": false}}})
        })
        .collect();
    json_response(StatusCode::OK, &json!({"predictions": predictions}))
}
