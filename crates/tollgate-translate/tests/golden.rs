//! Golden tests: every fixture translated for every provider format, compared with reviewed
//! snapshots (`tests/snapshots`). A change in any translation shows up here as a diff.
//!
//! To accept intended changes: `INSTA_UPDATE=always cargo test -p tollgate-translate --test golden`,
//! then review the `.snap` diffs before committing.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tollgate_translate::anthropic::inbound::{self, AnthropicEncoder, ReasoningSupport};
use tollgate_translate::anthropic::outbound::{self, AnthropicDecoder, Flavor, Plan, Target};
use tollgate_translate::bedrock::converse::{self, ConverseDecoder};
use tollgate_translate::canonical::{StreamTransform, Translated};
use tollgate_translate::cohere::chat::{self as cohere_chat, CohereDecoder};
use tollgate_translate::gemini;
use tollgate_translate::gemini::response::GeminiDecoder;
use tollgate_translate::openai::codec::{self, ChunkDecoder, ChunkEncoder};
use tollgate_translate::params::ParamPolicy;
use tollgate_translate::responses::request::{self as responses_request, Plan as ResponsesPlan};
use tollgate_translate::responses::response::{self as responses_response, ResponseContext};
use tollgate_translate::responses::stream::ResponsesEncoder;
use tollgate_wire::openai::ChatRequest;
use tollgate_wire::responses::ResponsesRequest;

fn fixtures(dir: &str) -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|path| (stem(&path), std::fs::read(&path).unwrap()))
        .collect()
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

fn pretty(json: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(json).expect("translations produce JSON");
    serde_json::to_string_pretty(&value).unwrap()
}

/// Stream output with the wall-clock `created` fields masked.
fn stable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\"created\":") {
        let (head, tail) = rest.split_at(at + "\"created\":".len());
        out.push_str(head);
        out.push_str("\"[created]\"");
        rest = tail
            .trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// `text` with the item ids the gateway mints (`msg_…`, `fc_…`, `rs_…`: a prefix and 32 hex
/// digits) masked.
fn masked_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for prefix in ["\"msg_", "\"fc_", "\"rs_"] {
            if let Some(tail) = rest.strip_prefix(prefix) {
                let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
                if hex == 32 {
                    out.push_str(prefix);
                    out.push_str("[id]");
                    rest = &tail[32..];
                    continue 'scan;
                }
            }
        }
        let next = rest.chars().next().expect("not empty");
        out.push(next);
        rest = &rest[next.len_utf8()..];
    }
    out
}

/// `policy` with `drop_params: true`.
fn dropping(policy: ParamPolicy) -> ParamPolicy {
    ParamPolicy {
        drop_unsupported: true,
        ..policy
    }
}

/// Fixture `name` translated by `encode` under `policy`. The `tools_round_trip` fixture sets
/// `parallel_tool_calls: false`, which Gemini and Converse cannot honour: without `drop_params`
/// it is refused (checked here), and its translation is the one with `drop_params`.
fn without_parallel_tool_calls<T: std::fmt::Debug>(
    name: &str,
    policy: ParamPolicy,
    encode: impl Fn(&ParamPolicy) -> Result<T, tollgate_core::error::GatewayError>,
) -> Result<T, tollgate_core::error::GatewayError> {
    if name != "tools_round_trip" {
        return encode(&policy);
    }
    let err = encode(&policy).unwrap_err();
    assert_eq!(
        err.param.as_deref(),
        Some("parallel_tool_calls"),
        "{}",
        err.message
    );
    encode(&dropping(policy))
}

/// The context of a bridged Responses answer, fixed so snapshots are stable.
fn responses_context() -> ResponseContext {
    ResponseContext {
        id: "resp_golden".into(),
        created_at: 0,
        model: "client-model".into(),
        echo: serde_json::Map::new(),
        plan: ResponsesPlan::default(),
    }
}

/// Runs a stream transform over `input` cut into small reads, as a network would deliver it.
fn run_stream(mut transform: Translated, input: &[u8]) -> String {
    let mut out = VecDeque::new();
    for piece in input.chunks(37) {
        transform
            .on_bytes(Bytes::copy_from_slice(piece), &mut out)
            .expect("the stream translates");
    }
    transform.on_end(&mut out).expect("the stream ends cleanly");
    let bytes: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    stable(&String::from_utf8(bytes).unwrap())
}

