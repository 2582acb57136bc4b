//! Config loading end to end: LiteLLM configs read as-is, and every kind of error names the
//! file, the field and the reason.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::ExposeSecret;
use tollgate_core::config::{self, Config, ConfigError, RoutingStrategy};
use tollgate_core::error::FailureClass;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn load(name: &str) -> Config {
    config::load(&fixture(name)).unwrap_or_else(|err| panic!("{name} should load: {err}"))
}

fn load_error(name: &str) -> ConfigError {
    match config::load(&fixture(name)) {
        Ok(_) => panic!("{name} should not load"),
        Err(err) => err,
    }
}

#[test]
fn a_litellm_config_is_read_as_is() {
    let config = load("litellm_full.yaml");
    assert_eq!(config.deployments.len(), 8);
    assert_eq!(
        config.model_names(),
        [
            "gpt-4o",
            "llama",
            "local",
            "fast",
            "gpt-3.5-turbo",
            "fw",
            "echo"
        ]
    );

    let openai = &config.deployments[0];
    assert_eq!(openai.id, "openai-gpt-4o");
    assert_eq!(openai.provider.prefix, "openai");
    assert_eq!(openai.model, "gpt-4o");
    assert_eq!(
        openai.api_base.as_ref().unwrap().as_str(),
        "https://api.openai.com/v1"
    );
    assert_eq!(
        openai.api_key.as_ref().unwrap().expose_secret(),
        "sk-openai-from-config"
    );
    assert_eq!((openai.rpm, openai.tpm), (Some(600), Some(90_000)));
    assert_eq!(openai.model_info.max_input_tokens, Some(128_000));
    assert_eq!(openai.model_info.input_cost_per_token, Some(0.0000025));
    // router_settings.timeout is the default for deployments that set none.
    assert_eq!(openai.timeout, Duration::from_secs(120));
    assert_eq!(openai.stream_timeout, Duration::from_secs(120));
    assert!(openai.inject_stream_usage);

    let azure = &config.deployments[1];
    assert_eq!(azure.provider.prefix, "azure");
    assert_eq!(azure.model, "my-gpt4o-deployment");
    assert_eq!(
        azure.api_base.as_ref().unwrap().as_str(),
        "https://example-resource.openai.azure.com/"
    );
    assert_eq!(azure.api_version.as_deref(), Some("2024-10-21"));
    assert_eq!(azure.weight, Some(2.0));
    assert_eq!(
        (azure.timeout, azure.stream_timeout),
        (Duration::from_secs(30), Duration::from_secs(5))
    );
    assert_eq!(azure.id.len(), 64, "a generated id is a sha-256 hex digest");

    let vllm = &config.deployments[2];
    assert_eq!(vllm.model, "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(
        vllm.api_base.as_ref().unwrap().as_str(),
        "http://vllm.internal:8000/v1"
    );
    assert_eq!(vllm.order, Some(1));
    assert!(vllm.api_key.is_none());

    let ollama = &config.deployments[3];
    assert_eq!(
        ollama.api_base.as_ref().unwrap().as_str(),
        "http://localhost:11434/v1"
    );

    assert_eq!(config.deployments[4].max_retries, Some(3));
    assert_eq!(
        config.deployments[5].provider.prefix, "openai",
        "bare OpenAI model names need no prefix"
    );
    assert_eq!(
        config.deployments[6].model,
        "accounts/fireworks/models/llama-v3p1-8b-instruct"
    );
    assert!(
        config.deployments.iter().all(|d| d.drop_params),
        "litellm_settings.drop_params applies to all"
    );
    let mock = &config.deployments[7];
    assert!(mock.api_base.is_none());
    assert_eq!(mock.mock_response.as_deref(), Some("fixed answer"));

    assert_eq!(
        config.master_key.as_ref().unwrap().expose_secret(),
        "sk-master-from-config"
    );
    assert_eq!(config.max_request_body_bytes, 8 * 1024 * 1024);
    assert_eq!(
        config.not_implemented,
        [
            // Asked for in the LiteLLM config, but its URL was left in LiteLLM's environment.
            "general_settings.alerting (SLACK_WEBHOOK_URL is not set)",
            "guardrails",
            "model_list[].litellm_params.litellm_credential_name",
        ]
    );
    assert_eq!(config.routing.strategy, RoutingStrategy::LeastBusy);
    assert_eq!(config.routing.num_retries, 3);
}

#[test]
fn router_settings_are_read_with_litellm_names_and_defaults() {
    let config = load_inline(
        "model_list:
  - {model_name: gpt, litellm_params: {model: mock/a, cooldown_time: 2}}
  - {model_name: claude, litellm_params: {model: mock/b}}
  - {model_name: big, litellm_params: {model: mock/c}}
router_settings:
  routing_strategy: latency-based-routing
  routing_strategy_args: {lowest_latency_buffer: 0.25}
  retry_policy: {RateLimitErrorRetries: 4, BadRequestErrorRetries: 0}
  allowed_fails_policy: {InternalServerErrorAllowedFails: 10}
  cooldown_time: 0.5
  fallbacks: [{gpt: [claude]}]
  context_window_fallbacks: [{gpt: [big]}]
  model_group_alias: {gpt-4: gpt, secret: {model: claude, hidden: true}}
litellm_settings:
  num_retries: 1
  default_fallbacks: [big]
  max_fallbacks: 2",
    )
    .unwrap();
    let routing = &config.routing;
    assert_eq!(routing.strategy, RoutingStrategy::LatencyBased);
    assert_eq!(routing.lowest_latency_buffer, 0.25);
    assert_eq!(
        routing.num_retries, 1,
        "litellm_settings when router_settings is silent"
    );
    assert_eq!(routing.retries_for(FailureClass::RateLimit), 4);
    assert_eq!(routing.retries_for(FailureClass::Timeout), 1);
    assert_eq!(routing.allowed_fails_for(FailureClass::InternalServer), 10);
    assert_eq!(routing.allowed_fails_for(FailureClass::RateLimit), 3);
    assert_eq!(routing.cooldown_time, Duration::from_millis(500));
    assert_eq!(
        config.deployments[0].cooldown_time,
        Some(Duration::from_secs(2))
    );
    assert_eq!(routing.fallbacks["gpt"], ["claude"]);
    assert_eq!(routing.fallbacks["*"], ["big"]);
    assert_eq!(routing.context_window_fallbacks["gpt"], ["big"]);
    assert_eq!(routing.max_fallbacks, 2);
    assert_eq!(routing.aliases["gpt-4"].group, "gpt");
    assert!(routing.aliases["secret"].hidden);
    assert!(
        config.not_implemented.is_empty(),
        "{:?}",
        config.not_implemented
    );

    let defaults = load_inline("model_list: []").unwrap().routing;
    assert_eq!(defaults.strategy, RoutingStrategy::SimpleShuffle);
    assert_eq!(defaults.num_retries, 2);
    assert_eq!(defaults.allowed_fails, 3);
    assert_eq!(defaults.cooldown_time, Duration::from_secs(5));
    assert_eq!(defaults.max_fallbacks, 5);
}

