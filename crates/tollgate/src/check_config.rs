//! `tollgate check-config FILE`: validate without serving, and show what the config resolves to.

use std::path::Path;
use std::process::ExitCode;

use tollgate_core::config::{self, Config};

pub(crate) fn run(file: &Path) -> ExitCode {
    let config = match config::load(file) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("config error: {err}");
            return ExitCode::from(2);
        }
    };
    // Building the gateway checks what only the upstream layer can (headers, CA bundle).
    let table = render(&config);
    if let Err(err) = tollgate_server::Gateway::new(config, 1) {
        eprintln!("config error: {err}");
        return ExitCode::from(2);
    }
    print!("{table}");
    ExitCode::SUCCESS
}

fn render(config: &Config) -> String {
    let header = [
        "MODEL NAME",
        "PROVIDER",
        "MODEL",
        "API BASE",
        "API KEY",
        "TIMEOUT",
        "ID",
    ];
    let rows: Vec<[String; 7]> = config
        .deployments
        .iter()
        .map(|d| {
            [
                d.model_name.clone(),
                d.provider.prefix.to_owned(),
                d.model.clone(),
                d.api_base
                    .as_ref()
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "(in-process)".into()),
                if d.api_key.is_some() {
                    "<redacted>".into()
                } else {
                    "-".into()
                },
                format!(
                    "{}s / first byte {}s",
                    d.timeout.as_secs_f64(),
                    d.stream_timeout.as_secs_f64()
                ),
                d.id.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut text = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ");
        text.truncate(text.trim_end().len());
        text.push('\n');
        text
    };

    let mut out = format!(
        "{}: OK — {} model group(s), {} deployment(s)\n\n",
        config.source.display(),
        config.model_names().len(),
        config.deployments.len()
    );
    out.push_str(&line(&header));
    for row in &rows {
        out.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    out.push('\n');
    out.push_str(match &config.master_key {
        Some(_) => "master key: set (requests need it)\n",
        None => "master key: none (the gateway is open)\n",
    });
    out.push_str(&match &config.redis {
        Some(redis) => format!(
            "redis: {} (from {}; keys under `{}:`): rate limits and budgets shared by replicas\n",
            redis.shown, redis.source, redis.key_prefix
        ),
        None => "redis: none (each replica counts rate limits and budgets on its own)\n".to_owned(),
    });
    if !config.not_implemented.is_empty() {
        out.push_str(&format!(
            "accepted but not acted on by this version: {}\n",
            config.not_implemented.join(", ")
        ));
    }
    out
}
