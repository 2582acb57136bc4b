//! `tollgate import litellm`: copies a LiteLLM proxy's database into the store a Tollgate
//! config names (see `tollgate_store::litellm`), printing what was imported, what was
//! skipped and why.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use tollgate_store::litellm::{self, Finding, Kind, Options, Report};
use tollgate_store::{Store, redact_url};

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import keys (their hashes: existing keys keep working), teams, users, organisations,
    /// end users, budgets and spend from a LiteLLM proxy's PostgreSQL database. Running it
    /// again changes only what changed in LiteLLM since.
    Litellm(LitellmArgs),
}

#[derive(Debug, Args)]
pub struct LitellmArgs {
    /// LiteLLM's database: its `DATABASE_URL` (postgres://…; Prisma's `?schema=` is honoured).
    #[arg(long)]
    database_url: String,
    /// The Tollgate config whose store receives the import (`general_settings.database_url`,
    /// else the SQLite `tollgate_settings.database_path`). Default: `TOLLGATE_CONFIG`.
    #[arg(long, conflicts_with = "target_database_url")]
    config: Option<PathBuf>,
    /// Tollgate's store itself, instead of a config: `sqlite:…` or `postgres://…`.
    #[arg(long)]
    target_database_url: Option<String>,
    /// Read and compare, print what would be imported, write nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(command: ImportCommand) -> ExitCode {
    let ImportCommand::Litellm(args) = command;
    let target = match target_url(&args) {
        Ok(target) => target,
        Err(message) => {
            eprintln!("tollgate: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime starts");
    // A dry run into a SQLite file that does not exist yet compares with an empty store held
    // in memory, so that it creates nothing.
    let opened = if args.dry_run && is_absent_sqlite_file(&target) {
        "sqlite::memory:".to_owned()
    } else {
        target.clone()
    };
    let result = runtime.block_on(async {
        let store = Store::connect(&opened).await.map_err(|err| {
            format!(
                "cannot open Tollgate's database {}: {err}",
                redact_url(&target)
            )
        })?;
        let options = Options {
            dry_run: args.dry_run,
            now_ms: now_ms(),
        };
        let report = litellm::import(&args.database_url, &store, options)
            .await
            .map_err(|err| err.to_string());
        store.close().await;
        report
    });
    match result {
        Ok(report) => {
            print!(
                "{}",
                render(
                    &report,
                    &redact_url(&args.database_url),
                    &redact_url(&target)
                )
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("tollgate: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The store the import writes to: the flag, else the config's.
fn target_url(args: &LitellmArgs) -> Result<String, String> {
    if let Some(url) = &args.target_database_url {
        return Ok(url.clone());
    }
    let Some(path) = args
        .config
        .clone()
        .or_else(|| std::env::var_os("TOLLGATE_CONFIG").map(PathBuf::from))
    else {
        return Err(
            "say where to import to: --config FILE (or TOLLGATE_CONFIG), or --target-database-url URL"
                .into(),
        );
    };
    let config =
        tollgate_core::config::load(&path).map_err(|err| format!("config error: {err}"))?;
    Ok(match &config.database_url {
        Some(url) => url.expose_secret().to_owned(),
        None => Store::sqlite_url(&config.database_path),
    })
}

fn is_absent_sqlite_file(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return false;
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    !path.is_empty() && path != ":memory:" && !std::path::Path::new(path).exists()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// The report as people read it: a table of counts, then every skipped row and every value
/// left behind, each with its reason.
fn render(report: &Report, source: &str, target: &str) -> String {
    let mut out = String::new();
    if report.dry_run {
        out.push_str(&format!(
            "Dry run: nothing was written. Importing {source} into {target} would do this:\n\n"
        ));
    } else {
        out.push_str(&format!("Imported {source} into {target}:\n\n"));
    }
    let kinds = [
        Kind::Organization,
        Kind::Team,
        Kind::TeamMember,
        Kind::User,
        Kind::EndUser,
        Kind::Key,
    ];
    let header = [
        "",
        "new",
        "updated",
        "unchanged",
        "skipped",
        "spend set",
        "spend kept",
    ];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for kind in kinds {
        let records = report.records.get(&kind).copied().unwrap_or_default();
        let spend = report.spend.get(&kind).copied().unwrap_or_default();
        rows.push(vec![
            kind.plural().to_owned(),
            records.created.to_string(),
            records.updated.to_string(),
            records.unchanged.to_string(),
            records.skipped.to_string(),
            (spend.created + spend.updated).to_string(),
            spend.unchanged.to_string(),
        ]);
    }
    out.push_str(&aligned(&rows));
    out.push_str(&format!(
        "\n{} shared budget(s) read from LiteLLM_BudgetTable, folded into the records that name them.\n",
        report.budgets
    ));
    if !report.changed_anything() {
        out.push_str(if report.dry_run {
            "Nothing new to import: the store matches LiteLLM's database.\n"
        } else {
            "Nothing new: the store already matched LiteLLM's database.\n"
        });
    }
    for table in &report.missing_tables {
        out.push_str(&format!(
            "LiteLLM's database has no {table} table (an older LiteLLM?): nothing read from it.\n"
        ));
    }
    section(&mut out, "Skipped", &report.skipped);
    section(&mut out, "Imported with changes", &report.notes);
    out
}

fn section(out: &mut String, title: &str, findings: &[Finding]) {
    if findings.is_empty() {
        return;
    }
    out.push_str(&format!("\n{title} ({}):\n", findings.len()));
    for finding in findings {
        out.push_str(&format!(
            "  {} {}: {}\n",
            finding.kind.singular(),
            finding.id,
            finding.message
        ));
    }
}

/// Rows of cells, the first column left-aligned, the numbers right-aligned.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let width = widths[c];
                if c == 0 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use tollgate_store::litellm::Counts;

    use super::*;

    #[test]
    fn only_a_missing_sqlite_file_is_absent() {
        assert!(is_absent_sqlite_file("sqlite:///no/such/dir/t.db?mode=rwc"));
        assert!(!is_absent_sqlite_file("sqlite::memory:"));
        assert!(!is_absent_sqlite_file(&format!(
            "sqlite://{}?mode=rwc",
            std::env::temp_dir().display()
        )));
        assert!(!is_absent_sqlite_file("postgres://db/tollgate"));
    }

    #[test]
    fn the_report_is_a_table_then_the_reasons() {
        let mut report = Report::default();
        report.records.insert(
            Kind::Key,
            Counts {
                created: 2,
                skipped: 1,
                ..Counts::default()
            },
        );
        report.spend.insert(
            Kind::Key,
            Counts {
                created: 1,
                ..Counts::default()
            },
        );
        report.skipped.push(Finding {
            kind: Kind::Key,
            id: "plaintext".into(),
            message: "its token is not a SHA-256 hex digest".into(),
        });
        let text = render(&report, "postgres://litellm", "sqlite://t.db");
        assert!(
            text.starts_with("Imported postgres://litellm into sqlite://t.db:\n"),
            "{text}"
        );
        assert!(
            text.lines().any(|line| line
                == "keys             2        0          0        1          1           0"),
            "{text}"
        );
        assert!(
            text.contains(
                "\nSkipped (1):\n  key plaintext: its token is not a SHA-256 hex digest\n"
            ),
            "{text}"
        );
    }
}