#[test]
fn router_settings_errors_name_the_field() {
    let models = "model_list:\n  - {model_name: gpt, litellm_params: {model: mock/a}}\n";
    let cases = [
        (
            "router_settings: {routing_strategy: fastest}",
            "router_settings.routing_strategy",
            "unknown routing strategy",
        ),
        (
            "router_settings: {fallbacks: [{gpt: [nope]}]}",
            "router_settings.fallbacks[0].gpt[0]",
            "`nope` is not a model_name",
        ),
        (
            "router_settings: {fallbacks: [{nope: [gpt]}]}",
            "router_settings.fallbacks[0].nope",
            "`nope` is not a model_name",
        ),
        (
            "router_settings: {fallbacks: gpt}",
            "router_settings.fallbacks",
            "expected a list",
        ),
        (
            "router_settings: {retry_policy: {RateLimitRetries: 1}}",
            "router_settings.retry_policy.RateLimitRetries",
            "RateLimitErrorRetries",
        ),
        (
            "router_settings: {num_retries: -1}",
            "router_settings.num_retries",
            "whole number",
        ),
        (
            "litellm_settings: {num_retries: many}",
            "litellm_settings.num_retries",
            "expected a number",
        ),
        (
            "router_settings: {model_group_alias: {a: {hidden: true}}}",
            "router_settings.model_group_alias.a.model",
            "is required",
        ),
        (
            "router_settings: {model_group_alias: {a: missing}}",
            "router_settings.model_group_alias.a",
            "`missing` is not a model_name",
        ),
    ];
    for (settings, path, message) in cases {
        let err = load_inline(&format!("{models}{settings}")).unwrap_err();
        assert_eq!(err.path, path, "{settings}: {err}");
        assert!(err.message.contains(message), "{settings}: {err}");
    }
}

#[test]
fn wildcard_names_are_checked_and_serve_as_fallback_targets() {
    let config = load_inline(
        "model_list:
  - {model_name: 'anthropic/*', litellm_params: {model: 'anthropic/*', api_key: k}}
  - {model_name: 'fo::*:static::*', litellm_params: {model: 'openai/fo::*:static::*', api_key: k}}
  - {model_name: gpt, litellm_params: {model: openai/gpt-4o, api_key: k}}
router_settings:
  fallbacks: [{gpt: [anthropic/claude-sonnet-4-5]}, {'anthropic/*': [gpt]}]",
    )
    .unwrap();
    assert!(config.deployments[0].is_wildcard());
    assert_eq!(config.deployments[0].model, "*");
    assert_eq!(
        config.routing.fallbacks["gpt"],
        ["anthropic/claude-sonnet-4-5"]
    );
    let concrete = config.deployments[1].for_model("fo::a:static::b", &["a", "b"]);
    assert_eq!(concrete.model, "fo::a:static::b");
    assert_eq!(concrete.model_name, "fo::a:static::b");

    let cases = [
        (
            "model_list: [{model_name: gpt, litellm_params: {model: 'openai/*', api_key: k}}]",
            "model_list[0].litellm_params.model",
            "only a wildcard model_name",
        ),
        (
            "model_list: [{model_name: 'a/*', litellm_params: {model: 'openai/*-*', api_key: k}}]",
            "model_list[0].litellm_params.model",
            "captures only 1",
        ),
        (
            "model_list: [{model_name: '*', litellm_params: {model: '*-mini'}}]",
            "model_list[0].litellm_params.model",
            "write it as `<provider>/*-mini`",
        ),
        (
            "model_list: [{model_name: 'openai/*', litellm_params: {model: 'openai/*', api_key: k}}]
router_settings: {fallbacks: [{'openai/gpt-4o': [anthropic/claude]}]}",
            "router_settings.fallbacks[0].openai/gpt-4o[0]",
            "`anthropic/claude` is not a model_name",
        ),
    ];
    for (yaml, path, message) in cases {
        let err = load_inline(yaml).unwrap_err();
        assert_eq!(err.path, path, "{yaml}: {err}");
        assert!(err.message.contains(message), "{yaml}: {err}");
    }
}

#[test]
fn bedrock_wildcards_take_the_route_from_the_requested_model() {
    let config = load_inline(
        "model_list:
  - {model_name: 'bedrock/*', litellm_params: {model: 'bedrock/*', aws_access_key_id: a, aws_secret_access_key: s}}",
    )
    .unwrap();
    let invoke = config.deployments[0].for_model(
        "bedrock/invoke/anthropic.claude-sonnet-4-5",
        &["invoke/anthropic.claude-sonnet-4-5"],
    );
    assert_eq!(invoke.model, "anthropic.claude-sonnet-4-5");
    assert_eq!(
        invoke.bedrock.as_ref().unwrap().route,
        config::BedrockRoute::Invoke
    );
    let converse =
        config.deployments[0].for_model("bedrock/amazon.nova-pro-v1:0", &["amazon.nova-pro-v1:0"]);
    assert_eq!(converse.model, "amazon.nova-pro-v1:0");
    assert_eq!(
        converse.bedrock.as_ref().unwrap().route,
        config::BedrockRoute::Converse
    );
}

#[test]
fn includes_are_merged_relative_to_the_including_file() {
    let config = load("include/main.yaml");
    let names = config.model_names();
    assert_eq!(
        names,
        ["main-model", "included-openai", "included-local", "nested"]
    );
    // A mapping in an included file replaces the one already there, as in LiteLLM: the
    // included `drop_params` replaced the main file's `set_verbose`.
    assert!(
        config.not_implemented.is_empty(),
        "{:?}",
        config.not_implemented
    );
    assert!(config.deployments.iter().all(|d| d.drop_params));
}

