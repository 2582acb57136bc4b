//! Translation between client and provider formats: pure functions over bytes and wire types,
//! one module per format, meeting in the canonical form (`canonical`); plus the SSE scanner
//! the stream codecs share.
#![forbid(unsafe_code)]

pub mod anthropic;
pub mod bedrock;
pub mod canonical;
pub mod cohere;
pub mod gemini;
pub mod openai;
pub mod params;
pub mod passthrough;
pub mod responses;
pub mod sse;
pub mod tokens;
