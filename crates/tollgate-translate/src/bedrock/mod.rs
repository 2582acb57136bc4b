//! Amazon Bedrock as a provider: the Converse API (`converse`), Claude's native stream through
//! InvokeModel (`invoke`), Titan and Cohere embeddings, the event-stream framing its streams
//! use, and its error bodies.

pub mod converse;
pub mod embeddings;
pub mod errors;
pub mod eventstream;
pub mod invoke;
