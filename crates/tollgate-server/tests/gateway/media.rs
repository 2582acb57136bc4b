//! Image URLs for providers that take only bytes (Bedrock, Gemini): fetched by the gateway,
//! inlined, size-capped, and refused when they point into private networks.

use axum::Router;
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use tollgate_testkit::bedrock::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use tollgate_testkit::{MockBedrock, MockProvider};

use crate::harness::*;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\nmock-image-bytes";

/// A web server with an image, a redirect to it, and a large file.
async fn image_server() -> String {
    let app = Router::new()
        .route(
            "/cat.png",
            get(|| async { ([(CONTENT_TYPE, "image/png")], PNG).into_response() }),
        )
        .route(
            "/moved",
            get(|| async {
                (axum::http::StatusCode::FOUND, [(LOCATION, "/cat.png")]).into_response()
            }),
        )
        .route(
            "/large.png",
            get(|| async { ([(CONTENT_TYPE, "image/png")], vec![0u8; 64 * 1024]).into_response() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn config(mock: &MockProvider, settings: &str) -> String {
    let deployment = |name: &str, model: &str| {
        format!(
            "  - model_name: {name}\n    litellm_params:\n      model: bedrock/{model}\n      api_base: {}\n      aws_access_key_id: {ACCESS_KEY_ID}\n      aws_secret_access_key: {SECRET_ACCESS_KEY}\n      aws_region_name: {REGION}\n",
            mock.root_url()
        )
    };
    let models = deployment("nova", "us.amazon.nova-pro-v1:0")
        + &deployment("claude", "invoke/anthropic.claude-sonnet-4-5-20250929-v1:0");
    format!(
        "tollgate_settings:\n{settings}{}",
        config_with_models(&models)
    )
}

fn look_at(url: &str) -> Value {
    json!({"model": "nova", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": url}}]}]})
}

#[tokio::test]
async fn image_urls_are_fetched_and_sent_as_bytes() {
    let images = image_server().await;
    let mock = MockBedrock::start().await;
    let gateway = TestGateway::start(&config(
        &mock,
        "  media_allow_private_networks: true\n  media_max_mb: 0.01\n",
    ))
    .await;

    // Followed through a redirect.
    let (status, reply) = chat(&gateway, look_at(&format!("{images}/moved"))).await;
    assert_eq!(status, 200, "{reply}");
    let image = &mock.last_request().body["messages"][0]["content"][1]["image"];
    assert_eq!(image["format"], "png");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(image["source"]["bytes"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, PNG);

    // Over the size limit (0.01 MB): refused before the provider is called.
    let before = mock.requests().len();
    let (status, reply) = chat(&gateway, look_at(&format!("{images}/large.png"))).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["code"], "invalid_media_url");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than")
    );
    assert_eq!(mock.requests().len(), before);
}

#[tokio::test]
async fn urls_into_private_networks_are_refused_by_default() {
    let images = image_server().await;
    let mock = MockBedrock::start().await;
    let gateway = TestGateway::start(&config(&mock, "  drain_timeout: 5s\n")).await;
    for url in [
        format!("{images}/cat.png"),
        "http://169.254.169.254/latest/meta-data/iam/".to_owned(),
        "http://localhost:9/secret.png".to_owned(),
        "http://[::1]/x.png".to_owned(),
    ] {
        let (status, reply) = chat(&gateway, look_at(&url)).await;
        assert_eq!(status, 400, "{url}: {reply}");
        assert_eq!(reply["error"]["code"], "invalid_media_url", "{url}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains("private or reserved"), "{url}: {message}");
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn claude_on_bedrock_gets_fetched_images_as_base64_sources() {
    let images = image_server().await;
    let mock = MockBedrock::start().await;
    let gateway =
        TestGateway::start(&config(&mock, "  media_allow_private_networks: true\n")).await;
    let mut request = look_at(&format!("{images}/cat.png"));
    request["model"] = json!("claude");
    let (status, reply) = chat(&gateway, request).await;
    assert_eq!(status, 200, "{reply}");
    let upstream = mock.last_request();
    assert!(upstream.path.ends_with("/invoke"), "{}", upstream.path);
    let source = &upstream.body["messages"][0]["content"][1]["source"];
    assert_eq!(
        source["type"], "base64",
        "Bedrock refuses URL sources: {source}"
    );
    assert_eq!(source["media_type"], "image/png");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(source["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, PNG);
}
