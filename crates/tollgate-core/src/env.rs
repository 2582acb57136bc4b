//! Environment lookups for config: the config's own `environment_variables` section overlays the
//! process environment, as LiteLLM does by writing that section into `os.environ` at start-up.

use std::collections::HashMap;

/// The prefix LiteLLM uses for "read this value from the environment".
pub const ENV_REFERENCE_PREFIX: &str = "os.environ/";

#[derive(Debug, Clone, Default)]
pub struct Env {
    overlay: HashMap<String, String>,
}

impl Env {
    pub fn new(overlay: HashMap<String, String>) -> Self {
        Env { overlay }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.overlay
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|value| !value.is_empty())
    }

    /// The first of `names` that is set.
    pub fn first_of(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|name| self.get(name))
    }
}

/// If `value` is an `os.environ/NAME` reference, the variable's name.
pub fn env_reference(value: &str) -> Option<&str> {
    value.strip_prefix(ENV_REFERENCE_PREFIX).map(str::trim)
}
