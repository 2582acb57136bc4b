//! How one request crosses from its client's format to its provider's, and how the answer comes
//! back. Same format on both sides: the body is edited in place and the answer observed on its
//! way (the fast path). Different formats: both go through the canonical form.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tollgate_core::endpoint::{ClientFormat, Endpoint, Operation};
use tollgate_core::error::GatewayError;
use tollgate_core::provider::{ProviderKind, WireFormat};
use tollgate_translate::anthropic::inbound::{self, AnthropicEncoder, ReasoningSupport};
use tollgate_translate::anthropic::observer::AnthropicStreamObserver;
use tollgate_translate::anthropic::outbound::{self, AnthropicDecoder, Flavor, Target};
use tollgate_translate::anthropic::{self as anthropic};
use tollgate_translate::bedrock::converse::{self, ConverseDecoder};
use tollgate_translate::bedrock::embeddings::EmbeddingFamily;
use tollgate_translate::bedrock::invoke::{InvokeDecoder, InvokeObserver};
use tollgate_translate::bedrock::{self};
use tollgate_translate::canonical::{
    Completion, OpenAiUsage, StreamDecoder, StreamEncoder, StreamTransform, TokenUsage, Translated,
};
use tollgate_translate::cohere::{self, chat::CohereDecoder};
use tollgate_translate::gemini::embeddings::EmbeddingApi;
use tollgate_translate::gemini::{self, response::GeminiDecoder};
use tollgate_translate::openai::codec::{self as openai_codec, ChunkDecoder, ChunkEncoder};
use tollgate_translate::openai::embeddings as openai_embeddings;
use tollgate_translate::openai::errors::upstream_error;
use tollgate_translate::openai::observer::OpenAiStreamObserver;
use tollgate_translate::params::ParamPolicy;
use tollgate_translate::passthrough::{InspectedRequest, prepare_upstream_body};
use tollgate_translate::responses::native::{NativeResponsesObserver, OnId, ResponseHead};
use tollgate_translate::responses::response::ResponseContext;
use tollgate_translate::responses::stream::{OnComplete, ResponsesEncoder};
use tollgate_translate::responses::{self};
use tollgate_translate::tokens;
use tollgate_upstream::Deployment;
use tollgate_wire::anthropic::MessagesResponse;
use tollgate_wire::openai::{ChatRequest, ResponseUsage};
use tollgate_wire::responses::{InputItem, ResponsesRequest};

use crate::app::Gateway;
use crate::media::inline_remote_images;
use crate::responses::{ResponseScope, ResponseStore, Stored, Turn};

const ANTHROPIC_BETA: &str = "anthropic-beta";

/// The conversion chosen for one request.
pub(crate) enum Exchange {
    /// Same format both sides.
    Passthrough {
        format: SameFormat,
        /// OpenAI streams: the usage chunk was asked for by the gateway, not the client.
        hide_usage_chunk: bool,
        /// Anthropic streams from Bedrock's InvokeModel come in event-stream frames.
        bedrock_frames: bool,
    },
    /// Through the canonical form.
    Translated {
        provider: ProviderSide,
        client: ClientSide,
    },
    /// A Responses API request to a provider that has the API: relayed as is; the gateway
    /// remembers which deployment holds the response (`remember`, unless `store: false`).
    NativeResponses { remember: Option<Remember> },
    /// An Anthropic token count answered by Gemini's `countTokens` (`totalTokens`).
    GeminiTokenCount,
    /// An answer the gateway gives itself, without calling the provider (a token count
    /// estimated where the provider cannot count).
    Local(Bytes),
    /// OpenAI embeddings from a provider with its own embeddings format.
    Embeddings {
        codec: EmbeddingCodec,
        /// The deployment's model, named in the answer.
        model: String,
        inputs: usize,
        estimated_tokens: u64,
        base64: bool,
        /// The bodies of the calls after the first, for models that embed one text per call
        /// (Titan): all are sent together and their answers read back in order.
        more_calls: Vec<Bytes>,
    },
}

/// The formats clients and providers can share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SameFormat {
    OpenAi,
    Anthropic,
}

pub(crate) enum ProviderSide {
    OpenAi,
    Anthropic {
        plan: outbound::Plan,
        bedrock_frames: bool,
    },
    /// `model`: the deployment's model, named in answers that do not say.
    Gemini {
        model: String,
    },
    BedrockConverse {
        plan: converse::Plan,
        model: String,
    },
    Cohere {
        model: String,
    },
}

