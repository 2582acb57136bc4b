//! The one error a request can end with: who failed, whether a retry may help, and what the
//! client is told (status and OpenAI-shaped body fields).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::StatusCode;

/// Who caused the failure. Decides the log level and whether another deployment may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The request itself is wrong; retrying it anywhere gives the same answer.
    Client,
    /// The provider failed or answered with an error.
    Upstream,
    /// Tollgate itself failed.
    Gateway,
}

/// The OpenAI `error.type` family of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    RateLimit,
    /// A budget would be exceeded (LiteLLM's `budget_exceeded` type).
    BudgetExceeded,
    Timeout,
    Upstream,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest | ErrorKind::NotFound => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::Timeout => "timeout_error",
            ErrorKind::Upstream => "api_error",
            ErrorKind::Internal => "internal_server_error",
        }
    }

    /// The family a bare HTTP status belongs to, for errors relayed from a provider.
    pub fn for_status(status: StatusCode) -> ErrorKind {
        match status.as_u16() {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            408 | 504 => ErrorKind::Timeout,
            429 => ErrorKind::RateLimit,
            400..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Upstream,
        }
    }
}

/// The class of a provider failure, as routing policies name them (LiteLLM's `retry_policy`
/// and `allowed_fails_policy` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// A 4xx the provider would give any deployment: the request is wrong.
    BadRequest,
    /// The provider refused the gateway's credentials (401/403).
    Authentication,
    /// The deployment's model or URL does not exist there (404).
    NotFound,
    /// No answer in time (408, 504, the gateway's own timeouts).
    Timeout,
    RateLimit,
    /// The prompt does not fit the model's context window.
    ContextWindow,
    /// The provider's content filter refused the request.
    ContentPolicy,
    /// 5xx, or the provider could not be reached.
    InternalServer,
}

/// `code` of a context-window overflow, as OpenAI sends it and the translations mark it.
pub const CONTEXT_LENGTH_EXCEEDED: &str = "context_length_exceeded";
/// `code` of a content-filter refusal (OpenAI's; Azure sends `content_filter`).
pub const CONTENT_POLICY_VIOLATION: &str = "content_policy_violation";

/// A failed request, classified. Rendered to the client as
/// `{"error":{"message","type","param","code"}}` with `status`.
#[derive(Debug, Clone)]
pub struct GatewayError {
    pub status: StatusCode,
    pub origin: Origin,
    pub kind: ErrorKind,
    pub message: Cow<'static, str>,
    pub param: Option<Cow<'static, str>>,
    pub code: Option<Cow<'static, str>>,
    /// Sent back as `retry-after` (whole seconds, rounded up).
    pub retry_after: Option<Duration>,
}

impl GatewayError {
    pub fn new(
        status: StatusCode,
        origin: Origin,
        kind: ErrorKind,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        GatewayError {
            status,
            origin,
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<Cow<'static, str>>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// 400: the request body or a parameter is wrong.
    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            Origin::Client,
            ErrorKind::InvalidRequest,
            message,
        )
    }

    /// 400 for a named parameter that is missing or of the wrong type.
    pub fn invalid_param(param: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::invalid_request(message)
            .with_param(param)
            .with_code("invalid_value")
    }

