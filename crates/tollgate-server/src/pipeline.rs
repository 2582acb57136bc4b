//! The inference pipeline, top to bottom: authenticate, read, inspect, route, convert, send,
//! relay. See the crate's `app` module for where it sits among the layers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::StatusCode;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::time::Instant;
use tollgate_core::endpoint::{ClientFormat, Endpoint, Operation};
use tollgate_core::error::{ErrorKind, GatewayError, Origin};
use tollgate_core::provider::{ProviderKind, WireFormat};
use tollgate_policy::auth::{Caller, defined_tags, end_user_limits};
use tollgate_policy::directory::Cached;
use tollgate_policy::limits::{Limits, Scope};
use tollgate_router::{AttemptPlan, Decision, Member};
use tollgate_store::CustomerRecord;
use tollgate_translate::anthropic::outbound::Flavor;
use tollgate_translate::anthropic::platform;
use tollgate_translate::canonical::StreamTransform;
use tollgate_translate::passthrough::{InspectedRequest, inspect_request};
use tollgate_upstream::{Deployment, UpstreamBody, UpstreamResponse};

use crate::access_log::{AccessRecord, Outcome};
use crate::app::Gateway;
use crate::budgets::Payers;
use crate::error::ApiError;
use crate::exchange::{Exchange, provider_error};
use crate::request_context::{LoggedByPipeline, RequestId};
use crate::responses::{ResponseScope, Stored, Turn};
use crate::stream::ObservedStream;

const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
/// How many of a request's calls are in flight at once, when one request takes several
/// (Titan embeddings, one text per call).
const CONCURRENT_CALLS: usize = 8;

/// Serves one inference request and writes its access-log line.
pub(crate) async fn handle(
    gateway: &Arc<Gateway>,
    endpoint: Endpoint,
    request: Request,
) -> Response {
    let (request_id, client_chosen) = request
        .extensions()
        .get::<RequestId>()
        .map(|id| (id.id.clone(), id.client_chosen))
        .unwrap_or_else(|| (Arc::from(tollgate_core::ids::new_request_id()), false));
    let mut record = AccessRecord::start(gateway.clone(), request_id, endpoint);
    if client_chosen {
        record.client_chose_request_id();
    }
    let call_id = HeaderValue::from_str(record.call_id()).ok();

    let mut response = match proxy(gateway, endpoint, request, &mut record).await {
        Ok(Relay::Complete(mut response)) => {
            record.status = response.status().as_u16();
            record.outcome = Outcome::Completed;
            add_cost_headers(response.headers_mut(), record.cost());
            record.add_routing_headers(response.headers_mut());
            record.add_rate_limit_headers(response.headers_mut());
            record.write();
            response
        }
        Ok(Relay::Stream { mut head, upstream }) => {
            record.status = head.status.as_u16();
            record.add_routing_headers(&mut head.headers);
            record.add_rate_limit_headers(&mut head.headers);
            let body = ObservedStream::new(
                upstream.body,
                upstream.first,
                upstream.transform,
                upstream.deadline,
                upstream.idle_timeout,
                record,
            );
            Response::from_parts(head, Body::new(body))
        }
        Err(err) => {
            record.fail(&err);
            let mut response: Response = ApiError::new(err, endpoint.format()).into();
            record.add_routing_headers(response.headers_mut());
            record.add_rate_limit_headers(response.headers_mut());
            record.write();
            response
        }
    };
    if let Some(call_id) = call_id {
        for name in CALL_ID {
            response.headers_mut().insert(name, call_id.clone());
        }
    }
    response.extensions_mut().insert(LoggedByPipeline);
    response
}

/// The request's unique id (its spend record's): Tollgate's name, then LiteLLM's.
const CALL_ID: [HeaderName; 2] = [
    HeaderName::from_static("x-tollgate-call-id"),
    HeaderName::from_static("x-litellm-call-id"),
];