#[test]
fn a_missing_include_names_the_include_entry() {
    let err = load_error("include_missing.yaml");
    assert_eq!(err.path, "include[0]");
    assert!(err.message.contains("does-not-exist.yaml"), "{err}");
}

#[test]
fn bad_yaml_reports_line_and_column() {
    let err = load_error("bad_yaml.yaml");
    assert!(err.to_string().contains("bad_yaml.yaml"), "{err}");
    assert!(err.message.contains("line 5"), "{err}");
    assert!(err.message.contains("column"), "{err}");
}

#[test]
fn a_wrong_type_names_the_field() {
    let err = load_error("wrong_type.yaml");
    assert_eq!(err.path, "model_list[0].litellm_params.rpm");
    assert!(
        err.message.contains("expected a number, got `lots`"),
        "{err}"
    );

    let err = load_error("wrong_shape.yaml");
    assert_eq!(err.path, "model_list[0].litellm_params");
    assert!(
        err.message
            .starts_with("invalid type: string \"openai/gpt-4o\", expected a mapping"),
        "{err}"
    );
    assert!(err.message.contains("line 3"), "{err}");
}

#[test]
fn a_missing_environment_variable_names_it() {
    let err = load_error("missing_env.yaml");
    assert_eq!(err.path, "model_list[0].litellm_params.api_key");
    assert!(
        err.message
            .contains("`TOLLGATE_TEST_SURELY_UNSET_VARIABLE` is not set"),
        "{err}"
    );
}

#[test]
fn an_unknown_provider_prefix_is_refused() {
    let err = load_error("unknown_prefix.yaml");
    assert_eq!(err.path, "model_list[1].litellm_params.model");
    assert!(
        err.message
            .contains("unknown provider prefix `not_a_provider`"),
        "{err}"
    );
    assert!(
        err.message.contains("hosted_vllm"),
        "lists the known prefixes: {err}"
    );
}

#[test]
fn duplicate_model_ids_are_refused() {
    let err = load_error("duplicate_id.yaml");
    assert_eq!(err.path, "model_list[1].model_info.id");
    assert!(err.message.contains("duplicate id `shared`"), "{err}");
}

#[test]
fn a_provider_without_default_endpoint_needs_api_base() {
    let err = load_error("missing_api_base.yaml");
    assert_eq!(err.path, "model_list[0].litellm_params.api_base");
    assert!(err.message.contains("HOSTED_VLLM_API_BASE"), "{err}");
}

#[test]
fn tollgate_settings_are_strict() {
    let err = load_error("unknown_tollgate_setting.yaml");
    assert_eq!(err.path, "tollgate_settings.drian_timeout");
    assert!(
        err.message
            .starts_with("unknown field `drian_timeout`, expected one of"),
        "{err}"
    );
}

#[test]
fn a_bad_duration_names_the_field() {
    let err = load_error("bad_duration.yaml");
    assert_eq!(err.path, "model_list[0].litellm_params.timeout");
    assert!(err.message.contains("not a duration"), "{err}");
}

#[test]
fn store_sync_settings_default_and_are_checked() {
    let defaults = load_inline("").unwrap().store_sync;
    assert_eq!(defaults.interval, Duration::from_secs(5));
    assert_eq!(defaults.max_staleness, Duration::from_secs(3600));
    let set = load_inline(
        "tollgate_settings:\n  store_sync_interval: 250ms\n  store_max_staleness: 10m\n",
    )
    .unwrap()
    .store_sync;
    assert_eq!(set.interval, Duration::from_millis(250));
    assert_eq!(set.max_staleness, Duration::from_secs(600));
    let err =
        load_inline("tollgate_settings:\n  store_sync_interval: 1m\n  store_max_staleness: 30s\n")
            .unwrap_err();
    assert_eq!(err.path, "tollgate_settings.store_max_staleness");
    assert!(
        err.message.contains("longer than store_sync_interval"),
        "{err}"
    );
}

#[test]
fn identical_deployments_get_distinct_generated_ids() {
    let yaml = "model_list:\n  - {model_name: a, litellm_params: {model: mock/x}}\n  - {model_name: a, litellm_params: {model: mock/x}}\n";
    let config = config::load_str(yaml, &PathBuf::from("inline.yaml")).unwrap();
    let ids: Vec<&str> = config.deployments.iter().map(|d| d.id.as_str()).collect();
    assert_ne!(ids[0], ids[1]);
    assert!(ids[1].ends_with("-2"));
}

#[test]
fn an_empty_file_is_a_gateway_with_no_models() {
    let config = config::load_str("", &PathBuf::from("empty.yaml")).unwrap();
    assert!(config.deployments.is_empty());
    assert!(config.master_key.is_none());
    // Request bodies up to 32 MiB unless `general_settings.max_request_size_mb` says otherwise.
    assert_eq!(config.max_request_body_bytes, 32 * 1024 * 1024);
}

fn load_inline(yaml: &str) -> Result<Config, ConfigError> {
    config::load_str(yaml, &PathBuf::from("inline.yaml"))
}

fn vertex_yaml(params: &str) -> String {
    format!(
        "model_list:\n  - model_name: v\n    litellm_params:\n      model: vertex_ai/gemini-2.5-flash\n{params}"
    )
}

const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----\\n";

#[test]
fn vertex_deployments_resolve_project_location_and_endpoint() {
    let credentials = format!(
        r#"{{"type":"service_account","project_id":"from-key","client_email":"sa@x.iam.gserviceaccount.com","private_key":"{TEST_KEY}"}}"#
    );
    let config = load_inline(&vertex_yaml(&format!(
        "      vertex_credentials: '{credentials}'\n"
    )))
    .unwrap();
    let deployment = &config.deployments[0];
    let vertex = deployment.vertex.as_ref().unwrap();
    assert_eq!(vertex.project, "from-key");
    assert_eq!(vertex.location, "us-central1");
    assert_eq!(
        deployment.api_base.as_ref().unwrap().as_str(),
        "https://us-central1-aiplatform.googleapis.com/"
    );
    match &vertex.credentials {
        config::GoogleCredentials::ServiceAccount {
            client_email,
            token_uri,
            ..
        } => {
            assert_eq!(client_email, "sa@x.iam.gserviceaccount.com");
            assert_eq!(token_uri, "https://oauth2.googleapis.com/token");
        }
        other => panic!("expected a service account, got {other:?}"),
    }

    let config = load_inline(&vertex_yaml(&format!(
        "      vertex_credentials: '{credentials}'\n      vertex_project: explicit\n      vertex_location: global\n"
    )))
    .unwrap();
    let deployment = &config.deployments[0];
    assert_eq!(deployment.vertex.as_ref().unwrap().project, "explicit");
    assert_eq!(
        deployment.api_base.as_ref().unwrap().as_str(),
        "https://aiplatform.googleapis.com/"
    );
}

