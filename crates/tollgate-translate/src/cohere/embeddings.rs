//! OpenAI embeddings requests → Cohere `/v2/embed` (float embeddings; `input_type` from the
//! request's `input_type` / `task_type`, `search_document` when absent, as v3+ models need one).

use bytes::Bytes;
use tollgate_core::error::GatewayError;
use tollgate_wire::cohere::{EmbedRequest, EmbedResponse};

use crate::canonical::TokenUsage;
use crate::openai::embeddings::TextEmbeddingRequest;

pub fn encode_request(
    request: &TextEmbeddingRequest<'_>,
    model: &str,
) -> Result<Bytes, GatewayError> {
    let body = EmbedRequest {
        model,
        texts: request.texts.iter().map(|t| t.as_ref()).collect(),
        input_type: request
            .option(&["input_type", "task_type"])
            .unwrap_or("search_document"),
        embedding_types: ["float"],
        output_dimension: request.request.dimensions,
    };
    serde_json::to_vec(&body).map(Bytes::from).map_err(|err| {
        GatewayError::internal(format!("could not encode the embeddings request: {err}"))
    })
}

pub fn decode_response(
    body: &[u8],
    inputs: usize,
    estimated_tokens: u64,
) -> Result<(Vec<Vec<f32>>, TokenUsage), GatewayError> {
    let response: EmbedResponse = serde_json::from_slice(body).map_err(|err| {
        GatewayError::upstream_unreachable(format!("Cohere's embeddings could not be read: {err}."))
    })?;
    let vectors = response.embeddings.float;
    if vectors.len() != inputs {
        return Err(GatewayError::upstream_unreachable(format!(
            "Cohere returned {} embeddings for {inputs} inputs.",
            vectors.len()
        )));
    }
    let billed = response
        .meta
        .and_then(|meta| meta.billed_units)
        .map(|units| units.input_tokens as u64);
    Ok((
        vectors,
        TokenUsage {
            input: billed.unwrap_or(estimated_tokens),
            ..TokenUsage::default()
        },
    ))
}