/// A health probe: `body` sent to `deployment` alone, as one attempt of a request would be
/// (same conversion, timeouts and error mapping), and logged like one under `request_id`.
pub(crate) async fn probe(
    gateway: &Arc<Gateway>,
    endpoint: Endpoint,
    body: Bytes,
    deployment: &Deployment,
    request_id: Arc<str>,
) -> Result<(), GatewayError> {
    let mut record = AccessRecord::start(gateway.clone(), request_id, endpoint);
    let inspected = inspect_request(endpoint, &body)?;
    record.model = Some(inspected.model.clone());
    let outgoing = Outgoing {
        endpoint,
        client_headers: &HeaderMap::new(),
        body: &body,
        inspected: &inspected,
        turn: &Turn::none(),
    };
    let result = attempt(gateway, &outgoing, deployment, &mut record).await;
    match &result {
        Ok(_) => {
            record.status = StatusCode::OK.as_u16();
            record.outcome = Outcome::Completed;
        }
        Err(err) => record.fail(err),
    }
    record.write();
    result.map(drop)
}

/// How the provider's answer goes back to the client.
enum Relay {
    /// The whole body is in hand.
    Complete(Response),
    /// Headers now; the body is relayed as it arrives.
    Stream {
        head: http::response::Parts,
        upstream: StreamingUpstream,
    },
}

struct StreamingUpstream {
    body: UpstreamBody,
    /// The first chunk, read before the response head was sent.
    first: Option<Bytes>,
    transform: Box<dyn StreamTransform>,
    deadline: Instant,
    idle_timeout: Duration,
}

async fn proxy(
    gateway: &Gateway,
    endpoint: Endpoint,
    request: Request,
    record: &mut AccessRecord,
) -> Result<Relay, GatewayError> {
    let (parts, body) = request.into_parts();
    let caller = gateway.auth.authenticate(&parts.headers)?;
    if endpoint != Endpoint::CountTokens {
        if let Some(ledger) = &gateway.spend {
            ledger.check_room()?;
        }
        record.caller = Some(caller.clone());
    }
    let body = read_body(body, &parts.headers, gateway.max_request_body_bytes).await?;

    let mut inspected = inspect_request(endpoint, &body)?;
    record.model = Some(inspected.model.clone());
    record.stream = inspected.stream;
    record.end_user.clone_from(&inspected.end_user);
    if gateway.spend.is_some() {
        if inspected.stream {
            record.request_body = Some(body.clone());
        }
        let tags = std::mem::take(&mut inspected.tags);
        crate::spend::note_labels(record, &parts.headers, tags, inspected.metadata(&body));
    }

    let model = caller.resolve_model(&inspected.model)?;
    // A key's own fallbacks may not reach models the key may not use.
    for fallback in inspected.fallbacks.iter().flatten() {
        caller.resolve_model(fallback)?;
    }
    let customer = inspected
        .end_user
        .as_deref()
        .and_then(|id| gateway.auth.directory.customers.get(id));
    let limits = rate_limits(gateway, &caller, customer.as_deref())?;
    let mut plan = gateway.router.plan(model, inspected.fallbacks.take())?;
    let payers = Payers {
        caller: &caller,
        end_user: customer.as_deref(),
        tags: &defined_tags(&caller, &record.request_tags, &gateway.auth.directory),
        model: &inspected.model,
    };
    // The request's place under its rate limits and its budgets' reservation are asked for
    // together: with a shared Redis, both leave in one write and come back in one round trip.
    // A request refused by a limit gives its reservation back.
    let call_id = record.call_id();
    let (admitted, reserved) = tokio::join!(
        gateway.limits.admit(&limits, call_id),
        crate::budgets::reserve(
            gateway,
            &payers,
            endpoint,
            &body,
            inspected.max_output_tokens,
            &plan,
            call_id,
        )
    );
    match admitted {
        Ok(admission) => {
            record.quota = admission.quota;
            record.admission = admission;
        }
        Err(refusal) => {
            record.quota = Some(refusal.quota);
            return Err(refusal.error);
        }
    }
    record.reservation = reserved?;
    let turn = if endpoint == Endpoint::Responses {
        Turn::of(gateway, &body, ResponseScope::of(&caller)).await?
    } else {
        Turn::none()
    };
    if let Some(holder) = native_response_holder(gateway, &plan, &turn) {
        plan.pin(holder);
    }
    if gateway.router.checks_prompt_size()
        && let Some(tokens) = crate::exchange::estimated_prompt_tokens(endpoint, &body).await
    {
        plan.limit_prompt(tokens);
    }
    let outgoing = Outgoing {
        endpoint,
        client_headers: &parts.headers,
        body: &body,
        inspected: &inspected,
        turn: &turn,
    };
    let mut last_error = None;
    loop {
        let Some(lease) = plan.next_attempt() else {
            return Err(last_error.unwrap_or_else(|| plan.unavailable()));
        };
        let result = attempt(gateway, &outgoing, &lease, record).await;
        record.note_attempt(&plan);
        match result {
            Ok(relay) => {
                if let Some(latency) = record.upstream_latency() {
                    plan.succeeded(&lease, latency);
                }
                record.lease = Some(lease);
                return Ok(relay);
            }
            Err(err) => match plan.failed(&lease, &err) {
                Decision::Retry { after } => {
                    tracing::info!(
                        deployment = %lease.config.id,
                        error = %err.message,
                        status = err.status.as_u16(),
                        retry_in_s = after.as_secs_f64(),
                        next_group = %plan.group().name,
                        "attempt failed; trying again"
                    );
                    // No longer in flight there while the next attempt waits or runs.
                    drop(lease);
                    if !after.is_zero() {
                        tokio::time::sleep(after).await;
                        record.provider_time += after;
                    }
                    last_error = Some(err);
                }
                Decision::GiveUp => {
                    record.lease = Some(lease);
                    return Err(err);
                }
            },
        }
    }
}