pub(crate) enum ClientSide {
    OpenAi {
        include_usage: bool,
    },
    /// `model`: the name the client asked for, echoed in answers.
    Anthropic {
        model: String,
    },
    /// A Responses API client; `keep` stores the response unless `store: false`.
    Responses {
        context: Box<ResponseContext>,
        keep: Option<Keep>,
    },
}

/// Where a native response lives: this deployment, recorded in the store.
pub(crate) struct Remember {
    store: Arc<ResponseStore>,
    deployment: String,
    scope: ResponseScope,
}

impl Remember {
    fn record(&self, id: &str) {
        let stored = Stored::Native {
            deployment: self.deployment.clone(),
        };
        self.store.insert(id.to_owned(), stored, &self.scope);
    }
}

/// What a bridged response is stored with: the turn's input items and its predecessor.
pub(crate) struct Keep {
    store: Arc<ResponseStore>,
    input: Vec<serde_json::Value>,
    previous: Option<String>,
    scope: ResponseScope,
}

impl Keep {
    fn save(self, response: &serde_json::Value) {
        let Some(id) = response["id"].as_str() else {
            return;
        };
        let mut items = self.input;
        items.extend(response["output"].as_array().cloned().unwrap_or_default());
        let stored = Stored::Bridged {
            response: Bytes::from(response.to_string()),
            items: Bytes::from(serde_json::Value::Array(items).to_string()),
            previous: self.previous,
        };
        self.store.insert(id.to_owned(), stored, &self.scope);
    }
}

pub(crate) enum EmbeddingCodec {
    Google(EmbeddingApi),
    Bedrock(EmbeddingFamily),
    Cohere,
}