#[test]
fn vertex_credential_problems_name_the_field() {
    let field = "model_list[0].litellm_params.vertex_credentials";
    let err = load_inline(&vertex_yaml(
        "      vertex_credentials: '{\"type\":\"service_account\",\"client_email\":\"a@b\"}'\n",
    ))
    .unwrap_err();
    assert_eq!(err.path, field);
    assert!(err.message.contains("no `private_key`"), "{err}");

    let err = load_inline(&vertex_yaml(
        "      vertex_credentials: /nonexistent/key.json\n",
    ))
    .unwrap_err();
    assert_eq!(err.path, field);
    assert!(
        err.message.contains("cannot read credentials file"),
        "{err}"
    );

    let err = load_inline(&vertex_yaml(
        "      vertex_credentials: '{\"type\":\"external_account\"}'\n",
    ))
    .unwrap_err();
    assert_eq!(err.path, field);
    assert!(err.message.contains("no `credential_source`"), "{err}");
    // Workload identity federation from AWS (an `environment_id` source) is not supported.
    let err = load_inline(&vertex_yaml(
        "      vertex_credentials: '{\"type\":\"external_account\",\"audience\":\"//iam\",\"subject_token_type\":\"urn:ietf:params:aws:token-type:aws4_request\",\"credential_source\":{\"environment_id\":\"aws1\"}}'\n",
    ))
    .unwrap_err();
    assert_eq!(err.path, field);
    assert!(err.message.contains("neither `file` nor `url`"), "{err}");
    let err = load_inline(&vertex_yaml(
        "      vertex_credentials: '{\"type\":\"impersonated_service_account\"}'\n",
    ))
    .unwrap_err();
    assert!(
        err.message
            .contains("`impersonated_service_account` are not supported"),
        "{err}"
    );

    let err = load_inline(&vertex_yaml(
        "      vertex_project: p\n      vertex_location: Europe West\n",
    ))
    .unwrap_err();
    assert_eq!(err.path, "model_list[0].litellm_params.vertex_location");
}

#[test]
fn gemini_needs_an_api_key() {
    let yaml = "model_list:\n  - model_name: g\n    litellm_params:\n      model: gemini/gemini-2.5-flash\n";
    // The process environment may carry a key; this test is about the config alone.
    if std::env::var_os("GEMINI_API_KEY").is_some() || std::env::var_os("GOOGLE_API_KEY").is_some()
    {
        return;
    }
    let err = load_inline(yaml).unwrap_err();
    assert_eq!(err.path, "model_list[0].litellm_params.api_key");
    assert!(err.message.contains("GEMINI_API_KEY"), "{err}");
}

fn bedrock_yaml(model: &str, params: &str) -> String {
    format!(
        "model_list:\n  - model_name: b\n    litellm_params:\n      model: bedrock/{model}\n{params}"
    )
}

#[test]
fn bedrock_deployments_resolve_route_region_and_endpoint() {
    let keys = "      aws_access_key_id: AKIA1\n      aws_secret_access_key: s3cret\n";
    let config = load_inline(&bedrock_yaml(
        "invoke/anthropic.claude-sonnet-4-5-20250929-v1:0",
        &format!("{keys}      aws_region_name: eu-central-1\n"),
    ))
    .unwrap();
    let deployment = &config.deployments[0];
    assert_eq!(
        deployment.model,
        "anthropic.claude-sonnet-4-5-20250929-v1:0"
    );
    let bedrock = deployment.bedrock.as_ref().unwrap();
    assert_eq!(bedrock.route, config::BedrockRoute::Invoke);
    assert_eq!(bedrock.region, "eu-central-1");
    assert_eq!(
        deployment.api_base.as_ref().unwrap().as_str(),
        "https://bedrock-runtime.eu-central-1.amazonaws.com/"
    );

    // An ARN names its region; China regions have their own domain.
    let config = load_inline(&bedrock_yaml(
        "arn:aws-cn:bedrock:cn-north-1:123456789012:inference-profile/x",
        keys,
    ))
    .unwrap();
    assert_eq!(
        config.deployments[0].api_base.as_ref().unwrap().as_str(),
        "https://bedrock-runtime.cn-north-1.amazonaws.com.cn/"
    );
}

#[test]
fn bedrock_configuration_problems_name_the_field() {
    let err = load_inline(&bedrock_yaml(
        "invoke/meta.llama3-70b-instruct-v1:0",
        "      api_key: k\n",
    ))
    .unwrap_err();
    assert_eq!(err.path, "model_list[0].litellm_params.model");
    assert!(err.message.contains("bedrock/converse/"), "{err}");

    let err = load_inline(&bedrock_yaml(
        "amazon.nova-pro-v1:0",
        "      aws_access_key_id: AKIA1\n",
    ))
    .unwrap_err();
    assert_eq!(
        err.path,
        "model_list[0].litellm_params.aws_secret_access_key"
    );
}

/// An `environment_variables` section that blanks every variable the AWS credential chain
/// reads (an empty value counts as unset), so that the process environment does not decide,
/// and then sets `set`.
fn aws_env(set: &[(&str, &str)]) -> String {
    let mut yaml = "environment_variables:\n".to_owned();
    for name in tollgate_core::config::AWS_CHAIN_VARIABLES {
        let value = match set.iter().find(|(set, _)| set == name) {
            Some((_, value)) => *value,
            // No file there: the default profile is not found.
            None if *name == "AWS_SHARED_CREDENTIALS_FILE" => "/nonexistent/aws/credentials",
            None if *name == "AWS_CONFIG_FILE" => "/nonexistent/aws/config",
            None => "",
        };
        yaml.push_str(&format!("  {name}: '{value}'\n"));
    }
    for (name, value) in set
        .iter()
        .filter(|(name, _)| !tollgate_core::config::AWS_CHAIN_VARIABLES.contains(name))
    {
        yaml.push_str(&format!("  {name}: '{value}'\n"));
    }
    yaml
}

