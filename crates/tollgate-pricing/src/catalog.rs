//! Where prices come from: the built-in table (`prices.yaml`, written from the providers'
//! price pages), optionally overlaid by a price map in LiteLLM's JSON format, and found for a
//! deployment by its `provider/model` however the provider spells the model's version.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::money::Rate;
use crate::price::{ModelPrice, PerSecond, PriceMode, Rates, Tier};

const BUILTIN: &str = include_str!("../prices.yaml");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}: `{model}`: {reason}")]
    Entry {
        path: String,
        model: String,
        reason: String,
    },
}

/// Prices by `provider/model` (lower case), each alias an entry of its own.
#[derive(Default)]
pub struct PriceCatalog {
    /// From a `pricing_file`; consulted first, and by bare model name too, as LiteLLM's map
    /// mostly names models without their provider.
    overlay: HashMap<String, Arc<ModelPrice>>,
    builtin: Option<&'static HashMap<String, Arc<ModelPrice>>>,
}

impl std::fmt::Debug for PriceCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriceCatalog")
            .field("from_pricing_file", &self.overlay.len())
            .field("builtin", &self.builtin.map_or(0, HashMap::len))
            .finish()
    }
}

static BUILTIN_TABLE: LazyLock<HashMap<String, Arc<ModelPrice>>> = LazyLock::new(|| {
    read_builtin(BUILTIN).unwrap_or_else(|err| panic!("the built-in price table is invalid: {err}"))
});

impl PriceCatalog {
    /// The built-in table alone.
    pub fn builtin() -> PriceCatalog {
        PriceCatalog {
            overlay: HashMap::new(),
            builtin: Some(&BUILTIN_TABLE),
        }
    }

    /// The built-in table under a LiteLLM-format price map read from `path`.
    pub fn with_litellm_file(path: &Path) -> Result<PriceCatalog, CatalogError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| CatalogError::Unreadable {
            path: shown.clone(),
            reason: err.to_string(),
        })?;
        let map: Map<String, Value> =
            serde_json::from_str(&text).map_err(|err| CatalogError::Unreadable {
                path: shown.clone(),
                reason: format!("not a JSON object of models: {err}"),
            })?;
        let mut catalog = PriceCatalog::builtin();
        for (model, entry) in map {
            // LiteLLM's map documents its own format in a `sample_spec` entry.
            if model == "sample_spec" {
                continue;
            }
            let Value::Object(fields) = entry else {
                return Err(CatalogError::Entry {
                    path: shown,
                    model,
                    reason: "is not an object".into(),
                });
            };
            let price = match ModelPrice::from_litellm(None, &fields) {
                Ok(Some(price)) => Arc::new(price),
                Ok(None) => continue,
                Err(reason) => {
                    return Err(CatalogError::Entry {
                        path: shown,
                        model,
                        reason,
                    });
                }
            };
            let key = model.to_ascii_lowercase();
            if let Some(provider) = fields.get("litellm_provider").and_then(Value::as_str)
                && !key.starts_with(&format!("{provider}/"))
            {
                catalog
                    .overlay
                    .insert(format!("{provider}/{key}"), price.clone());
            }
            catalog.overlay.insert(key, price);
        }
        Ok(catalog)
    }

    /// The price of `model` as served by `provider` (a LiteLLM prefix: `openai`, `azure`,
    /// `bedrock`…): the exact entry, else the same model without a date, region or route in
    /// its name, else the provider it resells (Azure → OpenAI, Vertex AI → Gemini or
    /// Anthropic).
    pub fn lookup(&self, provider: &str, model: &str) -> Option<Arc<ModelPrice>> {
        let model = model.to_ascii_lowercase();
        let names = model_spellings(&model);
        for provider in provider_chain(provider, &model) {
            for name in &names {
                let key = format!("{provider}/{name}");
                if let Some(price) = self.get(&key) {
                    return Some(price);
                }
            }
        }
        names
            .iter()
            .find_map(|name| self.overlay.get(name).cloned())
    }

    fn get(&self, key: &str) -> Option<Arc<ModelPrice>> {
        self.overlay
            .get(key)
            .or_else(|| self.builtin.and_then(|table| table.get(key)))
            .cloned()
    }

    /// How many models the built-in table prices (aliases not counted).
    pub fn builtin_models() -> usize {
        let mut distinct: Vec<*const ModelPrice> =
            BUILTIN_TABLE.values().map(Arc::as_ptr).collect();
        distinct.sort();
        distinct.dedup();
        distinct.len()
    }
}

