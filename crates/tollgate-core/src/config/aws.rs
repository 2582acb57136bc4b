//! The AWS default credential chain for Bedrock deployments, decided at load: which source
//! signs a deployment's requests, from its params first and then the environment, in the order
//! AWS's SDKs use. Keys known at load (config, `AWS_*` variables, a profile) are read here;
//! temporary keys (web identity, container, instance metadata) are fetched by the upstream
//! layer when first needed.

use std::path::PathBuf;

use secrecy::SecretString;
use url::Url;

use super::raw::{RawLitellmParams, Scalar};
use super::validate::Resolver;
use super::{
    AssumeRole, AwsCredentialSource, AwsCredentials, ConfigError, SecretSource, WebIdentity,
};

/// The ECS agent, which `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` is relative to.
const ECS_AGENT: &str = "http://169.254.170.2";
/// Hosts that may serve container credentials over plain HTTP, as AWS's SDKs allow: the ECS
/// agent and the EKS Pod Identity agent (IPv4 and IPv6), besides loopback.
const CONTAINER_HTTP_HOSTS: &[&str] = &["169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"];
const IMDS_ENDPOINT: &str = "http://169.254.169.254";
const IMDS_ENDPOINT_IPV6: &str = "http://[fd00:ec2::254]";
/// The role session name when neither `aws_session_name` nor `AWS_ROLE_SESSION_NAME` gives one.
const DEFAULT_SESSION_NAME: &str = "tollgate";

/// Every environment variable the credential chain reads (tests blank them all, so that the
/// machine's own environment does not decide).
pub const AWS_CHAIN_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_BEARER_TOKEN_BEDROCK",
];

/// The deployment's credential source: the first of, in order,
/// 1. `aws_access_key_id` / `aws_secret_access_key` (+ `aws_session_token`),
/// 2. `aws_profile_name`: that profile of the shared credentials or config file (its keys, or
///    its `credential_process`),
/// 3. `aws_web_identity_token` + `aws_role_name` (+ `aws_session_name`, `aws_sts_endpoint`),
/// 4. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`),
/// 5. `AWS_PROFILE`, else the `default` profile when it has keys or a process,
/// 6. `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`),
/// 7. `AWS_CONTAINER_CREDENTIALS_FULL_URI` / `…_RELATIVE_URI` (ECS, EKS Pod Identity),
/// 8. the EC2 instance metadata service, unless `AWS_EC2_METADATA_DISABLED=true`.
///
/// `aws_role_name` without a web identity token is assumed (sts:AssumeRole) with what the rest
/// of the chain gives, unless it is the pod's own IRSA role.
///
/// What is named but unusable (a missing profile, a token without a role) is an error here,
/// not a surprise at the first request.
pub(super) fn credential_source(
    cx: &Resolver<'_>,
    field: &dyn Fn(&str) -> String,
    params: &RawLitellmParams,
    region: &str,
) -> Result<AwsCredentialSource, ConfigError> {
    let param = |name: &str, value: &Option<Scalar>| text_param(cx, field, name, value);
    let role = param("aws_role_name", &params.aws_role_name)?;
    let web_token = param("aws_web_identity_token", &params.aws_web_identity_token)?;
    let Some(role_arn) = role.filter(|_| web_token.is_none()) else {
        return chain_source(cx, field, params, region, false);
    };
    let env = cx.env();
    let own_keys = [&params.aws_access_key_id, &params.aws_profile_name]
        .iter()
        .any(|value| value.is_some());
    let session_name = param("aws_session_name", &params.aws_session_name)?
        .or_else(|| env.get("AWS_ROLE_SESSION_NAME"))
        .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_owned());
    let sts_endpoint = param("aws_sts_endpoint", &params.aws_sts_endpoint)?;
    let sts_endpoint = sts_endpoint_url(cx, field, sts_endpoint.as_deref(), region)?;
    let external_id = param("aws_external_id", &params.aws_external_id)?;
    // The pod's own IRSA role is used directly, as LiteLLM does: no role to assume from it.
    if !own_keys
        && let (Some(file), Some(irsa_role)) = (
            env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
            env.get("AWS_ROLE_ARN"),
        )
        && irsa_role == role_arn
    {
        return Ok(AwsCredentialSource::WebIdentity(WebIdentity {
            role_arn,
            session_name,
            token: SecretSource::File(PathBuf::from(file)),
            sts_endpoint,
        }));
    }
    // Any other role is assumed (sts:AssumeRole), signed with what the rest of the chain gives.
    let source = chain_source(cx, field, params, region, true)?;
    Ok(AwsCredentialSource::AssumeRole(Box::new(AssumeRole {
        source,
        role_arn,
        session_name,
        sts_endpoint,
        external_id,
        region: region.to_owned(),
    })))
}

