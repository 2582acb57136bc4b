//! Test support: mock providers that speak each provider's real wire format on a real socket.
//! Used by the integration tests and, as the `tollgate-mock-provider` binary, by the benchmark.

pub mod anthropic;
pub mod bedrock;
pub mod cohere;
pub mod databases;
pub mod faults;
pub mod gemini;
mod latency;
pub mod openai;
mod openai_responses;
mod recorder;
pub mod redis;
mod server;
mod sse;
pub mod tcp_proxy;
mod tls;

pub use anthropic::MockAnthropic;
pub use bedrock::MockBedrock;
pub use cohere::MockCohere;
pub use faults::Fault;
pub use gemini::MockGemini;
pub use openai::{MockOpenAi, MockOptions};
pub use recorder::RecordedRequest;
pub use server::MockProvider;
pub use tcp_proxy::TcpProxy;
