//! Reaching providers: the pooled HTTP clients, each deployment's URLs and auth, sending with
//! timeouts, and classifying what goes wrong on the way (unreachable, timed out, broken).
#![forbid(unsafe_code)]

mod aws_credentials;
mod aws_sign;
pub mod client;
pub mod deployment;
mod google_auth;
pub mod media;
mod mock;

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::time::Instant;
use tollgate_core::endpoint::Operation;
use tollgate_core::error::GatewayError;

pub use client::{ClientPool, ClientSet, Webhook};
pub use deployment::Deployment;
use deployment::{HttpTarget, Target};
use http::Uri;

/// A provider's answer: status and headers are in; the body is still arriving.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: UpstreamBody,
}

/// A provider's response body, from the network or from the in-process mock.
#[derive(Debug)]
pub struct UpstreamBody {
    inner: BodyInner,
}

#[derive(Debug)]
enum BodyInner {
    Http(Incoming),
    Local(VecDeque<Bytes>),
}

impl UpstreamBody {
    pub(crate) fn local(frames: VecDeque<Bytes>) -> Self {
        UpstreamBody {
            inner: BodyInner::Local(frames),
        }
    }

    /// Reads the whole body, failing with 504 if `deadline` passes first.
    pub async fn collect_until(self, deadline: Instant) -> Result<Bytes, GatewayError> {
        match tokio::time::timeout_at(deadline, self.collect()).await {
            Ok(collected) => Ok(collected?.to_bytes()),
            Err(_) => Err(GatewayError::upstream_timeout(
                "The provider did not finish its response within the deployment's timeout.",
            )),
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = GatewayError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, GatewayError>>> {
        match &mut self.get_mut().inner {
            BodyInner::Http(body) => Pin::new(body).poll_frame(cx).map_err(|err| {
                GatewayError::upstream_unreachable(format!(
                    "The connection to the provider broke during the response: {}",
                    root_cause(&err)
                ))
            }),
            BodyInner::Local(frames) => {
                Poll::Ready(frames.pop_front().map(|bytes| Ok(Frame::data(bytes))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            BodyInner::Http(body) => body.is_end_stream(),
            BodyInner::Local(frames) => frames.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            BodyInner::Http(body) => body.size_hint(),
            BodyInner::Local(frames) => {
                SizeHint::with_exact(frames.iter().map(|f| f.len() as u64).sum())
            }
        }
    }
}

impl Deployment {
    /// Sends `body` to this deployment's `operation` and waits for the response head: up to
    /// `stream_timeout` for streams, `timeout` otherwise. `extra_headers` are added to the
    /// deployment's own (e.g. Anthropic beta flags passed on from the client).
    pub async fn send(
        &self,
        operation: Operation,
        body: Bytes,
        stream: bool,
        extra_headers: Option<HeaderMap>,
    ) -> Result<UpstreamResponse, GatewayError> {
        let target = match &self.target {
            Target::Mock => {
                return mock::respond(operation, &body, self.config.mock_response.as_deref());
            }
            Target::Http(target) => target,
        };
        let uri = self.operation_uri(target, operation, stream)?.clone();
        let first_byte_timeout = if stream {
            self.config.stream_timeout
        } else {
            self.config.timeout
        };
        self.dispatch(
            target,
            Method::POST,
            uri,
            body,
            first_byte_timeout,
            extra_headers,
        )
        .await
    }

    /// A body-less call under an operation's URL: `GET` or `DELETE` of `{url}/{path}` (a
    /// stored response, say).
    pub async fn request(
        &self,
        method: Method,
        operation: Operation,
        path: &str,
    ) -> Result<UpstreamResponse, GatewayError> {
        let Target::Http(target) = &self.target else {
            return Err(GatewayError::invalid_request(
                "`mock/` deployments store nothing.",
            ));
        };
        let base = self.operation_uri(target, operation, false)?;
        let uri = with_path_suffix(base, path).ok_or_else(|| {
            GatewayError::invalid_request(format!("`{path}` cannot be part of a URL."))
        })?;
        self.dispatch(target, method, uri, Bytes::new(), self.config.timeout, None)
            .await
    }

    fn operation_uri<'a>(
        &self,
        target: &'a HttpTarget,
        operation: Operation,
        stream: bool,
    ) -> Result<&'a Uri, GatewayError> {
        target.uri(operation, stream).ok_or_else(|| {
            GatewayError::invalid_request(format!(
                "`{}/` deployments do not serve {} requests.",
                self.config.provider.prefix,
                operation.as_str()
            ))
            .with_code("unsupported_operation")
        })
    }

    /// Authenticates (token or signature), sends, and waits for the response head.
    async fn dispatch(
        &self,
        target: &HttpTarget,
        method: Method,
        uri: Uri,
        body: Bytes,
        first_byte_timeout: Duration,
        extra_headers: Option<HeaderMap>,
    ) -> Result<UpstreamResponse, GatewayError> {
        let authorization = match &target.token_source {
            Some(source) => Some(source.authorization().await?),
            None => None,
        };
        let signed_body = target.signer.as_ref().map(|_| body.clone());
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        *headers = target.headers.clone();
        if let Some(authorization) = authorization {
            headers.insert(http::header::AUTHORIZATION, authorization);
        }
        if let (Some(signer), Some(body)) = (&target.signer, signed_body) {
            signer.sign(&mut request, &body).await?;
        }
        // Client-supplied headers go on after signing: they are not part of the signature.
        if let Some(extra) = extra_headers {
            request.headers_mut().extend(extra);
        }

        let response =
            match tokio::time::timeout(first_byte_timeout, target.clients.pick().request(request))
                .await
            {
                Err(_) => return Err(self.timed_out(first_byte_timeout)),
                Ok(Err(err)) => return Err(self.send_failed(&err, target.clients.connect_timeout)),
                Ok(Ok(response)) => response,
            };
        let (parts, body) = response.into_parts();
        Ok(UpstreamResponse {
            status: parts.status,
            headers: parts.headers,
            body: UpstreamBody {
                inner: BodyInner::Http(body),
            },
        })
    }

    fn timed_out(&self, after: Duration) -> GatewayError {
        GatewayError::upstream_timeout(format!(
            "{} at {} did not answer within {}s.",
            self.config.provider.prefix,
            self.api_base_host,
            after.as_secs_f64()
        ))
    }

    /// A request that could not be sent: a connection that took longer than `connect_timeout`
    /// to set up timed out (504, as a late answer does); any other failure is unreachable (502).
    fn send_failed(
        &self,
        err: &hyper_util::client::legacy::Error,
        connect_timeout: Duration,
    ) -> GatewayError {
        if err.is_connect() && caused_by_timeout(err) {
            return GatewayError::upstream_timeout(format!(
                "{} at {} did not accept a connection within {}s.",
                self.config.provider.prefix,
                self.api_base_host,
                connect_timeout.as_secs_f64()
            ));
        }
        GatewayError::upstream_unreachable(format!(
            "Could not reach {} at {}: {}.",
            self.config.provider.prefix,
            self.api_base_host,
            self.redact(&root_cause(err))
        ))
    }
}

/// Whether a timed-out I/O operation is among the causes of `err`.
fn caused_by_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    causes(err).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// `err`, then what caused it, and so on to the innermost cause.
fn causes<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |cause| cause.source())
}

/// The innermost cause of an error ("Connection refused (os error 111)"), which says what
/// happened; the outer layers only say where.
pub(crate) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    causes(err).last().unwrap_or(err).to_string()
}

/// `base` with `/{suffix}` added to its path, its query kept (Azure's `api-version`).
fn with_path_suffix(base: &Uri, suffix: &str) -> Option<Uri> {
    if suffix.is_empty()
        || !suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'/' | b'.'))
    {
        return None;
    }
    let path = format!("{}/{suffix}", base.path().trim_end_matches('/'));
    let path_and_query = match base.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}
