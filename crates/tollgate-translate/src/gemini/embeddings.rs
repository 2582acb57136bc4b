//! OpenAI embeddings requests → the Gemini API's `batchEmbedContents` (one request per text)
//! or Vertex AI's `predict` (one instance per text), and their vectors back.
//!
//! `dimensions` becomes `outputDimensionality`; `task_type` (or LiteLLM's `input_type`)
//! becomes the task type. The Gemini API reports no token counts for embeddings, so usage is
//! estimated (about four characters a token); Vertex reports them and they are summed.

use std::borrow::Cow;

use bytes::Bytes;
use tollgate_core::error::GatewayError;
use tollgate_wire::gemini::{
    BatchEmbedRequest, BatchEmbedResponse, Content, EmbedRequest, Part, PredictInstance,
    PredictParameters, PredictRequest, PredictResponse,
};

use crate::canonical::TokenUsage;
use crate::openai::embeddings::TextEmbeddingRequest;

/// Which Google API serves the embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingApi {
    /// The Gemini API's `batchEmbedContents`.
    Gemini,
    /// Vertex AI's `predict`.
    Vertex,
}

pub fn encode_request(
    request: &TextEmbeddingRequest<'_>,
    model: &str,
    api: EmbeddingApi,
) -> Result<Bytes, GatewayError> {
    let task_type = request.option(&["task_type", "taskType", "input_type"]);
    let dimensions = request.request.dimensions;
    let bytes = match api {
        EmbeddingApi::Gemini => {
            let model = format!("models/{}", model.trim_start_matches("models/"));
            let body = BatchEmbedRequest {
                requests: request
                    .texts
                    .iter()
                    .map(|text| EmbedRequest {
                        model: Cow::Borrowed(model.as_str()),
                        content: Content {
                            role: None,
                            parts: vec![Part {
                                text: Some(Cow::Borrowed(text.as_ref())),
                                ..Part::default()
                            }],
                        },
                        output_dimensionality: dimensions,
                        task_type: task_type.map(Cow::Borrowed),
                    })
                    .collect(),
            };
            serde_json::to_vec(&body)
        }
        EmbeddingApi::Vertex => {
            let body = PredictRequest {
                instances: request
                    .texts
                    .iter()
                    .map(|text| PredictInstance {
                        content: Cow::Borrowed(text.as_ref()),
                        task_type: task_type.map(Cow::Borrowed),
                    })
                    .collect(),
                parameters: PredictParameters {
                    output_dimensionality: dimensions,
                },
            };
            serde_json::to_vec(&body)
        }
    };
    bytes.map(Bytes::from).map_err(|err| {
        GatewayError::internal(format!("could not encode the embeddings request: {err}"))
    })
}

/// The vectors, in input order, and the usage: `inputs` texts were sent, estimated at
/// `estimated_tokens` (used where the provider reports no count).
pub fn decode_response(
    body: &[u8],
    api: EmbeddingApi,
    inputs: usize,
    estimated_tokens: u64,
) -> Result<(Vec<Vec<f32>>, TokenUsage), GatewayError> {
    let unreadable = |err: serde_json::Error| {
        GatewayError::upstream_unreachable(format!(
            "The provider's embeddings could not be read: {err}."
        ))
    };
    let (vectors, input_tokens): (Vec<Vec<f32>>, u64) = match api {
        EmbeddingApi::Gemini => {
            let response: BatchEmbedResponse = serde_json::from_slice(body).map_err(unreadable)?;
            let vectors = response.embeddings.into_iter().map(|e| e.values).collect();
            (vectors, estimated_tokens)
        }
        EmbeddingApi::Vertex => {
            let response: PredictResponse = serde_json::from_slice(body).map_err(unreadable)?;
            let tokens = response
                .predictions
                .iter()
                .filter_map(|p| p.embeddings.statistics.as_ref())
                .map(|s| s.token_count as u64)
                .sum();
            let vectors = response
                .predictions
                .into_iter()
                .map(|p| p.embeddings.values)
                .collect();
            (vectors, tokens)
        }
    };
    if vectors.len() != inputs {
        return Err(GatewayError::upstream_unreachable(format!(
            "The provider returned {} embeddings for {inputs} inputs.",
            vectors.len(),
        )));
    }
    Ok((
        vectors,
        TokenUsage {
            input: input_tokens,
            ..TokenUsage::default()
        },
    ))
}