impl Exchange {
    /// The body for the provider, and how to read its answer. `client_headers` are the
    /// request's own, for what a provider wants in the body instead (Bedrock's beta flags).
    pub(crate) async fn prepare(
        gateway: &Gateway,
        endpoint: Endpoint,
        body: &Bytes,
        inspected: &InspectedRequest,
        deployment: &Deployment,
        client_headers: &HeaderMap,
        turn: &Turn,
    ) -> Result<(Bytes, Exchange), GatewayError> {
        let config = &deployment.config;
        // A conversation the gateway holds (bridged earlier) continues through chat, even on a
        // deployment with its own Responses API: the provider does not know the gateway's ids.
        let continues_bridged = endpoint.format() == ClientFormat::Responses
            && matches!(turn.previous, Some(Stored::Bridged { .. }));
        let flavor = anthropic_flavor(deployment);
        let bedrock_frames = flavor == Flavor::Bedrock;
        match (endpoint.format(), config.wire_format()) {
            (ClientFormat::OpenAi, WireFormat::OpenAi) => {
                let upstream = prepare_upstream_body(
                    body,
                    inspected,
                    &config.model,
                    config.inject_stream_usage,
                );
                let hide_usage_chunk = config.inject_stream_usage && !inspected.client_wants_usage;
                Ok((
                    upstream,
                    Exchange::Passthrough {
                        format: SameFormat::OpenAi,
                        hide_usage_chunk,
                        bedrock_frames: false,
                    },
                ))
            }
            (ClientFormat::Anthropic, provider_format)
                if endpoint.operation() == Operation::CountTokens
                    && (provider_format != WireFormat::Anthropic || flavor == Flavor::Bedrock) =>
            {
                count_tokens(body, deployment, provider_format).await
            }
            (ClientFormat::Anthropic, WireFormat::Anthropic) => {
                // Token counting names the model in the body, on Vertex too.
                let counting = endpoint.operation() == Operation::CountTokens;
                let upstream = if flavor == Flavor::Anthropic || counting {
                    prepare_upstream_body(body, inspected, &config.model, false)
                } else {
                    // The model is in the URL and the API version in the body; Bedrock also
                    // takes the beta flags there.
                    let betas = client_headers
                        .get(ANTHROPIC_BETA)
                        .and_then(|value| value.to_str().ok());
                    anthropic::platform::adapt_native_request(body, flavor, betas)?
                };
                Ok((
                    upstream,
                    Exchange::Passthrough {
                        format: SameFormat::Anthropic,
                        hide_usage_chunk: false,
                        bedrock_frames,
                    },
                ))
            }
            (ClientFormat::Responses, WireFormat::OpenAi)
                if config.responses_api && !continues_bridged =>
            {
                let upstream = prepare_upstream_body(body, inspected, &config.model, false);
                let remember = stores(body).then(|| Remember {
                    store: gateway.responses.clone(),
                    deployment: config.id.clone(),
                    scope: turn.scope.clone(),
                });
                Ok((upstream, Exchange::NativeResponses { remember }))
            }
            (ClientFormat::OpenAi, provider_format)
                if endpoint.operation() == Operation::Embedding =>
            {
                let request = openai_embeddings::decode_request(body, config.provider.prefix)?;
                let mut more_calls = Vec::new();
                let (upstream, codec) = match provider_format {
                    WireFormat::Gemini => {
                        let api = match config.provider.kind {
                            ProviderKind::Vertex => EmbeddingApi::Vertex,
                            _ => EmbeddingApi::Gemini,
                        };
                        let upstream =
                            gemini::embeddings::encode_request(&request, &config.model, api)?;
                        (upstream, EmbeddingCodec::Google(api))
                    }
                    WireFormat::BedrockConverse => {
                        let (calls, family) =
                            bedrock::embeddings::encode_request(&request, &config.model)?;
                        let mut calls = calls.into_iter();
                        let first = calls.next().unwrap_or_default();
                        more_calls.extend(calls);
                        (first, EmbeddingCodec::Bedrock(family))
                    }
                    WireFormat::Cohere => {
                        let upstream = cohere::embeddings::encode_request(&request, &config.model)?;
                        (upstream, EmbeddingCodec::Cohere)
                    }
                    WireFormat::OpenAi | WireFormat::Anthropic => {
                        return Err(unsupported(endpoint, deployment));
                    }
                };
                let exchange = Exchange::Embeddings {
                    codec,
                    model: config.model.clone(),
                    inputs: request.texts.len(),
                    estimated_tokens: openai_embeddings::estimate_tokens(&request.texts),
                    base64: request.wants_base64(),
                    more_calls,
                };
                Ok((upstream, exchange))
            }
            (client_format, provider_format) => {
                if endpoint.operation() != Operation::Chat {
                    return Err(unsupported(endpoint, deployment));
                }
                // Everything crosses through the canonical (OpenAI chat) request.
                let anthropic_request;
                let responses_request;
                let history;
                let history_items;
                let (mut chat, client): (ChatRequest<'_>, ClientSide) = match client_format {
                    ClientFormat::OpenAi => {
                        let chat = serde_json::from_slice(body).map_err(request_error)?;
                        let client = ClientSide::OpenAi {
                            include_usage: inspected.client_wants_usage,
                        };
                        (chat, client)
                    }
                    ClientFormat::Anthropic => {
                        anthropic_request = inbound::decode_request(body)?;
                        let reasoning = if supports_reasoning(deployment) {
                            ReasoningSupport::Effort
                        } else {
                            ReasoningSupport::None
                        };
                        let chat = inbound::to_chat_request(
                            &anthropic_request,
                            reasoning,
                            &policy(deployment),
                        )?;
                        let client = ClientSide::Anthropic {
                            model: inspected.model.clone(),
                        };
                        (chat, client)
                    }
                    ClientFormat::Responses => {
                        responses_request = serde_json::from_slice::<ResponsesRequest<'_>>(body)
                            .map_err(request_error)?;
                        let previous = responses_request.previous_response_id.as_deref();
                        history = match previous {
                            Some(id) => {
                                gateway
                                    .responses
                                    .history(id, turn.previous.as_ref(), &turn.scope)
                                    .await?
                            }
                            None => Vec::new(),
                        };
                        history_items = history
                            .iter()
                            .map(|turn| serde_json::from_slice::<Vec<InputItem<'_>>>(turn))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|err| {
                                GatewayError::internal(format!(
                                    "a stored response is unreadable: {err}"
                                ))
                            })?
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>();
                        let (mut chat, plan) = responses::request::to_chat_request(
                            &responses_request,
                            &history_items,
                            &policy(deployment),
                        )?;
                        // Codex sends `reasoning` on every request; a model known not to reason
                        // would refuse it.
                        if reasoning_disabled(deployment) {
                            chat.reasoning_effort = None;
                        }
                        let raw: serde_json::Map<String, serde_json::Value> =
                            serde_json::from_slice(body).map_err(request_error)?;
                        let keep = stores(body).then(|| Keep {
                            store: gateway.responses.clone(),
                            input: input_items(&raw),
                            previous: previous.map(str::to_owned),
                            scope: turn.scope.clone(),
                        });
                        let context = Box::new(ResponseContext {
                            id: responses::response::new_id("resp"),
                            created_at: responses::response::now(),
                            model: inspected.model.clone(),
                            echo: echo(&raw),
                            plan,
                        });
                        (chat, ClientSide::Responses { context, keep })
                    }
                };
                // Converse and Gemini take images as bytes, not URLs; so does Claude on Vertex
                // AI and Bedrock ("URL sources are not supported"), unlike Anthropic's API.
                let needs_bytes = match provider_format {
                    WireFormat::BedrockConverse | WireFormat::Gemini => true,
                    WireFormat::Anthropic => flavor != Flavor::Anthropic,
                    WireFormat::OpenAi | WireFormat::Cohere => false,
                };
                if needs_bytes {
                    inline_remote_images(&mut chat, &gateway.media).await?;
                }
                let policy = policy(deployment);
                let (upstream, provider) = match provider_format {
                    WireFormat::OpenAi => {
                        let upstream = openai_codec::encode_request(
                            &mut chat,
                            &config.model,
                            config.inject_stream_usage,
                        )?;
                        (upstream, ProviderSide::OpenAi)
                    }
                    WireFormat::Anthropic => {
                        let target = Target {
                            model: &config.model,
                            flavor,
                            max_output_tokens: config
                                .model_info
                                .max_output_tokens
                                .or(config.model_info.max_tokens),
                        };
                        let (upstream, plan) = outbound::encode_request(&chat, target, &policy)?;
                        let provider = ProviderSide::Anthropic {
                            plan,
                            bedrock_frames,
                        };
                        (upstream, provider)
                    }
                    WireFormat::Gemini => {
                        let target = gemini::request::Target {
                            model: &config.model,
                        };
                        let upstream = gemini::request::encode_request(&chat, target, &policy)?;
                        let model = config.model.clone();
                        (upstream, ProviderSide::Gemini { model })
                    }
                    WireFormat::BedrockConverse => {
                        let target = converse::Target {
                            model: &config.model,
                        };
                        let (upstream, plan) = converse::encode_request(&chat, target, &policy)?;
                        let model = config.model.clone();
                        (upstream, ProviderSide::BedrockConverse { plan, model })
                    }
                    WireFormat::Cohere => {
                        let upstream = cohere::chat::encode_request(&chat, &config.model, &policy)?;
                        let model = config.model.clone();
                        (upstream, ProviderSide::Cohere { model })
                    }
                };
                Ok((upstream, Exchange::Translated { provider, client }))
            }
        }
    }

    /// A whole answer for the client, and the usage it reports.
    pub(crate) fn complete(self, body: Bytes) -> Result<(Bytes, Option<TokenUsage>), GatewayError> {
        match self {
            Exchange::Passthrough {
                format: SameFormat::OpenAi,
                ..
            } => {
                let usage = serde_json::from_slice::<ResponseUsage>(&body)
                    .ok()
                    .and_then(|parsed| parsed.usage)
                    .map(|usage| TokenUsage::from_openai(&usage));
                Ok((body, usage))
            }
            Exchange::Passthrough {
                format: SameFormat::Anthropic,
                ..
            } => {
                let usage = serde_json::from_slice::<MessagesResponse<'_>>(&body)
                    .ok()
                    .map(|response| outbound::token_usage(&response.usage));
                Ok((body, usage))
            }
            Exchange::NativeResponses { remember } => {
                let head = serde_json::from_slice::<ResponseHead>(&body).unwrap_or_default();
                if let (Some(remember), Some(id)) = (&remember, &head.id) {
                    remember.record(id);
                }
                Ok((body, head.usage.map(|usage| usage.token_usage())))
            }
            Exchange::GeminiTokenCount => {
                let input_tokens = gemini::response::decode_token_count(&body)?;
                let answer = serde_json::json!({ "input_tokens": input_tokens });
                Ok((Bytes::from(answer.to_string()), None))
            }
            Exchange::Local(answer) => Ok((answer, None)),
            Exchange::Translated { provider, client } => {
                let completion: Completion<'_> = match &provider {
                    ProviderSide::OpenAi => openai_codec::decode_completion(&body)?,
                    ProviderSide::Anthropic { plan, .. } => outbound::decode_response(&body, plan)?,
                    ProviderSide::Gemini { model } => {
                        gemini::response::decode_response(&body, model)?
                    }
                    ProviderSide::BedrockConverse { plan, model } => {
                        converse::decode_response(&body, plan, model)?
                    }
                    ProviderSide::Cohere { model } => cohere::chat::decode_response(&body, model)?,
                };
                let usage = completion.usage;
                let encoded = match client {
                    ClientSide::OpenAi { .. } => openai_codec::encode_completion(&completion),
                    ClientSide::Anthropic { model } => {
                        inbound::encode_response(&completion, &model)?
                    }
                    ClientSide::Responses { context, keep } => {
                        let (encoded, response) =
                            responses::response::encode_response(&completion, &context)?;
                        if let Some(keep) = keep {
                            keep.save(&response);
                        }
                        encoded
                    }
                };
                Ok((encoded, usage))
            }
            Exchange::Embeddings { .. } => self.complete_calls(vec![body]),
        }
    }

    /// The calls after the first that the request needs, taken out (Titan embeddings of
    /// several texts); empty for every other request.
    pub(crate) fn take_more_calls(&mut self) -> Vec<Bytes> {
        match self {
            Exchange::Embeddings { more_calls, .. } => std::mem::take(more_calls),
            _ => Vec::new(),
        }
    }

    /// An embeddings answer made of the answers to every call, in call order (the first
    /// call's first), and the usage they report together.
    pub(crate) fn complete_calls(
        self,
        bodies: Vec<Bytes>,
    ) -> Result<(Bytes, Option<TokenUsage>), GatewayError> {
        let Exchange::Embeddings {
            codec,
            model,
            inputs,
            estimated_tokens,
            base64,
            ..
        } = self
        else {
            return Err(GatewayError::internal(
                "Only embeddings requests are answered by several calls.",
            ));
        };
        let single = |bodies: &[Bytes]| match bodies {
            [body] => Ok(body.clone()),
            _ => Err(GatewayError::internal(format!(
                "{} answers for an embeddings request that makes one call.",
                bodies.len()
            ))),
        };
        let (vectors, usage) = match codec {
            EmbeddingCodec::Google(api) => gemini::embeddings::decode_response(
                &single(&bodies)?,
                api,
                inputs,
                estimated_tokens,
            )?,
            EmbeddingCodec::Bedrock(family) => {
                bedrock::embeddings::decode_responses(&bodies, family, inputs, estimated_tokens)?
            }
            EmbeddingCodec::Cohere => {
                cohere::embeddings::decode_response(&single(&bodies)?, inputs, estimated_tokens)?
            }
        };
        let encoded = openai_embeddings::encode_response(vectors, &model, usage, base64);
        Ok((encoded, Some(usage)))
    }

    /// What carries a streamed answer to the client.
    pub(crate) fn stream(self) -> Box<dyn StreamTransform> {
        match self {
            Exchange::Passthrough {
                format: SameFormat::OpenAi,
                hide_usage_chunk,
                ..
            } => Box::new(OpenAiStreamObserver::new(hide_usage_chunk)),
            Exchange::Passthrough {
                format: SameFormat::Anthropic,
                bedrock_frames: false,
                ..
            } => Box::new(AnthropicStreamObserver::default()),
            Exchange::Passthrough {
                format: SameFormat::Anthropic,
                bedrock_frames: true,
                ..
            } => Box::new(InvokeObserver::new(AnthropicStreamObserver::default())),
            Exchange::NativeResponses { remember } => {
                let on_id: Option<OnId> =
                    remember.map(|remember| Box::new(move |id: &str| remember.record(id)) as OnId);
                Box::new(NativeResponsesObserver::new(on_id))
            }
            Exchange::Translated { provider, client } => {
                let decoder: Box<dyn StreamDecoder> = match provider {
                    ProviderSide::OpenAi => Box::new(ChunkDecoder::default()),
                    ProviderSide::Anthropic {
                        plan,
                        bedrock_frames: false,
                    } => Box::new(AnthropicDecoder::new(plan)),
                    ProviderSide::Anthropic {
                        plan,
                        bedrock_frames: true,
                    } => Box::new(InvokeDecoder::new(AnthropicDecoder::new(plan))),
                    ProviderSide::Gemini { model } => Box::new(GeminiDecoder::new(&model)),
                    ProviderSide::BedrockConverse { plan, model } => {
                        Box::new(ConverseDecoder::new(plan, &model))
                    }
                    ProviderSide::Cohere { model } => Box::new(CohereDecoder::new(&model)),
                };
                let encoder: Box<dyn StreamEncoder> = match client {
                    ClientSide::OpenAi { include_usage } => {
                        Box::new(ChunkEncoder::new(include_usage))
                    }
                    ClientSide::Anthropic { model } => Box::new(AnthropicEncoder::new(&model)),
                    ClientSide::Responses { context, keep } => {
                        let on_complete: Option<OnComplete> = keep.map(|keep| {
                            Box::new(move |response: &serde_json::Value| keep.save(response))
                                as OnComplete
                        });
                        Box::new(ResponsesEncoder::new(*context, on_complete))
                    }
                };
                Box::new(Translated::new(decoder, encoder))
            }
            // Embeddings and token counts are never streamed (`stream` is refused or ignored
            // when the request is read); should bytes arrive anyway, they pass unchanged.
            Exchange::Embeddings { .. } | Exchange::GeminiTokenCount | Exchange::Local(_) => {
                Box::new(OpenAiStreamObserver::new(false))
            }
        }
    }
}