#[test]
fn openai_requests_to_anthropic() {
    let policy = ParamPolicy {
        provider: "anthropic",
        drop_unsupported: false,
        web_search: false,
    };
    for (name, body) in fixtures("openai_requests") {
        let request: ChatRequest<'_> = serde_json::from_slice(&body).unwrap();
        let target = Target {
            model: "claude-target",
            flavor: Flavor::Anthropic,
            max_output_tokens: None,
        };
        let (translated, _) = outbound::encode_request(&request, target, &policy).unwrap();
        insta::assert_snapshot!(format!("openai_to_anthropic__{name}"), pretty(&translated));
    }
}

#[test]
fn openai_requests_to_anthropic_on_bedrock_and_vertex() {
    let policy = ParamPolicy {
        provider: "bedrock",
        drop_unsupported: true,
        web_search: false,
    };
    let body = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/openai_requests/prompt_caching.json"),
    )
    .unwrap();
    let request: ChatRequest<'_> = serde_json::from_slice(&body).unwrap();
    for flavor in [Flavor::Bedrock, Flavor::Vertex] {
        let target = Target {
            model: "anthropic.claude",
            flavor,
            max_output_tokens: Some(8192),
        };
        let (translated, _) = outbound::encode_request(&request, target, &policy).unwrap();
        insta::assert_snapshot!(
            format!("openai_to_anthropic_{flavor:?}__prompt_caching").to_lowercase(),
            pretty(&translated)
        );
    }
}

#[test]
fn anthropic_requests_to_openai() {
    for (name, body) in fixtures("anthropic_requests") {
        let request = inbound::decode_request(&body).unwrap();
        // Claude Code's turn offers Anthropic's web search, which no other provider has:
        // refused without `drop_params`, left out with it.
        let openai = ParamPolicy {
            provider: "openai",
            drop_unsupported: false,
            web_search: false,
        };
        let offers_web_search = String::from_utf8_lossy(&body).contains("web_search_20250305");
        let mut chat = match inbound::to_chat_request(&request, ReasoningSupport::Effort, &openai) {
            Ok(chat) => {
                assert!(
                    !offers_web_search,
                    "{name}: Anthropic's web search was not refused"
                );
                chat
            }
            Err(err) => {
                assert!(offers_web_search, "{name}: {err:?}");
                assert_eq!(err.param.as_deref(), Some("tools"), "{name}");
                assert!(
                    err.message.contains("web_search_20250305"),
                    "{}",
                    err.message
                );
                inbound::to_chat_request(&request, ReasoningSupport::Effort, &dropping(openai))
                    .unwrap()
            }
        };
        let encoded = codec::encode_request(&mut chat, "gpt-target", true).unwrap();
        insta::assert_snapshot!(format!("anthropic_to_openai__{name}"), pretty(&encoded));
    }
}

#[test]
fn anthropic_responses_to_openai() {
    for (name, body) in fixtures("anthropic_responses") {
        let completion = outbound::decode_response(&body, &Plan::default()).unwrap();
        let encoded = codec::encode_completion(&completion);
        insta::assert_snapshot!(
            format!("anthropic_response_to_openai__{name}"),
            stable(&pretty(&encoded))
        );
    }
}

#[test]
fn openai_responses_to_anthropic() {
    for (name, body) in fixtures("openai_responses") {
        let completion = codec::decode_completion(&body).unwrap();
        let encoded = inbound::encode_response(&completion, "client-model").unwrap();
        insta::assert_snapshot!(
            format!("openai_response_to_anthropic__{name}"),
            pretty(&encoded)
        );
    }
}

#[test]
fn anthropic_streams_to_openai_chunks() {
    for (name, body) in fixtures("anthropic_streams") {
        let transform = Translated::new(
            Box::new(AnthropicDecoder::new(Plan::default())),
            Box::new(ChunkEncoder::new(true)),
        );
        insta::assert_snapshot!(
            format!("anthropic_stream_to_openai__{name}"),
            run_stream(transform, &body)
        );
    }
}

#[test]
fn openai_streams_to_anthropic_events() {
    for (name, body) in fixtures("openai_streams") {
        let transform = Translated::new(
            Box::new(ChunkDecoder::default()),
            Box::new(AnthropicEncoder::new("client-model")),
        );
        insta::assert_snapshot!(
            format!("openai_stream_to_anthropic__{name}"),
            run_stream(transform, &body)
        );
    }
}

#[test]
fn openai_requests_to_gemini() {
    let policy = ParamPolicy {
        provider: "gemini",
        drop_unsupported: false,
        web_search: false,
    };
    for (name, body) in fixtures("openai_requests") {
        let request: ChatRequest<'_> = serde_json::from_slice(&body).unwrap();
        let target = gemini::request::Target {
            model: "gemini-2.5-flash",
        };
        let translated = without_parallel_tool_calls(&name, policy, |policy| {
            gemini::request::encode_request(&request, target, policy)
        });
        insta::assert_snapshot!(
            format!("openai_to_gemini__{name}"),
            pretty(&translated.unwrap())
        );
    }
}

