//! The gateway application: shared state and the HTTP routes.
//!
//! A request passes through these layers, in order:
//!
//! 1. **Request context** (`request_context`): the client's `x-request-id` is kept (or one is
//!    minted) and echoed on the response; routes other than inference are access-logged here.
//! 2. **Route**: inference in OpenAI's format (`/v1/chat/completions`, `/v1/completions`,
//!    `/v1/embeddings`) and Anthropic's (`/v1/messages`, `/v1/messages/count_tokens`), models,
//!    health. Every path also answers without its `/v1` prefix. Unknown paths and methods get
//!    OpenAI-shaped 404 / 405 errors.
//! 3. **Pipeline** (`pipeline::handle`) for inference:
//!    authenticate → read the body within the size limit → inspect the fields the gateway acts
//!    on → check the key may use the model → take the request's place under its rate limits
//!    and reserve its worst case against its budgets (in memory, or in the Redis the replicas
//!    share) → pick a deployment of the model group → convert (`exchange`): edit the body in
//!    place when client and provider share a format, else translate through the canonical
//!    form → send to the provider with its timeouts → relay the answer, whole or streamed, in
//!    the client's format, reading the usage on the way.
//! 4. **Access log**: one line per request, written when its response (or stream) ends; the
//!    spend record is journaled and the budgets settled then.
//!
//! Nothing on this path waits on a database, nor holds a lock across an await: limits and
//! budgets lock their counters for a few comparisons, or, with a shared Redis, cost one round
//! trip for a request that has any.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::Router as HttpRouter;
use axum::extract::{Request, State};
use axum::http::HeaderName;
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use tokio::sync::Notify;
use tollgate_core::calendar::{SystemClock, WallClock};
use tollgate_core::config::{Config, ConfigError, HealthCheckSettings, RedisSettings, StoreSync};
use tollgate_core::endpoint::Endpoint;
use tollgate_core::error::GatewayError;
use tollgate_policy::auth::Authenticator;
use tollgate_policy::budgets::BudgetBook;
use tollgate_policy::keys::now_ms;
use tollgate_policy::limits::RateLimiter;
use tollgate_policy::shared::SharedCounters;
use tollgate_router::Router;
use tollgate_store::{Journal, ModelRecord, Store, StoreError};
use tollgate_upstream::media::MediaFetcher;
use tollgate_upstream::{ClientPool, Deployment, Webhook};
use tollgate_wire::openai::{Model, ModelList};

use crate::error::ApiError;
use crate::pipeline;
use crate::request_context::request_context;
use crate::responses::{self, ResponseStore};
use crate::routes::{
    audit, budgets, customers, deployments, health, keys, models, organizations, spend, tags,
    teams, users,
};
use crate::runtime_models::RuntimeModels;
use crate::spend::SpendLedger;

/// The shortest a request's shared marks (rate-limit in-flight, budget reservation) live if
/// their replica dies holding them.
const MIN_SHARED_LEASE: Duration = Duration::from_secs(3600);

/// How long a stopping worker waits for its settlements to reach Redis.
const SHARED_WORK_GRACE: Duration = Duration::from_secs(5);