impl Exchange {
    /// What the provider is asked for: the endpoint's operation, except for Responses requests
    /// relayed to a provider with the API itself.
    pub(crate) fn upstream_operation(&self, endpoint: Endpoint) -> Operation {
        match self {
            Exchange::NativeResponses { .. } => Operation::Responses,
            _ => endpoint.operation(),
        }
    }
}

/// `/v1/messages/count_tokens` for a deployment that is not Anthropic's own API: Gemini models
/// count natively (`countTokens`); for the rest the gateway estimates (`tokens`), since their
/// APIs have no counting call it can use.
async fn count_tokens(
    body: &Bytes,
    deployment: &Deployment,
    provider_format: WireFormat,
) -> Result<(Bytes, Exchange), GatewayError> {
    let request = inbound::decode_count_request(body)?;
    let chat = inbound::to_chat_request(&request, ReasoningSupport::None, &ParamPolicy::COUNTING)?;
    if provider_format == WireFormat::Gemini {
        let config = &deployment.config;
        let target = gemini::request::Target {
            model: &config.model,
        };
        let vertex = config.provider.kind == ProviderKind::Vertex;
        let counted =
            gemini::request::encode_count_request(&chat, target, &policy(deployment), vertex)?;
        return Ok((counted, Exchange::GeminiTokenCount));
    }
    let prompt = tokens::PromptText::of(&chat);
    let input_tokens = tokio::task::spawn_blocking(move || prompt.count())
        .await
        .map_err(|err| GatewayError::internal(format!("token counting failed: {err}")))?;
    let answer = serde_json::json!({ "input_tokens": input_tokens });
    Ok((
        Bytes::new(),
        Exchange::Local(Bytes::from(answer.to_string())),
    ))
}