fn bedrock_source(env: &[(&str, &str)], params: &str) -> config::AwsCredentialSource {
    let yaml = format!(
        "{}{}",
        aws_env(env),
        bedrock_yaml(
            "amazon.nova-pro-v1:0",
            &format!("      aws_region_name: eu-central-1\n{params}")
        )
    );
    let config = load_inline(&yaml).unwrap_or_else(|err| panic!("{err}"));
    let bedrock = config.deployments[0].bedrock.clone().unwrap();
    bedrock.credentials.expect("signed, not keyed")
}

fn bedrock_credentials_error(env: &[(&str, &str)], params: &str) -> ConfigError {
    let yaml = format!(
        "{}{}",
        aws_env(env),
        bedrock_yaml("amazon.nova-pro-v1:0", params)
    );
    load_inline(&yaml).unwrap_err()
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("tollgate-config-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bedrock_credentials_follow_the_aws_default_chain() {
    use config::{AwsCredentialSource as Source, SecretSource};

    // Nothing configured: the instance metadata service, at its address or the one given.
    let Source::InstanceMetadata { endpoint } = bedrock_source(&[], "") else {
        panic!("instance metadata expected");
    };
    assert_eq!(endpoint.as_str(), "http://169.254.169.254/");
    let Source::InstanceMetadata { endpoint } = bedrock_source(
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1338")],
        "",
    ) else {
        panic!("instance metadata expected");
    };
    assert_eq!(endpoint.as_str(), "http://127.0.0.1:1338/");

    // The ECS agent, with the authorization token from a file; EKS Pod Identity's full URI.
    let source = bedrock_source(
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/abc",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/token"),
        ],
        "",
    );
    let Source::Container { uri, authorization } = &source else {
        panic!("container credentials expected");
    };
    assert_eq!(uri.as_str(), "http://169.254.170.2/v2/credentials/abc");
    assert!(
        matches!(authorization, Some(SecretSource::File(path)) if path.to_str() == Some("/var/run/token"))
    );
    assert_eq!(source.to_string(), "container credentials at 169.254.170.2");
    let Source::Container { uri, .. } = bedrock_source(
        &[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.23/v1/credentials",
        )],
        "",
    ) else {
        panic!("container credentials expected");
    };
    assert_eq!(uri.as_str(), "http://169.254.170.23/v1/credentials");

    // IRSA's variables win over the container's; STS in the deployment's region.
    let irsa = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks/token"),
        ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/x"),
    ];
    let source = bedrock_source(&irsa, "");
    let Source::WebIdentity(identity) = &source else {
        panic!("web identity expected");
    };
    assert_eq!(identity.role_arn, "arn:aws:iam::1:role/r");
    assert_eq!(identity.session_name, "tollgate");
    assert_eq!(
        identity.sts_endpoint.as_str(),
        "https://sts.eu-central-1.amazonaws.com/"
    );
    assert!(
        matches!(&identity.token, SecretSource::File(path) if path.to_str() == Some("/var/run/secrets/eks/token"))
    );
    assert_eq!(
        source.to_string(),
        "web identity: role arn:aws:iam::1:role/r through STS at sts.eu-central-1.amazonaws.com"
    );

    // LiteLLM's params: the token as given or from a file, the role, the session, the endpoint.
    let Source::WebIdentity(identity) = bedrock_source(
        &irsa,
        "      aws_web_identity_token: oidc/file//var/run/other\n      aws_role_name: arn:aws:iam::2:role/b\n      aws_session_name: s\n      aws_sts_endpoint: https://sts.example.internal\n",
    ) else {
        panic!("web identity expected");
    };
    assert_eq!(identity.role_arn, "arn:aws:iam::2:role/b");
    assert_eq!(identity.session_name, "s");
    assert_eq!(
        identity.sts_endpoint.as_str(),
        "https://sts.example.internal/"
    );
    assert!(
        matches!(&identity.token, SecretSource::File(path) if path.to_str() == Some("/var/run/other"))
    );
    let Source::WebIdentity(identity) = bedrock_source(
        &[("MY_OIDC_TOKEN", "eyJ.x.y")],
        "      aws_web_identity_token: MY_OIDC_TOKEN\n      aws_role_name: arn:aws:iam::2:role/b\n",
    ) else {
        panic!("web identity expected");
    };
    assert!(
        matches!(&identity.token, SecretSource::Value(token) if token.expose_secret() == "eyJ.x.y")
    );
    // aws_role_name naming the pod's own IRSA role uses the pod's web identity.
    let Source::WebIdentity(identity) =
        bedrock_source(&irsa, "      aws_role_name: arn:aws:iam::1:role/r\n")
    else {
        panic!("web identity expected");
    };
    assert!(matches!(&identity.token, SecretSource::File(_)));

    // Profiles: the one named (by param or AWS_PROFILE), else `default` when it has keys.
    let file = temp_file(
        "credentials",
        "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n[work]\naws_access_key_id = AKIAWORK\naws_secret_access_key = w\naws_session_token = t\n\n[sso]\nsso_session = corp\n",
    );
    let file = file.to_str().unwrap();
    let static_key = |source: Source| match source {
        Source::Static { keys, origin } => (
            keys.access_key_id,
            keys.session_token.map(|t| t.expose_secret().to_owned()),
            origin,
        ),
        other => panic!("static keys expected, got {other}"),
    };
    let with_file = [("AWS_SHARED_CREDENTIALS_FILE", file)];
    let (key, token, origin) =
        static_key(bedrock_source(&with_file, "      aws_profile_name: work\n"));
    assert_eq!((key.as_str(), token.as_deref()), ("AKIAWORK", Some("t")));
    assert_eq!(origin, format!("profile `work` of {file}"));
    let (key, ..) = static_key(bedrock_source(
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", file),
            ("AWS_PROFILE", "work"),
        ],
        "",
    ));
    assert_eq!(key, "AKIAWORK");
    // The default profile comes before IRSA, as in AWS's SDKs.
    let mut default_first = irsa.to_vec();
    default_first.push(("AWS_SHARED_CREDENTIALS_FILE", file));
    let (key, ..) = static_key(bedrock_source(&default_first, ""));
    assert_eq!(key, "AKIADEFAULT");
    // Environment keys before any profile; config keys before everything.
    let (key, ..) = static_key(bedrock_source(
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", file),
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "e"),
        ],
        "",
    ));
    assert_eq!(key, "AKIAENV");
    let (key, _, origin) = static_key(bedrock_source(
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "e"),
        ],
        "      aws_access_key_id: AKIACONFIG\n      aws_secret_access_key: c\n",
    ));
    assert_eq!(key, "AKIACONFIG");
    assert_eq!(origin, "aws_access_key_id in the config");

    // The config file: `[profile name]` sections, keys or a credential_process, the
    // credentials file's keys first.
    let config_file = temp_file(
        "aws-config",
        "[default]\nregion = eu-west-1\n\n[profile tool]\ncredential_process = /opt/bin/aws-creds --account 42\n\n[profile work]\ncredential_process = never-run\n\n[profile cross]\nrole_arn = arn:aws:iam::2:role/bedrock\nsource_profile = work\nrole_session_name = cross-session\nexternal_id = partner-7\n\n[profile loop]\nrole_arn = arn:aws:iam::2:role/a\nsource_profile = loop2\n\n[profile loop2]\nrole_arn = arn:aws:iam::2:role/b\nsource_profile = loop\n",
    );
    let config_file = config_file.to_str().unwrap();
    let both = [
        ("AWS_SHARED_CREDENTIALS_FILE", file),
        ("AWS_CONFIG_FILE", config_file),
    ];
    match bedrock_source(&both, "      aws_profile_name: tool\n") {
        Source::Process { command, origin } => {
            assert_eq!(command, "/opt/bin/aws-creds --account 42");
            assert_eq!(origin, format!("profile `tool` of {config_file}"));
        }
        other => panic!("a credential process expected, got {other}"),
    }
    let (key, ..) = static_key(bedrock_source(&both, "      aws_profile_name: work\n"));
    assert_eq!(key, "AKIAWORK");
    // A role_arn with a source_profile: assumed with that profile's keys.
    match bedrock_source(&both, "      aws_profile_name: cross\n") {
        Source::AssumeRole(assume) => {
            assert_eq!(assume.role_arn, "arn:aws:iam::2:role/bedrock");
            assert_eq!(assume.session_name, "cross-session");
            assert_eq!(assume.external_id.as_deref(), Some("partner-7"));
            assert_eq!(static_key(assume.source).0, "AKIAWORK");
        }
        other => panic!("an assumed role expected, got {other}"),
    }
    let yaml = format!(
        "{}{}",
        aws_env(&both),
        bedrock_yaml("amazon.nova-pro-v1:0", "      aws_profile_name: loop\n")
    );
    let err = load_inline(&yaml).unwrap_err();
    assert!(err.message.contains("loops"), "{err}");

    // A Bedrock API key needs no signing at all.
    let yaml = format!(
        "{}{}",
        aws_env(&[("AWS_BEARER_TOKEN_BEDROCK", "bedrock-key")]),
        bedrock_yaml("amazon.nova-pro-v1:0", "")
    );
    let config = load_inline(&yaml).unwrap();
    assert!(
        config.deployments[0]
            .bedrock
            .as_ref()
            .unwrap()
            .credentials
            .is_none()
    );
}