/// A deployment param's text (after `os.environ/`); `None` when unset or blank.
fn text_param(
    cx: &Resolver<'_>,
    field: &dyn Fn(&str) -> String,
    name: &str,
    value: &Option<Scalar>,
) -> Result<Option<String>, ConfigError> {
    value
        .as_ref()
        .map(|value| cx.text(&field(name), value))
        .transpose()
        .map(|text| text.filter(|t| !t.trim().is_empty()))
}

/// The chain without `aws_role_name` (`assuming`: the caller assumes it with what this
/// gives), or with it only beside `aws_web_identity_token`.
fn chain_source(
    cx: &Resolver<'_>,
    field: &dyn Fn(&str) -> String,
    params: &RawLitellmParams,
    region: &str,
    assuming: bool,
) -> Result<AwsCredentialSource, ConfigError> {
    let param = |name: &str, value: &Option<Scalar>| text_param(cx, field, name, value);
    let access_key = param("aws_access_key_id", &params.aws_access_key_id)?;
    let secret_key = param("aws_secret_access_key", &params.aws_secret_access_key)?;
    let session_token = param("aws_session_token", &params.aws_session_token)?;
    let profile = param("aws_profile_name", &params.aws_profile_name)?;
    let web_token = param("aws_web_identity_token", &params.aws_web_identity_token)?;
    let role = if assuming {
        None
    } else {
        param("aws_role_name", &params.aws_role_name)?
    };
    let session_name = param("aws_session_name", &params.aws_session_name)?;
    let sts_endpoint = param("aws_sts_endpoint", &params.aws_sts_endpoint)?;
    let env = cx.env();

    // One way per deployment: with two, which identity signs would be a guess.
    let given: Vec<&str> = [
        (
            access_key.is_some() || secret_key.is_some(),
            "aws_access_key_id",
        ),
        (profile.is_some(), "aws_profile_name"),
        (web_token.is_some(), "aws_web_identity_token"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if let [first, second, ..] = given[..] {
        return Err(cx.error(
            &field(second),
            format!("{first} and {second} are both set; give one way to get AWS credentials"),
        ));
    }
    match (access_key, secret_key) {
        (Some(access_key_id), Some(secret)) => {
            return Ok(AwsCredentialSource::Static {
                keys: AwsCredentials {
                    access_key_id,
                    secret_access_key: SecretString::from(secret),
                    session_token: session_token.map(SecretString::from),
                },
                origin: "aws_access_key_id in the config".to_owned(),
            });
        }
        (Some(_), None) => {
            return Err(cx.error(
                &field("aws_secret_access_key"),
                "aws_access_key_id is set but aws_secret_access_key is not",
            ));
        }
        (None, Some(_)) => {
            return Err(cx.error(
                &field("aws_access_key_id"),
                "aws_secret_access_key is set but aws_access_key_id is not",
            ));
        }
        (None, None) => {}
    }
    if let Some(profile) = profile
        && let Some(source) = profile_source(cx, field, region, &profile, "aws_profile_name")?
    {
        return Ok(source);
    }
    let session_name = session_name
        .or_else(|| env.get("AWS_ROLE_SESSION_NAME"))
        .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_owned());
    let sts = || sts_endpoint_url(cx, field, sts_endpoint.as_deref(), region);
    if let Some(token) = web_token {
        let role_arn = role.ok_or_else(|| {
            cx.error(
                &field("aws_role_name"),
                "aws_web_identity_token needs aws_role_name: the ARN of the role to assume",
            )
        })?;
        return Ok(AwsCredentialSource::WebIdentity(WebIdentity {
            role_arn,
            session_name,
            token: web_identity_token(cx, &field("aws_web_identity_token"), &token)?,
            sts_endpoint: sts()?,
        }));
    }

    // From here on the environment decides.
    let token_file = env.get("AWS_WEB_IDENTITY_TOKEN_FILE");
    let role_arn = env.get("AWS_ROLE_ARN");
    if let (Some(access_key_id), Some(secret)) = (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        return Ok(AwsCredentialSource::Static {
            keys: AwsCredentials {
                access_key_id,
                secret_access_key: SecretString::from(secret),
                session_token: env.get("AWS_SESSION_TOKEN").map(SecretString::from),
            },
            origin: "AWS_ACCESS_KEY_ID (environment)".to_owned(),
        });
    }
    let from_profile = match env.get("AWS_PROFILE") {
        Some(profile) => profile_source(cx, field, region, &profile, "AWS_PROFILE")?,
        None => profile_source(cx, field, region, "default", "")?,
    };
    if let Some(source) = from_profile {
        return Ok(source);
    }
    match (token_file, role_arn) {
        (Some(file), Some(role_arn)) => {
            return Ok(AwsCredentialSource::WebIdentity(WebIdentity {
                role_arn,
                session_name,
                token: SecretSource::File(PathBuf::from(file)),
                sts_endpoint: sts()?,
            }));
        }
        (Some(_), None) => {
            return Err(cx.error(
                &field("aws_role_name"),
                "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN, the role to assume, is not",
            ));
        }
        (None, _) => {}
    }
    if let Some(source) = container_source(cx, field)? {
        return Ok(source);
    }
    let imds_disabled = env
        .get("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
    if !imds_disabled {
        let ipv6 = env
            .get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")
            .is_some_and(|mode| mode.trim().eq_ignore_ascii_case("ipv6"));
        let endpoint = env
            .get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| {
                if ipv6 {
                    IMDS_ENDPOINT_IPV6
                } else {
                    IMDS_ENDPOINT
                }
                .to_owned()
            });
        let endpoint = http_url(&endpoint).map_err(|reason| {
            cx.error(
                &field("aws_access_key_id"),
                format!("AWS_EC2_METADATA_SERVICE_ENDPOINT: {reason}"),
            )
        })?;
        return Ok(AwsCredentialSource::InstanceMetadata { endpoint });
    }
    Err(cx.error(
        &field("aws_access_key_id"),
        "`bedrock/` needs AWS credentials and none were found: set aws_access_key_id and \
         aws_secret_access_key, aws_profile_name, or aws_web_identity_token with aws_role_name \
         (or the AWS_* environment variables: keys, AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE \
         with AWS_ROLE_ARN, AWS_CONTAINER_CREDENTIALS_FULL_URI), give a Bedrock API key in \
         api_key (or AWS_BEARER_TOKEN_BEDROCK), or allow the EC2 instance metadata service \
         (AWS_EC2_METADATA_DISABLED is true)",
    ))
}

/// What `profile` gives, from the shared credentials file and the config file (the
/// credentials file's values first, as in AWS's SDKs): its keys, the command its
/// `credential_process` names, or its `role_arn` assumed with what its `source_profile` gives.
/// `named_by` is what asked for it (`aws_profile_name`, `AWS_PROFILE`): then a profile missing
/// from both files, or one with none of these, is an error. Empty for the `default` profile
/// tried on the way down the chain, which is used only when it is there and gives keys.
fn profile_source(
    cx: &Resolver<'_>,
    field: &dyn Fn(&str) -> String,
    region: &str,
    profile: &str,
    named_by: &str,
) -> Result<Option<AwsCredentialSource>, ConfigError> {
    profile_source_within(cx, field, region, profile, named_by, 0)
}

/// Source profiles followed before a chain of them is taken for a loop.
const MAX_SOURCE_PROFILES: usize = 4;

fn profile_source_within(
    cx: &Resolver<'_>,
    field: &dyn Fn(&str) -> String,
    region: &str,
    profile: &str,
    named_by: &str,
    depth: usize,
) -> Result<Option<AwsCredentialSource>, ConfigError> {
    let path = &field("aws_profile_name");
    let env = cx.env();
    let named = !named_by.is_empty();
    let home = env.get("HOME").or_else(|| env.get("USERPROFILE"));
    let file = |variable: &str, name: &str| match env.get(variable) {
        Some(file) => Some(expand_home(&file, home.clone())),
        None => home
            .as_ref()
            .map(|home| PathBuf::from(home).join(".aws").join(name)),
    };
    let credentials_file = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_file = file("AWS_CONFIG_FILE", "config");
    if credentials_file.is_none() && config_file.is_none() {
        if !named {
            return Ok(None);
        }
        return Err(cx.error(
            path,
            format!(
                "{named_by} names profile `{profile}`, but there is no home directory to find \
                 ~/.aws/credentials in; set AWS_SHARED_CREDENTIALS_FILE or AWS_CONFIG_FILE"
            ),
        ));
    }
    let read = |file: &Option<PathBuf>| {
        file.as_ref()
            .and_then(|file| std::fs::read_to_string(file).ok())
            .unwrap_or_default()
    };
    let (credentials_text, config_text) = (read(&credentials_file), read(&config_file));
    // The config file heads every profile but `default` with `profile `.
    let config_profile = match profile {
        "default" => "default".to_owned(),
        other => format!("profile {other}"),
    };
    let sections = [
        (
            profile_section(&credentials_text, profile),
            &credentials_file,
        ),
        (profile_section(&config_text, &config_profile), &config_file),
    ];
    let shown = |file: &Option<PathBuf>| {
        file.as_ref()
            .map_or_else(String::new, |file| file.display().to_string())
    };
    let both = format!(
        "`{}` and `{}`",
        shown(&credentials_file),
        shown(&config_file)
    );
    if sections.iter().all(|(section, _)| section.is_none()) {
        if !named {
            return Ok(None);
        }
        return Err(cx.error(
            path,
            format!("{named_by} names profile `{profile}`, which neither of {both} has"),
        ));
    }
    // A value and the file it came from.
    let value = |key: &str| {
        sections.iter().find_map(|(section, file)| {
            section
                .as_ref()?
                .iter()
                .rev()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.to_string())
                .filter(|value| !value.is_empty())
                .map(|value| (value, shown(file)))
        })
    };
    if let (Some((access_key_id, file)), Some((secret, _))) =
        (value("aws_access_key_id"), value("aws_secret_access_key"))
    {
        return Ok(Some(AwsCredentialSource::Static {
            keys: AwsCredentials {
                access_key_id,
                secret_access_key: SecretString::from(secret),
                session_token: value("aws_session_token")
                    .or_else(|| value("aws_security_token"))
                    .map(|(token, _)| SecretString::from(token)),
            },
            origin: format!("profile `{profile}` of {file}"),
        }));
    }
    if let Some((command, file)) = value("credential_process") {
        return Ok(Some(AwsCredentialSource::Process {
            command,
            origin: format!("profile `{profile}` of {file}"),
        }));
    }
    if let (Some((role_arn, _)), Some((source_profile, _))) =
        (value("role_arn"), value("source_profile"))
    {
        if depth >= MAX_SOURCE_PROFILES || source_profile == profile {
            return Err(cx.error(
                path,
                format!(
                    "profile `{profile}`: its source_profile chain loops or runs past \
                     {MAX_SOURCE_PROFILES} profiles"
                ),
            ));
        }
        let named_by = format!("the source_profile of `{profile}`");
        let source =
            profile_source_within(cx, field, region, &source_profile, &named_by, depth + 1)?
                .expect("a named profile gives a source or an error");
        return Ok(Some(AwsCredentialSource::AssumeRole(Box::new(
            AssumeRole {
                source,
                role_arn,
                session_name: value("role_session_name")
                    .map_or_else(|| DEFAULT_SESSION_NAME.to_owned(), |(name, _)| name),
                sts_endpoint: sts_endpoint_url(cx, field, None, region)?,
                external_id: value("external_id").map(|(id, _)| id),
                region: region.to_owned(),
            },
        ))));
    }
    if !named {
        return Ok(None);
    }
    Err(cx.error(
        path,
        format!(
            "profile `{profile}` in {both} has neither aws_access_key_id and \
             aws_secret_access_key, credential_process, nor role_arn with source_profile \
             (profiles with sso_* or credential_source are not supported)"
        ),
    ))
}