#[test]
fn openai_requests_to_gemini_3() {
    let policy = ParamPolicy {
        provider: "gemini",
        drop_unsupported: false,
        web_search: false,
    };
    for name in ["tools_round_trip", "reasoning_with_history"] {
        let body = std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/fixtures/openai_requests/{name}.json")),
        )
        .unwrap();
        let request: ChatRequest<'_> = serde_json::from_slice(&body).unwrap();
        let target = gemini::request::Target {
            model: "gemini-3-pro-preview",
        };
        let translated = without_parallel_tool_calls(name, policy, |policy| {
            gemini::request::encode_request(&request, target, policy)
        });
        insta::assert_snapshot!(
            format!("openai_to_gemini_3__{name}"),
            pretty(&translated.unwrap())
        );
    }
}

#[test]
fn anthropic_requests_to_gemini() {
    let policy = ParamPolicy {
        provider: "gemini",
        drop_unsupported: false,
        web_search: false,
    };
    for (name, body) in fixtures("anthropic_requests") {
        let request = inbound::decode_request(&body).unwrap();
        // Anthropic's web search is left out, as the test above shows for OpenAI.
        let chat = inbound::to_chat_request(&request, ReasoningSupport::Effort, &dropping(policy))
            .unwrap();
        let target = gemini::request::Target {
            model: "gemini-2.5-pro",
        };
        let translated = gemini::request::encode_request(&chat, target, &policy);
        if name == "claude_code_turn" {
            // Its second tool result answers no call: Gemini needs the function's name.
            let err = translated.unwrap_err();
            assert!(err.message.contains("`toolu_01B`"), "{}", err.message);
            continue;
        }
        insta::assert_snapshot!(
            format!("anthropic_to_gemini__{name}"),
            pretty(&translated.unwrap())
        );
    }
}

#[test]
fn gemini_responses_to_openai() {
    // Calls without Gemini's own id get generated ids: seeded, so the snapshots are stable.
    fastrand::seed(7);
    for (name, body) in fixtures("gemini_responses") {
        let completion = gemini::response::decode_response(&body, "gemini-target").unwrap();
        let encoded = codec::encode_completion(&completion);
        insta::assert_snapshot!(
            format!("gemini_response_to_openai__{name}"),
            stable(&pretty(&encoded))
        );
    }
}

#[test]
fn gemini_streams_to_openai_chunks_and_anthropic_events() {
    for (name, body) in fixtures("gemini_streams") {
        fastrand::seed(7);
        let transform = Translated::new(
            Box::new(GeminiDecoder::new("gemini-target")),
            Box::new(ChunkEncoder::new(true)),
        );
        insta::assert_snapshot!(
            format!("gemini_stream_to_openai__{name}"),
            run_stream(transform, &body)
        );
        fastrand::seed(7);
        let transform = Translated::new(
            Box::new(GeminiDecoder::new("gemini-target")),
            Box::new(AnthropicEncoder::new("client-model")),
        );
        insta::assert_snapshot!(
            format!("gemini_stream_to_anthropic__{name}"),
            run_stream(transform, &body)
        );
    }
}

#[test]
fn openai_requests_to_bedrock_converse() {
    let policy = ParamPolicy {
        provider: "bedrock",
        drop_unsupported: false,
        web_search: false,
    };
    for (name, body) in fixtures("openai_requests") {
        let request: ChatRequest<'_> = serde_json::from_slice(&body).unwrap();
        let target = converse::Target {
            model: "anthropic.claude-sonnet-4-5-20250929-v1:0",
        };
        let translated = without_parallel_tool_calls(&name, policy, |policy| {
            converse::encode_request(&request, target, policy)
        });
        if name == "vision_and_files" {
            // It has an https image URL: Converse takes bytes only.
            let err = translated.unwrap_err();
            assert!(err.message.contains("data:"), "{}", err.message);
            continue;
        }
        let (translated, _) = translated.unwrap();
        insta::assert_snapshot!(format!("openai_to_bedrock__{name}"), pretty(&translated));
    }
}

#[test]
fn bedrock_responses_to_openai() {
    for (name, body) in fixtures("bedrock_responses") {
        let completion =
            converse::decode_response(&body, &converse::Plan::default(), "bedrock-target").unwrap();
        let encoded = codec::encode_completion(&completion);
        let value: serde_json::Value = serde_json::from_slice(&encoded).unwrap();
        // Converse answers carry no id: the gateway's is random.
        assert!(value["id"].as_str().unwrap().starts_with("chatcmpl-"));
        let mut value = value;
        value["id"] = "[id]".into();
        insta::assert_snapshot!(
            format!("bedrock_response_to_openai__{name}"),
            stable(&serde_json::to_string_pretty(&value).unwrap())
        );
    }
}