#[test]
fn bedrock_credential_mistakes_name_the_field() {
    let field = |name: &str| format!("model_list[0].litellm_params.{name}");
    let file = temp_file("credentials-mistakes", "[sso]\nsso_session = corp\n");
    let file = file.to_str().unwrap();

    let err = bedrock_credentials_error(
        &[("AWS_SHARED_CREDENTIALS_FILE", file)],
        "      aws_profile_name: missing\n",
    );
    assert_eq!(err.path, field("aws_profile_name"));
    assert!(err.message.contains("profile `missing`"), "{err}");
    let err = bedrock_credentials_error(
        &[("AWS_SHARED_CREDENTIALS_FILE", file)],
        "      aws_profile_name: sso\n",
    );
    assert_eq!(err.path, field("aws_profile_name"));
    assert!(
        err.message.contains("has neither aws_access_key_id"),
        "{err}"
    );
    let err = bedrock_credentials_error(&[("AWS_PROFILE", "gone")], "");
    assert_eq!(err.path, field("aws_profile_name"));
    assert!(
        err.message.contains("AWS_PROFILE names profile `gone`"),
        "{err}"
    );
    assert!(
        err.message.contains("/nonexistent/aws/credentials"),
        "{err}"
    );

    let err = bedrock_credentials_error(&[], "      aws_web_identity_token: eyJ.x.y\n");
    assert_eq!(err.path, field("aws_role_name"));
    let err = bedrock_credentials_error(
        &[],
        "      aws_web_identity_token: oidc/github/sts.amazonaws.com\n      aws_role_name: arn:aws:iam::1:role/r\n",
    );
    assert_eq!(err.path, field("aws_web_identity_token"));
    assert!(err.message.contains("`oidc/github/`"), "{err}");
    let err = bedrock_credentials_error(
        &[],
        "      aws_web_identity_token: oidc/env/UNSET_OIDC_TOKEN\n      aws_role_name: arn:aws:iam::1:role/r\n",
    );
    assert!(
        err.message.contains("`UNSET_OIDC_TOKEN` is not set"),
        "{err}"
    );
    let err = bedrock_credentials_error(
        &[],
        "      aws_web_identity_token: eyJ.x.y\n      aws_role_name: arn:aws:iam::1:role/r\n      aws_sts_endpoint: sts.example\n",
    );
    assert_eq!(err.path, field("aws_sts_endpoint"));

    // Two ways at once, or a role to assume with other credentials.
    let err = bedrock_credentials_error(
        &[],
        "      aws_access_key_id: AKIA1\n      aws_secret_access_key: s\n      aws_profile_name: p\n",
    );
    assert_eq!(err.path, field("aws_profile_name"));
    assert!(err.message.contains("both set"), "{err}");
    // A role beside keys, or beside nothing, is assumed with them, or with the rest of the
    // chain (here, instance metadata).
    use config::AwsCredentialSource as Source;
    let assumed = |params: &str| match bedrock_source(&[], params) {
        Source::AssumeRole(assume) => *assume,
        other => panic!("an assumed role expected, got {other}"),
    };
    let with_keys = assumed(
        "      aws_access_key_id: AKIA1\n      aws_secret_access_key: s\n      aws_role_name: arn:aws:iam::1:role/r\n      aws_session_name: bedrock-eu\n",
    );
    assert!(matches!(with_keys.source, Source::Static { .. }));
    assert_eq!(with_keys.role_arn, "arn:aws:iam::1:role/r");
    assert_eq!(with_keys.session_name, "bedrock-eu");
    assert_eq!(with_keys.region, "eu-central-1");
    assert_eq!(
        with_keys.sts_endpoint.as_str(),
        "https://sts.eu-central-1.amazonaws.com/"
    );
    let alone = assumed("      aws_role_name: arn:aws:iam::1:role/r\n");
    assert!(matches!(alone.source, Source::InstanceMetadata { .. }));

    // Half of IRSA's pair; a container URL that could leak the keys; nothing at all.
    let err = bedrock_credentials_error(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t")], "");
    assert_eq!(err.path, field("aws_role_name"));
    assert!(err.message.contains("AWS_ROLE_ARN"), "{err}");
    let err = bedrock_credentials_error(
        &[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://example.com/creds",
        )],
        "",
    );
    assert!(err.message.contains("must be https"), "{err}");
    let err = bedrock_credentials_error(&[("AWS_EC2_METADATA_DISABLED", "true")], "");
    assert_eq!(err.path, field("aws_access_key_id"));
    assert!(err.message.contains("needs AWS credentials"), "{err}");
}