/// The `key = value` pairs of `[profile]` in an INI file as AWS writes them, keys in lower
/// case; `None` when the file has no such section. Comment lines (`#`, `;`) and indented
/// lines (a nested block's settings) are skipped; a section given twice is read as one.
pub(super) fn profile_section<'a>(text: &'a str, profile: &str) -> Option<Vec<(String, &'a str)>> {
    let mut found = None::<Vec<(String, &str)>>;
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name.split(']').next().unwrap_or_default().trim();
            inside = name == profile;
            if inside && found.is_none() {
                found = Some(Vec::new());
            }
            continue;
        }
        if let (true, Some(section), Some((key, value))) =
            (inside, found.as_mut(), line.split_once('='))
        {
            section.push((key.trim().to_ascii_lowercase(), value.trim()));
        }
    }
    found
}

/// `aws_web_identity_token` as LiteLLM reads it: `oidc/file/<path>` and `oidc/env_path/<NAME>`
/// name a file (read at each exchange, as rotated tokens require), `oidc/env/<NAME>` and a
/// bare variable name an environment variable; anything else is the token itself (as
/// `os.environ/NAME` gives it).
fn web_identity_token(
    cx: &Resolver<'_>,
    path: &str,
    value: &str,
) -> Result<SecretSource, ConfigError> {
    let env = cx.env();
    let variable = |name: &str| {
        env.get(name).ok_or_else(|| {
            cx.error(
                path,
                format!("environment variable `{name}` is not set (referenced as `{value}`)"),
            )
        })
    };
    if let Some(rest) = value.strip_prefix("oidc/") {
        let (provider, argument) = rest.split_once('/').unwrap_or((rest, ""));
        return match provider {
            "file" if !argument.is_empty() => Ok(SecretSource::File(PathBuf::from(argument))),
            "env_path" => Ok(SecretSource::File(PathBuf::from(variable(argument)?))),
            "env" => Ok(SecretSource::Value(SecretString::from(variable(argument)?))),
            _ => Err(cx.error(
                path,
                format!(
                    "`oidc/{provider}/` tokens are not supported; use oidc/file/<path>, \
                     oidc/env/<NAME>, oidc/env_path/<NAME>, or the token itself"
                ),
            )),
        };
    }
    let is_variable_name = value
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if is_variable_name {
        return Ok(SecretSource::Value(SecretString::from(variable(value)?)));
    }
    Ok(SecretSource::Value(SecretString::from(
        value.trim().to_owned(),
    )))
}

