//! `tollgate keys|teams|users|spend …`: the management API of a running gateway from the
//! command line (URL and key from flags or `TOLLGATE_URL` / `TOLLGATE_API_KEY`). Tables for people,
//! `--json` (the API's own answer) for scripts.

mod api;
mod output;

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use tollgate_core::calendar::{MS_PER_DAY, day_start_ms, utc_day};
use tollgate_pricing::Usd;

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

/// `tollgate spend`: what was spent, grouped, over a range of UTC days.
#[derive(Debug, Args)]
pub struct SpendArgs {
    /// What to group by.
    #[arg(long, value_parser = ["team", "key", "user", "model", "day"], default_value = "team")]
    by: String,
    /// The last N days, the end date included: `7d` (or `2w`).
    #[arg(long, conflicts_with = "start_date")]
    since: Option<String>,
    /// The first day, `YYYY-MM-DD` (UTC). Default: 30 days before the end date.
    #[arg(long)]
    start_date: Option<String>,
    /// The last day, `YYYY-MM-DD` (UTC). Default: today.
    #[arg(long)]
    end_date: Option<String>,
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
    /// A spend report (`/global/spend/report`).
    Spend,
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

pub fn spend(connection: Connection, args: SpendArgs) -> ExitCode {
    let range = match spend_range(&args, now_ms()) {
        Ok(range) => range,
        Err(message) => {
            eprintln!("tollgate: {message}");
            return ExitCode::from(2);
        }
    };
    let path = query(
        "/global/spend/report",
        &[
            ("group_by", Some(args.by)),
            ("start_date", range.0),
            ("end_date", range.1),
        ],
    );
    run(connection, Call::Get(path), Shown::Spend)
}

/// The report's `start_date` and `end_date`, checked; `--since Nd` counts back from the end
/// date (default today), which it includes.
fn spend_range(args: &SpendArgs, now_ms: i64) -> Result<(Option<String>, Option<String>), String> {
    for (flag, date) in [
        ("--start-date", &args.start_date),
        ("--end-date", &args.end_date),
    ] {
        if let Some(date) = date
            && (date.len() != 10 || day_start_ms(date).is_none())
        {
            return Err(format!(
                "{flag} must be a date like 2025-01-31, got `{date}`"
            ));
        }
    }
    let Some(since) = &args.since else {
        return Ok((args.start_date.clone(), args.end_date.clone()));
    };
    let days = since
        .strip_suffix('d')
        .and_then(|n| n.parse::<i64>().ok())
        .or_else(|| {
            since
                .strip_suffix('w')
                .and_then(|n| n.parse::<i64>().ok())
                .map(|n| n * 7)
        })
        .filter(|days| (1..=36_600).contains(days))
        .ok_or_else(|| {
            format!("--since must be a number of days or weeks like 7d or 2w, got `{since}`")
        })?;
    let end = match &args.end_date {
        Some(date) => day_start_ms(date).expect("checked above"),
        None => now_ms.div_euclid(MS_PER_DAY) * MS_PER_DAY,
    };
    let start = end - (days - 1) * MS_PER_DAY;
    Ok((Some(utc_day(start)), Some(utc_day(end))))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// A spend report as a table: one row per group, then the total; dollars to six places.
fn spend_table(answer: &Value) -> String {
    let group_field = answer["group_by"].as_str().unwrap_or("group");
    let header = match group_field {
        "api_key" => "KEY",
        "team_id" => "TEAM",
        "user_id" => "USER",
        "model" => "MODEL",
        "date" => "DAY",
        _ => "GROUP",
    };
    let columns: &[Column] = &[
        (header, "group"),
        ("REQUESTS", "requests"),
        ("FAILED", "failed_requests"),
        ("PROMPT TOKENS", "prompt_tokens"),
        ("COMPLETION TOKENS", "completion_tokens"),
        ("SPEND ($)", "spend"),
    ];
    let rows = answer["data"].as_array().cloned().unwrap_or_default();
    let mut total = [0u64; 4];
    let mut total_spend = Usd::ZERO;
    let mut shown: Vec<Value> = Vec::with_capacity(rows.len() + 1);
    for row in &rows {
        let counts = [
            "requests",
            "failed_requests",
            "prompt_tokens",
            "completion_tokens",
        ]
        .map(|field| row[field].as_u64().unwrap_or(0));
        for (sum, count) in total.iter_mut().zip(counts) {
            *sum += count;
        }
        let spend = row["spend"]
            .as_f64()
            .and_then(Usd::from_f64)
            .unwrap_or(Usd::ZERO);
        total_spend = total_spend.saturating_add(spend);
        shown.push(json!({
            "group": row[group_field],
            "requests": counts[0], "failed_requests": counts[1],
            "prompt_tokens": counts[2], "completion_tokens": counts[3],
            "spend": dollars(spend),
        }));
    }
    shown.push(json!({
        "group": "TOTAL",
        "requests": total[0], "failed_requests": total[1],
        "prompt_tokens": total[2], "completion_tokens": total[3],
        "spend": dollars(total_spend),
    }));
    let day = |field: &str| {
        answer[field]
            .as_str()
            .map_or("?", |t| t.get(..10).unwrap_or(t))
            .to_owned()
    };
    let mut text = format!(
        "Spend by {} from {} to {} (UTC days, both included):\n\n",
        header.to_lowercase(),
        day("start_date"),
        day("end_date")
    );
    text.push_str(&table(&shown, columns));
    text
}

/// Dollars to six places (rounded half up at the micro-dollar).
fn dollars(amount: Usd) -> String {
    let micros = (amount.nanos() + 500) / 1000;
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
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
        Shown::Spend => spend_table(answer),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(since: Option<&str>, start: Option<&str>, end: Option<&str>) -> SpendArgs {
        SpendArgs {
            by: "team".into(),
            since: since.map(str::to_owned),
            start_date: start.map(str::to_owned),
            end_date: end.map(str::to_owned),
        }
    }

    #[test]
    fn since_counts_back_from_the_end_day_which_it_includes() {
        let noon = day_start_ms("2026-03-10").unwrap() + MS_PER_DAY / 2;
        let range = |since, end| spend_range(&args(since, None, end), noon);
        assert_eq!(
            range(Some("7d"), None).unwrap(),
            (Some("2026-03-04".into()), Some("2026-03-10".into()))
        );
        assert_eq!(
            range(Some("1d"), None).unwrap(),
            (Some("2026-03-10".into()), Some("2026-03-10".into()))
        );
        assert_eq!(
            range(Some("2w"), Some("2026-03-01")).unwrap(),
            (Some("2026-02-16".into()), Some("2026-03-01".into()))
        );
        assert_eq!(range(None, None).unwrap(), (None, None));
        for bad in ["7", "0d", "seven", "7h"] {
            assert!(range(Some(bad), None).is_err(), "{bad}");
        }
        assert!(spend_range(&args(None, Some("2026-13-01"), None), noon).is_err());
    }

    #[test]
    fn spend_reports_print_a_row_per_group_and_the_total() {
        let answer = json!({
            "group_by": "team_id",
            "start_date": "2026-03-04T00:00:00.000Z",
            "end_date": "2026-03-10T23:59:59.999Z",
            "data": [
                {"team_id": "red", "spend": 0.0001235, "requests": 3, "failed_requests": 1,
                 "prompt_tokens": 12, "completion_tokens": 30},
                {"team_id": null, "spend": 1.5, "requests": 1, "failed_requests": 0,
                 "prompt_tokens": 4, "completion_tokens": 10},
            ],
        });
        assert_eq!(
            spend_table(&answer),
            "Spend by team from 2026-03-04 to 2026-03-10 (UTC days, both included):\n\n\
             TEAM   REQUESTS  FAILED  PROMPT TOKENS  COMPLETION TOKENS  SPEND ($)\n\
             red    3         1       12             30                 0.000124\n\
             -      1         0       4              10                 1.500000\n\
             TOTAL  4         1       16             40                 1.500124"
        );
    }
}
