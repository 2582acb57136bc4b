//! Tollgate's HTTP surface: the OpenAI-compatible API, the inference pipeline behind it,
//! health and model listing, access logs and graceful shutdown.
#![forbid(unsafe_code)]

mod access_log;
mod app;
mod budgets;
mod error;
mod exchange;
mod health_checks;
pub mod logging;
mod media;
mod pipeline;
mod request_context;
mod responses;
mod routes;
mod runtime_models;
mod serve;
mod spend;
mod store_sync;
mod stream;

pub use app::{Gateway, app};
pub use serve::{background_tasks, serve};
pub use tollgate_store::{Journal, Store, StoreError, redact_url};