/// A fixture of `{"event", "payload"}` lines, framed as Bedrock frames a stream.
fn event_stream(lines: &[u8]) -> Vec<u8> {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(lines)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let message = Message::new(entry["payload"].to_string().into_bytes())
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(entry["event"].as_str().unwrap().to_owned().into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ));
        write_message_to(&message, &mut out).unwrap();
    }
    out
}

#[test]
fn converse_streams_to_openai_chunks() {
    for (name, body) in fixtures("bedrock_streams") {
        let transform = Translated::new(
            Box::new(ConverseDecoder::new(
                converse::Plan::default(),
                "bedrock-target",
            )),
            Box::new(ChunkEncoder::new(true)),
        );
        let output = run_stream(transform, &event_stream(&body));
        // The completion id is generated: mask it.
        let id_start = output.find("chatcmpl-").unwrap();
        let id = &output[id_start..id_start + "chatcmpl-".len() + 36];
        insta::assert_snapshot!(
            format!("converse_stream_to_openai__{name}"),
            output.replace(id, "[id]")
        );
    }
}

#[test]
fn openai_requests_to_cohere() {
    let policy = ParamPolicy {
        provider: "cohere",
        drop_unsupported: true,
        web_search: false,
    };
    for (name, body) in fixtures("openai_requests") {
        let request: ChatRequest<'_> = serde_json::from_slice(&body).unwrap();
        let translated = cohere_chat::encode_request(&request, "command-a", &policy);
        if name == "vision_and_files" {
            // Cohere takes text and images, not files.
            let err = translated.unwrap_err();
            assert!(err.message.contains("`file`"), "{}", err.message);
            continue;
        }
        insta::assert_snapshot!(
            format!("openai_to_cohere__{name}"),
            pretty(&translated.unwrap())
        );
    }
}

#[test]
fn cohere_responses_and_streams_to_openai() {
    for (name, body) in fixtures("cohere_responses") {
        let completion = cohere_chat::decode_response(&body, "command-a").unwrap();
        let encoded = codec::encode_completion(&completion);
        insta::assert_snapshot!(
            format!("cohere_response_to_openai__{name}"),
            stable(&pretty(&encoded))
        );
    }
    for (name, body) in fixtures("cohere_streams") {
        let transform = Translated::new(
            Box::new(CohereDecoder::new("command-a")),
            Box::new(ChunkEncoder::new(true)),
        );
        insta::assert_snapshot!(
            format!("cohere_stream_to_openai__{name}"),
            run_stream(transform, &body)
        );
    }
}

#[test]
fn responses_requests_to_chat() {
    let policy = ParamPolicy {
        provider: "hosted_vllm",
        drop_unsupported: false,
        web_search: false,
    };
    for (name, body) in fixtures("responses_requests") {
        let request: ResponsesRequest<'_> = serde_json::from_slice(&body).unwrap();
        let translated = if name == "tools_round_trip" {
            // It offers `web_search`, a tool only OpenAI runs: refused, or left out with
            // `drop_params`.
            let err = responses_request::to_chat_request(&request, &[], &policy).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("tools"));
            assert!(err.message.contains("`web_search`"), "{}", err.message);
            responses_request::to_chat_request(&request, &[], &dropping(policy))
        } else {
            responses_request::to_chat_request(&request, &[], &policy)
        };
        let (chat, _) = translated.unwrap();
        insta::assert_snapshot!(
            format!("responses_to_chat__{name}"),
            pretty(&serde_json::to_vec(&chat).unwrap())
        );
    }
}

#[test]
fn openai_responses_to_responses() {
    for (name, body) in fixtures("openai_responses") {
        let completion = codec::decode_completion(&body).unwrap();
        let (encoded, _) =
            responses_response::encode_response(&completion, &responses_context()).unwrap();
        insta::assert_snapshot!(
            format!("openai_response_to_responses__{name}"),
            masked_ids(&stable(&pretty(&encoded)))
        );
    }
}

#[test]
fn openai_streams_to_responses_events() {
    for (name, body) in fixtures("openai_streams") {
        let transform = Translated::new(
            Box::new(ChunkDecoder::default()),
            Box::new(ResponsesEncoder::new(responses_context(), None)),
        );
        insta::assert_snapshot!(
            format!("openai_stream_to_responses__{name}"),
            masked_ids(&run_stream(transform, &body))
        );
    }
}
