//! How the management CLI prints: aligned tables for lists, `field: value` lines for one
//! record, the API's JSON as is with `--json`.

use serde_json::Value;

/// A column: its header and the field it shows.
pub type Column = (&'static str, &'static str);

/// Rows as a table with a header line, each column as wide as its widest cell.
pub fn table(rows: &[Value], columns: &[Column]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|(_, field)| cell(&row[*field]))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(index, (header, _))| {
            cells
                .iter()
                .map(|row| row[index].chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(value, width)| format!("{value:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(columns.iter().map(|(header, _)| *header).collect())];
    out.extend(
        cells
            .iter()
            .map(|row| line(row.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// One record's fields, one per line.
pub fn record(value: &Value) -> String {
    match value {
        Value::Object(fields) => {
            let width = fields.keys().map(String::len).max().unwrap_or(0);
            fields
                .iter()
                .map(|(name, field)| format!("{name:<width$}  {}", cell(field)))
                .collect::<Vec<_>>()
                .join("\n")
        }
        other => cell(other),
    }
}

/// A value as one cell: text bare, lists joined, nothing as `-`.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) if items.iter().all(|item| !item.is_object()) => {
            items.iter().map(cell).collect::<Vec<_>>().join(",")
        }
        Value::Object(fields) if fields.is_empty() => "-".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_and_show_absent_values_as_dashes() {
        let rows = [
            json!({"id": "a", "models": ["gpt", "mini"], "rpm": 60}),
            json!({"id": "longer-id", "models": [], "rpm": null}),
        ];
        assert_eq!(
            table(&rows, &[("ID", "id"), ("MODELS", "models"), ("RPM", "rpm")]),
            "ID         MODELS    RPM\na          gpt,mini  60\nlonger-id  -         -"
        );
    }

    #[test]
    fn a_record_is_one_field_per_line() {
        assert_eq!(
            record(&json!({"team_id": "red", "members": [{"user_id": "ann"}]})),
            "team_id  red\nmembers  [{\"user_id\":\"ann\"}]"
        );
    }
}