/// The providers whose prices apply to `provider`'s `model`, in order.
fn provider_chain<'a>(provider: &'a str, model: &str) -> Vec<&'a str> {
    let resold = match provider {
        "azure" | "azure_ai" => Some("openai"),
        "vertex_ai" | "vertex_ai_beta" if model.contains("claude") => Some("anthropic"),
        "vertex_ai" | "vertex_ai_beta" => Some("gemini"),
        "gemini" => Some("vertex_ai"),
        _ => None,
    };
    std::iter::once(provider).chain(resold).collect()
}

/// `model` and the spellings of the same model without what providers add to its name: a
/// Bedrock route (`converse/`) or cross-region prefix (`us.`), a version date
/// (`-2024-08-06`, `-20241022`, Vertex's `@20241022`), a `-latest`.
fn model_spellings(model: &str) -> Vec<String> {
    let mut spellings = vec![model.to_owned()];
    let mut current = model;
    for route in ["converse/", "invoke/"] {
        if let Some(rest) = current.strip_prefix(route) {
            current = rest;
        }
    }
    for region in [
        "us.", "eu.", "apac.", "global.", "jp.", "au.", "us-gov.", "ca.",
    ] {
        if let Some(rest) = current.strip_prefix(region) {
            current = rest;
            break;
        }
    }
    let mut undated = current.to_owned();
    if let Some(at) = undated.find('@') {
        undated.truncate(at);
    }
    for suffix in ["-latest", "-preview"] {
        if let Some(rest) = undated.strip_suffix(suffix) {
            undated.truncate(rest.len());
        }
    }
    if let Some(rest) = strip_date(&undated) {
        undated.truncate(rest.len());
    }
    for name in [current.to_owned(), undated] {
        if !spellings.contains(&name) {
            spellings.push(name);
        }
    }
    spellings
}

/// `name` without a trailing `-YYYY-MM-DD` or `-YYYYMMDD` (and a Bedrock `-v1:0` after it).
fn strip_date(name: &str) -> Option<&str> {
    let is_digits = |text: &str| text.bytes().all(|b| b.is_ascii_digit());
    let without_version = match name.rfind("-v") {
        Some(at) if name[at + 2..].contains(':') => &name[..at],
        _ => name,
    };
    let (rest, date) = without_version.rsplit_once('-')?;
    if date.len() == 8 && is_digits(date) {
        return Some(rest);
    }
    // -YYYY-MM-DD
    let mut parts = without_version.rsplitn(4, '-');
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next()?;
    (year.len() == 4
        && month.len() == 2
        && day.len() == 2
        && is_digits(&[year, month, day].concat()))
    .then_some(rest)
}

/// One entry of `prices.yaml`: dollars per million tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuiltinEntry {
    #[serde(default)]
    mode: Option<String>,
    input: f64,
    #[serde(default)]
    output: Option<f64>,
    #[serde(default)]
    cache_read: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
    #[serde(default)]
    cache_write_1h: Option<f64>,
    #[serde(default)]
    reasoning: Option<f64>,
    #[serde(default)]
    long_context: Option<BuiltinTier>,
    #[serde(default)]
    max_input_tokens: Option<u64>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuiltinTier {
    above_input_tokens: u64,
    input: f64,
    #[serde(default)]
    output: Option<f64>,
    #[serde(default)]
    cache_read: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
    #[serde(default)]
    cache_write_1h: Option<f64>,
    #[serde(default)]
    reasoning: Option<f64>,
}

