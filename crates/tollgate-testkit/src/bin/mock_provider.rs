//! `tollgate-mock-provider`: the mock OpenAI provider as a process, for the benchmark and the
//! SDK end-to-end tests.
//!
//! Usage: tollgate-mock-provider [--format openai|anthropic] [--port N] [--latency-ms N]
//!                               [--chunk-delay-ms N] [--fixed] [--chunks N] [--threads N]
//! Prints `listening on 127.0.0.1:PORT` once ready.

use std::time::Duration;

use tollgate_testkit::{MockAnthropic, MockOpenAi, MockOptions};

fn main() {
    let mut options = MockOptions {
        fixed_chunks: 5,
        ..MockOptions::default()
    };
    let mut port = 0u16;
    let mut threads = 1usize;
    let mut anthropic = false;
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
            "--chunk-delay-ms" => {
                options.chunk_delay = Duration::from_millis(value("--chunk-delay-ms"))
            }
            "--chunks" => options.fixed_chunks = value("--chunks") as usize,
            "--threads" => threads = value("--threads") as usize,
            "--fixed" => options.fixed = true,
            "--format" => match args.next().as_deref() {
                Some("openai") => anthropic = false,
                Some("anthropic") => anthropic = true,
                other => panic!("--format takes openai or anthropic, got {other:?}"),
            },
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
        let mock = if anthropic {
            MockAnthropic::start_at(&address).await
        } else {
            MockOpenAi::start_with(options, &address).await
        };
        println!("listening on {}", mock.addr());
        std::future::pending::<()>().await;
    });
}
