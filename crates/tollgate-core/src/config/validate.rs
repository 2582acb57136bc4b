//! Raw config to runtime config: resolves `os.environ/` references, provider prefixes, defaults
//! and limits. Every error names the field it is about.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use serde_yaml_ng::{Mapping, Value};
use sha2::{Digest, Sha256};
use tollgate_pricing::PriceCatalog;
use url::Url;

use super::raw::{RawConfig, RawDeployment, RawLitellmParams, RawModelInfo, Scalar};
use super::{
    BedrockConfig, BedrockRoute, BudgetSettings, Config, ConfigError, DeploymentConfig,
    GoogleCredentials, HealthCheckSettings, MediaSettings, ModelInfo, SpendJournalSettings,
    StoreSync, SubjectToken, SubjectTokenSource, UpstreamSettings, VertexConfig,
};
use super::{redis, routing};
use crate::duration::{parse_duration, seconds};
use crate::env::{Env, env_reference};
use crate::provider::{self, ProviderKind, ProviderSpec, StreamUsage};
use crate::wildcard::Pattern;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_STORE_SYNC_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_STORE_MAX_STALENESS: Duration = Duration::from_secs(3600);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const DEFAULT_UPSTREAM_CLIENTS: usize = 4;
const DEFAULT_MEDIA_MAX_MB: usize = 20;
const DEFAULT_SPEND_JOURNAL_MAX_MB: u64 = 1024;
const DEFAULT_MEDIA_FETCH_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_REQUEST_MB: f64 = 32.0;
const DEFAULT_AZURE_API_VERSION: &str = "2025-02-01-preview";
/// LiteLLM's default `health_check_interval`.
const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(300);
/// OpenAI keeps stored responses for 30 days.
const DEFAULT_RESPONSES_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The `router_settings` / `litellm_settings` / `general_settings` keys Tollgate acts on today.
/// Every other key is accepted and listed in the start-up warning.
const ROUTER_SETTINGS_USED: &[&str] = &["timeout", "stream_timeout", "stream_idle_timeout"];
const LITELLM_SETTINGS_USED: &[&str] = &["request_timeout", "ssl_verify", "drop_params"];

/// `general_settings` keys read from its catch-all map rather than typed fields.
const GENERAL_SETTINGS_READ: &[&str] = &["alerting"];

fn is_used(used: &[&str], routing: &[&str], key: &str) -> bool {
    used.contains(&key) || routing.contains(&key)
}