/// Refuses a blocked end user (403); else the rate limits of the request's key, user, team,
/// team member and end user.
fn rate_limits<'a>(
    gateway: &'a Gateway,
    caller: &'a Caller,
    customer: Option<&'a Cached<CustomerRecord>>,
) -> Result<Vec<(Scope<'a>, Limits)>, GatewayError> {
    let directory = &gateway.auth.directory;
    let mut checks = caller.limits(directory);
    if let Some(customer) = customer {
        if customer.record.blocked {
            return Err(GatewayError::new(
                StatusCode::FORBIDDEN,
                Origin::Client,
                ErrorKind::Permission,
                format!("End user `{}` is blocked.", customer.record.user_id),
            )
            .with_param("user")
            .with_code("end_user_blocked"));
        }
        checks.push(end_user_limits(&customer.record, directory));
    }
    Ok(checks)
}

/// What each attempt of a request sends on, whichever deployment it tries.
#[derive(Clone, Copy)]
struct Outgoing<'a> {
    endpoint: Endpoint,
    client_headers: &'a HeaderMap,
    body: &'a Bytes,
    inspected: &'a InspectedRequest,
    turn: &'a Turn,
}

/// One attempt on one deployment: convert, send, and read the answer up to what the client
/// needs first (the whole body, or a stream's first event), so that a failure before the
/// client has seen anything can still be retried elsewhere.
async fn attempt(
    gateway: &Gateway,
    request: &Outgoing<'_>,
    deployment: &Deployment,
    record: &mut AccessRecord,
) -> Result<Relay, GatewayError> {
    let Outgoing {
        endpoint,
        client_headers,
        body,
        inspected,
        turn,
    } = *request;
    record.start_attempt();
    let config = &deployment.config;
    let (upstream_body, mut exchange) = Exchange::prepare(
        gateway,
        endpoint,
        body,
        inspected,
        deployment,
        client_headers,
        turn,
    )
    .await?;
    if let Exchange::Local(answer) = exchange {
        return Ok(Relay::Complete(json_reply(StatusCode::OK, answer)));
    }
    let extra_headers = forwarded_headers(endpoint, deployment, client_headers);

    let upstream_started = Instant::now();
    record.upstream_started = Some(upstream_started.into_std());
    record.first_byte = None;
    let deadline = upstream_started + config.timeout;
    let more_calls = exchange.take_more_calls();
    if !more_calls.is_empty() {
        let calls = std::iter::once(upstream_body).chain(more_calls);
        let operation = exchange.upstream_operation(endpoint);
        let bodies = send_each(deployment, operation, calls, deadline).await?;
        let answered = std::time::Instant::now();
        record.first_byte = Some(answered);
        record.answered = Some(answered);
        let (bytes, usage) = exchange.complete_calls(bodies)?;
        record.usage = usage;
        return Ok(Relay::Complete(json_reply(StatusCode::OK, bytes)));
    }
    let response = deployment
        .send(
            exchange.upstream_operation(endpoint),
            upstream_body,
            inspected.stream,
            extra_headers,
        )
        .await?;

    if !response.status.is_success() {
        return Err(relay_error(deployment, response, deadline).await);
    }

    // Server-sent events, or AWS event-stream frames (Bedrock).
    let is_event_stream = response
        .headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("text/event-stream")
                || value.starts_with("application/vnd.amazon.eventstream")
        });
    if inspected.stream && is_event_stream {
        let mut head = Response::new(()).into_parts().0;
        head.status = response.status;
        head.headers = stream_headers();
        let mut body = response.body;
        // Nothing reaches the client until the first event is in: the headers then leave with
        // it in one write, and a provider that fails before its first event fails the attempt
        // with a proper status (so it can be retried) rather than a broken stream.
        let first_event_deadline = (upstream_started + config.stream_timeout).min(deadline);
        let first = match tokio::time::timeout_at(first_event_deadline, body.frame()).await {
            Err(_) => {
                return Err(GatewayError::upstream_timeout(format!(
                    "The provider sent no stream event within {}s.",
                    config.stream_timeout.as_secs_f64()
                )));
            }
            Ok(None) => None,
            Ok(Some(frame)) => frame?.into_data().ok(),
        };
        record.first_byte = Some(std::time::Instant::now());
        return Ok(Relay::Stream {
            head,
            upstream: StreamingUpstream {
                body,
                first,
                transform: exchange.stream(),
                deadline,
                idle_timeout: config.stream_idle_timeout,
            },
        });
    }
    record.first_byte = Some(std::time::Instant::now());

    let status = response.status;
    let bytes = response.body.collect_until(deadline).await?;
    record.answered = Some(std::time::Instant::now());
    let (bytes, usage) = exchange.complete(bytes)?;
    record.usage = usage;
    Ok(Relay::Complete(json_reply(status, bytes)))
}

