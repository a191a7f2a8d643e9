//! A session's record for the clinic's files: the log as it is stored (one
//! JSON event per line), and a CSV of the clinical records (vitals by LOINC
//! code and UCUM unit, doses, ratings, check-ins, notes, state changes,
//! alarms and who answered them, discharge) that a spreadsheet or an EHR
//! import reads. Both are streamed from the log, a chunk at a time, so a
//! four-hour session of 1 Hz oximetry never sits in memory whole.

use protocol::rest::StaffMember;
use protocol::{Actor, Event, EventBody, Rating, SeatId, SelfReport, Seq, StaffId};
use serde::Serialize;
use std::collections::HashMap;

/// The CSV's columns.
pub const CSV_HEADER: [&str; 9] = [
    "time_utc",
    "seq",
    "participant",
    "record",
    "code",
    "value",
    "unit",
    "detail",
    "by",
];

/// Turns events, in log order, into CSV lines. It remembers what later
/// events refer to: seat names (from `seat_added`) and which seat an alarm
/// was about (from `alarm_raised`).
pub struct Records {
    staff: HashMap<StaffId, String>,
    seats: HashMap<SeatId, String>,
    alarms: HashMap<Seq, (SeatId, String)>,
}

/// One CSV row before escaping.
struct Row {
    time: protocol::Timestamp,
    seat: Option<SeatId>,
    record: String,
    code: &'static str,
    value: String,
    unit: &'static str,
    detail: String,
}

impl Records {
    /// For a session of a clinic with these staff (to name who did what).
    pub fn new(staff: &[StaffMember]) -> Records {
        Records {
            staff: staff
                .iter()
                .map(|m| (m.id, m.display_name.clone()))
                .collect(),
            seats: HashMap::new(),
            alarms: HashMap::new(),
        }
    }

    /// The header line.
    pub fn header() -> String {
        csv_line(CSV_HEADER.iter().map(|h| (*h).to_string()))
    }

    /// The CSV lines for one event (none for what is not a clinical record:
    /// phases, connections, rule changes).
    pub fn lines(&mut self, event: &Event) -> String {
        let by = self.by(&event.actor);
        let mut out = String::new();
        for row in self.rows(event) {
            let participant = row
                .seat
                .and_then(|s| self.seats.get(&s).cloned())
                .unwrap_or_default();
            out.push_str(&csv_line([
                row.time.utc(),
                event.seq.0.to_string(),
                participant,
                row.record,
                row.code.to_string(),
                row.value,
                row.unit.to_string(),
                row.detail,
                by.clone(),
            ]));
        }
        out
    }

    fn by(&self, actor: &Actor) -> String {
        match actor {
            Actor::Staff { staff, .. } => self.staff_name(*staff),
            Actor::Participant { .. } => "participant".into(),
            Actor::System => "holdspace".into(),
        }
    }

