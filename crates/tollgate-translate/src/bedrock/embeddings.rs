//! OpenAI embeddings requests → Bedrock embedding models through InvokeModel: Amazon Titan
//! (one text per call, so a list of texts is one call per text; `dimensions` kept) and Cohere
//! Embed (a list of texts in one call; `input_type` from `input_type` / `task_type`,
//! `search_document` when absent, as Cohere v3+ requires one).

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

/// The InvokeModel bodies for `request`, one per call: Titan embeds one text per call, so a
/// list becomes one call per text, in input order; Cohere takes the whole list in one.
pub fn encode_request(
    request: &TextEmbeddingRequest<'_>,
    model: &str,
) -> Result<(Vec<Bytes>, EmbeddingFamily), GatewayError> {
    let family = EmbeddingFamily::of(model).ok_or_else(|| {
        GatewayError::invalid_request(format!(
            "`{model}` is not a Bedrock embedding model the gateway knows (amazon.titan-embed-*, cohere.embed-*)."
        ))
        .with_code("unsupported_operation")
    })?;
    let encoded = |body: serde_json::Result<Vec<u8>>| {
        body.map(Bytes::from).map_err(|err| {
            GatewayError::internal(format!("could not encode the embeddings request: {err}"))
        })
    };
    let bodies = match family {
        EmbeddingFamily::Titan => request
            .texts
            .iter()
            .map(|text| {
                encoded(serde_json::to_vec(&TitanEmbedRequest {
                    input_text: text,
                    // Titan v1 takes no options.
                    dimensions: request
                        .request
                        .dimensions
                        .filter(|_| !model.contains("-v1")),
                }))
            })
            .collect::<Result<Vec<_>, _>>()?,
        EmbeddingFamily::Cohere => vec![encoded(serde_json::to_vec(&CohereEmbedRequest {
            texts: request.texts.iter().map(|t| t.as_ref()).collect(),
            input_type: request
                .option(&["input_type", "task_type"])
                .unwrap_or("search_document"),
            output_dimension: request.request.dimensions,
        }))?],
    };
    Ok((bodies, family))
}

/// The vectors, in input order, and the usage, from the answers to the calls `encode_request`
/// made, in the same order: Titan's token counts are summed over its calls; Cohere on Bedrock
/// reports none, so they are estimated.
pub fn decode_responses(
    bodies: &[Bytes],
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
            let mut vectors = Vec::with_capacity(bodies.len());
            let mut tokens = 0;
            for body in bodies {
                let response: TitanEmbedResponse =
                    serde_json::from_slice(body).map_err(unreadable)?;
                vectors.push(response.embedding);
                tokens += response.input_text_token_count;
            }
            (vectors, tokens)
        }
        EmbeddingFamily::Cohere => {
            let [body] = bodies else {
                return Err(GatewayError::internal(format!(
                    "Cohere on Bedrock answers one call per request, not {}.",
                    bodies.len()
                )));
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::embeddings::decode_request;

    #[test]
    fn titan_lists_become_one_call_per_text_and_their_answers_one_list() {
        let body = br#"{"model": "t", "input": ["first text", "second", "the third one"], "dimensions": 4}"#;
        let request = decode_request(body, "bedrock").unwrap();
        let (bodies, family) = encode_request(&request, "amazon.titan-embed-text-v2:0").unwrap();
        assert_eq!(family, EmbeddingFamily::Titan);
        let sent: Vec<serde_json::Value> = bodies
            .iter()
            .map(|body| serde_json::from_slice(body).unwrap())
            .collect();
        assert_eq!(
            sent,
            [
                serde_json::json!({"inputText": "first text", "dimensions": 4}),
                serde_json::json!({"inputText": "second", "dimensions": 4}),
                serde_json::json!({"inputText": "the third one", "dimensions": 4}),
            ]
        );

        let answers: Vec<Bytes> = [(1.0, 2), (2.0, 1), (3.0, 3)]
            .iter()
            .map(|(value, tokens)| {
                Bytes::from(format!(
                    r#"{{"embedding": [{value}], "inputTextTokenCount": {tokens}}}"#
                ))
            })
            .collect();
        let (vectors, usage) = decode_responses(&answers, family, 3, 0).unwrap();
        assert_eq!(vectors, [vec![1.0], vec![2.0], vec![3.0]]);
        assert_eq!(usage.input, 6);
        assert!(decode_responses(&answers[..2], family, 3, 0).is_err());
    }

    #[test]
    fn cohere_takes_the_list_in_one_call() {
        let body = br#"{"model": "c", "input": ["a", "b"]}"#;
        let request = decode_request(body, "bedrock").unwrap();
        let (bodies, family) = encode_request(&request, "cohere.embed-english-v3").unwrap();
        assert_eq!(family, EmbeddingFamily::Cohere);
        assert_eq!(bodies.len(), 1);
        let answer = Bytes::from_static(br#"{"embeddings": [[0.5], [0.25]]}"#);
        let (vectors, usage) = decode_responses(&[answer], family, 2, 7).unwrap();
        assert_eq!(vectors, [vec![0.5], vec![0.25]]);
        assert_eq!(usage.input, 7);
    }
}