/// Calls that answer one request together (Titan embeds one text per call), sent
/// `CONCURRENT_CALLS` at a time; their whole bodies in call order, or the first failure, which
/// abandons the rest. Each call is sent as a single call would be (same timeouts, same
/// error relaying), within the request's `deadline`.
async fn send_each(
    deployment: &Deployment,
    operation: Operation,
    calls: impl Iterator<Item = Bytes>,
    deadline: Instant,
) -> Result<Vec<Bytes>, GatewayError> {
    let calls = calls.map(|body| async move {
        let response = deployment.send(operation, body, false, None).await?;
        if !response.status.is_success() {
            return Err(relay_error(deployment, response, deadline).await);
        }
        response.body.collect_until(deadline).await
    });
    let bodies = futures_util::stream::iter(calls)
        .buffered(CONCURRENT_CALLS)
        .try_collect();
    tokio::time::timeout_at(deadline, bodies)
        .await
        .unwrap_or_else(|_| {
            Err(GatewayError::upstream_timeout(format!(
                "{} did not answer every call within the deployment's timeout.",
                deployment.config.provider.prefix
            )))
        })
}

/// What the request cost, under Tollgate's and LiteLLM's header names, in dollars.
fn add_cost_headers(headers: &mut HeaderMap, cost: tollgate_pricing::Usd) {
    const COST: [HeaderName; 2] = [
        HeaderName::from_static("x-tollgate-response-cost"),
        HeaderName::from_static("x-litellm-response-cost"),
    ];
    if let Ok(value) = HeaderValue::from_str(&cost.to_string()) {
        for name in COST {
            headers.insert(name, value.clone());
        }
    }
}

