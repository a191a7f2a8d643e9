//! A session's record for the clinic's files: the log as it is stored (one
//! JSON event per line), a CSV of the clinical records (vitals by LOINC
//! code and UCUM unit, doses, ratings, check-ins, notes, state changes,
//! alarms and who answered them, discharge) that a spreadsheet reads, and
//! the same records as a FHIR R4 Bundle for an EHR. Both are streamed from the log, a chunk at a time, so a
//! four-hour session of 1 Hz oximetry never sits in memory whole.

use protocol::rest::StaffMember;
use protocol::{Actor, Event, EventBody, Rating, SeatId, SelfReport, Seq, StaffId};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The CSV's columns.
pub const CSV_HEADER: [&str; 10] = [
    "time_utc",
    "seq",
    "seat",
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

    /// The header line, after a byte-order mark: without it, a spreadsheet
    /// on Windows garbles accented names.
    pub fn header() -> String {
        format!(
            "\u{feff}{}",
            csv_line(CSV_HEADER.iter().map(|h| (*h).to_string()))
        )
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
                // Two people may share a first name: the seat tells them apart.
                row.seat.map(|s| s.to_string()).unwrap_or_default(),
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
                staff.map_or_else(|| "none".into(), |s| self.staff_name(s)),
                String::new(),
            )],
            EventBody::DeviceFeedEnded { seat, device } => {
                vec![row(*seat, "device removed", device.clone(), String::new())]
            }
            // For the whole session (no seat), or one participant.
            EventBody::AlarmRuleSet { seat, rule } => vec![Row {
                time: at,
                seat: *seat,
                record: "alarm rule set".into(),
                code: "",
                value: rule.id.clone(),
                unit: "",
                detail: format!(
                    "{}{}",
                    rule.label,
                    if rule.enabled { "" } else { " (switched off)" }
                ),
            }],
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
            EventBody::AlarmAudioPaused { alarm, until } => self.about_alarm(
                at,
                *alarm,
                "alarm sound paused",
                format!("until {}", until.utc()),
            ),
            EventBody::SessionCreated { .. }
            | EventBody::PhaseChanged { .. }
            | EventBody::GroupMessagePosted { .. }
            | EventBody::ParticipantConnected { .. }
            | EventBody::ParticipantDisconnected { .. }
            | EventBody::AlarmConditionChanged { .. } => Vec::new(),
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

/// Turns events, in log order, into the entries of a FHIR R4 `Bundle` of
/// type `collection`: a `Patient` per seat (the name or pseudonym the clinic
/// gave), an `Observation` per vital reading (LOINC code, UCUM unit; a BP as
/// the panel with its two components) and per observer rating, a
/// `MedicationAdministration` per dose (RxNorm ketamine), and a
/// `QuestionnaireResponse` per check-in the participant filled in (arrival,
/// self reports, after the session). Resource ids are derived from the
/// session and the event, so exporting twice gives the same ids.
pub struct Fhir {
    session: u128,
    staff: HashMap<StaffId, String>,
    entries: Arc<AtomicUsize>,
}

/// The start of the bundle, before its entries.
pub fn fhir_start(now: protocol::Timestamp) -> String {
    format!(
        "{{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"timestamp\":\"{}\"",
        now.utc()
    )
}

const UCUM: &str = "http://unitsofmeasure.org";

impl Fhir {
    /// For `session` of a clinic with these staff (to name who did what).
    pub fn new(session: protocol::SessionId, staff: &[StaffMember]) -> Fhir {
        Fhir {
            session: session.as_uuid().as_u128(),
            staff: staff
                .iter()
                .map(|m| (m.id, m.display_name.clone()))
                .collect(),
            entries: Arc::default(),
        }
    }