/// Everything a request needs, built once from the config.
#[derive(Debug)]
pub struct Gateway {
    pub(crate) router: Router,
    /// Deployments added through the management API.
    pub(crate) runtime_models: RuntimeModels,
    pub(crate) auth: Authenticator,
    /// Rate limits of keys, users, teams, team members and end users.
    pub(crate) limits: RateLimiter,
    /// Budgets of keys, users, teams, team members, organisations and end users.
    pub(crate) budgets: BudgetBook,
    /// The Redis replicas share limits and budgets through, once connected (`with_store`).
    pub(crate) shared: Option<Arc<SharedCounters>>,
    redis: Option<RedisSettings>,
    /// How long a request's shared marks outlive a replica that died holding them.
    shared_lease: Duration,
    /// The threads that call Redis: the workers, then the background runtime's.
    threads: usize,
    /// Where budget alerts are posted, if anywhere.
    pub(crate) alerts: Option<Webhook>,
    /// Virtual keys and the rest of the management state; `None` only when run without one.
    pub(crate) store: Option<Store>,
    /// Spend records on their way to the store; `None` only when run without one.
    pub(crate) spend: Option<SpendLedger>,
    pub(crate) store_sync: StoreSync,
    pub(crate) max_request_body_bytes: usize,
    /// Swapped whole when deployments are added or removed at run time.
    pub(crate) models: ArcSwap<ModelCatalog>,
    /// Fetches image URLs for providers that need the bytes inline.
    pub(crate) media: MediaFetcher,
    /// Responses API responses, for retrieval and `previous_response_id`.
    pub(crate) responses: Arc<ResponseStore>,
    /// How long the store keeps them.
    pub(crate) responses_retention: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) health_checks: HealthCheckSettings,
    /// The latest round of background health checks, for `GET /health`.
    latest_health: Mutex<Option<Arc<serde_json::Value>>>,
    draining: AtomicBool,
    drain_started: Notify,
    in_flight: AtomicUsize,
}

/// `/v1/models` bodies, rendered at start-up and again when deployments change.
#[derive(Debug)]
pub(crate) struct ModelCatalog {
    /// When the catalogue was made (the models' `created`).
    pub(crate) created: u64,
    pub(crate) entries: Vec<Model>,
    pub(crate) list: Bytes,
    pub(crate) by_id: HashMap<String, Bytes>,
}

