//! The OpenAI Responses API as a client format (Codex CLI, `responses.create`), bridged onto
//! the canonical chat form for providers that do not have it: requests in (`request`), whole
//! answers out (`response`), streams out (`stream`).

pub mod native;
pub mod request;
pub mod response;
pub mod stream;
