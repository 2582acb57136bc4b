//! `tollgate keys|teams|users …`: the management API of a running gateway from the command
//! line (URL and key from flags or `TOLLGATE_URL` / `TOLLGATE_API_KEY`). Tables for people,
//! `--json` (the API's own answer) for scripts.

mod api;
mod output;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use self::api::Api;
use self::output::{Column, record, table};

#[derive(Debug, Args)]
pub struct Connection {
    /// The gateway's URL.
    #[arg(
        long,
        env = "TOLLGATE_URL",
        default_value = "http://127.0.0.1:4000",
        global = true
    )]
    url: String,
    /// The master key, or the key of a user allowed to manage.
    #[arg(long, env = "TOLLGATE_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a virtual key; the key itself is shown this once.
    Create {
        #[arg(long)]
        alias: Option<String>,
        /// Models it may call (comma-separated; none: every model).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// How long until it expires (`30d`, `12h`…).
        #[arg(long)]
        duration: Option<String>,
        #[arg(long)]
        rpm: Option<u64>,
        #[arg(long)]
        tpm: Option<u64>,
        #[arg(long)]
        max_parallel: Option<u64>,
    },
    /// List keys (paginated).
    List {
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 50)]
        size: u32,
    },
    /// Show one key (by the key or its token).
    Info { key: String },
    /// Refuse a key until it is unblocked.
    Block { key: String },
    /// Let a blocked key work again.
    Unblock { key: String },
    /// Replace a key with a new one; the old stops working at once.
    Regenerate { key: String },
    /// Delete keys (by the keys or their tokens).
    Delete {
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team.
    Create {
        /// The team's id (generated when left out).
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        alias: Option<String>,
        #[arg(long)]
        organization: Option<String>,
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        #[arg(long)]
        rpm: Option<u64>,
        #[arg(long)]
        tpm: Option<u64>,
    },
    /// List every team.
    List,
    /// Show one team and its keys.
    Info { id: String },
    /// Refuse every key of a team until it is unblocked.
    Block { id: String },
    /// Let a blocked team's keys work again.
    Unblock { id: String },
    /// Add a user to a team (created if unknown).
    AddMember {
        team: String,
        user: String,
        #[arg(long, value_parser = ["user", "admin"], default_value = "user")]
        role: String,
    },
    /// Remove a user from a team.
    RemoveMember { team: String, user: String },
    /// Delete teams, and their keys.
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (and a key for them, as LiteLLM does).
    Create {
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long, value_parser = ["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"])]
        role: Option<String>,
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        #[arg(long)]
        rpm: Option<u64>,
        #[arg(long)]
        tpm: Option<u64>,
    },
    /// List users (paginated).
    List {
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 50)]
        size: u32,
    },
    /// Show one user, their teams and keys.
    Info { id: String },
    /// Delete users, and their keys.
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

const KEY_COLUMNS: &[Column] = &[
    ("TOKEN", "token"),
    ("KEY", "key_name"),
    ("ALIAS", "key_alias"),
    ("TEAM", "team_id"),
    ("USER", "user_id"),
    ("MODELS", "models"),
    ("RPM", "rpm_limit"),
    ("TPM", "tpm_limit"),
    ("BLOCKED", "blocked"),
    ("EXPIRES", "expires"),
];

const TEAM_COLUMNS: &[Column] = &[
    ("TEAM", "team_id"),
    ("ALIAS", "team_alias"),
    ("ORGANIZATION", "organization_id"),
    ("MODELS", "models"),
    ("RPM", "rpm_limit"),
    ("TPM", "tpm_limit"),
    ("BLOCKED", "blocked"),
];

const USER_COLUMNS: &[Column] = &[
    ("USER", "user_id"),
    ("EMAIL", "user_email"),
    ("ROLE", "user_role"),
    ("TEAMS", "teams"),
    ("MODELS", "models"),
    ("RPM", "rpm_limit"),
    ("TPM", "tpm_limit"),
];