impl Gateway {
    /// Builds the gateway from a validated config: provider clients, deployments, groups.
    /// `workers`: how many worker threads will serve it (each gets its own provider
    /// connections; see `tollgate_upstream::worker`).
    pub fn new(config: Config, workers: usize) -> Result<Self, ConfigError> {
        let pool = ClientPool::new(&config.upstream, workers, &config.source)?;
        let key_header = config
            .key_header_name
            .as_deref()
            .map(|name| {
                HeaderName::try_from(name.to_ascii_lowercase()).map_err(|_| {
                    ConfigError::new(
                        &config.source,
                        "general_settings.litellm_key_header_name",
                        format!("`{name}` is not a valid header name"),
                    )
                })
            })
            .transpose()?;
        let auth = Authenticator::new(config.master_key.as_ref(), key_header);
        // Longer than any request may take: its deadline is its deployment's timeout, and a
        // request may try several deployments.
        let longest_timeout = config
            .deployments
            .iter()
            .map(|deployment| deployment.timeout)
            .max()
            .unwrap_or_default();
        let shared_lease = (longest_timeout * 4).max(MIN_SHARED_LEASE);
        if let Some(redis) = &config.redis {
            SharedCounters::check(redis)
                .map_err(|reason| ConfigError::new(&config.source, redis.source, reason))?;
        }
        let deployments = config
            .deployments
            .into_iter()
            .enumerate()
            .map(|(index, deployment)| {
                let entry = format!("model_list[{index}]");
                Deployment::build(deployment, &entry, &pool, &config.source)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let router = Router::new(deployments, config.routing.clone());
        let models = ArcSwap::from_pointee(ModelCatalog::new(&router));
        let media = pool.media_fetcher(&config.media);
        let alerts = config
            .alert_webhook
            .as_ref()
            .map(|url| pool.webhook(url))
            .transpose()
            .map_err(|reason| {
                ConfigError::new(
                    &config.source,
                    "tollgate_settings.alert_webhook_url",
                    reason,
                )
            })?;
        let runtime_models = RuntimeModels::new(
            config.deployment_reader,
            pool,
            &config.env,
            config.master_key.as_ref(),
        );
        Ok(Gateway {
            router,
            runtime_models,
            auth,
            limits: RateLimiter::default(),
            budgets: BudgetBook::new(
                Arc::new(SystemClock),
                config.budgets.exceeded_status,
                config.budgets.alert_percent,
            ),
            shared: None,
            redis: config.redis,
            shared_lease,
            threads: workers + 1,
            alerts,
            store: None,
            spend: None,
            store_sync: config.store_sync,
            max_request_body_bytes: config.max_request_body_bytes,
            models,
            media,
            responses: Arc::new(ResponseStore::default()),
            responses_retention: config.responses_retention,
            drain_timeout: config.drain_timeout,
            health_checks: config.health_checks.clone(),
            latest_health: Mutex::new(None),
            draining: AtomicBool::new(false),
            drain_started: Notify::new(),
            in_flight: AtomicUsize::new(0),
        })
    }

    pub(crate) fn latest_health(&self) -> Option<Arc<serde_json::Value>> {
        self.latest_health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn set_latest_health(&self, report: serde_json::Value) {
        *self
            .latest_health
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(report));
    }

    /// Serves the management API from `store`, and what it holds from memory: keys, teams,
    /// users, organisations and end users, and the deployments added at run time. Spend
    /// records go through `journal` into it.
    pub async fn with_store(self, store: Store, journal: Journal) -> Result<Self, StoreError> {
        let gateway = self.share_counters();
        gateway.load_store(store, journal).await
    }

    /// Counts limits and budgets in the configured Redis with the other replicas (connected
    /// on first use, on the runtime this is called on).
    fn share_counters(self) -> Self {
        let Some(settings) = &self.redis else {
            return self;
        };
        match SharedCounters::connect(settings, self.shared_lease, self.threads) {
            Ok(shared) => {
                tracing::info!(redis = %shared.shown(), "rate limits and budgets are shared with the other replicas through Redis");
                Gateway {
                    limits: self.limits.shared(shared.clone()),
                    budgets: self.budgets.shared(shared.clone()),
                    shared: Some(shared),
                    ..self
                }
            }
            Err(reason) => {
                tracing::error!(%reason, "cannot use the configured Redis: this replica counts rate limits and budgets on its own");
                self
            }
        }
    }

    async fn load_store(self, store: Store, journal: Journal) -> Result<Self, StoreError> {
        let started = now_ms();
        let directory = &self.auth.directory;
        directory.load(&store).await?;
        let models = store.all::<ModelRecord>().await?;
        for record in &models {
            self.runtime_models.take_in(&self, record);
        }
        // Changes made while this was read are caught by the first sync's overlap.
        directory
            .freshness
            .bound(started, self.store_sync.max_staleness);
        tracing::info!(
            virtual_keys = directory.keys.len(),
            teams = directory.teams.len(),
            users = directory.users.len(),
            organizations = directory.organizations.len(),
            end_users = directory.customers.len(),
            stored_deployments = models.len(),
            "store loaded"
        );
        // Records a killed process left behind count towards budgets: store them first.
        let ledger = SpendLedger::new(journal, store.clone());
        match ledger.flush().await {
            Ok(drained) if drained.inserted > 0 => tracing::info!(
                records = drained.inserted,
                "stored the spend records the previous run left in the journal"
            ),
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "cannot store the spend journal's records yet; budgets count what the store has")
            }
        }
        let budgeted = crate::budgets::load(&self, &store).await?;
        if budgeted > 0 {
            tracing::info!(
                budgets = budgeted,
                "budgets loaded with their spend this period"
            );
        }
        Ok(Gateway {
            spend: Some(ledger),
            responses: Arc::new(ResponseStore::kept_in(store.clone())),
            store: Some(store),
            ..self
        })
    }

    /// Reads wall-clock time from `clock` for budgets and their resets (tests move it across
    /// period boundaries). Call before `with_store`.
    pub fn with_clock(self, clock: Arc<dyn WallClock>) -> Self {
        Gateway {
            budgets: self.budgets.with_clock(clock),
            ..self
        }
    }