    /// 401: no credential, or one that is not valid.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            Origin::Client,
            ErrorKind::Authentication,
            message,
        )
        .with_code("invalid_api_key")
    }

    /// 404: the requested model is not served by this gateway.
    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Origin::Client,
            ErrorKind::NotFound,
            format!("The model `{model}` does not exist or you do not have access to it."),
        )
        .with_param("model")
        .with_code("model_not_found")
    }

    /// 404 for a path the gateway does not serve.
    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Origin::Client,
            ErrorKind::NotFound,
            format!("Unknown request URL: {method} {path}."),
        )
        .with_code("unknown_url")
    }

    /// 405 for a known path called with the wrong method.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Origin::Client,
            ErrorKind::InvalidRequest,
            format!("Method {method} is not allowed on {path}."),
        )
        .with_code("method_not_allowed")
    }

    /// 413: the body exceeds the configured limit.
    pub fn payload_too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Origin::Client,
            ErrorKind::InvalidRequest,
            format!("Request body is larger than the limit of {limit_bytes} bytes."),
        )
        .with_code("request_too_large")
    }

    /// 502: the provider could not be reached or broke the connection.
    pub fn upstream_unreachable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            Origin::Upstream,
            ErrorKind::Upstream,
            message,
        )
        .with_code("upstream_unreachable")
    }

    /// 504: the provider did not answer within the deployment's timeout.
    pub fn upstream_timeout(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            Origin::Upstream,
            ErrorKind::Timeout,
            message,
        )
        .with_code("upstream_timeout")
    }

    /// The provider answered with an error status; the client gets the same status.
    pub fn upstream_status(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            status,
            Origin::Upstream,
            ErrorKind::for_status(status),
            message,
        )
    }

    /// 500: a fault inside the gateway.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Origin::Gateway,
            ErrorKind::Internal,
            message,
        )
    }

    /// 503: the database the answer needs cannot be read or written now.
    pub fn store_unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Origin::Gateway,
            ErrorKind::Internal,
            message,
        )
        .with_code("store_unavailable")
    }

    /// 503: the gateway is shutting down and takes no new work.
    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Origin::Gateway,
            ErrorKind::Upstream,
            "The gateway is shutting down; retry against another instance.",
        )
        .with_code("shutting_down")
    }

    /// Whether sending the same request to another deployment could succeed.
    pub fn is_retryable(&self) -> bool {
        self.origin == Origin::Upstream
            && (self.status.is_server_error()
                || matches!(self.status.as_u16(), 401 | 404 | 408 | 429))
    }

    /// The class of a provider failure; `None` when the provider is not at fault (the request
    /// itself was refused, or the gateway failed).
    pub fn failure_class(&self) -> Option<FailureClass> {
        if self.origin != Origin::Upstream {
            return None;
        }
        let class = match (self.code.as_deref(), self.status.as_u16()) {
            (Some(CONTEXT_LENGTH_EXCEEDED), _) => FailureClass::ContextWindow,
            (Some(CONTENT_POLICY_VIOLATION | "content_filter"), _) => FailureClass::ContentPolicy,
            (_, 429) => FailureClass::RateLimit,
            (_, 408 | 504) => FailureClass::Timeout,
            _ if self.kind == ErrorKind::Timeout => FailureClass::Timeout,
            (_, 401 | 403) => FailureClass::Authentication,
            (_, 404) => FailureClass::NotFound,
            (_, status) if status >= 500 => FailureClass::InternalServer,
            _ => FailureClass::BadRequest,
        };
        Some(class)
    }

    /// The body the client receives: `{"error":{"message","type","param","code"}}`.
    pub fn to_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Envelope<'a> {
            error: Body<'a>,
        }
        #[derive(serde::Serialize)]
        struct Body<'a> {
            message: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            param: Option<&'a str>,
            code: Option<&'a str>,
        }
        let envelope = Envelope {
            error: Body {
                message: &self.message,
                kind: self.kind.as_str(),
                param: self.param.as_deref(),
                code: self.code.as_deref(),
            },
        };
        serde_json::to_string(&envelope).expect("an error body always serialises")
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.kind.as_str(),
            self.message
        )
    }
}

impl std::error::Error for GatewayError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_openai_shape() {
        let err = GatewayError::invalid_param("model", "`model` must be a string");
        let body: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
        assert_eq!(body["error"]["message"], "`model` must be a string");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "model");
        assert_eq!(body["error"]["code"], "invalid_value");
    }

    #[test]
    fn only_upstream_failures_that_another_deployment_could_fix_are_retryable() {
        assert!(GatewayError::upstream_unreachable("down").is_retryable());
        assert!(
            GatewayError::upstream_status(StatusCode::TOO_MANY_REQUESTS, "slow").is_retryable()
        );
        assert!(!GatewayError::upstream_status(StatusCode::BAD_REQUEST, "bad").is_retryable());
        assert!(!GatewayError::invalid_request("bad").is_retryable());
    }

    #[test]
    fn failures_are_classed_by_code_before_status() {
        let class = |status: u16, code: Option<&'static str>| {
            let mut err =
                GatewayError::upstream_status(StatusCode::from_u16(status).unwrap(), "failed");
            err.code = code.map(Into::into);
            err.failure_class()
        };
        assert_eq!(
            class(400, Some(CONTEXT_LENGTH_EXCEEDED)),
            Some(FailureClass::ContextWindow)
        );
        assert_eq!(
            class(400, Some("content_filter")),
            Some(FailureClass::ContentPolicy)
        );
        assert_eq!(class(429, None), Some(FailureClass::RateLimit));
        assert_eq!(class(504, None), Some(FailureClass::Timeout));
        assert_eq!(class(403, None), Some(FailureClass::Authentication));
        assert_eq!(class(404, None), Some(FailureClass::NotFound));
        assert_eq!(class(503, None), Some(FailureClass::InternalServer));
        assert_eq!(class(422, None), Some(FailureClass::BadRequest));
        assert_eq!(
            GatewayError::upstream_timeout("slow").failure_class(),
            Some(FailureClass::Timeout)
        );
        assert_eq!(
            GatewayError::upstream_unreachable("refused").failure_class(),
            Some(FailureClass::InternalServer)
        );
        assert_eq!(GatewayError::invalid_request("bad").failure_class(), None);
    }
}