#[test]
fn spend_and_budget_settings_are_read_and_checked() {
    let config = load_inline(
        "general_settings:\n  alerting: [\"slack\"]\nenvironment_variables:\n  SLACK_WEBHOOK_URL: https://hooks.slack.com/services/T/B/x\ntollgate_settings:\n  budget_exceeded_status: 429\n  spend_journal_max_mb: 2\n",
    )
    .unwrap();
    assert_eq!(
        config.alert_webhook.unwrap().as_str(),
        "https://hooks.slack.com/services/T/B/x"
    );
    assert_eq!(config.budgets.exceeded_status.as_u16(), 429);
    assert_eq!(config.spend_journal.max_bytes, 2 * 1024 * 1024);
    assert!(config.spend_journal.dir.ends_with("spend-journal"));
    assert!(
        !config
            .not_implemented
            .iter()
            .any(|key| key.contains("alerting")),
        "{:?}",
        config.not_implemented
    );

    let unset = load_inline("general_settings:\n  alerting: [\"slack\"]\n").unwrap();
    assert!(unset.alert_webhook.is_none());
    assert!(
        unset
            .not_implemented
            .contains(&"general_settings.alerting (SLACK_WEBHOOK_URL is not set)".to_owned()),
        "{:?}",
        unset.not_implemented
    );

    for (yaml, field, reason) in [
        (
            "tollgate_settings:\n  budget_exceeded_status: 500\n",
            "tollgate_settings.budget_exceeded_status",
            "4xx",
        ),
        (
            "tollgate_settings:\n  alert_webhook_url: not a url\n",
            "tollgate_settings.alert_webhook_url",
            "not an http(s) URL",
        ),
        (
            "tollgate_settings:\n  pricing_file: /no/such/prices.json\n",
            "tollgate_settings.pricing_file",
            "cannot read",
        ),
    ] {
        let err = load_inline(yaml).unwrap_err().to_string();
        assert!(err.contains(field) && err.contains(reason), "{yaml}: {err}");
    }
}

