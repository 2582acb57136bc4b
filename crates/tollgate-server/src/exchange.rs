//! How one request crosses from its client's format to its provider's, and how the answer comes
//! back. Same format on both sides: the body is edited in place and the answer observed on its
//! way (the fast path). Different formats: both go through the canonical form.

use bytes::Bytes;
use http::StatusCode;
use tollgate_core::endpoint::{ClientFormat, Endpoint, Operation};
use tollgate_core::error::GatewayError;
use tollgate_core::provider::{ProviderKind, WireFormat};
use tollgate_translate::anthropic::inbound::{self, AnthropicEncoder, ReasoningSupport};
use tollgate_translate::anthropic::observer::AnthropicStreamObserver;
use tollgate_translate::anthropic::outbound::{self, AnthropicDecoder, Flavor, Target};
use tollgate_translate::anthropic::{self as anthropic};
use tollgate_translate::canonical::{Completion, StreamTransform, TokenUsage, Translated};
use tollgate_translate::gemini::embeddings::EmbeddingApi;
use tollgate_translate::gemini::{self, response::GeminiDecoder};
use tollgate_translate::openai::codec::{self as openai_codec, ChunkDecoder, ChunkEncoder};
use tollgate_translate::openai::embeddings as openai_embeddings;
use tollgate_translate::openai::errors::upstream_error;
use tollgate_translate::openai::observer::OpenAiStreamObserver;
use tollgate_translate::params::ParamPolicy;
use tollgate_translate::passthrough::{InspectedRequest, prepare_upstream_body};
use tollgate_upstream::Deployment;
use tollgate_wire::anthropic::MessagesResponse;
use tollgate_wire::openai::{ChatRequest, ResponseUsage};

/// The conversion chosen for one request.
pub(crate) enum Exchange {
    /// Same format both sides.
    Passthrough {
        format: ClientFormat,
        /// OpenAI streams: the usage chunk was asked for by the gateway, not the client.
        hide_usage_chunk: bool,
    },
    /// Through the canonical form.
    Translated {
        provider: ProviderSide,
        client: ClientSide,
    },
    /// OpenAI embeddings from a provider with its own embeddings format.
    Embeddings {
        api: EmbeddingApi,
        /// The deployment's model, named in the answer.
        model: String,
        inputs: usize,
        estimated_tokens: u64,
        base64: bool,
    },
}

pub(crate) enum ProviderSide {
    OpenAi,
    Anthropic(outbound::Plan),
    /// `model`: the deployment's model, named in answers that do not say.
    Gemini {
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

impl Exchange {
    /// The body for the provider, and how to read its answer.
    pub(crate) fn prepare(
        endpoint: Endpoint,
        body: &Bytes,
        inspected: &InspectedRequest,
        deployment: &Deployment,
    ) -> Result<(Bytes, Exchange), GatewayError> {
        let config = &deployment.config;
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
                    },
                ))
            }
            (ClientFormat::Anthropic, WireFormat::Anthropic) => {
                let upstream = match anthropic_flavor(deployment) {
                    Flavor::Anthropic => {
                        prepare_upstream_body(body, inspected, &config.model, false)
                    }
                    // The model is in the URL and the API version in the body.
                    flavor => outbound::adapt_native_request(body, flavor)?,
                };
                Ok((
                    upstream,
                    Exchange::Passthrough {
                        format: ClientFormat::Anthropic,
                        hide_usage_chunk: false,
                    },
                ))
            }
            (ClientFormat::OpenAi, WireFormat::Gemini)
                if endpoint.operation() == Operation::Embedding =>
            {
                let request = openai_embeddings::decode_request(body, "Gemini")?;
                let api = match config.provider.kind {
                    ProviderKind::Vertex => EmbeddingApi::Vertex,
                    _ => EmbeddingApi::Gemini,
                };
                let upstream = gemini::embeddings::encode_request(&request, &config.model, api)?;
                let exchange = Exchange::Embeddings {
                    api,
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
                            flavor: anthropic_flavor(deployment),
                            max_output_tokens: config
                                .model_info
                                .max_output_tokens
                                .or(config.model_info.max_tokens),
                        };
                        let (upstream, plan) =
                            outbound::encode_request(&chat, target, &policy(deployment))?;
                        (upstream, ProviderSide::Anthropic(plan))
                    }
                    WireFormat::Gemini => {
                        let target = gemini::request::Target {
                            model: &config.model,
                        };
                        let upstream =
                            gemini::request::encode_request(&chat, target, &policy(deployment))?;
                        let model = config.model.clone();
                        (upstream, ProviderSide::Gemini { model })
                    }
                };
                Ok((upstream, Exchange::Translated { provider, client }))
            }
        }
    }

    pub(crate) fn provider_format(&self) -> WireFormat {
        match self {
            Exchange::Passthrough {
                format: ClientFormat::OpenAi,
                ..
            }
            | Exchange::Translated {
                provider: ProviderSide::OpenAi,
                ..
            } => WireFormat::OpenAi,
            Exchange::Passthrough {
                format: ClientFormat::Anthropic,
                ..
            }
            | Exchange::Translated {
                provider: ProviderSide::Anthropic(_),
                ..
            } => WireFormat::Anthropic,
            Exchange::Translated {
                provider: ProviderSide::Gemini { .. },
                ..
            }
            | Exchange::Embeddings { .. } => WireFormat::Gemini,
        }
    }

    /// A provider's error response, read in the provider's format.
    pub(crate) fn provider_error(&self, status: StatusCode, body: &[u8]) -> GatewayError {
        match self.provider_format() {
            WireFormat::OpenAi => upstream_error(status, body),
            WireFormat::Anthropic => anthropic::errors::provider_error(status, body),
            WireFormat::Gemini => gemini::errors::provider_error(status, body),
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
                    ProviderSide::Anthropic(plan) => outbound::decode_response(&body, plan)?,
                    ProviderSide::Gemini { model } => {
                        gemini::response::decode_response(&body, model)?
                    }
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
                api,
                model,
                inputs,
                estimated_tokens,
                base64,
            } => {
                let (vectors, usage) =
                    gemini::embeddings::decode_response(&body, *api, *inputs, *estimated_tokens)?;
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
            } => Box::new(OpenAiStreamObserver::new(*hide_usage_chunk)),
            Exchange::Passthrough {
                format: ClientFormat::Anthropic,
                ..
            } => Box::new(AnthropicStreamObserver::default()),
            Exchange::Translated { provider, client } => {
                let decoder: Box<dyn tollgate_translate::canonical::StreamDecoder> = match provider
                {
                    ProviderSide::OpenAi => Box::new(ChunkDecoder::default()),
                    ProviderSide::Anthropic(plan) => Box::new(AnthropicDecoder::new(plan.clone())),
                    ProviderSide::Gemini { model } => Box::new(GeminiDecoder::new(model)),
                };
                let encoder: Box<dyn tollgate_translate::canonical::StreamEncoder> = match client {
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

/// Anthropic's own API, or Claude on Vertex AI.
fn anthropic_flavor(deployment: &Deployment) -> Flavor {
    match deployment.config.provider.kind {
        ProviderKind::Vertex => Flavor::Vertex,
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
