//! Every JSON example in `docs/protocol.md` must be a valid message of the kind
//! its code block names, and server examples must survive a round trip
//! unchanged (so a misspelt or missing field in the docs fails here).

use crate::{ClientMessage, Command, EventBody, ServerMessage};
use serde_json::Value;

const DOC: &str = include_str!("../../docs/protocol.md");

fn blocks() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in DOC.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(tag)) if tag.starts_with("json") => {
                current = Some((
                    tag.trim_start_matches("json").trim().to_string(),
                    String::new(),
                ));
            }
            (Some(_), Some("")) => out.push(current.take().expect("open block")),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            _ => {}
        }
    }
    assert!(current.is_none(), "an unterminated code block");
    out
}

/// Numbers as f64 so `128` and `128.0` compare equal.
fn normal(v: Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64().expect("finite")),
        Value::Array(a) => Value::Array(a.into_iter().map(normal).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normal(v))).collect()),
        other => other,
    }
}

fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(body: &str) {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let back = serde_json::to_value(&typed).expect("serializes");
    assert_eq!(
        normal(back),
        normal(value),
        "example does not round-trip:\n{body}"
    );
}

#[test]
fn every_example_in_the_protocol_doc_is_a_valid_message() {
    let blocks = blocks();
    let mut counts = std::collections::HashMap::new();
    for (kind, body) in &blocks {
        *counts.entry(kind.as_str()).or_insert(0) += 1;
        match kind.as_str() {
            "client" => {
                serde_json::from_str::<ClientMessage>(body)
                    .unwrap_or_else(|e| panic!("{e}\n{body}"));
            }
            "command" => {
                serde_json::from_str::<Command>(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
            }
            "server" => round_trips::<ServerMessage>(body),
            "event" => round_trips::<EventBody>(body),
            "rest" => {
                serde_json::from_str::<Value>(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
            }
            other => panic!("unknown example kind {other:?}"),
        }
    }
    // Every command and every event type has an example.
    assert_eq!(
        counts.get("command"),
        Some(&(crate::CommandKind::ALL.len() + 1)),
        "{counts:?}"
    );
    assert_eq!(counts.get("event"), Some(&13), "{counts:?}");
    assert!(counts.get("server").is_some_and(|n| *n >= 8));
}
