//! Translation between client and provider formats: pure functions over bytes and wire types,
//! one module per pair, plus the SSE scanner the stream transforms share.
#![forbid(unsafe_code)]

pub mod openai_errors;
pub mod openai_passthrough;
pub mod openai_stream;
pub mod sse;