    /// Waits, briefly, for what this thread's last requests must still tell the shared Redis
    /// (settlements, releases): a worker calls it once it has drained, before it stops.
    pub async fn finish_shared_work(&self) {
        if let Some(shared) = &self.shared {
            shared.finish_pending(SHARED_WORK_GRACE).await;
        }
    }

    /// Whether the gateway accepts requests without a key (no master key configured).
    pub fn is_open(&self) -> bool {
        self.auth.is_open()
    }

    /// Stops taking new work: readiness turns 503 so load balancers drain this instance.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.drain_started.notify_waiters();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Resolves once `start_draining` has been called.
    pub async fn draining_started(&self) {
        let notified = self.drain_started.notified();
        if self.is_draining() {
            return;
        }
        notified.await;
    }

    /// How long in-flight work may run after shutdown begins.
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
    }

    /// Inference requests currently being served, streams included.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn in_flight_counter(&self) -> &AtomicUsize {
        &self.in_flight
    }

    /// Moves every spend record journaled so far into the store (at shutdown, and for tests
    /// that read spend right after their requests).
    pub async fn flush_spend(&self) -> Result<(), tollgate_store::JournalError> {
        if let Some(ledger) = &self.spend {
            ledger.flush().await?;
        }
        Ok(())
    }
}

impl ModelCatalog {
    pub(crate) fn new(router: &Router) -> Self {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // Groups, then the aliases not marked `hidden`.
        let groups = router.groups();
        let entries: Vec<Model> = groups
            .iter()
            .map(|group| (group.name.as_str(), group.clone()))
            .chain(router.listed_aliases())
            .map(|(name, group)| Model {
                id: name.to_owned(),
                object: "model".into(),
                created,
                owned_by: group.first().config.provider.prefix.into(),
            })
            .collect();
        let by_id = entries
            .iter()
            .map(|model| {
                (
                    model.id.clone(),
                    Bytes::from(serde_json::to_vec(model).expect("serialisable")),
                )
            })
            .collect();
        let list = ModelList {
            object: "list".into(),
            data: entries,
        };
        ModelCatalog {
            created,
            list: Bytes::from(serde_json::to_vec(&list).expect("serialisable")),
            entries: list.data,
            by_id,
        }
    }
}

