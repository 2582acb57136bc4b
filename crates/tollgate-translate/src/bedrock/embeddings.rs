//! OpenAI embeddings requests → Bedrock embedding models through InvokeModel: Amazon Titan
//! (one text per call, `dimensions` kept) and Cohere Embed (a list of texts; `input_type`
//! from `input_type` / `task_type`, `search_document` when absent, as Cohere v3+ requires one).

use bytes::Bytes;
use tollgate_core::error::GatewayError;
use tollgate_wire::bedrock::{
    CohereEmbedRequest, CohereEmbedResponse, CohereEmbeddings, TitanEmbedRequest,
    TitanEmbedResponse,
};

use crate::canonical::TokenUsage;
use crate::openai::embeddings::TextEmbeddingRequest;

/// The embedding model families Bedrock serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingFamily {
    Titan,
    Cohere,
}

impl EmbeddingFamily {
    pub fn of(model: &str) -> Option<EmbeddingFamily> {
        if model.contains("amazon.titan-embed") {
            Some(EmbeddingFamily::Titan)
        } else if model.contains("cohere.embed") {
            Some(EmbeddingFamily::Cohere)
        } else {
            None
        }
    }
}

pub fn encode_request(
    request: &TextEmbeddingRequest<'_>,
    model: &str,
) -> Result<(Bytes, EmbeddingFamily), GatewayError> {
    let family = EmbeddingFamily::of(model).ok_or_else(|| {
        GatewayError::invalid_request(format!(
            "`{model}` is not a Bedrock embedding model the gateway knows (amazon.titan-embed-*, cohere.embed-*)."
        ))
        .with_code("unsupported_operation")
    })?;
    let body = match family {
        EmbeddingFamily::Titan => {
            let [text] = request.texts.as_slice() else {
                return Err(GatewayError::invalid_param(
                    "input",
                    "Titan embedding models take one text per request; send a single string.",
                ));
            };
            serde_json::to_vec(&TitanEmbedRequest {
                input_text: text,
                // Titan v1 takes no options.
                dimensions: request
                    .request
                    .dimensions
                    .filter(|_| !model.contains("-v1")),
            })
        }
        EmbeddingFamily::Cohere => serde_json::to_vec(&CohereEmbedRequest {
            texts: request.texts.iter().map(|t| t.as_ref()).collect(),
            input_type: request
                .option(&["input_type", "task_type"])
                .unwrap_or("search_document"),
            output_dimension: request.request.dimensions,
        }),
    };
    let body = body.map_err(|err| {
        GatewayError::internal(format!("could not encode the embeddings request: {err}"))
    })?;
    Ok((Bytes::from(body), family))
}

/// The vectors and usage; Cohere on Bedrock reports no token counts, so they are estimated.
pub fn decode_response(
    body: &[u8],
    family: EmbeddingFamily,
    inputs: usize,
    estimated_tokens: u64,
) -> Result<(Vec<Vec<f32>>, TokenUsage), GatewayError> {
    let unreadable = |err: serde_json::Error| {
        GatewayError::upstream_unreachable(format!(
            "Bedrock's embeddings could not be read: {err}."
        ))
    };
    let (vectors, tokens) = match family {
        EmbeddingFamily::Titan => {
            let response: TitanEmbedResponse = serde_json::from_slice(body).map_err(unreadable)?;
            (vec![response.embedding], response.input_text_token_count)
        }
        EmbeddingFamily::Cohere => {
            let response: CohereEmbedResponse = serde_json::from_slice(body).map_err(unreadable)?;
            let vectors = match response.embeddings {
                CohereEmbeddings::Floats(vectors) => vectors,
                CohereEmbeddings::ByType { float } => float,
            };
            (vectors, estimated_tokens)
        }
    };
    if vectors.len() != inputs {
        return Err(GatewayError::upstream_unreachable(format!(
            "Bedrock returned {} embeddings for {inputs} inputs.",
            vectors.len()
        )));
    }
    Ok((
        vectors,
        TokenUsage {
            input: tokens,
            ..TokenUsage::default()
        },
    ))
}