/// What one command asks of the API, and how its answer is shown.
enum Call {
    Get(String),
    Post(&'static str, Value),
}

enum Shown {
    /// A list under this field of the answer (the answer itself when empty).
    Table(&'static str, &'static [Column]),
    /// One record under this field (the answer itself when empty).
    Record(&'static str),
}

pub fn keys(connection: Connection, command: KeyCommand) -> ExitCode {
    let (call, shown) = match command {
        KeyCommand::Create {
            alias,
            models,
            team,
            user,
            duration,
            rpm,
            tpm,
            max_parallel,
        } => changed(
            "/key/generate",
            object([
                ("key_alias", json!(alias)),
                ("models", list(models)),
                ("team_id", json!(team)),
                ("user_id", json!(user)),
                ("duration", json!(duration)),
                ("rpm_limit", json!(rpm)),
                ("tpm_limit", json!(tpm)),
                ("max_parallel_requests", json!(max_parallel)),
            ]),
        ),
        KeyCommand::List {
            team,
            user,
            page,
            size,
        } => (
            Call::Get(query(
                "/key/list",
                &[
                    ("return_full_object", Some("true".into())),
                    ("team_id", team),
                    ("user_id", user),
                    ("page", Some(page.to_string())),
                    ("size", Some(size.to_string())),
                ],
            )),
            Shown::Table("keys", KEY_COLUMNS),
        ),
        KeyCommand::Info { key } => (
            Call::Get(query("/key/info", &[("key", Some(key))])),
            Shown::Record("info"),
        ),
        KeyCommand::Block { key } => changed("/key/block", json!({"key": key})),
        KeyCommand::Unblock { key } => changed("/key/unblock", json!({"key": key})),
        KeyCommand::Regenerate { key } => changed("/key/regenerate", json!({"key": key})),
        KeyCommand::Delete { keys } => changed("/key/delete", json!({"keys": keys})),
    };
    run(connection, call, shown)
}

pub fn teams(connection: Connection, command: TeamCommand) -> ExitCode {
    let (call, shown) = match command {
        TeamCommand::Create {
            id,
            alias,
            organization,
            models,
            rpm,
            tpm,
        } => changed(
            "/team/new",
            object([
                ("team_id", json!(id)),
                ("team_alias", json!(alias)),
                ("organization_id", json!(organization)),
                ("models", list(models)),
                ("rpm_limit", json!(rpm)),
                ("tpm_limit", json!(tpm)),
            ]),
        ),
        TeamCommand::List => (
            Call::Get("/team/list".into()),
            Shown::Table("", TEAM_COLUMNS),
        ),
        TeamCommand::Info { id } => (
            Call::Get(query("/team/info", &[("team_id", Some(id))])),
            Shown::Record("team_info"),
        ),
        TeamCommand::Block { id } => changed("/team/block", json!({"team_id": id})),
        TeamCommand::Unblock { id } => changed("/team/unblock", json!({"team_id": id})),
        TeamCommand::AddMember { team, user, role } => changed(
            "/team/member_add",
            json!({"team_id": team, "member": {"user_id": user, "role": role}}),
        ),
        TeamCommand::RemoveMember { team, user } => changed(
            "/team/member_delete",
            json!({"team_id": team, "user_id": user}),
        ),
        TeamCommand::Delete { ids } => changed("/team/delete", json!({"team_ids": ids})),
    };
    run(connection, call, shown)
}

pub fn users(connection: Connection, command: UserCommand) -> ExitCode {
    let (call, shown) = match command {
        UserCommand::Create {
            id,
            email,
            role,
            models,
            rpm,
            tpm,
        } => changed(
            "/user/new",
            object([
                ("user_id", json!(id)),
                ("user_email", json!(email)),
                ("user_role", json!(role)),
                ("models", list(models)),
                ("rpm_limit", json!(rpm)),
                ("tpm_limit", json!(tpm)),
            ]),
        ),
        UserCommand::List { page, size } => (
            Call::Get(query(
                "/user/list",
                &[
                    ("page", Some(page.to_string())),
                    ("page_size", Some(size.to_string())),
                ],
            )),
            Shown::Table("users", USER_COLUMNS),
        ),
        UserCommand::Info { id } => (
            Call::Get(query("/user/info", &[("user_id", Some(id))])),
            Shown::Record("user_info"),
        ),
        UserCommand::Delete { ids } => changed("/user/delete", json!({"user_ids": ids})),
    };
    run(connection, call, shown)
}

fn run(connection: Connection, call: Call, shown: Shown) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime starts");
    let answer = runtime.block_on(async {
        let api = Api::new(&connection.url, connection.api_key.clone())?;
        match call {
            Call::Get(path) => api.get(&path).await,
            Call::Post(path, body) => api.post(path, body).await,
        }
    });
    match answer {
        Ok(answer) if connection.json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&answer).expect("JSON prints")
            );
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            println!("{}", render(&answer, &shown));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("tollgate: {err}");
            ExitCode::FAILURE
        }
    }
}

fn render(answer: &Value, shown: &Shown) -> String {
    let under = |field: &str| {
        if field.is_empty() {
            answer
        } else {
            &answer[field]
        }
    };
    match shown {
        Shown::Table(field, columns) => {
            let rows = under(field).as_array().cloned().unwrap_or_default();
            let mut text = table(&rows, columns);
            if let Some(total) = answer.get("total_count").or_else(|| answer.get("total")) {
                text.push_str(&format!("\n({} of {total})", rows.len()));
            }
            text
        }
        Shown::Record(field) => {
            let mut text = record(under(field));
            if answer["key"]
                .as_str()
                .is_some_and(|key| key.starts_with("sk-"))
            {
                text.push_str("\n\nThe key is shown only this once: store it now.");
            }
            text
        }
    }
}

/// A change whose answer is shown as one record.
fn changed(path: &'static str, body: Value) -> (Call, Shown) {
    (Call::Post(path, body), Shown::Record(""))
}

/// A JSON object of the fields that were given.
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let given: Map<String, Value> = fields
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    Value::Object(given)
}

/// A list flag: absent when empty.
fn list(items: Vec<String>) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        json!(items)
    }
}

fn query(path: &str, params: &[(&str, Option<String>)]) -> String {
    let mut encoder = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if let Some(value) = value {
            encoder.append_pair(name, value);
        }
    }
    format!("{path}?{}", encoder.finish())
}