/// `aws_sts_endpoint`, else `AWS_ENDPOINT_URL_STS`, else the region's STS endpoint.
fn sts_endpoint_url(
    cx: &Resolver<'_>,
    field: &dyn Fn(&str) -> String,
    configured: Option<&str>,
    region: &str,
) -> Result<Url, ConfigError> {
    let (text, path) = match configured {
        Some(text) => (text.to_owned(), field("aws_sts_endpoint")),
        None => match cx.env().get("AWS_ENDPOINT_URL_STS") {
            Some(text) => (
                text,
                format!("{} (AWS_ENDPOINT_URL_STS)", field("aws_sts_endpoint")),
            ),
            None if region.starts_with("cn-") => (
                format!("https://sts.{region}.amazonaws.com.cn"),
                field("aws_region_name"),
            ),
            None => (
                format!("https://sts.{region}.amazonaws.com"),
                field("aws_region_name"),
            ),
        },
    };
    http_url(&text).map_err(|reason| cx.error(&path, reason))
}

/// `AWS_CONTAINER_CREDENTIALS_FULL_URI`, or `…_RELATIVE_URI` under the ECS agent, with
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (re-read at each fetch: EKS Pod Identity rotates
/// it) or `AWS_CONTAINER_AUTHORIZATION_TOKEN` as the `Authorization` value.
fn container_source(
    cx: &Resolver<'_>,
    field: &dyn Fn(&str) -> String,
) -> Result<Option<AwsCredentialSource>, ConfigError> {
    let env = cx.env();
    let path = field("aws_access_key_id");
    let uri = match (
        env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    ) {
        (Some(relative), _) => {
            let text = format!("{ECS_AGENT}/{}", relative.trim_start_matches('/'));
            http_url(&text).map_err(|reason| {
                cx.error(
                    &path,
                    format!("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: {reason}"),
                )
            })?
        }
        (None, Some(full)) => {
            let url = http_url(&full).map_err(|reason| {
                cx.error(
                    &path,
                    format!("AWS_CONTAINER_CREDENTIALS_FULL_URI: {reason}"),
                )
            })?;
            let host = url.host_str().unwrap_or_default();
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(name)) => name == "localhost",
                None => false,
            };
            if url.scheme() == "http" && !loopback && !CONTAINER_HTTP_HOSTS.contains(&host) {
                return Err(cx.error(
                    &path,
                    format!(
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI `{full}` must be https, or http to \
                         loopback or the ECS / EKS Pod Identity agent ({})",
                        CONTAINER_HTTP_HOSTS.join(", ")
                    ),
                ));
            }
            url
        }
        (None, None) => return Ok(None),
    };
    let authorization = match env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(file) => Some(SecretSource::File(PathBuf::from(file))),
        None => env
            .get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .map(|token| SecretSource::Value(SecretString::from(token))),
    };
    Ok(Some(AwsCredentialSource::Container { uri, authorization }))
}

