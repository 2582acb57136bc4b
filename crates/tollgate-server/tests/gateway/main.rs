//! The gateway end to end: a real gateway on a real socket, in front of mock providers that
//! speak the providers' wire formats, called over HTTP as clients call it.

mod harness;

mod anthropic;
mod auth;
mod azure;
mod bedrock;
mod budgets;
mod cancellation;
mod chat;
mod cohere;
mod deployments;
mod directory;
mod embeddings_completions;
mod errors;
mod gemini;
mod keys;
mod limits;
mod media;
mod models_health;
mod redis;
mod replicas;
mod responses;
mod routing;
mod shutdown;
mod spend;
mod tls;
mod vertex;