fn json_reply(status: StatusCode, body: Bytes) -> Response {
    let mut reply = Response::new(Body::from(body));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply
}

/// For a Responses request continuing a response a provider keeps: the deployment holding
/// it, when it serves the model asked for.
fn native_response_holder(
    gateway: &Gateway,
    plan: &AttemptPlan<'_>,
    turn: &Turn,
) -> Option<Arc<Member>> {
    let Some(Stored::Native { deployment }) = &turn.previous else {
        return None;
    };
    let holder = gateway.router.deployment(deployment)?;
    (holder.config.model_name == plan.requested().name).then(|| holder.clone())
}

/// Client headers a provider needs: Anthropic's beta flags, when both sides speak Anthropic —
/// as sent to Anthropic, only those Vertex AI knows for Claude on Vertex, and none for
/// Bedrock (which takes them in the body).
fn forwarded_headers(
    endpoint: Endpoint,
    deployment: &Deployment,
    headers: &HeaderMap,
) -> Option<HeaderMap> {
    if endpoint.format() != ClientFormat::Anthropic
        || deployment.config.wire_format() != WireFormat::Anthropic
    {
        return None;
    }
    let beta = headers.get(&ANTHROPIC_BETA)?;
    let beta = match deployment.config.provider.kind {
        ProviderKind::Bedrock => return None,
        ProviderKind::Vertex => {
            let accepted = platform::accepted_betas(Flavor::Vertex, beta.to_str().ok()?);
            if accepted.is_empty() {
                return None;
            }
            HeaderValue::from_str(&accepted.join(",")).ok()?
        }
        _ => beta.clone(),
    };
    let mut forwarded = HeaderMap::with_capacity(1);
    forwarded.insert(ANTHROPIC_BETA, beta);
    Some(forwarded)
}

/// Reads the request body, refusing with 413 anything over `limit` (before reading it when
/// `content-length` already says so).
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(GatewayError::payload_too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(GatewayError::payload_too_large(limit)),
        Err(err) => Err(GatewayError::invalid_request(format!(
            "Could not read the request body: {err}."
        ))),
    }
}

/// A provider error, relayed with its status and message (provider key masked) and its
/// `retry-after`, if it sent one.
async fn relay_error(
    deployment: &Deployment,
    response: UpstreamResponse,
    deadline: Instant,
) -> GatewayError {
    let status = response.status;
    let retry_after = retry_after(&response.headers);
    let body = match response.body.collect_until(deadline).await {
        Ok(body) => body,
        Err(err) => return err,
    };
    let mut err = provider_error(deployment, status, &body);
    err.message = deployment.redact(&err.message).into();
    if let Some(after) = retry_after {
        err = err.with_retry_after(after);
    }
    if err.status == StatusCode::UNAUTHORIZED || err.status == StatusCode::FORBIDDEN {
        // The provider refused the gateway's own credential; the client's key was fine.
        err.message = format!(
            "The provider rejected the gateway's credentials for deployment `{}`: {}",
            deployment.config.id, err.message
        )
        .into();
    }
    err
}

/// `retry-after` in seconds or `retry-after-ms`, as providers send them.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(millis) = header("retry-after-ms").and_then(|text| text.trim().parse::<f64>().ok())
    {
        return tollgate_core::duration::seconds(millis / 1000.0);
    }
    header(RETRY_AFTER.as_str())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .and_then(tollgate_core::duration::seconds)
}

/// Headers for a relayed stream: the event-stream type, and no caching or proxy buffering.
fn stream_headers() -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers
}