fn per_million(field: &str, value: f64) -> Result<Rate, String> {
    Rate::per_million_f64(value).ok_or_else(|| format!("`{field}` is not a price: {value}"))
}

fn optional_per_million(field: &str, value: Option<f64>) -> Result<Option<Rate>, String> {
    value.map(|value| per_million(field, value)).transpose()
}

fn read_builtin(text: &str) -> Result<HashMap<String, Arc<ModelPrice>>, String> {
    let entries: ordered::Ordered<BuiltinEntry> =
        serde_yaml_ng::from_str(text).map_err(|err| err.to_string())?;
    let mut table = HashMap::new();
    for (key, entry) in entries.0 {
        let fail = |reason: String| format!("`{key}`: {reason}");
        let Some((provider, _)) = key.split_once('/') else {
            return Err(fail("keys are `provider/model`".into()));
        };
        let mode = match entry.mode.as_deref() {
            None | Some("chat") => PriceMode::Chat,
            Some("embedding") => PriceMode::Embedding,
            Some(other) => return Err(fail(format!("unknown mode `{other}`"))),
        };
        let rates = Rates {
            input: per_million("input", entry.input).map_err(fail)?,
            output: optional_per_million("output", entry.output)
                .map_err(fail)?
                .unwrap_or(Rate::ZERO),
            cache_read: optional_per_million("cache_read", entry.cache_read).map_err(fail)?,
            cache_write: optional_per_million("cache_write", entry.cache_write).map_err(fail)?,
            cache_write_1h: optional_per_million("cache_write_1h", entry.cache_write_1h)
                .map_err(fail)?,
            reasoning: optional_per_million("reasoning", entry.reasoning).map_err(fail)?,
        };
        let long_context = match entry.long_context {
            Some(tier) => Some(Tier {
                above_input_tokens: tier.above_input_tokens,
                rates: Rates {
                    input: per_million("long_context.input", tier.input).map_err(fail)?,
                    output: optional_per_million("long_context.output", tier.output)
                        .map_err(fail)?
                        .unwrap_or(rates.output),
                    cache_read: optional_per_million("long_context.cache_read", tier.cache_read)
                        .map_err(fail)?
                        .or(rates.cache_read),
                    cache_write: optional_per_million("long_context.cache_write", tier.cache_write)
                        .map_err(fail)?
                        .or(rates.cache_write),
                    cache_write_1h: optional_per_million(
                        "long_context.cache_write_1h",
                        tier.cache_write_1h,
                    )
                    .map_err(fail)?
                    .or(rates.cache_write_1h),
                    reasoning: optional_per_million("long_context.reasoning", tier.reasoning)
                        .map_err(fail)?
                        .or(rates.reasoning),
                },
            }),
            None => None,
        };
        let price = Arc::new(ModelPrice {
            mode,
            rates,
            long_context,
            per_second: PerSecond::default(),
            max_input_tokens: entry.max_input_tokens,
            max_output_tokens: entry.max_output_tokens,
        });
        let names = std::iter::once(key.to_ascii_lowercase()).chain(
            entry
                .aliases
                .iter()
                .map(|alias| format!("{provider}/{}", alias.to_ascii_lowercase())),
        );
        for name in names {
            if table.insert(name.clone(), price.clone()).is_some() {
                return Err(format!("`{name}` is priced twice"));
            }
        }
    }
    Ok(table)
}

/// A YAML mapping read in file order (serde's maps are unordered), so duplicate-name errors
/// name the later entry.
mod ordered {
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

