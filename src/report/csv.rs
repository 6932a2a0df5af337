//! CSV from serialisable records: one row per record, its scalar fields as columns.
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// CSV text of `records`: the header is the union of their scalar (non-array, non-object) JSON
/// fields in order of first appearance, so CSV and JSON always share field names.
pub fn to_csv<T: Serialize>(records: &[T]) -> Result<String> {
    let rows: Vec<serde_json::Map<String, Value>> = records
        .iter()
        .map(|record| match serde_json::to_value(record) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(Error::Serialize {
                what: "a CSV row",
                reason: "a row must be a JSON object".into(),
            }),
            Err(err) => Err(Error::serialize("a CSV row", err)),
        })
        .collect::<Result<_>>()?;
    let mut header: Vec<&str> = Vec::new();
    for row in &rows {
        for (key, value) in row {
            if !matches!(value, Value::Array(_) | Value::Object(_))
                && !header.contains(&key.as_str())
            {
                header.push(key);
            }
        }
    }
    let mut out = header
        .iter()
        .map(|h| quote(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for row in &rows {
        let cells: Vec<String> = header
            .iter()
            .map(|key| match row.get(*key) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(text)) => quote(text),
                Some(other) => other.to_string(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    Ok(out)
}

/// One CSV line of `cells`, each quoted when it holds a comma, a quote or a line break.
pub fn line<S: AsRef<str>>(cells: &[S]) -> String {
    let cells: Vec<String> = cells.iter().map(|cell| quote(cell.as_ref())).collect();
    cells.join(",") + "\n"
}

fn quote(text: &str) -> String {
    let text = &*super::printable(text);
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        name: &'static str,
        value: Option<f64>,
        list: Vec<u8>,
    }

    #[test]
    fn scalar_fields_become_columns() {
        let rows = [
            Row {
                name: "a,b",
                value: Some(1.5),
                list: vec![1],
            },
            Row {
                name: "c",
                value: None,
                list: vec![],
            },
        ];
        assert_eq!(to_csv(&rows).unwrap(), "name,value\n\"a,b\",1.5\nc,\n");
    }
}