#[test]
fn prices_come_from_the_table_a_pricing_file_and_model_info() {
    let dir = std::env::temp_dir().join(format!("tollgate-prices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prices = dir.join("prices.json");
    std::fs::write(
        &prices,
        r#"{"sample_spec": {"input_cost_per_token": 0}, "house-model": {"litellm_provider": "openai", "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05, "max_output_tokens": 8192}}"#,
    )
    .unwrap();
    let yaml = format!(
        "tollgate_settings:\n  pricing_file: {}\nenvironment_variables:\n  OPENAI_API_KEY: sk-test\nmodel_list:\n  - model_name: house\n    litellm_params:\n      model: openai/house-model\n  - model_name: mini\n    litellm_params:\n      model: openai/gpt-4o-mini-2024-07-18\n  - model_name: mini-override\n    litellm_params:\n      model: openai/gpt-4o-mini\n    model_info:\n      output_cost_per_token: 0.000001\n  - model_name: azure-named\n    litellm_params:\n      model: azure/prod-chat\n      api_base: https://example.openai.azure.com\n      api_version: 2024-10-21\n      api_key: k\n    model_info:\n      base_model: azure/gpt-4o-mini\n  - model_name: unknown\n    litellm_params:\n      model: openai/no-such-model\n",
        prices.display()
    );
    let config = load_inline(&yaml).unwrap();
    let price = |name: &str| {
        config
            .deployments
            .iter()
            .find(|d| d.model_name == name)
            .unwrap()
            .price
            .clone()
    };
    let house = price("house").expect("priced by the pricing file");
    assert_eq!(house.rates.input.picos(), 3_000_000);
    assert_eq!(house.max_output_tokens, Some(8192));
    let mini = price("mini").expect("a dated name finds the table's entry");
    assert_eq!(mini.rates.input.picos(), 150_000);
    let overridden = price("mini-override").unwrap();
    assert_eq!(
        overridden.rates.input, mini.rates.input,
        "kept from the table"
    );
    assert_eq!(
        overridden.rates.output.picos(),
        1_000_000,
        "from model_info"
    );
    let azure = price("azure-named").expect("base_model names the priced model");
    assert_eq!(azure.rates, mini.rates);
    assert!(price("unknown").is_none());
}

/// An `environment_variables` section that blanks LiteLLM's Redis variables (an empty value
/// counts as unset), then sets `set`.
fn redis_env(set: &[(&str, &str)]) -> String {
    const LITELLM: [&str; 6] = [
        "REDIS_URL",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_PASSWORD",
        "REDIS_USERNAME",
        "REDIS_SSL",
    ];
    let mut yaml = "environment_variables:\n".to_owned();
    for name in LITELLM {
        let value = set
            .iter()
            .find(|(set, _)| *set == name)
            .map_or("", |(_, value)| value);
        yaml.push_str(&format!("  {name}: '{value}'\n"));
    }
    for (name, value) in set.iter().filter(|(name, _)| !LITELLM.contains(name)) {
        yaml.push_str(&format!("  {name}: '{value}'\n"));
    }
    yaml
}

#[test]
fn redis_is_read_where_litellm_configs_name_it() {
    let redis = |env: &[(&str, &str)], yaml: &str| {
        let config = load_inline(&format!("{}{yaml}", redis_env(env)))
            .unwrap_or_else(|err| panic!("{yaml}: {err}"));
        config.redis.map(|redis| {
            (
                redis.url.expose_secret().to_owned(),
                redis.shown,
                redis.source,
            )
        })
    };
    // The router's own: host, port and password (a password with `@` stays whole).
    assert_eq!(
        redis(
            &[],
            "router_settings:\n  redis_host: cache.internal\n  redis_port: 6380\n  redis_password: p@ss\n"
        ),
        Some((
            "redis://:p%40ss@cache.internal:6380".to_owned(),
            "redis://:****@cache.internal:6380".to_owned(),
            "router_settings.redis_host"
        ))
    );
    // Port and password left to LiteLLM's variables.
    assert_eq!(
        redis(
            &[
                ("REDIS_PORT", "7000"),
                ("REDIS_PASSWORD", "secret"),
                ("CACHE_HOST", "cache.internal")
            ],
            "router_settings:\n  redis_host: os.environ/CACHE_HOST\n"
        )
        .map(|(url, _, _)| url),
        Some("redis://:secret@cache.internal:7000".to_owned())
    );
    assert_eq!(
        redis(
            &[],
            "router_settings:\n  redis_url: rediss://user:pw@cache.example.com:6390/2\n"
        )
        .map(|(url, shown, _)| (url, shown)),
        Some((
            "rediss://user:pw@cache.example.com:6390/2".to_owned(),
            "rediss://user:****@cache.example.com:6390/2".to_owned()
        ))
    );
    // The response cache's Redis, from its params or LiteLLM's variables.
    assert_eq!(
        redis(
            &[],
            "litellm_settings:\n  cache: true\n  cache_params:\n    type: redis\n    host: cache.internal\n    port: 6379\n    username: gateway\n    password: pw\n    ssl: true\n"
        ),
        Some((
            "rediss://gateway:pw@cache.internal:6379".to_owned(),
            "rediss://gateway:****@cache.internal:6379".to_owned(),
            "litellm_settings.cache_params"
        ))
    );
    assert_eq!(
        redis(
            &[("REDIS_HOST", "from-env"), ("REDIS_PORT", "6400")],
            "litellm_settings:\n  cache: true\n"
        )
        .map(|(url, _, _)| url),
        Some("redis://from-env:6400".to_owned())
    );
    // The router's Redis wins over the cache's; a local cache, or a cache turned off, is none.
    assert_eq!(
        redis(
            &[],
            "router_settings:\n  redis_url: redis://router:6379\nlitellm_settings:\n  cache: true\n  cache_params: {type: redis, host: cache}\n"
        )
        .map(|(url, _, _)| url),
        Some("redis://router:6379".to_owned())
    );
    assert_eq!(
        redis(
            &[("REDIS_HOST", "from-env")],
            "litellm_settings:\n  cache: true\n  cache_params: {type: local}\n"
        ),
        None
    );
    assert_eq!(
        redis(
            &[],
            "litellm_settings:\n  cache: false\n  cache_params: {type: redis, host: cache}\n"
        ),
        None
    );
    assert_eq!(redis(&[("REDIS_HOST", "from-env")], ""), None);

    // Read, so not in the warning; the response cache itself is not built yet, so is.
    let config = load_inline(&format!(
        "{}router_settings:\n  redis_host: cache\n  redis_port: 6379\nlitellm_settings:\n  cache: true\n  cache_params: {{type: redis}}\ntollgate_settings:\n  redis_key_prefix: prod-eu\n  redis_timeout: 50ms\n",
        redis_env(&[])
    ))
    .unwrap();
    assert_eq!(config.not_implemented, ["litellm_settings.cache"]);
    let settings = config.redis.unwrap();
    assert_eq!(settings.key_prefix, "prod-eu");
    assert_eq!(settings.timeout, Duration::from_millis(50));
    let defaults = load_inline(&format!(
        "{}router_settings:\n  redis_host: cache\n",
        redis_env(&[])
    ))
    .unwrap()
    .redis
    .unwrap();
    assert_eq!(
        (defaults.key_prefix.as_str(), defaults.timeout),
        ("tollgate", Duration::from_millis(250))
    );
}

#[test]
fn redis_mistakes_name_the_field() {
    for (yaml, field, reason) in [
        (
            "router_settings:\n  redis_url: http://cache:6379\n",
            "router_settings.redis_url",
            "starts with redis:// or rediss://",
        ),
        (
            "router_settings:\n  redis_url: not a url\n",
            "router_settings.redis_url",
            "not a valid Redis URL",
        ),
        (
            "router_settings:\n  redis_host: cache\n  redis_port: 70000\n",
            "router_settings.redis_port",
            "not a port number",
        ),
        (
            "router_settings:\n  redis_host: cache\n  redis_port: six\n",
            "router_settings.redis_port",
            "expected a number",
        ),
        (
            "router_settings:\n  redis_host: os.environ/NO_SUCH_REDIS_HOST_VARIABLE\n",
            "router_settings.redis_host",
            "NO_SUCH_REDIS_HOST_VARIABLE",
        ),
        (
            "litellm_settings:\n  cache: true\n  cache_params: [redis]\n",
            "litellm_settings.cache_params",
            "expected a mapping",
        ),
        (
            "router_settings:\n  redis_host: cache\ntollgate_settings:\n  redis_key_prefix: 'two words'\n",
            "tollgate_settings.redis_key_prefix",
            "without spaces",
        ),
        (
            "router_settings:\n  redis_host: cache\ntollgate_settings:\n  redis_timeout: 0s\n",
            "tollgate_settings.redis_timeout",
            "greater than 0",
        ),
    ] {
        let err = load_inline(&format!("{}{yaml}", redis_env(&[])))
            .unwrap_err()
            .to_string();
        assert!(err.contains(field) && err.contains(reason), "{yaml}: {err}");
    }
    // A password is never repeated in a message.
    let err = load_inline(&format!(
        "{}router_settings:\n  redis_url: http://user:hunter2@cache\n",
        redis_env(&[])
    ))
    .unwrap_err()
    .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}
