//! Every JSON example in `docs/protocol.md` must be a valid message of the kind
//! its code block names, and server examples must survive a round trip
//! unchanged (so a misspelt or missing field in the docs fails here).

use crate::{ClientMessage, Command, EventBody, ServerMessage};
use serde_json::Value;

const DOC: &str = include_str!("../../docs/protocol.md");

/// Examples may abbreviate the (long) policy as `"<default policy>"`.
fn expand(body: &str) -> String {
    let policy = serde_json::to_string(&crate::ClinicPolicy::default()).expect("policy serializes");
    body.replace("\"<default policy>\"", &policy)
}

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
    let mut commands = std::collections::HashSet::new();
    let mut events = std::collections::HashSet::new();
    let mut servers = 0;
    for (kind, body) in &blocks() {
        let body = &expand(body);
        match kind.as_str() {
            "client" => {
                serde_json::from_str::<ClientMessage>(body)
                    .unwrap_or_else(|e| panic!("{e}\n{body}"));
            }
            "command" => {
                let command =
                    serde_json::from_str::<Command>(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
                commands.insert(command.kind());
            }
            "server" => {
                round_trips::<ServerMessage>(body);
                servers += 1;
            }
            "event" => {
                round_trips::<EventBody>(body);
                let event: EventBody = serde_json::from_str(body).expect("checked above");
                events.insert(event.type_name());
            }
            "policy" => round_trips::<crate::ClinicPolicy>(body),
            "rest" => {
                serde_json::from_str::<Value>(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
            }
            other => panic!("unknown example kind {other:?}"),
        }
    }
    // Every command and every event type has an example.
    for kind in crate::CommandKind::ALL {
        assert!(commands.contains(&kind), "no example of the command {kind}");
    }
    assert_eq!(
        events.len(),
        27,
        "every event type has an example: {events:?}"
    );
    assert!(servers >= 8);
}
