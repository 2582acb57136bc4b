//! Deployments added at run time through `/model/new`: kept in the store with their provider
//! secrets sealed, read exactly as the config file's `model_list` entries are, and joined to
//! the router's groups without a restart (other replicas take them from the change feed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use tollgate_core::config::{ConfigError, DeploymentReader};
use tollgate_core::env::Env;
use tollgate_core::error::GatewayError;
use tollgate_store::{ModelRecord, SECRET_FIELDS, SecretBox};
use tollgate_upstream::{ClientPool, Deployment};

use crate::app::{Gateway, ModelCatalog};

/// Why a stored deployment cannot serve.
#[derive(Debug)]
pub(crate) enum Unservable {
    /// A field is wrong, as the config file's reader says.
    Field(ConfigError),
    /// Secrets are given but no salt key to seal them with, or sealed under another key.
    Secrets(String),
}

impl std::fmt::Display for Unservable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unservable::Field(err) => write!(f, "`{}`: {}", err.path, err.message),
            Unservable::Secrets(reason) => f.write_str(reason),
        }
    }
}

impl From<Unservable> for GatewayError {
    /// A deployment given to the API that cannot serve: the caller's 400, naming the field.
    fn from(unservable: Unservable) -> GatewayError {
        let param = match &unservable {
            Unservable::Field(err) if !err.path.is_empty() => err.path.clone(),
            _ => "litellm_params".to_owned(),
        };
        GatewayError::invalid_request(format!("Invalid deployment: {unservable}."))
            .with_param(param)
            .with_code("invalid_value")
    }
}

impl From<Unservable> for crate::error::ApiError {
    fn from(unservable: Unservable) -> Self {
        GatewayError::from(unservable).into()
    }
}

pub(crate) struct RuntimeModels {
    reader: DeploymentReader,
    pool: ClientPool,
    secrets: Option<SecretBox>,
    /// The deployments that came from the store (the rest are the config file's): id → the
    /// `updated_at` of the record being served.
    stored: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for RuntimeModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeModels").finish_non_exhaustive()
    }
}

impl RuntimeModels {
    /// Secrets are sealed under `TOLLGATE_SALT_KEY`, else LiteLLM's `LITELLM_SALT_KEY`, else
    /// (as LiteLLM does) the master key.
    pub(crate) fn new(
        reader: DeploymentReader,
        pool: ClientPool,
        env: &Env,
        master_key: Option<&SecretString>,
    ) -> Self {
        let salt = env
            .get("TOLLGATE_SALT_KEY")
            .or_else(|| env.get("LITELLM_SALT_KEY"))
            .or_else(|| master_key.map(|key| key.expose_secret().to_owned()));
        RuntimeModels {
            reader,
            pool,
            secrets: salt.as_deref().map(SecretBox::new),
            stored: Mutex::default(),
        }
    }

    /// `params` as stored: secret fields sealed.
    pub(crate) fn sealed(
        &self,
        params: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Unservable> {
        match &self.secrets {
            Some(secrets) => Ok(secrets.seal_fields(params)),
            None if params.keys().any(|name| SECRET_FIELDS.contains(&name.as_str())) => {
                Err(Unservable::Secrets(
                    "Provider secrets can be stored only with TOLLGATE_SALT_KEY (or a master key) set."
                        .into(),
                ))
            }
            None => Ok(params.clone()),
        }
    }

    /// The deployment a stored record describes.
    pub(crate) fn build(&self, record: &ModelRecord) -> Result<Deployment, Unservable> {
        let params = match &self.secrets {
            Some(secrets) => secrets
                .open_fields(&record.litellm_params)
                .map_err(|err| Unservable::Secrets(err.to_string()))?,
            None => record.litellm_params.clone(),
        };
        let mut info = record.model_info.clone();
        info.insert("id".into(), json!(record.model_id));
        let entry = json!({
            "model_name": record.model_name,
            "litellm_params": params,
            "model_info": info,
        });
        let config = self.reader.read(entry).map_err(Unservable::Field)?;
        Deployment::build(config, "", &self.pool, self.reader.file()).map_err(Unservable::Field)
    }

    pub(crate) fn is_stored(&self, id: &str) -> bool {
        self.stored().contains_key(id)
    }

    /// Whether the record changed at `updated_at` is the one in service (so rebuilding it
    /// would only reset its state).
    pub(crate) fn is_current(&self, id: &str, updated_at: i64) -> bool {
        self.stored().get(id) == Some(&updated_at)
    }

    /// Puts a stored deployment (its record changed at `updated_at`) into service, in place
    /// of any with its id; `false` when its id is a config file deployment's, or its name a
    /// wildcard.
    pub(crate) fn serve(&self, gateway: &Gateway, deployment: Deployment, updated_at: i64) -> bool {
        let id = deployment.config.id.clone();
        let served = if self.is_stored(&id) {
            gateway.router.replace(deployment)
        } else {
            gateway.router.add(deployment)
        };
        if served {
            self.stored().insert(id, updated_at);
            refresh_catalog(gateway);
        }
        served
    }

    /// Puts a stored record into service unless it already is, logging why one cannot serve
    /// (it is skipped: a stored deployment never stops the gateway).
    pub(crate) fn take_in(&self, gateway: &Gateway, record: &ModelRecord) {
        if self.is_current(&record.model_id, record.updated_at) {
            return;
        }
        match self.build(record) {
            Ok(deployment) => {
                if !self.serve(gateway, deployment, record.updated_at) {
                    tracing::error!(model_id = %record.model_id, "a stored deployment's id or name clashes with the config file's; skipped");
                }
            }
            Err(err) => {
                tracing::error!(model_id = %record.model_id, reason = %err, "a stored deployment cannot serve; skipped");
            }
        }
    }

    /// Takes a stored deployment out of service.
    pub(crate) fn withdraw(&self, gateway: &Gateway, id: &str) {
        if self.stored().remove(id).is_some() {
            gateway.router.remove(id);
            refresh_catalog(gateway);
        }
    }

    fn stored(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.stored.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `/v1/models` again, after the groups changed.
fn refresh_catalog(gateway: &Gateway) {
    gateway
        .models
        .store(Arc::new(ModelCatalog::new(&gateway.router)));
}
