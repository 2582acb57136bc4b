//! OpenAI's chat format: the stream observer for OpenAI-to-OpenAI passthrough, the codec
//! between it and the canonical form, and provider error bodies.

pub mod codec;
pub mod embeddings;
pub mod errors;
pub mod observer;
