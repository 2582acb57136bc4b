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
}

/// The wire format a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientFormat {
    OpenAi,
    Anthropic,
}

/// What is asked of the provider, whatever format the client spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Chat,
    Completion,
    Embedding,
    CountTokens,
}

impl Endpoint {
    pub fn format(self) -> ClientFormat {
        match self {
            Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Embeddings => {
                ClientFormat::OpenAi
            }
            Endpoint::Messages | Endpoint::CountTokens => ClientFormat::Anthropic,
        }
    }

    pub fn operation(self) -> Operation {
        match self {
            Endpoint::ChatCompletions | Endpoint::Messages => Operation::Chat,
            Endpoint::Completions => Operation::Completion,
            Endpoint::Embeddings => Operation::Embedding,
            Endpoint::CountTokens => Operation::CountTokens,
        }
    }

    /// Whether responses on this endpoint may be streamed.
    pub fn can_stream(self) -> bool {
        matches!(
            self,
            Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Messages
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
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Completion => "completion",
            Operation::Embedding => "embedding",
            Operation::CountTokens => "token counting",
        }
    }
}
