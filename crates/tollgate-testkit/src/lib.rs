//! Test support: mock providers that speak each provider's real wire format on a real socket.
//! Used by the integration tests and, as the `tollgate-mock-provider` binary, by the benchmark.

pub mod openai;
mod tls;

pub use openai::{MockOpenAi, MockOptions, RecordedRequest};
