//! Provider wire types. Only the fields the gateway acts on are typed; everything else is carried
//! as raw JSON so that fields a provider adds tomorrow pass through untouched.
#![forbid(unsafe_code)]

pub mod anthropic;
pub mod bedrock;
pub mod cohere;
pub mod gemini;
pub mod openai;
pub mod raw;
pub mod responses;