    /// The end of the bundle, for after the last entry: FHIR JSON has no
    /// empty arrays, so a bundle without entries has no `entry` at all.
    pub fn end(&self) -> impl FnOnce() -> String + Send + 'static {
        let entries = self.entries.clone();
        move || {
            if entries.load(Ordering::Relaxed) > 0 {
                "]}\n".into()
            } else {
                "}\n".into()
            }
        }
    }

    /// The bundle entries for these events, the first opening the `entry`
    /// array and each later one after a comma.
    pub fn entries(&mut self, events: &[Event]) -> String {
        let mut out = String::new();
        for event in events {
            if let Some((id, resource)) = self.resource(event) {
                let before = self.entries.fetch_add(1, Ordering::Relaxed);
                out.push_str(if before == 0 { ",\"entry\":[" } else { "," });
                let entry = serde_json::json!({
                    "fullUrl": format!("urn:uuid:{id}"),
                    "resource": resource,
                });
                out.push_str(&entry.to_string());
            }
        }
        out
    }

    fn name(&self, staff: StaffId) -> String {
        self.staff
            .get(&staff)
            .cloned()
            .unwrap_or_else(|| staff.to_string())
    }

    /// The resource an event records, with its id, if it is one.
    fn resource(&self, event: &Event) -> Option<(uuid::Uuid, serde_json::Value)> {
        use serde_json::{Value, json};
        // Distinct per session and event, and a well-formed UUID (the version
        // and variant bits set, clear of the seq in the low bits); a seat's
        // Patient keeps the seat's own id.
        let id = uuid::Builder::from_random_bytes(
            (self.session ^ u128::from(event.seq.0)).to_be_bytes(),
        )
        .into_uuid();
        let time = event.at.utc();
        let subject = |seat: &SeatId| json!({ "reference": format!("urn:uuid:{seat}") });
        // LOINC's own display names are left to the receiver; ours is the text.
        let loinc = |code: &str, text: &str| json!({ "coding": [{ "system": "http://loinc.org", "code": code }], "text": text });
        let category = |code: &str| {
            json!([{ "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": code,
            }] }])
        };
        let answers = |seat: &SeatId, authored: String, items: Vec<Value>| {
            json!({
                "resourceType": "QuestionnaireResponse",
                "id": id.to_string(),
                "status": "completed",
                "subject": subject(seat),
                "authored": authored,
                "item": items,
            })
        };
        let item = |link: &str, text: &str, answer: Value| json!({ "linkId": link, "text": text, "answer": [answer] });
        // Words someone may have left blank: no item (FHIR has no empty strings).
        let words = |link: &str, text: &str, value: &str| {
            let value = value.trim();
            (!value.is_empty()).then(|| item(link, text, json!({ "valueString": value })))
        };
        let resource = match &event.body {
            EventBody::SeatAdded {
                seat, display_name, ..
            } => {
                let patient = json!({
                    "resourceType": "Patient",
                    "id": seat.to_string(),
                    "name": [{ "text": display_name }],
                });
                return Some((seat.as_uuid(), patient));
            }
            EventBody::VitalRecorded { seat, reading } => {
                let kind = reading.measurement.kind();
                let quantity = |c: protocol::vitals::VitalComponent, v: f64| json!({ "value": v, "unit": c.unit(), "system": UCUM, "code": c.ucum() });
                let mut obs = json!({
                    "resourceType": "Observation",
                    "id": id.to_string(),
                    "status": "final",
                    "category": category("vital-signs"),
                    "code": loinc(kind.loinc(), kind.label()),
                    "subject": subject(seat),
                    "effectiveDateTime": reading.measured_at.utc(),
                    "issued": reading.received_at.utc(),
                });
                if kind == protocol::VitalKind::Spo2 {
                    // Measured by pulse oximetry, as the vital-signs profile asks.
                    obs["code"]["coding"]
                        .as_array_mut()
                        .expect("a coding list")
                        .push(json!({ "system": "http://loinc.org", "code": "59408-5" }));
                }
                match &reading.source {
                    protocol::ReadingSource::Manual { by } => {
                        obs["performer"] = json!([{ "display": self.name(*by) }]);
                    }
                    protocol::ReadingSource::Device { device, .. } => {
                        obs["device"] = json!({ "display": device });
                    }
                }
                match reading.measurement.components().as_slice() {
                    [(c, v)] => obs["valueQuantity"] = quantity(*c, *v),
                    parts => {
                        obs["component"] = parts
                            .iter()
                            .map(|(c, v)| {
                                json!({
                                    "code": loinc(c.loinc(), c.label()),
                                    "valueQuantity": quantity(*c, *v),
                                })
                            })
                            .collect();
                    }
                }
                obs
            }
            EventBody::RatingRecorded { seat, rating } => {
                let (text, value) = match rating {
                    Rating::Sedation { moaas } => (
                        "MOAA/S (Modified Observer's Assessment of Alertness/Sedation, 0-5)",
                        *moaas,
                    ),
                    Rating::Dissociation { score } => {
                        ("dissociation score (observer, 0-100)", *score)
                    }
                };
                let mut obs = json!({
                    "resourceType": "Observation",
                    "id": id.to_string(),
                    "status": "final",
                    "category": category("survey"),
                    "code": { "text": text },
                    "subject": subject(seat),
                    "effectiveDateTime": time,
                    "valueInteger": value,
                });
                if let Actor::Staff { staff, .. } = &event.actor {
                    obs["performer"] = json!([{ "display": self.name(*staff) }]);
                }
                obs
            }
            EventBody::DoseRecorded { seat, dose } => {
                let mut note = format!("lot {}", dose.lot);
                if let Some(o) = &dose.hold_override {
                    note.push_str(&format!(
                        "; held because {}; given because {}",
                        o.held_because, o.reason
                    ));
                }
                json!({
                    "resourceType": "MedicationAdministration",
                    "id": id.to_string(),
                    "status": "completed",
                    "medicationCodeableConcept": {
                        "coding": [{
                            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                            "code": "6130",
                            "display": "ketamine",
                        }],
                        "text": "ketamine",
                    },
                    "subject": subject(seat),
                    "effectiveDateTime": dose.administered_at.utc(),
                    "performer": [{ "actor": { "display": self.name(dose.administered_by) } }],
                    "note": [{ "text": note }],
                    "dosage": {
                        "route": { "text": dose.route.to_string() },
                        "dose": { "value": dose.mg, "unit": "mg", "system": UCUM, "code": "mg" },
                    },
                })
            }
            EventBody::ArrivalRecorded { seat, form } => answers(
                seat,
                time,
                vec![
                    item(
                        "mood",
                        "Mood (0-10)",
                        json!({ "valueInteger": form.mood.get() }),
                    ),
                    item(
                        "anxiety",
                        "Anxiety (0-10)",
                        json!({ "valueInteger": form.anxiety.get() }),
                    ),
                ]
                .into_iter()
                .chain(words("intention", "Intention", &form.intention))
                .chain([
                    item(
                        "fasting",
                        "Fasting confirmed",
                        json!({ "valueBoolean": form.fasting_confirmed }),
                    ),
                    item(
                        "ride-home",
                        "Ride home arranged",
                        json!({ "valueBoolean": form.ride_home_arranged }),
                    ),
                    item(
                        "touch",
                        "Consent to supportive touch",
                        json!({ "valueBoolean": form.consent_to_touch }),
                    ),
                ])
                .collect(),
            ),
            EventBody::SelfReported {
                seat,
                report,
                made_at,
            } => {
                // Dated by the tap, as the record keeps it.
                let authored = made_at.unwrap_or(event.at).utc();
                let mut items = Vec::new();
                match report {
                    SelfReport::Ok {} => {
                        items.push(item(
                            "status",
                            "How are you?",
                            json!({ "valueString": "I'm OK" }),
                        ));
                    }
                    SelfReport::NeedSupport { reasons, note } => {
                        items.push(item(
                            "status",
                            "How are you?",
                            json!({ "valueString": "I need support" }),
                        ));
                        // One item, every reason an answer of it.
                        if !reasons.is_empty() {
                            let answers: Vec<Value> = reasons
                                .iter()
                                .map(|r| json!({ "valueString": wire_name(r) }))
                                .collect();
                            items.push(
                                json!({ "linkId": "reason", "text": "Reason", "answer": answers }),
                            );
                        }
                        let note = note.as_deref().unwrap_or("");
                        items.extend(words("note", "In their words", note));
                    }
                }
                answers(seat, authored, items)
            }
            EventBody::PostSessionRecorded { seat, form } => answers(
                seat,
                time,
                vec![item(
                    "mood",
                    "Mood after the session (0-10)",
                    json!({ "valueInteger": form.mood.get() }),
                )]
                .into_iter()
                .chain(words("journal", "Journal", &form.journal))
                .collect(),
            ),
            _ => return None,
        };
        Some((id, resource))
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
/// quoted, quotes doubled, and so is one with a semicolon or a tab, the
/// separators a spreadsheet may be set to. A field a spreadsheet would run as a formula (it
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
            if f.contains([',', ';', '\t', '"', '\n', '\r']) {
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
                "fine;=cmd",
                "",
            ]
            .map(String::from),
        );
        assert_eq!(
            line,
            "plain,\"a, b\",\"she said \"\"ok\"\"\",\"two\nlines\",\"'=HYPERLINK(\"\"x\"\")\",'-2+3,\"fine;=cmd\",\r\n"
        );
    }
}