/// The prompt's estimated tokens, for routing's pre-call context-window check: chat and
/// Anthropic messages (with their tools), and completion prompts. `None` for other endpoints
/// and for bodies that do not parse (the provider or the translation reports those).
pub(crate) async fn estimated_prompt_tokens(endpoint: Endpoint, body: &[u8]) -> Option<u64> {
    let prompt = match endpoint {
        Endpoint::ChatCompletions => {
            tokens::PromptText::of(&serde_json::from_slice::<ChatRequest<'_>>(body).ok()?)
        }
        Endpoint::Messages => {
            let request = inbound::decode_count_request(body).ok()?;
            tokens::PromptText::of(
                &inbound::to_chat_request(&request, ReasoningSupport::None, &ParamPolicy::COUNTING)
                    .ok()?,
            )
        }
        Endpoint::Completions => {
            #[derive(serde::Deserialize)]
            struct Prompt {
                prompt: serde_json::Value,
            }
            // A string, strings, or token ids (counted as they are).
            let Prompt { prompt } = serde_json::from_slice(body).ok()?;
            let mut counted = tokens::PromptText::default();
            for item in prompt
                .as_array()
                .map_or(std::slice::from_ref(&prompt), Vec::as_slice)
            {
                match item {
                    serde_json::Value::String(text) => counted.text.push_str(text),
                    serde_json::Value::Number(_) => counted.fixed_tokens += 1,
                    serde_json::Value::Array(ids) => counted.fixed_tokens += ids.len() as u64,
                    _ => {}
                }
            }
            counted
        }
        _ => return None,
    };
    tokio::task::spawn_blocking(move || prompt.count())
        .await
        .ok()
}

/// A Responses request's `previous_response_id`.
pub(crate) fn previous_response_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Previous {
        #[serde(default)]
        previous_response_id: Option<String>,
    }
    serde_json::from_slice::<Previous>(body)
        .ok()
        .and_then(|p| p.previous_response_id)
}

