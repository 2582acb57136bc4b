//! `tollgate-mock-provider`: a mock provider as a process, for the benchmark and the SDK
//! end-to-end tests.
//!
//! Usage: tollgate-mock-provider [--format openai|anthropic|gemini|vertex|bedrock|cohere]
//!                               [--port N] [--latency-ms N] [--jitter-ms N] [--chunk-delay-ms N]
//!                               [--fixed]
//!                               [--chunks N] [--threads N]
//! Prints `listening on 127.0.0.1:PORT` once ready, then `litellm_params {…}`: the deployment
//! settings (besides `model`) a gateway needs to reach and authenticate to this mock.
//! The latency, jitter and chunk-delay options apply to the OpenAI format only; `--fixed`
//! (benchmark mode: one precomputed answer, nothing recorded) and `--chunks` to OpenAI and
//! Anthropic.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_testkit::{
    MockAnthropic, MockBedrock, MockCohere, MockGemini, MockOpenAi, MockOptions, MockProvider,
    bedrock, cohere, gemini,
};

#[derive(Clone, Copy)]
enum Format {
    OpenAi,
    Anthropic,
    Gemini,
    Vertex,
    Bedrock,
    Cohere,
}

fn main() {
    let mut options = MockOptions {
        fixed_chunks: 5,
        ..MockOptions::default()
    };
    let mut port = 0u16;
    let mut threads = 1usize;
    let mut format = Format::OpenAi;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--port" => port = value("--port") as u16,
            "--latency-ms" => options.latency = Duration::from_millis(value("--latency-ms")),
            "--jitter-ms" => options.latency_jitter = Duration::from_millis(value("--jitter-ms")),
            "--chunk-delay-ms" => {
                options.chunk_delay = Duration::from_millis(value("--chunk-delay-ms"))
            }
            "--chunks" => options.fixed_chunks = value("--chunks") as usize,
            "--threads" => threads = value("--threads") as usize,
            "--fixed" => options.fixed = true,
            "--format" => {
                format = match args.next().as_deref() {
                    Some("openai") => Format::OpenAi,
                    Some("anthropic") => Format::Anthropic,
                    Some("gemini") => Format::Gemini,
                    Some("vertex") => Format::Vertex,
                    Some("bedrock") => Format::Bedrock,
                    Some("cohere") => Format::Cohere,
                    other => panic!(
                        "--format takes openai, anthropic, gemini, vertex, bedrock or cohere, got {other:?}"
                    ),
                }
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let address = format!("127.0.0.1:{port}");
        let mock = match format {
            Format::OpenAi => MockOpenAi::start_with(options, &address).await,
            Format::Anthropic if options.fixed => {
                MockAnthropic::start_fixed(&address, options.fixed_chunks).await
            }
            Format::Anthropic => MockAnthropic::start_at(&address).await,
            Format::Gemini | Format::Vertex => MockGemini::start_at(&address, 3599).await,
            Format::Bedrock => MockBedrock::start_at(&address).await,
            Format::Cohere => MockCohere::start_at(&address).await,
        };
        println!("listening on {}", mock.addr());
        println!("litellm_params {}", litellm_params(format, &mock));
        std::future::pending::<()>().await;
    });
}

/// How a gateway deployment reaches this mock, in LiteLLM's `litellm_params` names.
fn litellm_params(format: Format, mock: &MockProvider) -> Value {
    let root = mock.root_url();
    match format {
        Format::OpenAi => json!({"api_base": mock.base_url()}),
        Format::Anthropic => json!({"api_base": root}),
        Format::Gemini => json!({"api_base": format!("{root}/v1beta"), "api_key": gemini::API_KEY}),
        Format::Vertex => json!({
            "api_base": root,
            "vertex_location": "europe-west4",
            "vertex_credentials": MockGemini::service_account_json(mock),
        }),
        Format::Bedrock => json!({
            "api_base": root,
            "aws_access_key_id": bedrock::ACCESS_KEY_ID,
            "aws_secret_access_key": bedrock::SECRET_ACCESS_KEY,
            "aws_region_name": bedrock::REGION,
        }),
        Format::Cohere => {
            json!({"api_base": format!("{root}/v2/chat"), "api_key": cohere::API_KEY})
        }
    }
}
