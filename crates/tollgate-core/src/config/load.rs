//! Reading config files: YAML parsing with line/column errors, and LiteLLM's `include`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::raw::RawConfig;
use super::{Config, ConfigError, validate};

/// Reads, merges and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| ConfigError::new(path, "", format!("cannot read the file: {err}")))?;
    load_str(&text, path)
}

/// Validates config text as if read from `path` (which anchors relative `include` paths).
pub fn load_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut raw = parse(text, path)?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut seen = HashSet::from([path.to_path_buf()]);
    resolve_includes(&mut raw, &base_dir, path, &mut seen)?;
    validate::validate(raw, path)
}

fn parse(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        // The path ends in `?` where the parser lost track (inside broken syntax).
        let field = err.path().to_string();
        let field = field.split(".?").next().unwrap_or_default();
        let field = if field == "." { "" } else { field };
        let message = err.into_inner().to_string();
        // serde_yaml starts some messages with (part of) the path already given.
        let message = match message.split_once(": ") {
            Some((prefix, rest)) if !prefix.is_empty() && field.starts_with(prefix) => rest,
            _ => &message,
        };
        ConfigError::new(path, field, readable_type_names(message))
    })
}

/// serde names the Rust type it expected (`expected struct RawLitellmParams`); a config
/// author expects to hear about YAML shapes.
fn readable_type_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("struct Raw") {
        out.push_str(&rest[..at]);
        out.push_str("a mapping");
        let after = &rest[at + "struct Raw".len()..];
        rest = after.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    }
    out.push_str(rest);
    out
}

/// Merges each included file into `raw`, in order, as LiteLLM does: a list extends the list
/// already there (so `model_list` entries add up); any other key replaces the value already
/// there. Paths are relative to the including file; includes may nest, but not in a cycle.
fn resolve_includes(
    raw: &mut RawConfig,
    base_dir: &Path,
    including_file: &Path,
    seen: &mut HashSet<PathBuf>,
) -> Result<(), ConfigError> {
    let Some(includes) = raw.include.take() else {
        return Ok(());
    };
    for (index, include) in includes.into_iter().enumerate() {
        let field = format!("include[{index}]");
        let path = base_dir.join(&include);
        if !seen.insert(path.clone()) {
            return Err(ConfigError::new(
                including_file,
                field,
                format!("`{include}` is included more than once (or includes itself)"),
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|err| {
            ConfigError::new(
                including_file,
                field.as_str(),
                format!("cannot read included file `{}`: {err}", path.display()),
            )
        })?;
        let mut included = parse(&text, &path)?;
        let nested_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        resolve_includes(&mut included, &nested_dir, &path, seen)?;
        merge(raw, included);
    }
    Ok(())
}

fn merge(into: &mut RawConfig, from: RawConfig) {
    match (&mut into.model_list, from.model_list) {
        (Some(existing), Some(more)) => existing.extend(more),
        (slot, Some(more)) => *slot = Some(more),
        (_, None) => {}
    }
    replace_if_some(&mut into.general_settings, from.general_settings);
    replace_if_some(&mut into.router_settings, from.router_settings);
    replace_if_some(&mut into.litellm_settings, from.litellm_settings);
    replace_if_some(&mut into.environment_variables, from.environment_variables);
    replace_if_some(&mut into.tollgate_settings, from.tollgate_settings);
    for (key, value) in from.other {
        match (into.other.get_mut(&key), value) {
            (
                Some(serde_yaml_ng::Value::Sequence(existing)),
                serde_yaml_ng::Value::Sequence(more),
            ) => existing.extend(more),
            (_, value) => {
                into.other.insert(key, value);
            }
        }
    }
}

fn replace_if_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}