    pub(super) struct Ordered<T>(pub Vec<(String, T)>);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct OrderedVisitor<T>(std::marker::PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for OrderedVisitor<T> {
                type Value = Ordered<T>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a mapping of `provider/model` to prices")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<T>, A::Error> {
                    let mut entries = Vec::new();
                    while let Some(entry) = map.next_entry()? {
                        entries.push(entry);
                    }
                    Ok(Ordered(entries))
                }
            }
            deserializer.deserialize_map(OrderedVisitor(std::marker::PhantomData))
        }
    }
}

/// LiteLLM's price fields (per token), as its price map and `model_info` write them.
const LITELLM_FIELDS: &[&str] = &[
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
    "output_cost_per_reasoning_token",
    "input_cost_per_token_above_200k_tokens",
    "output_cost_per_token_above_200k_tokens",
    "cache_read_input_token_cost_above_200k_tokens",
    "cache_creation_input_token_cost_above_200k_tokens",
];

impl ModelPrice {
    /// `base` with LiteLLM's price fields in `fields` laid over it, field by field: what
    /// `model_info` overrides, or a LiteLLM price map entry (with `base` `None`). `None` when
    /// neither gives an input price. Errors name the field.
    pub fn from_litellm(
        base: Option<&ModelPrice>,
        fields: &Map<String, Value>,
    ) -> Result<Option<ModelPrice>, String> {
        let rate = |name: &str| -> Result<Option<Rate>, String> {
            match fields.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(number)) => Rate::per_unit(&number.to_string())
                    .map(Some)
                    .ok_or_else(|| format!("`{name}` must not be negative, got {number}")),
                Some(Value::String(text)) => Rate::per_unit(text)
                    .map(Some)
                    .ok_or_else(|| format!("`{name}` is not a price: `{text}`")),
                Some(other) => Err(format!("`{name}` must be a number, got {other}")),
            }
        };
        let count = |name: &str| -> Result<Option<u64>, String> {
            match fields.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value
                    .as_u64()
                    .or_else(|| value.as_f64().filter(|v| *v >= 0.0).map(|v| v as u64))
                    .map(Some)
                    .ok_or_else(|| format!("`{name}` must be a whole number, got {value}")),
            }
        };
        let given: Vec<Option<Rate>> = LITELLM_FIELDS
            .iter()
            .map(|name| rate(name))
            .collect::<Result<_, _>>()?;
        let [
            input,
            output,
            cache_read,
            cache_write,
            cache_write_1h,
            reasoning,
            long_input,
            long_output,
            long_cache_read,
            long_cache_write,
        ] = given[..]
        else {
            unreachable!("one value per field")
        };
        let input_per_second = rate("input_cost_per_second")?;
        let output_per_second = rate("output_cost_per_second")?;
        let timed = input_per_second.is_some() || output_per_second.is_some();
        let mut price = match (base, input) {
            (Some(base), _) => base.clone(),
            (None, Some(_)) => ModelPrice::default(),
            (None, None) if timed => ModelPrice::default(),
            (None, None) => return Ok(None),
        };
        set_some(&mut price.per_second.input, input_per_second);
        set_some(&mut price.per_second.output, output_per_second);
        if let Some(Value::String(mode)) = fields.get("mode") {
            price.mode = match mode.as_str() {
                "embedding" => PriceMode::Embedding,
                _ => PriceMode::Chat,
            };
        }
        let rates = &mut price.rates;
        set(&mut rates.input, input);
        set(&mut rates.output, output);
        set_some(&mut rates.cache_read, cache_read);
        set_some(&mut rates.cache_write, cache_write);
        set_some(&mut rates.cache_write_1h, cache_write_1h);
        set_some(&mut rates.reasoning, reasoning);
        if long_input.is_some() || long_output.is_some() {
            let base_rates = price.rates;
            let tier = price.long_context.get_or_insert(Tier {
                above_input_tokens: 200_000,
                rates: base_rates,
            });
            set(&mut tier.rates.input, long_input);
            set(&mut tier.rates.output, long_output);
            set_some(&mut tier.rates.cache_read, long_cache_read);
            set_some(&mut tier.rates.cache_write, long_cache_write);
        }
        if let Some(tokens) = count("max_input_tokens")? {
            price.max_input_tokens = Some(tokens);
        }
        // LiteLLM's `max_tokens` is the output limit where `max_output_tokens` is absent.
        if let Some(tokens) = count("max_output_tokens")?.or(count("max_tokens")?) {
            price.max_output_tokens = Some(tokens);
        }
        Ok(Some(price))
    }
}