pub(super) fn validate(raw: RawConfig, file: &Path) -> Result<Config, ConfigError> {
    let cx = Context { file };

    let mut overlay = HashMap::new();
    for (name, value) in raw.environment_variables.iter().flatten() {
        let path = format!("environment_variables.{name}");
        let value = match value {
            Scalar::Text(text) => match env_reference(text) {
                Some(var) => std::env::var(var).map_err(|_| {
                    cx.error(&path, format!("environment variable `{var}` is not set"))
                })?,
                None => text.clone(),
            },
            other => scalar_to_string(other),
        };
        overlay.insert(name.clone(), value);
    }
    let env = Env::new(overlay);
    let cx = Resolver { cx, env: &env };

    let router_settings = raw.router_settings.unwrap_or_default();
    let litellm_settings = raw.litellm_settings.unwrap_or_default();
    let general = raw.general_settings.unwrap_or_default();
    let tollgate = raw.tollgate_settings.unwrap_or_default();

    let mut not_implemented: BTreeSet<String> = BTreeSet::new();
    not_implemented.extend(raw.other.keys().cloned());
    not_implemented.extend(unused_keys("router_settings", &router_settings, |key| {
        is_used(ROUTER_SETTINGS_USED, routing::ROUTER_KEYS, key)
            || redis::ROUTER_KEYS.contains(&key)
    }));
    not_implemented.extend(unused_keys("litellm_settings", &litellm_settings, |key| {
        is_used(LITELLM_SETTINGS_USED, routing::LITELLM_KEYS, key)
            || redis::LITELLM_KEYS.contains(&key)
    }));
    not_implemented.extend(
        general
            .other
            .keys()
            .filter(|key| !GENERAL_SETTINGS_READ.contains(&key.as_str()))
            .map(|key| format!("general_settings.{key}")),
    );

    let default_timeout =
        match mapping_scalar(&cx, &router_settings, "timeout", "router_settings.timeout")? {
            Some((path, value)) => cx.duration(&path, &value)?,
            None => match mapping_scalar(
                &cx,
                &litellm_settings,
                "request_timeout",
                "litellm_settings.request_timeout",
            )? {
                Some((path, value)) => cx.duration(&path, &value)?,
                None => DEFAULT_TIMEOUT,
            },
        };
    let default_stream_timeout = match mapping_scalar(
        &cx,
        &router_settings,
        "stream_timeout",
        "router_settings.stream_timeout",
    )? {
        Some((path, value)) => Some(cx.duration(&path, &value)?),
        None => None,
    };
    let default_stream_idle_timeout = match mapping_scalar(
        &cx,
        &router_settings,
        "stream_idle_timeout",
        "router_settings.stream_idle_timeout",
    )? {
        Some((path, value)) => Some(cx.duration(&path, &value)?),
        None => None,
    };
    let drop_params = match mapping_scalar(
        &cx,
        &litellm_settings,
        "drop_params",
        "litellm_settings.drop_params",
    )? {
        Some((path, value)) => cx.bool(&path, &value)?,
        None => false,
    };
    let prices = Arc::new(match &tollgate.pricing_file {
        Some(value) => {
            let path = relative_to(file, cx.text("tollgate_settings.pricing_file", value)?);
            PriceCatalog::with_litellm_file(&path).map_err(|err| {
                cx.cx
                    .error("tollgate_settings.pricing_file", err.to_string())
            })?
        }
        None => PriceCatalog::builtin(),
    });
    let defaults = DeploymentDefaults {
        timeout: default_timeout,
        stream_timeout: default_stream_timeout,
        stream_idle_timeout: default_stream_idle_timeout,
        drop_params,
        prices: prices.clone(),
    };

    let mut deployments = Vec::new();
    let mut explicit_ids: HashMap<String, usize> = HashMap::new();
    let mut generated = Vec::new();
    for (index, raw_deployment) in raw.model_list.into_iter().flatten().enumerate() {
        let path = format!("model_list[{index}]");
        for key in raw_deployment.other.keys() {
            not_implemented.insert(format!("model_list[].{key}"));
        }
        for key in raw_deployment.litellm_params.other.keys() {
            not_implemented.insert(format!("model_list[].litellm_params.{key}"));
        }
        let (deployment, id_is_explicit) = cx.deployment(&path, raw_deployment, &defaults)?;
        if id_is_explicit {
            if let Some(first) = explicit_ids.insert(deployment.id.clone(), index) {
                return Err(cx.cx.error(
                    &format!("{path}.model_info.id"),
                    format!(
                        "duplicate id `{}`: model_list[{first}] has the same id",
                        deployment.id
                    ),
                ));
            }
        } else {
            generated.push(index);
        }
        deployments.push(deployment);
    }
    // Identical deployments listed twice (a common way to double a group's share) get the same
    // generated id; number the repeats so every id stays unique.
    let mut taken: HashSet<String> = explicit_ids.into_keys().collect();
    for index in generated {
        let base = deployments[index].id.clone();
        let mut id = base.clone();
        let mut repeat = 1;
        while taken.contains(&id) {
            repeat += 1;
            id = format!("{base}-{repeat}");
        }
        taken.insert(id.clone());
        deployments[index].id = id;
    }

    let mut groups: Vec<&str> = deployments
        .iter()
        .map(|deployment| deployment.model_name.as_str())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let groups = routing::GroupNames {
        patterns: groups
            .iter()
            .filter_map(|name| Pattern::new(name))
            .collect(),
        names: groups,
    };
    let routing = routing::resolve(&cx, &router_settings, &litellm_settings, &groups)?;

    let master_key = general
        .master_key
        .as_ref()
        .map(|value| cx.secret("general_settings.master_key", value))
        .transpose()?;
    // As in LiteLLM, `DATABASE_URL` when the config names no database.
    let database_url = match &general.database_url {
        Some(value) => Some(cx.secret("general_settings.database_url", value)?),
        None => env.get("DATABASE_URL").map(SecretString::from),
    };
    let database_path = match &tollgate.database_path {
        Some(value) => PathBuf::from(cx.text("tollgate_settings.database_path", value)?),
        None => PathBuf::from("tollgate.db"),
    };
    // Relative to the config file, like `include`.
    let database_path = relative_to(file, database_path);
    let max_request_mb = general
        .max_request_size_mb
        .as_ref()
        .map(|value| cx.positive_f64("general_settings.max_request_size_mb", value))
        .transpose()?
        .unwrap_or(DEFAULT_MAX_REQUEST_MB);

    let health_checks = HealthCheckSettings {
        background: general
            .background_health_checks
            .as_ref()
            .map(|value| cx.bool("general_settings.background_health_checks", value))
            .transpose()?
            .unwrap_or(false),
        interval: match &general.health_check_interval {
            Some(value) => {
                let path = "general_settings.health_check_interval";
                let interval = cx.duration(path, value)?;
                if interval.is_zero() {
                    return Err(cx.error(path, "must be more than 0 seconds"));
                }
                interval
            }
            None => DEFAULT_HEALTH_CHECK_INTERVAL,
        },
    };

    let ssl = resolve_ssl(&cx, &litellm_settings)?;
    let upstream = UpstreamSettings {
        connect_timeout: opt_duration(
            &cx,
            "tollgate_settings.connect_timeout",
            &tollgate.connect_timeout,
        )?
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        clients_per_host: match &tollgate.upstream_clients {
            Some(value) => {
                let count = cx.u64("tollgate_settings.upstream_clients", value)?;
                if !(1..=64).contains(&count) {
                    return Err(cx.cx.error(
                        "tollgate_settings.upstream_clients",
                        "must be between 1 and 64",
                    ));
                }
                count as usize
            }
            None => DEFAULT_UPSTREAM_CLIENTS,
        },
        pool_idle_timeout: opt_duration(
            &cx,
            "tollgate_settings.pool_idle_timeout",
            &tollgate.pool_idle_timeout,
        )?
        .unwrap_or(DEFAULT_POOL_IDLE_TIMEOUT),
        verify_tls: ssl.verify,
        ca_bundle: ssl.ca_bundle,
    };

    let media = MediaSettings {
        max_bytes: match &tollgate.media_max_mb {
            Some(value) => {
                (cx.positive_f64("tollgate_settings.media_max_mb", value)? * 1024.0 * 1024.0)
                    as usize
            }
            None => DEFAULT_MEDIA_MAX_MB * 1024 * 1024,
        },
        timeout: opt_duration(
            &cx,
            "tollgate_settings.media_fetch_timeout",
            &tollgate.media_fetch_timeout,
        )?
        .unwrap_or(DEFAULT_MEDIA_FETCH_TIMEOUT),
        allow_private_networks: tollgate
            .media_allow_private_networks
            .as_ref()
            .map(|value| cx.bool("tollgate_settings.media_allow_private_networks", value))
            .transpose()?
            .unwrap_or(false),
    };

    let spend_journal = SpendJournalSettings {
        dir: relative_to(
            file,
            match &tollgate.spend_journal_dir {
                Some(value) => cx.text("tollgate_settings.spend_journal_dir", value)?,
                None => "spend-journal".to_owned(),
            },
        ),
        max_bytes: match &tollgate.spend_journal_max_mb {
            Some(value) => {
                (cx.positive_f64("tollgate_settings.spend_journal_max_mb", value)?
                    * 1024.0
                    * 1024.0) as u64
            }
            None => DEFAULT_SPEND_JOURNAL_MAX_MB * 1024 * 1024,
        },
    };

    let budgets = BudgetSettings {
        exceeded_status: match &tollgate.budget_exceeded_status {
            Some(value) => {
                let path = "tollgate_settings.budget_exceeded_status";
                let code = cx.u64(path, value)?;
                u16::try_from(code)
                    .ok()
                    .and_then(|code| http::StatusCode::from_u16(code).ok())
                    .filter(http::StatusCode::is_client_error)
                    .ok_or_else(|| {
                        cx.cx.error(
                            path,
                            format!("must be a 4xx status (400, 402, 429…), got {code}"),
                        )
                    })?
            }
            None => http::StatusCode::BAD_REQUEST,
        },
        alert_percent: match &tollgate.budget_alert_percent {
            Some(value) => {
                let path = "tollgate_settings.budget_alert_percent";
                let percent = cx.u64(path, value)?;
                if !(1..=100).contains(&percent) {
                    return Err(cx.cx.error(path, "must be between 1 and 100"));
                }
                percent
            }
            None => 80,
        },
    };

    let alert_webhook = match alert_webhook(&cx, &general.other, &tollgate.alert_webhook_url)? {
        Alerting::To(url) => Some(url),
        Alerting::Off => None,
        // A LiteLLM config moved without its environment: warned about, not fatal.
        Alerting::Unset(variable) => {
            not_implemented.insert(format!("general_settings.alerting ({variable} is not set)"));
            None
        }
    };

    let store_sync = StoreSync {
        interval: opt_duration(
            &cx,
            "tollgate_settings.store_sync_interval",
            &tollgate.store_sync_interval,
        )?
        .unwrap_or(DEFAULT_STORE_SYNC_INTERVAL),
        max_staleness: opt_duration(
            &cx,
            "tollgate_settings.store_max_staleness",
            &tollgate.store_max_staleness,
        )?
        .unwrap_or(DEFAULT_STORE_MAX_STALENESS),
    };
    if store_sync.interval.is_zero() {
        return Err(cx.cx.error(
            "tollgate_settings.store_sync_interval",
            "must be longer than zero",
        ));
    }
    if store_sync.max_staleness <= store_sync.interval {
        return Err(cx.cx.error(
            "tollgate_settings.store_max_staleness",
            "must be longer than store_sync_interval",
        ));
    }

    let redis = redis::redis(&cx, &router_settings, &litellm_settings, &tollgate)?;

    Ok(Config {
        source: file.to_path_buf(),
        deployments,
        master_key,
        database_url,
        database_path,
        store_sync,
        deployment_reader: DeploymentReader {
            file: file.to_path_buf(),
            env: env.clone(),
            defaults,
        },
        key_header_name: general
            .litellm_key_header_name
            .as_ref()
            .map(|value| cx.text("general_settings.litellm_key_header_name", value))
            .transpose()?,
        max_request_body_bytes: (max_request_mb * 1024.0 * 1024.0) as usize,
        drain_timeout: opt_duration(
            &cx,
            "tollgate_settings.drain_timeout",
            &tollgate.drain_timeout,
        )?
        .unwrap_or(DEFAULT_DRAIN_TIMEOUT),
        upstream,
        media,
        spend_journal,
        budgets,
        alert_webhook,
        responses_retention: opt_duration(
            &cx,
            "tollgate_settings.responses_retention",
            &tollgate.responses_retention,
        )?
        .unwrap_or(DEFAULT_RESPONSES_RETENTION),
        redis,
        prices,
        routing,
        health_checks,
        router_settings,
        litellm_settings,
        not_implemented: not_implemented.into_iter().collect(),
        env: env.clone(),
    })
}

