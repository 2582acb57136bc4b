//! How one request crosses from its client's format to its provider's, and how the answer comes
//! back. Same format on both sides: the body is edited in place and the answer observed on its
//! way (the fast path). Different formats: both go through the canonical form.

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
    Completion, StreamDecoder, StreamEncoder, StreamTransform, TokenUsage, Translated,
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
use tollgate_upstream::Deployment;
use tollgate_upstream::media::MediaFetcher;
use tollgate_wire::anthropic::MessagesResponse;
use tollgate_wire::openai::{ChatRequest, ResponseUsage};

use crate::media::inline_remote_images;

const ANTHROPIC_BETA: &str = "anthropic-beta";

/// The conversion chosen for one request.
pub(crate) enum Exchange {
    /// Same format both sides.
    Passthrough {
        format: ClientFormat,
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
    /// OpenAI embeddings from a provider with its own embeddings format.
    Embeddings {
        codec: EmbeddingCodec,
        /// The deployment's model, named in the answer.
        model: String,
        inputs: usize,
        estimated_tokens: u64,
        base64: bool,
    },
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
        endpoint: Endpoint,
        body: &Bytes,
        inspected: &InspectedRequest,
        deployment: &Deployment,
        client_headers: &HeaderMap,
        media: &MediaFetcher,
    ) -> Result<(Bytes, Exchange), GatewayError> {
        let config = &deployment.config;
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
                        format: ClientFormat::OpenAi,
                        hide_usage_chunk,
                        bedrock_frames: false,
                    },
                ))
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
                        format: ClientFormat::Anthropic,
                        hide_usage_chunk: false,
                        bedrock_frames,
                    },
                ))
            }
            (ClientFormat::OpenAi, provider_format)
                if endpoint.operation() == Operation::Embedding =>
            {
                let request = openai_embeddings::decode_request(body, config.provider.prefix)?;
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
                        let (upstream, family) =
                            bedrock::embeddings::encode_request(&request, &config.model)?;
                        (upstream, EmbeddingCodec::Bedrock(family))
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
                };
                Ok((upstream, exchange))
            }
            (client_format, provider_format) => {
                if endpoint.operation() != Operation::Chat {
                    return Err(unsupported(endpoint, deployment));
                }
                let client = match client_format {
                    ClientFormat::OpenAi => ClientSide::OpenAi {
                        include_usage: inspected.client_wants_usage,
                    },
                    ClientFormat::Anthropic => ClientSide::Anthropic {
                        model: inspected.model.clone(),
                    },
                };
                // Everything crosses through the canonical (OpenAI chat) request.
                let anthropic_request;
                let mut chat: ChatRequest<'_> = match client_format {
                    ClientFormat::OpenAi => serde_json::from_slice(body).map_err(request_error)?,
                    ClientFormat::Anthropic => {
                        anthropic_request = inbound::decode_request(body)?;
                        let reasoning = if supports_reasoning(deployment) {
                            ReasoningSupport::Effort
                        } else {
                            ReasoningSupport::None
                        };
                        inbound::to_chat_request(&anthropic_request, reasoning)?
                    }
                };
                // Converse and Gemini take images as bytes, not URLs.
                if matches!(
                    provider_format,
                    WireFormat::BedrockConverse | WireFormat::Gemini
                ) {
                    inline_remote_images(&mut chat, media).await?;
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
    pub(crate) fn complete(
        &self,
        body: Bytes,
    ) -> Result<(Bytes, Option<TokenUsage>), GatewayError> {
        match self {
            Exchange::Passthrough {
                format: ClientFormat::OpenAi,
                ..
            } => {
                let usage = serde_json::from_slice::<ResponseUsage>(&body)
                    .ok()
                    .and_then(|parsed| parsed.usage)
                    .map(|usage| TokenUsage::from_openai(&usage));
                Ok((body, usage))
            }
            Exchange::Passthrough {
                format: ClientFormat::Anthropic,
                ..
            } => {
                let usage = serde_json::from_slice::<MessagesResponse<'_>>(&body)
                    .ok()
                    .map(|response| outbound::token_usage(&response.usage));
                Ok((body, usage))
            }
            Exchange::Translated { provider, client } => {
                let completion: Completion<'_> = match provider {
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
                        inbound::encode_response(&completion, model)?
                    }
                };
                Ok((encoded, usage))
            }
            Exchange::Embeddings {
                codec,
                model,
                inputs,
                estimated_tokens,
                base64,
            } => {
                let (vectors, usage) = match codec {
                    EmbeddingCodec::Google(api) => gemini::embeddings::decode_response(
                        &body,
                        *api,
                        *inputs,
                        *estimated_tokens,
                    )?,
                    EmbeddingCodec::Bedrock(family) => bedrock::embeddings::decode_response(
                        &body,
                        *family,
                        *inputs,
                        *estimated_tokens,
                    )?,
                    EmbeddingCodec::Cohere => {
                        cohere::embeddings::decode_response(&body, *inputs, *estimated_tokens)?
                    }
                };
                let encoded = openai_embeddings::encode_response(vectors, model, usage, *base64);
                Ok((encoded, Some(usage)))
            }
        }
    }

    /// What carries a streamed answer to the client.
    pub(crate) fn stream(&self) -> Box<dyn StreamTransform> {
        match self {
            Exchange::Passthrough {
                format: ClientFormat::OpenAi,
                hide_usage_chunk,
                ..
            } => Box::new(OpenAiStreamObserver::new(*hide_usage_chunk)),
            Exchange::Passthrough {
                format: ClientFormat::Anthropic,
                bedrock_frames: false,
                ..
            } => Box::new(AnthropicStreamObserver::default()),
            Exchange::Passthrough {
                format: ClientFormat::Anthropic,
                bedrock_frames: true,
                ..
            } => Box::new(InvokeObserver::new(AnthropicStreamObserver::default())),
            Exchange::Translated { provider, client } => {
                let decoder: Box<dyn StreamDecoder> = match provider {
                    ProviderSide::OpenAi => Box::new(ChunkDecoder::default()),
                    ProviderSide::Anthropic {
                        plan,
                        bedrock_frames: false,
                    } => Box::new(AnthropicDecoder::new(plan.clone())),
                    ProviderSide::Anthropic {
                        plan,
                        bedrock_frames: true,
                    } => Box::new(InvokeDecoder::new(AnthropicDecoder::new(plan.clone()))),
                    ProviderSide::Gemini { model } => Box::new(GeminiDecoder::new(model)),
                    ProviderSide::BedrockConverse { plan, model } => {
                        Box::new(ConverseDecoder::new(plan.clone(), model))
                    }
                    ProviderSide::Cohere { model } => Box::new(CohereDecoder::new(model)),
                };
                let encoder: Box<dyn StreamEncoder> = match client {
                    ClientSide::OpenAi { include_usage } => {
                        Box::new(ChunkEncoder::new(*include_usage))
                    }
                    ClientSide::Anthropic { model } => Box::new(AnthropicEncoder::new(model)),
                };
                Box::new(Translated::new(decoder, encoder))
            }
            // Embeddings are never streamed (`stream` is refused when the request is read);
            // should bytes arrive anyway, they pass unchanged.
            Exchange::Embeddings { .. } => Box::new(OpenAiStreamObserver::new(false)),
        }
    }
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