    fn staff_name(&self, id: StaffId) -> String {
        self.staff
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    fn rows(&mut self, event: &Event) -> Vec<Row> {
        let at = event.at;
        let row = |seat, record: &str, value: String, detail: String| Row {
            time: at,
            seat: Some(seat),
            record: record.into(),
            code: "",
            value,
            unit: "",
            detail,
        };
        match &event.body {
            EventBody::SeatAdded {
                seat,
                display_name,
                weight_kg,
                ..
            } => {
                self.seats.insert(*seat, display_name.clone());
                let weight = weight_kg
                    .map(|kg| format!("weight {kg} kg"))
                    .unwrap_or_default();
                vec![row(*seat, "seat added", String::new(), weight)]
            }
            EventBody::ParticipantStateChanged { seat, from, to } => {
                vec![row(*seat, "state", to.to_string(), format!("from {from}"))]
            }
            EventBody::ArrivalRecorded { seat, form } => {
                let yes = |b: bool| if b { "yes" } else { "no" };
                vec![row(
                    *seat,
                    "arrival check-in",
                    format!("mood {}", form.mood.get()),
                    format!(
                        "anxiety {}; fasting {}; ride home {}; supportive touch {}; intention: {}",
                        form.anxiety.get(),
                        yes(form.fasting_confirmed),
                        yes(form.ride_home_arranged),
                        yes(form.consent_to_touch),
                        form.intention.trim()
                    ),
                )]
            }
            EventBody::SelfReported {
                seat,
                report,
                made_at,
            } => {
                let (value, detail) = match report {
                    SelfReport::Ok {} => ("ok".to_string(), String::new()),
                    SelfReport::NeedSupport { reasons, note } => (
                        "need support".to_string(),
                        reasons
                            .iter()
                            .map(wire_name)
                            .chain(note.clone())
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                };
                let mut r = row(*seat, "self report", value, detail);
                // Dated by the tap, as the record keeps it.
                r.time = made_at.unwrap_or(at);
                vec![r]
            }
            EventBody::SupportAcknowledged { seat } => {
                vec![row(
                    *seat,
                    "support acknowledged",
                    String::new(),
                    String::new(),
                )]
            }
            EventBody::ObservedCheckIn { seat, status, note } => vec![row(
                *seat,
                "observed check-in",
                wire_name(status),
                note.clone().unwrap_or_default(),
            )],
            EventBody::VitalRecorded { seat, reading } => {
                let source = match &reading.source {
                    protocol::ReadingSource::Manual { .. } => "manual".to_string(),
                    protocol::ReadingSource::Device { device, .. } => format!("device {device}"),
                };
                reading
                    .measurement
                    .components()
                    .into_iter()
                    .map(|(component, value)| Row {
                        time: reading.measured_at,
                        seat: Some(*seat),
                        record: component.label().into(),
                        code: component.loinc(),
                        value: value.to_string(),
                        unit: component.ucum(),
                        detail: source.clone(),
                    })
                    .collect()
            }
            EventBody::DoseRecorded { seat, dose } => {
                let mut detail = format!("{}; lot {}", dose.route, dose.lot);
                if let Some(per_kg) = dose.mg_per_kg {
                    detail.push_str(&format!("; {per_kg} mg/kg"));
                }
                if let Some(o) = &dose.hold_override {
                    detail.push_str(&format!(
                        "; held because {}; given because {}",
                        o.held_because, o.reason
                    ));
                }
                vec![Row {
                    time: dose.administered_at,
                    seat: Some(*seat),
                    record: "dose (ketamine)".into(),
                    code: "",
                    value: dose.mg.to_string(),
                    unit: "mg",
                    detail,
                }]
            }
            EventBody::RatingRecorded { seat, rating } => {
                let (record, value) = match rating {
                    Rating::Sedation { moaas } => ("MOAA/S", moaas.to_string()),
                    Rating::Dissociation { score } => ("dissociation score", score.to_string()),
                };
                vec![row(*seat, record, value, String::new())]
            }
            EventBody::NoteAdded { seat, text } => {
                vec![row(*seat, "note", String::new(), text.clone())]
            }
            EventBody::FacilitatorAssigned { seat, staff } => vec![row(
                *seat,
                "check rota",
                staff.map(|s| self.staff_name(s)).unwrap_or_default(),
                String::new(),
            )],
            EventBody::RideHomeConfirmed { seat } => {
                vec![row(
                    *seat,
                    "ride home confirmed",
                    String::new(),
                    String::new(),
                )]
            }
            EventBody::PostSessionRecorded { seat, form } => vec![row(
                *seat,
                "post-session check-in",
                format!("mood {}", form.mood.get()),
                form.journal.clone(),
            )],
            EventBody::DischargeSigned {
                seat,
                checklist,
                override_reason,
            } => {
                let detail = match override_reason {
                    Some(reason) => format!(
                        "overridden: {}; not met: {}",
                        reason,
                        checklist.unmet().join("; ")
                    ),
                    None => "checklist met".into(),
                };
                vec![row(*seat, "discharge", String::new(), detail)]
            }
            EventBody::AlarmRaised {
                seat,
                label,
                priority,
                detail,
                ..
            } => {
                self.alarms.insert(event.seq, (*seat, label.clone()));
                vec![row(
                    *seat,
                    "alarm raised",
                    wire_name(priority),
                    format!("{label}: {detail}"),
                )]
            }
            EventBody::AlarmAcknowledged { alarm } => {
                self.about_alarm(at, *alarm, "alarm acknowledged", String::new())
            }
            EventBody::AlarmEscalated {
                alarm, priority, ..
            } => self.about_alarm(at, *alarm, "alarm escalated", wire_name(priority)),
            EventBody::AlarmCleared { alarm, reason } => {
                self.about_alarm(at, *alarm, "alarm cleared", wire_name(reason))
            }
            EventBody::SessionCreated { .. }
            | EventBody::PhaseChanged { .. }
            | EventBody::GroupMessagePosted { .. }
            | EventBody::DeviceFeedEnded { .. }
            | EventBody::ParticipantConnected { .. }
            | EventBody::ParticipantDisconnected { .. }
            | EventBody::AlarmRuleSet { .. }
            | EventBody::AlarmConditionChanged { .. }
            | EventBody::AlarmAudioPaused { .. } => Vec::new(),
        }
    }

    fn about_alarm(
        &self,
        at: protocol::Timestamp,
        alarm: Seq,
        record: &str,
        value: String,
    ) -> Vec<Row> {
        let (seat, label) = match self.alarms.get(&alarm) {
            Some((seat, label)) => (Some(*seat), label.clone()),
            None => (None, format!("alarm {}", alarm.0)),
        };
        vec![Row {
            time: at,
            seat,
            record: record.into(),
            code: "",
            value,
            unit: "",
            detail: label,
        }]
    }
}

/// A value's name on the wire ("needs_medical", "high").
fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// One CSV line (RFC 4180): a field with a comma, a quote or a line break is
/// quoted, quotes doubled. A field a spreadsheet would run as a formula (it
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading
/// `'`: participants and staff type some of these fields.
fn csv_line(fields: impl IntoIterator<Item = String>) -> String {
    let fields: Vec<String> = fields
        .into_iter()
        .map(|f| {
            let f = if f.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{f}")
            } else {
                f
            };
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect();
    format!("{}\r\n", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        let line = csv_line(
            [
                "plain",
                "a, b",
                "she said \"ok\"",
                "two\nlines",
                "=HYPERLINK(\"x\")",
                "-2+3",
                "",
            ]
            .map(String::from),
        );
        assert_eq!(
            line,
            "plain,\"a, b\",\"she said \"\"ok\"\"\",\"two\nlines\",\"'=HYPERLINK(\"\"x\"\")\",'-2+3,\r\n"
        );
    }
}