#[derive(Debug, Clone)]
struct DeploymentDefaults {
    timeout: Duration,
    stream_timeout: Option<Duration>,
    stream_idle_timeout: Option<Duration>,
    drop_params: bool,
    prices: Arc<PriceCatalog>,
}

enum Alerting {
    To(Url),
    Off,
    /// Asked for, but the variable holding the URL is not set.
    Unset(&'static str),
}

/// Where alerts go: `tollgate_settings.alert_webhook_url`, or LiteLLM's
/// `general_settings.alerting` — `slack` posting to `SLACK_WEBHOOK_URL`, `webhook` to
/// `WEBHOOK_URL`.
fn alert_webhook(
    cx: &Resolver<'_>,
    general: &std::collections::BTreeMap<String, Value>,
    own: &Option<Scalar>,
) -> Result<Alerting, ConfigError> {
    let parse = |path: &str, text: &str| {
        Url::parse(text)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| cx.error(path, format!("`{text}` is not an http(s) URL")))
    };
    if let Some(value) = own {
        let path = "tollgate_settings.alert_webhook_url";
        return parse(path, &cx.text(path, value)?).map(Alerting::To);
    }
    let Some(alerting) = general.get("alerting") else {
        return Ok(Alerting::Off);
    };
    let path = "general_settings.alerting";
    let kinds: Vec<String> = serde_yaml_ng::from_value(alerting.clone())
        .map_err(|_| cx.error(path, "must be a list like [\"slack\"]"))?;
    for kind in &kinds {
        let variable = match kind.as_str() {
            "slack" => "SLACK_WEBHOOK_URL",
            "webhook" => "WEBHOOK_URL",
            _ => continue,
        };
        return match cx.env.get(variable) {
            Some(url) => parse(path, &url).map(Alerting::To),
            None => Ok(Alerting::Unset(variable)),
        };
    }
    Ok(Alerting::Off)
}

/// `path` as written in the config: relative paths are relative to the config file.
fn relative_to(config_file: &Path, path: impl Into<PathBuf>) -> PathBuf {
    let path = path.into();
    match config_file.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}

/// Reads deployments given after start-up (to the management API's `/model/new`) exactly
/// as the config file's `model_list` entries were read, with its defaults; errors name the
/// field as the API body has it (`litellm_params.model`).
#[derive(Debug, Clone)]
pub struct DeploymentReader {
    file: PathBuf,
    env: Env,
    defaults: DeploymentDefaults,
}

impl DeploymentReader {
    /// The config file, which errors name.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// One `{model_name, litellm_params, model_info}` entry.
    pub fn read(&self, entry: serde_json::Value) -> Result<DeploymentConfig, ConfigError> {
        let raw: RawDeployment = serde_path_to_error::deserialize(entry).map_err(|err| {
            ConfigError::new(&self.file, err.path().to_string(), err.inner().to_string())
        })?;
        let cx = Resolver {
            cx: Context { file: &self.file },
            env: &self.env,
        };
        let (deployment, _) = cx.deployment("", raw, &self.defaults)?;
        Ok(deployment)
    }
}

struct Context<'a> {
    file: &'a Path,
}

impl Context<'_> {
    fn error(&self, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file, path, message)
    }
}

