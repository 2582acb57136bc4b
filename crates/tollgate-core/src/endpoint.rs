//! What a client can call, and what that asks of a provider.

/// A client-facing inference route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/completions`
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `POST /v1/messages` (Anthropic's format)
    Messages,
    /// `POST /v1/messages/count_tokens` (Anthropic's format)
    CountTokens,
    /// `POST /v1/responses` (OpenAI's Responses API)
    Responses,
}

/// The wire format a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientFormat {
    OpenAi,
    Anthropic,
    /// OpenAI's Responses API.
    Responses,
}

/// What is asked of the provider, whatever format the client spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Chat,
    Completion,
    Embedding,
    CountTokens,
    /// The Responses API itself, on providers that have it.
    Responses,
}

impl Endpoint {
    pub fn format(self) -> ClientFormat {
        match self {
            Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Embeddings => {
                ClientFormat::OpenAi
            }
            Endpoint::Messages | Endpoint::CountTokens => ClientFormat::Anthropic,
            Endpoint::Responses => ClientFormat::Responses,
        }
    }

    pub fn operation(self) -> Operation {
        match self {
            // Responses requests are chat for providers without the Responses API.
            Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses => Operation::Chat,
            Endpoint::Completions => Operation::Completion,
            Endpoint::Embeddings => Operation::Embedding,
            Endpoint::CountTokens => Operation::CountTokens,
        }
    }

    /// Whether responses on this endpoint may be streamed.
    pub fn can_stream(self) -> bool {
        matches!(
            self,
            Endpoint::ChatCompletions
                | Endpoint::Completions
                | Endpoint::Messages
                | Endpoint::Responses
        )
    }

    /// The canonical path, for logs.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
            Endpoint::Messages => "/v1/messages",
            Endpoint::CountTokens => "/v1/messages/count_tokens",
            Endpoint::Responses => "/v1/responses",
        }
    }
}

impl Operation {
    /// The path below an OpenAI-compatible base URL (`{api_base}/chat/completions`).
    pub fn openai_path(self) -> Option<&'static str> {
        match self {
            Operation::Chat => Some("chat/completions"),
            Operation::Completion => Some("completions"),
            Operation::Embedding => Some("embeddings"),
            Operation::CountTokens => None,
            Operation::Responses => Some("responses"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Completion => "completion",
            Operation::Embedding => "embedding",
            Operation::CountTokens => "token counting",
            Operation::Responses => "responses",
        }
    }
}
