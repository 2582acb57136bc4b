//! The Redis that replicas share their rate-limit and budget counters through, named where a
//! LiteLLM config names it: `router_settings` (`redis_url`, or `redis_host` with `redis_port`
//! and `redis_password`), else the response cache's `litellm_settings.cache_params` when
//! `cache` is on (`url`, or `host`, `port`, `username`, `password`, `ssl`; LiteLLM's
//! `REDIS_URL` / `REDIS_HOST` / … variables where they are left out).

use std::time::Duration;

use secrecy::SecretString;
use serde_yaml_ng::{Mapping, Value};
use url::Url;

use super::ConfigError;
use super::raw::{RawTollgateSettings, Scalar};
use super::validate::Resolver;

const DEFAULT_PORT: u16 = 6379;
const DEFAULT_KEY_PREFIX: &str = "tollgate";
/// Redis answers within a millisecond or two on a network; past this the replica counts on
/// its own for a moment rather than keep requests waiting.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// The `router_settings` keys read here, for the start-up warning about the others.
pub(super) const ROUTER_KEYS: &[&str] =
    &["redis_url", "redis_host", "redis_port", "redis_password"];
/// The `litellm_settings` key read here (`cache` itself stays in the warning: responses are
/// not cached yet).
pub(super) const LITELLM_KEYS: &[&str] = &["cache_params"];

/// Where and how to reach the shared Redis.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://` or `rediss://`, credentials included.
    pub url: SecretString,
    /// The same with its password masked, for logs and messages.
    pub shown: String,
    /// Where the config names it (`router_settings.redis_host`, …), for messages.
    pub source: &'static str,
    /// Every key Tollgate writes starts with it, so gateways sharing a Redis stay apart.
    pub key_prefix: String,
    /// How long a call may take before the replica counts on its own for a moment.
    pub timeout: Duration,
}

/// The settings, or `None` when the config names no Redis.
pub(super) fn redis(
    cx: &Resolver<'_>,
    router: &Mapping,
    litellm: &Mapping,
    tollgate: &RawTollgateSettings,
) -> Result<Option<RedisSettings>, ConfigError> {
    let Some((source, url)) = from_router(cx, router)?.or(from_cache(cx, litellm)?) else {
        return Ok(None);
    };
    let key_prefix = match &tollgate.redis_key_prefix {
        Some(value) => {
            let path = "tollgate_settings.redis_key_prefix";
            let prefix = cx.text(path, value)?;
            if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
                return Err(cx.error(path, "must be a non-empty word without spaces"));
            }
            prefix
        }
        None => DEFAULT_KEY_PREFIX.to_owned(),
    };
    let timeout = match &tollgate.redis_timeout {
        Some(value) => cx.duration("tollgate_settings.redis_timeout", value)?,
        None => DEFAULT_TIMEOUT,
    };
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("****"));
    }
    Ok(Some(RedisSettings {
        url: SecretString::from(url.to_string()),
        shown: shown.to_string(),
        source,
        key_prefix,
        timeout,
    }))
}

/// `router_settings.redis_url`, or `redis_host` with `redis_port` and `redis_password` (else
/// `REDIS_PORT` and `REDIS_PASSWORD`, as LiteLLM's router reads them).
fn from_router(
    cx: &Resolver<'_>,
    router: &Mapping,
) -> Result<Option<(&'static str, Url)>, ConfigError> {
    if let Some(value) = scalar(cx, router, "redis_url", "router_settings.redis_url")? {
        let path = "router_settings.redis_url";
        return Ok(Some((path, parse_url(cx, path, &cx.text(path, &value)?)?)));
    }
    let Some(host) = scalar(cx, router, "redis_host", "router_settings.redis_host")? else {
        return Ok(None);
    };
    let path = "router_settings.redis_host";
    let host = cx.text(path, &host)?;
    let port = match scalar(cx, router, "redis_port", "router_settings.redis_port")? {
        Some(value) => Some(port(cx, "router_settings.redis_port", &value)?),
        None => env_port(cx, path)?,
    };
    let password = match scalar(
        cx,
        router,
        "redis_password",
        "router_settings.redis_password",
    )? {
        Some(value) => Some(cx.text("router_settings.redis_password", &value)?),
        None => cx.env().get("REDIS_PASSWORD"),
    };
    let url = build_url(cx, path, &host, port, None, password.as_deref(), false)?;
    Ok(Some((path, url)))
}