fn set(slot: &mut Rate, value: Option<Rate>) {
    if let Some(value) = value {
        *slot = value;
    }
}

fn set_some(slot: &mut Option<Rate>, value: Option<Rate>) {
    if value.is_some() {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_reads() {
        assert!(PriceCatalog::builtin_models() > 50);
    }

    #[test]
    fn version_spellings_find_the_model() {
        let spellings = model_spellings("us.anthropic.claude-3-5-sonnet-20241022-v2:0");
        assert!(spellings.contains(&"anthropic.claude-3-5-sonnet-20241022-v2:0".to_owned()));
        assert!(spellings.contains(&"anthropic.claude-3-5-sonnet".to_owned()));
        assert_eq!(
            model_spellings("claude-sonnet-4-5@20250929"),
            ["claude-sonnet-4-5@20250929", "claude-sonnet-4-5"]
        );
        assert_eq!(
            model_spellings("gpt-4o-2024-08-06"),
            ["gpt-4o-2024-08-06", "gpt-4o"]
        );
        assert_eq!(model_spellings("gpt-4o"), ["gpt-4o"]);
        assert_eq!(model_spellings("o3-mini"), ["o3-mini"]);
    }

    #[test]
    fn litellm_fields_override_field_by_field() {
        let base = ModelPrice {
            rates: Rates {
                input: Rate::from_picos(3_000_000),
                output: Rate::from_picos(15_000_000),
                cache_read: Some(Rate::from_picos(300_000)),
                ..Rates::default()
            },
            ..ModelPrice::default()
        };
        let fields: Map<String, Value> =
            serde_json::from_str(r#"{"output_cost_per_token": 1e-05, "max_tokens": 8192}"#)
                .unwrap();
        let price = ModelPrice::from_litellm(Some(&base), &fields)
            .unwrap()
            .unwrap();
        assert_eq!(price.rates.input, base.rates.input);
        assert_eq!(price.rates.output, Rate::from_picos(10_000_000));
        assert_eq!(price.rates.cache_read, base.rates.cache_read);
        assert_eq!(price.max_output_tokens, Some(8192));

        let bad: Map<String, Value> =
            serde_json::from_str(r#"{"input_cost_per_token": -1}"#).unwrap();
        let err = ModelPrice::from_litellm(None, &bad).unwrap_err();
        assert!(err.contains("input_cost_per_token"), "{err}");
        let none: Map<String, Value> = serde_json::from_str(r#"{"mode": "chat"}"#).unwrap();
        assert_eq!(ModelPrice::from_litellm(None, &none), Ok(None));

        // Priced by the second alone (a hosted endpoint): a price, tokens free.
        let timed: Map<String, Value> =
            serde_json::from_str(r#"{"output_cost_per_second": 0.000583}"#).unwrap();
        let price = ModelPrice::from_litellm(None, &timed).unwrap().unwrap();
        assert_eq!(price.per_second.output, Rate::per_unit("0.000583"));
        assert_eq!(price.per_second.input, None);
        assert_eq!(price.rates.input, Rate::ZERO);
        let bad: Map<String, Value> =
            serde_json::from_str(r#"{"input_cost_per_second": "fast"}"#).unwrap();
        let err = ModelPrice::from_litellm(None, &bad).unwrap_err();
        assert!(err.contains("input_cost_per_second"), "{err}");
    }
}