/// Whether a Responses request may be stored (`store` defaults to true).
fn stores(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct StoreFlag {
        #[serde(default)]
        store: Option<bool>,
    }
    serde_json::from_slice::<StoreFlag>(body)
        .ok()
        .and_then(|flag| flag.store)
        .unwrap_or(true)
}

/// A Responses request's input as items (a string is one user message).
fn input_items(raw: &serde_json::Map<String, serde_json::Value>) -> Vec<serde_json::Value> {
    match raw.get("input") {
        Some(serde_json::Value::String(text)) => vec![serde_json::json!({
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}],
        })],
        Some(serde_json::Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// The request fields a response object repeats, with OpenAI's defaults for those not sent.
fn echo(
    raw: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{Value, json};
    let defaults = [
        ("instructions", Value::Null),
        ("tools", json!([])),
        ("tool_choice", json!("auto")),
        ("parallel_tool_calls", json!(true)),
        ("temperature", json!(1.0)),
        ("top_p", json!(1.0)),
        ("max_output_tokens", Value::Null),
        ("previous_response_id", Value::Null),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("text", json!({"format": {"type": "text"}})),
        ("store", json!(true)),
        ("metadata", json!({})),
        ("user", Value::Null),
        ("truncation", json!("disabled")),
        ("service_tier", json!("default")),
    ];
    defaults
        .into_iter()
        .map(|(key, default)| {
            let value = raw
                .get(key)
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or(default);
            (key.to_owned(), value)
        })
        .collect()
}

/// A provider's error response, read in the format its API writes errors in.
pub(crate) fn provider_error(
    deployment: &Deployment,
    status: StatusCode,
    body: &[u8],
) -> GatewayError {
    if deployment.config.provider.kind == ProviderKind::Bedrock {
        // Bedrock's own errors, whichever API (Converse or InvokeModel) was called.
        return bedrock::errors::provider_error(status, body);
    }
    match deployment.config.wire_format() {
        WireFormat::OpenAi => upstream_error(status, body),
        WireFormat::Anthropic => anthropic::errors::provider_error(status, body),
        WireFormat::Gemini => gemini::errors::provider_error(status, body),
        WireFormat::BedrockConverse => bedrock::errors::provider_error(status, body),
        WireFormat::Cohere => cohere::provider_error(status, body),
    }
}

/// Anthropic's own API, or Claude on Vertex AI or Bedrock.
fn anthropic_flavor(deployment: &Deployment) -> Flavor {
    match deployment.config.provider.kind {
        ProviderKind::Vertex => Flavor::Vertex,
        ProviderKind::Bedrock => Flavor::Bedrock,
        _ => Flavor::Anthropic,
    }
}

fn policy(deployment: &Deployment) -> ParamPolicy {
    ParamPolicy {
        provider: deployment.config.provider.prefix,
        drop_unsupported: deployment.config.drop_params,
        web_search: deployment.config.wire_format() == WireFormat::Gemini,
    }
}

/// Whether the deployment's model takes `reasoning_effort` (`model_info.supports_reasoning`).
fn supports_reasoning(deployment: &Deployment) -> bool {
    deployment
        .config
        .model_info
        .extra
        .get("supports_reasoning")
        .and_then(|value| value.as_bool())
        .unwrap_or(false)
}

/// `model_info.supports_reasoning: false`: the model is known not to take reasoning settings.
fn reasoning_disabled(deployment: &Deployment) -> bool {
    deployment
        .config
        .model_info
        .extra
        .get("supports_reasoning")
        .and_then(|value| value.as_bool())
        == Some(false)
}

fn unsupported(endpoint: Endpoint, deployment: &Deployment) -> GatewayError {
    GatewayError::invalid_request(format!(
        "`{}` cannot be served by `{}/` deployments.",
        endpoint.path(),
        deployment.config.provider.prefix
    ))
    .with_code("unsupported_operation")
}

fn request_error(err: serde_json::Error) -> GatewayError {
    GatewayError::invalid_request(format!("The request could not be read: {err}."))
}