/// The response cache's Redis (`litellm_settings.cache: true`, `cache_params.type` redis, as
/// LiteLLM's proxy defaults it), from `cache_params` or LiteLLM's variables. A cache with no
/// Redis named anywhere is left to the start-up warning about `cache`.
fn from_cache(
    cx: &Resolver<'_>,
    litellm: &Mapping,
) -> Result<Option<(&'static str, Url)>, ConfigError> {
    let path = "litellm_settings.cache_params";
    let on = match scalar(cx, litellm, "cache", "litellm_settings.cache")? {
        Some(value) => cx.bool("litellm_settings.cache", &value)?,
        None => false,
    };
    let params = match litellm.get("cache_params") {
        None | Some(Value::Null) => Mapping::new(),
        Some(Value::Mapping(params)) => params.clone(),
        Some(_) => return Err(cx.error(path, "expected a mapping")),
    };
    if !on {
        return Ok(None);
    }
    let field = |key: &str| -> Result<Option<String>, ConfigError> {
        let path = format!("{path}.{key}");
        scalar(cx, &params, key, &path)?
            .map(|value| cx.text(&path, &value))
            .transpose()
    };
    let kind = field("type")?.unwrap_or_else(|| "redis".to_owned());
    if !matches!(kind.as_str(), "redis" | "redis-semantic") {
        return Ok(None);
    }
    if let Some(url) = field("url")?.or_else(|| cx.env().get("REDIS_URL")) {
        return Ok(Some((path, parse_url(cx, path, &url)?)));
    }
    let Some(host) = field("host")?.or_else(|| cx.env().get("REDIS_HOST")) else {
        return Ok(None);
    };
    let port = match scalar(cx, &params, "port", "litellm_settings.cache_params.port")? {
        Some(value) => Some(port(cx, "litellm_settings.cache_params.port", &value)?),
        None => env_port(cx, path)?,
    };
    let username = field("username")?.or_else(|| cx.env().get("REDIS_USERNAME"));
    let password = field("password")?.or_else(|| cx.env().get("REDIS_PASSWORD"));
    let tls = match scalar(cx, &params, "ssl", "litellm_settings.cache_params.ssl")? {
        Some(value) => cx.bool("litellm_settings.cache_params.ssl", &value)?,
        None => cx
            .env()
            .get("REDIS_SSL")
            .is_some_and(|flag| flag.eq_ignore_ascii_case("true")),
    };
    let url = build_url(
        cx,
        path,
        &host,
        port,
        username.as_deref(),
        password.as_deref(),
        tls,
    )?;
    Ok(Some((path, url)))
}

fn scalar(
    cx: &Resolver<'_>,
    section: &Mapping,
    key: &str,
    path: &str,
) -> Result<Option<Scalar>, ConfigError> {
    Ok(super::validate::mapping_scalar(cx, section, key, path)?.map(|(_, value)| value))
}

fn port(cx: &Resolver<'_>, path: &str, value: &Scalar) -> Result<u16, ConfigError> {
    let number = cx.u64(path, value)?;
    u16::try_from(number)
        .ok()
        .filter(|port| *port > 0)
        .ok_or_else(|| cx.error(path, format!("`{number}` is not a port number")))
}

/// `REDIS_PORT`, when set.
fn env_port(cx: &Resolver<'_>, path: &str) -> Result<Option<u16>, ConfigError> {
    match cx.env().get("REDIS_PORT") {
        Some(text) => text
            .trim()
            .parse::<u16>()
            .map(Some)
            .map_err(|_| cx.error(path, format!("REDIS_PORT `{text}` is not a port number"))),
        None => Ok(None),
    }
}

fn build_url(
    cx: &Resolver<'_>,
    path: &str,
    host: &str,
    port: Option<u16>,
    username: Option<&str>,
    password: Option<&str>,
    tls: bool,
) -> Result<Url, ConfigError> {
    if host.contains("://") {
        return parse_url(cx, path, host);
    }
    let scheme = if tls { "rediss" } else { "redis" };
    let port = port.unwrap_or(DEFAULT_PORT);
    let mut url = Url::parse(&format!("{scheme}://{host}:{port}"))
        .map_err(|err| cx.error(path, format!("`{host}` is not a host name ({err})")))?;
    if url.host_str().is_none_or(str::is_empty) || url.path() != "/" && !url.path().is_empty() {
        return Err(cx.error(path, format!("`{host}` is not a host name")));
    }
    // Url percent-encodes them, so passwords with `@` or `/` stay whole.
    if let Some(username) = username.filter(|name| !name.is_empty()) {
        let _ = url.set_username(username);
    }
    if let Some(password) = password.filter(|password| !password.is_empty()) {
        let _ = url.set_password(Some(password));
    }
    Ok(url)
}

fn parse_url(cx: &Resolver<'_>, path: &str, text: &str) -> Result<Url, ConfigError> {
    // The URL may hold a password: messages never repeat it.
    let url = Url::parse(text.trim())
        .map_err(|err| cx.error(path, format!("not a valid Redis URL ({err})")))?;
    if !matches!(url.scheme(), "redis" | "rediss") {
        return Err(cx.error(
            path,
            format!(
                "a Redis URL starts with redis:// or rediss://, not {}://",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(cx.error(path, "the Redis URL names no host"));
    }
    Ok(url)
}