fn http_url(text: &str) -> Result<Url, String> {
    let url =
        Url::parse(text.trim()).map_err(|err| format!("`{text}` is not a valid URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` must be an http:// or https:// URL"));
    }
    Ok(url)
}

/// A leading `~` is the home directory, as AWS's SDKs read `AWS_SHARED_CREDENTIALS_FILE`.
fn expand_home(path: &str, home: Option<String>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::profile_section;

    #[test]
    fn profiles_are_read_from_ini_sections() {
        let text = "\
# a comment
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key=secret/with=equals

[work]
; another comment
AWS_ACCESS_KEY_ID = AKIAWORK
aws_secret_access_key = work-secret
s3 =
  max_concurrent_requests = 20
aws_session_token = token

[ work ]
region = eu-west-1
";
        let default = profile_section(text, "default").unwrap();
        assert_eq!(
            default,
            [
                ("aws_access_key_id".to_owned(), "AKIADEFAULT"),
                ("aws_secret_access_key".to_owned(), "secret/with=equals"),
            ]
        );
        let work = profile_section(text, "work").unwrap();
        assert_eq!(
            work,
            [
                ("aws_access_key_id".to_owned(), "AKIAWORK"),
                ("aws_secret_access_key".to_owned(), "work-secret"),
                ("s3".to_owned(), ""),
                ("aws_session_token".to_owned(), "token"),
                ("region".to_owned(), "eu-west-1"),
            ]
        );
        assert!(profile_section(text, "missing").is_none());
        assert!(profile_section("", "default").is_none());
    }
}