/// The HTTP application.
pub fn app(gateway: Arc<Gateway>) -> HttpRouter {
    let inference = |endpoint: Endpoint| {
        post(
            move |State(gateway): State<Arc<Gateway>>, request: Request| async move {
                pipeline::handle(&gateway, endpoint, request).await
            },
        )
    };
    HttpRouter::new()
        .route("/v1/chat/completions", inference(Endpoint::ChatCompletions))
        .route("/chat/completions", inference(Endpoint::ChatCompletions))
        .route("/v1/completions", inference(Endpoint::Completions))
        .route("/completions", inference(Endpoint::Completions))
        .route("/v1/embeddings", inference(Endpoint::Embeddings))
        .route("/embeddings", inference(Endpoint::Embeddings))
        .route("/v1/messages", inference(Endpoint::Messages))
        .route("/messages", inference(Endpoint::Messages))
        .route(
            "/v1/messages/count_tokens",
            inference(Endpoint::CountTokens),
        )
        .route("/messages/count_tokens", inference(Endpoint::CountTokens))
        .route("/v1/responses", inference(Endpoint::Responses))
        .route("/responses", inference(Endpoint::Responses))
        .route(
            "/v1/responses/{id}",
            get(responses::retrieve).delete(responses::delete),
        )
        .route(
            "/responses/{id}",
            get(responses::retrieve).delete(responses::delete),
        )
        .route(
            "/v1/responses/{id}/input_items",
            get(responses::input_items),
        )
        .route("/responses/{id}/input_items", get(responses::input_items))
        .route("/v1/models", get(models::list))
        .route("/models", get(models::list))
        .route("/v1/models/{*id}", get(models::retrieve))
        .route("/models/{*id}", get(models::retrieve))
        .route("/key/generate", post(keys::generate))
        .route("/key/info", get(keys::info))
        .route("/key/list", get(keys::list))
        .route("/audit", get(audit::list))
        .route("/budget/new", post(budgets::new))
        .route("/budget/update", post(budgets::update))
        .route("/budget/info", get(budgets::info).post(budgets::info))
        .route("/budget/list", get(budgets::list))
        .route("/budget/delete", post(budgets::delete))
        .route("/tag/new", post(tags::new))
        .route("/tag/update", post(tags::update))
        .route("/tag/info", get(tags::info).post(tags::info))
        .route("/tag/list", get(tags::list))
        .route("/tag/delete", post(tags::delete))
        .route("/spend/logs", get(spend::logs))
        .route("/global/spend/report", get(spend::report))
        .route("/spend/calculate", post(spend::calculate))
        .route("/model/new", post(deployments::new))
        .route("/model/update", post(deployments::update))
        .route("/model/delete", post(deployments::delete))
        .route("/model/info", get(deployments::info))
        .route("/v1/model/info", get(deployments::info))
        .route("/audit/{id}", get(audit::info))
        .route("/key/update", post(keys::update))
        .route("/key/delete", post(keys::delete))
        .route("/key/block", post(keys::block))
        .route("/key/unblock", post(keys::unblock))
        .route("/key/regenerate", post(keys::regenerate))
        .route("/key/{key}/regenerate", post(keys::regenerate))
        .route("/team/new", post(teams::new))
        .route("/team/update", post(teams::update))
        .route("/team/info", get(teams::info))
        .route("/team/list", get(teams::list))
        .route("/team/delete", post(teams::delete))
        .route("/team/member_add", post(teams::member_add))
        .route("/team/member_delete", post(teams::member_delete))
        .route("/team/block", post(teams::block))
        .route("/team/unblock", post(teams::unblock))
        .route("/user/new", post(users::new))
        .route("/user/update", post(users::update))
        .route("/user/info", get(users::info))
        .route("/user/list", get(users::list))
        .route("/user/delete", post(users::delete))
        .route("/organization/new", post(organizations::new))
        .route(
            "/organization/update",
            post(organizations::update).patch(organizations::update),
        )
        .route("/organization/info", get(organizations::info))
        .route("/organization/list", get(organizations::list))
        .route(
            "/organization/delete",
            post(organizations::delete).delete(organizations::delete),
        )
        .merge(end_user_routes("/customer"))
        .merge(end_user_routes("/end_user"))
        .route("/health", get(health::deployments))
        .route("/health/liveliness", get(health::liveness))
        .route("/health/liveness", get(health::liveness))
        .route("/health/readiness", get(health::readiness))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(request_context))
        .with_state(gateway)
}

/// The end-user routes, which LiteLLM serves under both `/customer` and `/end_user`.
fn end_user_routes(prefix: &str) -> HttpRouter<Arc<Gateway>> {
    HttpRouter::new()
        .route(&format!("{prefix}/new"), post(customers::new))
        .route(&format!("{prefix}/update"), post(customers::update))
        .route(&format!("{prefix}/info"), get(customers::info))
        .route(&format!("{prefix}/list"), get(customers::list))
        .route(&format!("{prefix}/delete"), post(customers::delete))
        .route(&format!("{prefix}/block"), post(customers::block))
        .route(&format!("{prefix}/unblock"), post(customers::unblock))
}

async fn not_found(request: Request) -> Response {
    ApiError::from(GatewayError::route_not_found(
        request.method().as_str(),
        request.uri().path(),
    ))
    .into()
}

async fn method_not_allowed(request: Request) -> Response {
    ApiError::from(GatewayError::method_not_allowed(
        request.method().as_str(),
        request.uri().path(),
    ))
    .into()
}