/// Turns scalars into typed values, resolving `os.environ/NAME` first.
pub(super) struct Resolver<'a> {
    cx: Context<'a>,
    env: &'a Env,
}

impl Resolver<'_> {
    /// The environment, with the config's `environment_variables` over it.
    pub(super) fn env(&self) -> &Env {
        self.env
    }

    pub(super) fn error(&self, path: &str, message: impl Into<String>) -> ConfigError {
        self.cx.error(path, message)
    }

    pub(super) fn text(&self, path: &str, value: &Scalar) -> Result<String, ConfigError> {
        match value {
            Scalar::Text(text) => match env_reference(text) {
                Some(var) => self.env.get(var).ok_or_else(|| {
                    self.cx.error(
                        path,
                        format!("environment variable `{var}` is not set (referenced as `{text}`)"),
                    )
                }),
                None => Ok(text.clone()),
            },
            other => Ok(scalar_to_string(other)),
        }
    }

    pub(super) fn secret(&self, path: &str, value: &Scalar) -> Result<SecretString, ConfigError> {
        let text = self.text(path, value)?;
        if text.trim().is_empty() {
            return Err(self.cx.error(path, "must not be empty"));
        }
        Ok(SecretString::from(text))
    }

    pub(super) fn number(&self, path: &str, value: &Scalar) -> Result<f64, ConfigError> {
        match value {
            Scalar::Integer(number) => Ok(*number as f64),
            Scalar::Float(number) => Ok(*number),
            Scalar::Text(_) => {
                let text = self.text(path, value)?;
                text.trim().parse::<f64>().map_err(|_| {
                    self.cx
                        .error(path, format!("expected a number, got `{text}`"))
                })
            }
            Scalar::Bool(flag) => Err(self
                .cx
                .error(path, format!("expected a number, got `{flag}`"))),
        }
    }

    pub(super) fn u64(&self, path: &str, value: &Scalar) -> Result<u64, ConfigError> {
        let number = self.number(path, value)?;
        if number < 0.0 || number.fract() != 0.0 || number > u64::MAX as f64 {
            return Err(self
                .cx
                .error(path, format!("expected a whole number ≥ 0, got {number}")));
        }
        Ok(number as u64)
    }

    pub(super) fn non_negative_f64(&self, path: &str, value: &Scalar) -> Result<f64, ConfigError> {
        let number = self.number(path, value)?;
        if !number.is_finite() || number < 0.0 {
            return Err(self
                .cx
                .error(path, format!("must not be negative, got {number}")));
        }
        Ok(number)
    }

    pub(super) fn positive_f64(&self, path: &str, value: &Scalar) -> Result<f64, ConfigError> {
        let number = self.non_negative_f64(path, value)?;
        if number == 0.0 {
            return Err(self.cx.error(path, "must be greater than 0"));
        }
        Ok(number)
    }

    pub(super) fn duration(&self, path: &str, value: &Scalar) -> Result<Duration, ConfigError> {
        let duration = match value {
            Scalar::Integer(_) | Scalar::Float(_) => {
                let number = self.number(path, value)?;
                seconds(number).ok_or_else(|| {
                    self.cx
                        .error(path, format!("`{number}` is not a valid number of seconds"))
                })?
            }
            _ => {
                let text = self.text(path, value)?;
                parse_duration(&text).map_err(|reason| self.cx.error(path, reason))?
            }
        };
        if duration.is_zero() {
            return Err(self.cx.error(path, "must be greater than 0"));
        }
        Ok(duration)
    }

    pub(super) fn bool(&self, path: &str, value: &Scalar) -> Result<bool, ConfigError> {
        match value {
            Scalar::Bool(flag) => Ok(*flag),
            _ => {
                let text = self.text(path, value)?;
                match text.trim().to_ascii_lowercase().as_str() {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => Err(self
                        .cx
                        .error(path, format!("expected true or false, got `{text}`"))),
                }
            }
        }
    }

    fn deployment(
        &self,
        path: &str,
        raw: RawDeployment,
        defaults: &DeploymentDefaults,
    ) -> Result<(DeploymentConfig, bool), ConfigError> {
        let params = &raw.litellm_params;
        // `model_list[3].model_name`, or `model_name` for an entry given on its own.
        let at = |rest: &str| match path {
            "" => rest.to_owned(),
            path => format!("{path}.{rest}"),
        };
        let params_path = at("litellm_params");
        let field = |name: &str| format!("{params_path}.{name}");

        let model_name = self.text(&at("model_name"), &raw.model_name)?;
        if model_name.trim().is_empty() {
            return Err(self.cx.error(&at("model_name"), "must not be empty"));
        }
        let model_string = self.text(&field("model"), &params.model)?;
        let custom_provider = params
            .custom_llm_provider
            .as_ref()
            .map(|value| self.text(&field("custom_llm_provider"), value))
            .transpose()?;
        let (provider, model) =
            self.split_provider(&field, &model_string, custom_provider.as_deref())?;
        let name_stars = Pattern::new(&model_name).map_or(0, |pattern| pattern.stars());
        let model_stars = model.matches('*').count();
        if model_stars > name_stars {
            let reason = if name_stars == 0 {
                format!(
                    "`{model_string}` has a `*`, which only a wildcard model_name (like `{}/*`) can fill",
                    provider.prefix
                )
            } else {
                format!(
                    "`{model_string}` has {model_stars} `*`s, but model_name `{model_name}` captures only {name_stars}"
                )
            };
            return Err(self.cx.error(&field("model"), reason));
        }
        let model = match provider.model_prefix {
            Some(prefix) if !model.starts_with(prefix) && !model.starts_with("accounts/") => {
                format!("{prefix}{model}")
            }
            _ => model,
        };

        let explicit_base = params
            .api_base
            .as_ref()
            .map(|value| self.text(&field("api_base"), value))
            .transpose()?;
        let vertex = match provider.kind {
            ProviderKind::Vertex => Some(self.vertex(&field, params)?),
            _ => None,
        };
        let (model, bedrock) = match provider.kind {
            ProviderKind::Bedrock => {
                let (model, bedrock) = self.bedrock(&field, params, &model)?;
                (model, Some(bedrock))
            }
            _ => (model, None),
        };
        let explicit_base = match (&bedrock, explicit_base) {
            (Some(_), None) => params
                .aws_bedrock_runtime_endpoint
                .as_ref()
                .map(|value| self.text(&field("aws_bedrock_runtime_endpoint"), value))
                .transpose()?,
            (_, explicit) => explicit,
        };
        let has_env_base = self.env.first_of(provider.api_base_env).is_some();
        // Vertex's and Bedrock's endpoints follow from the location or region, unless
        // `api_base` (or its environment variable) overrides them.
        let regional_base = match (&vertex, &bedrock) {
            _ if explicit_base.is_some() || has_env_base => None,
            (Some(vertex), _) if vertex.location == "global" => {
                Some("https://aiplatform.googleapis.com".to_owned())
            }
            (Some(vertex), _) => Some(format!(
                "https://{}-aiplatform.googleapis.com",
                vertex.location
            )),
            (_, Some(bedrock)) if bedrock.region.starts_with("cn-") => Some(format!(
                "https://bedrock-runtime.{}.amazonaws.com.cn",
                bedrock.region
            )),
            (_, Some(bedrock)) => Some(format!(
                "https://bedrock-runtime.{}.amazonaws.com",
                bedrock.region
            )),
            (None, None) => None,
        };
        let api_base = match provider.kind {
            ProviderKind::Mock => None,
            _ => Some(self.api_base(
                &field("api_base"),
                provider,
                explicit_base.or(regional_base),
            )?),
        };

        let api_key = match &params.api_key {
            Some(value) => Some(self.secret(&field("api_key"), value)?),
            None => self
                .env
                .first_of(provider.api_key_env)
                .map(SecretString::from),
        };
        let uses_default_base = params.api_base.is_none()
            && provider
                .api_base_env
                .iter()
                .all(|var| self.env.get(var).is_none());
        if api_key.is_none() && provider.requires_api_key && uses_default_base {
            let hint = match provider.api_key_env {
                [] => String::new(),
                vars => format!(" or the environment variable {}", vars.join(" / ")),
            };
            return Err(self.cx.error(
                &field("api_key"),
                format!(
                    "`{}/` needs an API key: set api_key (e.g. `os.environ/NAME`){hint}",
                    provider.prefix
                ),
            ));
        }

        let api_version = match &params.api_version {
            Some(value) => Some(self.text(&field("api_version"), value)?),
            None if provider.kind == ProviderKind::Azure => Some(
                self.env
                    .get("AZURE_API_VERSION")
                    .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_owned()),
            ),
            None => None,
        };
        let inject_stream_usage = match provider.stream_usage {
            StreamUsage::Supported => true,
            StreamUsage::Unsupported => false,
            StreamUsage::AzureByApiVersion => api_version
                .as_deref()
                .is_some_and(provider::azure_api_version_supports_stream_usage),
        };

        let timeout =
            opt_duration(self, &field("timeout"), &params.timeout)?.unwrap_or(defaults.timeout);
        let stream_timeout = opt_duration(self, &field("stream_timeout"), &params.stream_timeout)?
            .or(defaults.stream_timeout)
            .unwrap_or(timeout);
        // As in LiteLLM, whose stream timeout is the HTTP client's read timeout: by default
        // the wait for each chunk is bounded like the wait for the first.
        let stream_idle_timeout = opt_duration(
            self,
            &field("stream_idle_timeout"),
            &params.stream_idle_timeout,
        )?
        .or(defaults.stream_idle_timeout)
        .unwrap_or(stream_timeout);
        let connect_timeout =
            opt_duration(self, &field("connect_timeout"), &params.connect_timeout)?;
        let max_retries = params
            .max_retries
            .as_ref()
            .map(|value| {
                self.u64(&field("max_retries"), value)
                    .map(|n| n.min(u32::MAX as u64) as u32)
            })
            .transpose()?;
        let opt_u64 = |name: &str, value: &Option<Scalar>| {
            value
                .as_ref()
                .map(|v| self.u64(&field(name), v))
                .transpose()
        };
        let cooldown_time = params
            .cooldown_time
            .as_ref()
            .map(|value| {
                self.non_negative_f64(&field("cooldown_time"), value)
                    .map(Duration::from_secs_f64)
            })
            .transpose()?;
        let rpm = opt_u64("rpm", &params.rpm)?;
        let tpm = opt_u64("tpm", &params.tpm)?;
        let order = opt_u64("order", &params.order)?.map(|n| n.min(u32::MAX as u64) as u32);
        let weight = params
            .weight
            .as_ref()
            .map(|value| self.non_negative_f64(&field("weight"), value))
            .transpose()?;
        let mock_response = params
            .mock_response
            .as_ref()
            .map(|value| self.text(&field("mock_response"), value))
            .transpose()?;
        let drop_params = match &params.drop_params {
            Some(value) => self.bool(&field("drop_params"), value)?,
            None => defaults.drop_params,
        };
        // OpenAI's own endpoint and Azure have the Responses API; other servers behind the
        // `openai/` prefix (vLLM, LM Studio, proxies) often do not, so they are bridged unless
        // the deployment says otherwise.
        let responses_api = match &params.responses_api {
            Some(value) => self.bool(&field("responses_api"), value)?,
            None => {
                provider.responses_api
                    && (provider.kind == ProviderKind::Azure
                        || api_base
                            .as_ref()
                            .is_none_or(|base| base.host_str() == Some("api.openai.com")))
            }
        };
        let organization = params
            .organization
            .as_ref()
            .map(|value| self.text(&field("organization"), value))
            .transpose()?;

        let mut raw_info = raw.model_info.unwrap_or_default();
        let explicit_id = raw_info
            .id
            .take()
            .map(|value| self.text(&at("model_info.id"), &value))
            .transpose()?;
        let mut model_info = self.model_info(&at("model_info"), raw_info)?;
        // LiteLLM accepts prices in litellm_params too and copies them into model_info.
        if model_info.input_cost_per_token.is_none() {
            model_info.input_cost_per_token = params
                .input_cost_per_token
                .as_ref()
                .map(|v| self.non_negative_f64(&field("input_cost_per_token"), v))
                .transpose()?;
        }
        if model_info.output_cost_per_token.is_none() {
            model_info.output_cost_per_token = params
                .output_cost_per_token
                .as_ref()
                .map(|v| self.non_negative_f64(&field("output_cost_per_token"), v))
                .transpose()?;
        }

        let id_is_explicit = explicit_id.is_some();
        let id = explicit_id.unwrap_or_else(|| {
            generated_id(
                &model_name,
                &model_string,
                api_base.as_ref(),
                api_version.as_deref(),
            )
        });

        let price = super::pricing::deployment_price(
            &defaults.prices,
            provider.prefix,
            &model,
            &model_info,
        )
        .map_err(|reason| self.cx.error(&at("model_info"), reason))?;

        let deployment = DeploymentConfig {
            id,
            model_name,
            provider,
            model,
            api_base,
            api_key,
            api_version,
            organization,
            timeout,
            stream_timeout,
            stream_idle_timeout,
            connect_timeout,
            max_retries,
            cooldown_time,
            rpm,
            tpm,
            weight,
            order,
            mock_response,
            inject_stream_usage,
            drop_params,
            responses_api,
            vertex,
            bedrock,
            model_info,
            price,
            prices: defaults.prices.clone(),
        };
        Ok((deployment, id_is_explicit))
    }

    fn split_provider(
        &self,
        field: &dyn Fn(&str) -> String,
        model: &str,
        custom_provider: Option<&str>,
    ) -> Result<(&'static ProviderSpec, String), ConfigError> {
        if let Some(prefix) = custom_provider {
            let spec = provider::lookup(prefix).ok_or_else(|| {
                self.cx.error(
                    &field("custom_llm_provider"),
                    format!(
                        "unknown provider `{prefix}`; known providers: {}",
                        provider::known_prefixes()
                    ),
                )
            })?;
            let model = model.strip_prefix(&format!("{prefix}/")).unwrap_or(model);
            return Ok((spec, model.to_owned()));
        }
        let prefixed = model
            .split_once('/')
            .and_then(|(prefix, rest)| Some((provider::lookup(prefix)?, prefix, rest)));
        if let Some((spec, prefix, rest)) = prefixed {
            if rest.is_empty() {
                return Err(self.cx.error(
                    &field("model"),
                    format!("`{model}` names no model after `{prefix}/`"),
                ));
            }
            return Ok((spec, rest.to_owned()));
        }
        if let Some(spec) = provider::infer_provider(model) {
            return Ok((spec, model.to_owned()));
        }
        let message = match model.split_once('/') {
            Some((prefix, _)) => format!(
                "unknown provider prefix `{prefix}` in `{model}`; known providers: {}",
                provider::known_prefixes()
            ),
            None => format!(
                "cannot tell which provider serves `{model}`: write it as `<provider>/{model}` (e.g. `openai/{model}`, `hosted_vllm/{model}`)"
            ),
        };
        Err(self.cx.error(&field("model"), message))
    }

    /// The model id without its route (`converse/…`, `invoke/…`), and how to reach and sign
    /// for it: a Bedrock API key if one is given, else the AWS credential chain (`aws`).
    fn bedrock(
        &self,
        field: &dyn Fn(&str) -> String,
        params: &RawLitellmParams,
        model: &str,
    ) -> Result<(String, BedrockConfig), ConfigError> {
        let (route, model) = BedrockRoute::split(model).unwrap_or((BedrockRoute::Converse, model));
        if route == BedrockRoute::Invoke && !model.contains("anthropic.") {
            return Err(self.cx.error(
                &field("model"),
                format!(
                    "the `invoke/` route serves Anthropic models (their native Messages format); use `bedrock/converse/{model}` for `{model}`"
                ),
            ));
        }
        let optional =
            |name: &str, value: &Option<Scalar>| -> Result<Option<String>, ConfigError> {
                value
                    .as_ref()
                    .map(|value| self.text(&field(name), value))
                    .transpose()
                    .map(|text| text.filter(|t| !t.trim().is_empty()))
            };
        // `arn:aws:bedrock:<region>:…` names its region.
        let arn_region = model
            .strip_prefix("arn:")
            .and_then(|rest| rest.split(':').nth(2))
            .filter(|region| !region.is_empty())
            .map(str::to_owned);
        let region = optional("aws_region_name", &params.aws_region_name)?
            .or(arn_region)
            .or_else(|| {
                self.env
                    .first_of(&["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"])
            })
            .unwrap_or_else(|| "us-west-2".to_owned());
        let valid_region = region
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if region.is_empty() || !valid_region {
            return Err(self.cx.error(
                &field("aws_region_name"),
                format!("`{region}` is not an AWS region (e.g. us-east-1)"),
            ));
        }

        // A Bedrock API key is sent instead of signing; otherwise the AWS credential chain.
        let uses_api_key =
            params.api_key.is_some() || self.env.get("AWS_BEARER_TOKEN_BEDROCK").is_some();
        let credentials = if uses_api_key {
            None
        } else {
            Some(super::aws::credential_source(self, field, params, &region)?)
        };
        Ok((
            model.to_owned(),
            BedrockConfig {
                region,
                credentials,
                route,
            },
        ))
    }

    /// `vertex_project`, `vertex_location` and `vertex_credentials` (a key file's path or its
    /// JSON), falling back to `GOOGLE_APPLICATION_CREDENTIALS` and then the metadata server.
    fn vertex(
        &self,
        field: &dyn Fn(&str) -> String,
        params: &RawLitellmParams,
    ) -> Result<VertexConfig, ConfigError> {
        let credentials_source = match &params.vertex_credentials {
            Some(value) => Some((
                field("vertex_credentials"),
                self.text(&field("vertex_credentials"), value)?,
            )),
            None => self.env.get("GOOGLE_APPLICATION_CREDENTIALS").map(|path| {
                (
                    "GOOGLE_APPLICATION_CREDENTIALS (environment)".to_owned(),
                    path,
                )
            }),
        };
        let (credentials, credentials_project) = match credentials_source {
            Some((path, source)) => self.google_credentials(&path, &source)?,
            None => {
                let host = self
                    .env
                    .get("GCE_METADATA_HOST")
                    .unwrap_or_else(|| "metadata.google.internal".to_owned());
                let token_uri = format!(
                    "http://{host}/computeMetadata/v1/instance/service-accounts/default/token"
                );
                (GoogleCredentials::MetadataServer { token_uri }, None)
            }
        };
        let project = match &params.vertex_project {
            Some(value) => Some(self.text(&field("vertex_project"), value)?),
            None => credentials_project.or_else(|| {
                self.env
                    .first_of(&["VERTEXAI_PROJECT", "VERTEX_PROJECT", "GOOGLE_CLOUD_PROJECT"])
            }),
        }
        .filter(|project| !project.trim().is_empty())
        .ok_or_else(|| {
            self.cx.error(
                &field("vertex_project"),
                "Vertex AI needs a project: set vertex_project (or VERTEXAI_PROJECT), \
                 or give service-account credentials that name one",
            )
        })?;
        let location = match &params.vertex_location {
            Some(value) => self.text(&field("vertex_location"), value)?,
            None => self
                .env
                .first_of(&["VERTEXAI_LOCATION", "VERTEX_LOCATION"])
                .unwrap_or_else(|| "us-central1".to_owned()),
        };
        let valid_location = !location.is_empty()
            && location
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
        if !valid_location {
            return Err(self.cx.error(
                &field("vertex_location"),
                format!("`{location}` is not a Google Cloud location (e.g. us-central1, global)"),
            ));
        }
        Ok(VertexConfig {
            project: project.trim().to_owned(),
            location,
            credentials,
        })
    }

    /// Parses a credentials JSON (inline, or read from the file `source` names).
    fn google_credentials(
        &self,
        path: &str,
        source: &str,
    ) -> Result<(GoogleCredentials, Option<String>), ConfigError> {
        let json = if source.trim_start().starts_with('{') {
            source.to_owned()
        } else {
            let file = PathBuf::from(source.trim());
            let file = if file.is_relative() {
                self.cx.file.parent().unwrap_or(Path::new("")).join(file)
            } else {
                file
            };
            std::fs::read_to_string(&file).map_err(|err| {
                self.cx.error(
                    path,
                    format!("cannot read credentials file `{}`: {err}", file.display()),
                )
            })?
        };
        let value: serde_json::Value = serde_json::from_str(&json).map_err(|err| {
            self.cx
                .error(path, format!("credentials are not valid JSON: {err}"))
        })?;
        let text = |key: &str| value.get(key).and_then(serde_json::Value::as_str);
        let required = |key: &str| {
            text(key)
                .filter(|found| !found.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| self.cx.error(path, format!("credentials have no `{key}`")))
        };
        let token_uri = text("token_uri")
            .unwrap_or("https://oauth2.googleapis.com/token")
            .to_owned();
        let project = text("project_id")
            .or_else(|| text("quota_project_id"))
            .map(str::to_owned);
        let credentials = match text("type") {
            Some("service_account") => {
                let private_key = required("private_key")?;
                if !private_key.contains("-----BEGIN PRIVATE KEY-----") {
                    return Err(self.cx.error(
                        path,
                        "credentials' `private_key` is not a PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----)",
                    ));
                }
                GoogleCredentials::ServiceAccount {
                    client_email: required("client_email")?,
                    private_key_id: text("private_key_id").map(str::to_owned),
                    private_key: SecretString::from(private_key),
                    token_uri,
                }
            }
            Some("authorized_user") => GoogleCredentials::AuthorizedUser {
                client_id: required("client_id")?,
                client_secret: SecretString::from(required("client_secret")?),
                refresh_token: SecretString::from(required("refresh_token")?),
                token_uri,
            },
            Some("external_account") => {
                let source = value
                    .get("credential_source")
                    .and_then(serde_json::Value::as_object)
                    .ok_or_else(|| {
                        self.cx
                            .error(path, "credentials have no `credential_source`")
                    })?;
                let field = |key: &str| source.get(key).and_then(serde_json::Value::as_str);
                let token_source = if let Some(file) = field("file") {
                    SubjectTokenSource::File(PathBuf::from(file))
                } else if let Some(url) = field("url") {
                    let headers = source
                        .get("headers")
                        .and_then(serde_json::Value::as_object)
                        .map(|headers| {
                            headers
                                .iter()
                                .filter_map(|(name, value)| {
                                    Some((name.clone(), value.as_str()?.to_owned()))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    SubjectTokenSource::Url {
                        url: url.to_owned(),
                        headers,
                    }
                } else {
                    return Err(self.cx.error(
                        path,
                        "credentials' `credential_source` has neither `file` nor `url` \
                         (AWS and executable sources are not supported)",
                    ));
                };
                let format = source.get("format");
                let json_field = match format.and_then(|f| f.get("type")).and_then(|t| t.as_str()) {
                    None | Some("text") => None,
                    Some("json") => Some(
                        format
                            .and_then(|f| f.get("subject_token_field_name"))
                            .and_then(serde_json::Value::as_str)
                            .ok_or_else(|| {
                                self.cx.error(
                                    path,
                                    "credentials' JSON `credential_source.format` has no \
                                     `subject_token_field_name`",
                                )
                            })?
                            .to_owned(),
                    ),
                    Some(other) => {
                        return Err(self.cx.error(
                            path,
                            format!("credentials' `credential_source.format.type` `{other}` is not text or json"),
                        ));
                    }
                };
                GoogleCredentials::ExternalAccount {
                    audience: required("audience")?,
                    subject_token_type: required("subject_token_type")?,
                    token_uri: text("token_url")
                        .unwrap_or("https://sts.googleapis.com/v1/token")
                        .to_owned(),
                    subject_token: SubjectToken {
                        source: token_source,
                        json_field,
                    },
                    impersonation_url: text("service_account_impersonation_url").map(str::to_owned),
                }
            }
            Some(other) => {
                return Err(self.cx.error(
                    path,
                    format!(
                        "credentials of type `{other}` are not supported \
                         (use a service_account key, authorized_user or external_account credentials)"
                    ),
                ));
            }
            None => return Err(self.cx.error(path, "credentials have no `type`")),
        };
        Ok((credentials, project))
    }

    fn api_base(
        &self,
        path: &str,
        provider: &ProviderSpec,
        explicit: Option<String>,
    ) -> Result<Url, ConfigError> {
        let text = explicit
            .or_else(|| self.env.first_of(provider.api_base_env))
            .or_else(|| provider.default_api_base.map(str::to_owned))
            .ok_or_else(|| {
                let hint = match provider.api_base_env {
                    [] => String::new(),
                    vars => format!(" (or the environment variable {})", vars.join(" / ")),
                };
                self.cx.error(
                    path,
                    format!(
                        "`{}/` has no default endpoint: set api_base{hint}",
                        provider.prefix
                    ),
                )
            })?;
        let mut url = Url::parse(text.trim()).map_err(|err| {
            self.cx
                .error(path, format!("`{text}` is not a valid URL: {err}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(self
                .cx
                .error(path, format!("`{text}` must be an http:// or https:// URL")));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(self.cx.error(path, format!("`{text}` has no host")));
        }
        if provider.append_v1_to_bare_base && matches!(url.path(), "" | "/") {
            url.set_path("/v1");
        }
        let trimmed = url.path().trim_end_matches('/').to_owned();
        url.set_path(&trimmed);
        Ok(url)
    }

    fn model_info(&self, path: &str, raw: RawModelInfo) -> Result<ModelInfo, ConfigError> {
        let field = |name: &str| format!("{path}.{name}");
        let opt_text = |name: &str, value: &Option<Scalar>| {
            value
                .as_ref()
                .map(|v| self.text(&field(name), v))
                .transpose()
        };
        let opt_u64 = |name: &str, value: &Option<Scalar>| {
            value
                .as_ref()
                .map(|v| self.u64(&field(name), v))
                .transpose()
        };
        let opt_price = |name: &str, value: &Option<Scalar>| {
            value
                .as_ref()
                .map(|v| self.non_negative_f64(&field(name), v))
                .transpose()
        };
        let extra = raw
            .other
            .into_iter()
            .filter_map(|(key, value)| serde_json::to_value(value).ok().map(|json| (key, json)))
            .collect();
        Ok(ModelInfo {
            mode: opt_text("mode", &raw.mode)?,
            base_model: opt_text("base_model", &raw.base_model)?,
            max_tokens: opt_u64("max_tokens", &raw.max_tokens)?,
            max_input_tokens: opt_u64("max_input_tokens", &raw.max_input_tokens)?,
            max_output_tokens: opt_u64("max_output_tokens", &raw.max_output_tokens)?,
            input_cost_per_token: opt_price("input_cost_per_token", &raw.input_cost_per_token)?,
            output_cost_per_token: opt_price("output_cost_per_token", &raw.output_cost_per_token)?,
            extra,
        })
    }
}

fn opt_duration(
    cx: &Resolver<'_>,
    path: &str,
    value: &Option<Scalar>,
) -> Result<Option<Duration>, ConfigError> {
    value.as_ref().map(|v| cx.duration(path, v)).transpose()
}

/// `litellm_settings.ssl_verify` (bool, or a CA bundle path), overridden by `SSL_VERIFY`;
/// `SSL_CERT_FILE` names a CA bundle when verification is on. As LiteLLM reads them.
struct SslSettings {
    verify: bool,
    ca_bundle: Option<PathBuf>,
}

fn resolve_ssl(cx: &Resolver<'_>, litellm_settings: &Mapping) -> Result<SslSettings, ConfigError> {
    let (path, setting) = match cx.env.get("SSL_VERIFY") {
        Some(text) => ("SSL_VERIFY (environment)".to_owned(), Scalar::Text(text)),
        None => match mapping_scalar(
            cx,
            litellm_settings,
            "ssl_verify",
            "litellm_settings.ssl_verify",
        )? {
            Some(found) => found,
            None => {
                return Ok(SslSettings {
                    verify: true,
                    ca_bundle: cx.env.get("SSL_CERT_FILE").map(PathBuf::from),
                });
            }
        },
    };
    if let Ok(verify) = cx.bool(&path, &setting) {
        let ca_bundle = if verify {
            cx.env.get("SSL_CERT_FILE").map(PathBuf::from)
        } else {
            None
        };
        return Ok(SslSettings { verify, ca_bundle });
    }
    let bundle = PathBuf::from(cx.text(&path, &setting)?);
    let bundle = if bundle.is_relative() {
        cx.cx.file.parent().unwrap_or(Path::new("")).join(bundle)
    } else {
        bundle
    };
    if !bundle.is_file() {
        return Err(cx.cx.error(
            &path,
            format!(
                "`{}` is neither true/false nor a CA bundle file",
                bundle.display()
            ),
        ));
    }
    Ok(SslSettings {
        verify: true,
        ca_bundle: Some(bundle),
    })
}

/// A scalar entry of a kept-as-written settings section, with its path.
pub(super) fn mapping_scalar(
    cx: &Resolver<'_>,
    section: &Mapping,
    key: &str,
    path: &str,
) -> Result<Option<(String, Scalar)>, ConfigError> {
    let Some(value) = section.get(key) else {
        return Ok(None);
    };
    let scalar = match value {
        Value::Null => return Ok(None),
        Value::Bool(flag) => Scalar::Bool(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(int) => Scalar::Integer(int),
            None => Scalar::Float(number.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(text) => Scalar::Text(text.clone()),
        _ => {
            return Err(cx
                .cx
                .error(path, "expected a single value, not a list or mapping"));
        }
    };
    Ok(Some((path.to_owned(), scalar)))
}

fn unused_keys<'a>(
    section: &'a str,
    mapping: &'a Mapping,
    used: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = String> + 'a {
    mapping
        .keys()
        .filter_map(|key| key.as_str())
        .filter(move |key| !used(key))
        .map(move |key| format!("{section}.{key}"))
}

fn scalar_to_string(value: &Scalar) -> String {
    match value {
        Scalar::Text(text) => text.clone(),
        Scalar::Integer(number) => number.to_string(),
        Scalar::Float(number) => number.to_string(),
        Scalar::Bool(flag) => flag.to_string(),
    }
}

/// A stable id for a deployment without `model_info.id`: the same config gives the same id
/// across restarts and replicas (spend records and cooldowns refer to it).
fn generated_id(
    model_name: &str,
    model: &str,
    api_base: Option<&Url>,
    api_version: Option<&str>,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        model_name,
        model,
        api_base.map(Url::as_str).unwrap_or(""),
        api_version.unwrap_or(""),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
