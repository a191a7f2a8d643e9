//! How values read on screen: times, durations, alarm looks (colour AND icon
//! AND word, never colour alone), state names.

use protocol::rest::StaffMember;
use protocol::{
    Actor, AlarmPriority, EventBody, Measurement, ObservedStatus, ParticipantState, Rating, Seat,
    SelfReport, SessionPhase, StaffId, StaffRole, Timestamp,
};

/// Local wall-clock time "21:04" for `at`, given the browser's offset from UTC
/// in minutes (east positive).
pub fn clock(at: Timestamp, utc_offset_min: i64) -> String {
    let minutes = (at.0.div_euclid(60_000) + utc_offset_min).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Local day and time "Sat 5 Dec 21:04" for `at` (offset as in [`clock`]):
/// which evening's group a session was.
pub fn day_and_time(at: Timestamp, utc_offset_min: i64) -> String {
    let minutes = at.0.div_euclid(60_000) + utc_offset_min;
    let days = minutes.div_euclid(24 * 60);
    let (_, month, day) = protocol::ids::civil_date(days);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{} {day} {} {}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        clock(at, utc_offset_min)
    )
}

/// A duration in words a glance can read: "45 s", "12 min", "2 h 05".
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        _ => format!("{} h {:02}", s / 3600, (s % 3600) / 60),
    }
}

/// A countdown "4:05", or "overdue 2:10" once past.
pub fn countdown(ms: i64) -> String {
    let s = ms.abs() / 1000;
    let text = format!("{}:{:02}", s / 60, s % 60);
    if ms < 0 {
        format!("overdue {text}")
    } else {
        text
    }
}

/// How an alarm priority looks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Look {
    /// CSS class (colour; `high` also flashes).
    pub class: &'static str,
    /// An icon that differs per priority.
    pub icon: &'static str,
    /// The word.
    pub word: &'static str,
}

/// The look of an alarm priority.
pub fn priority_look(priority: AlarmPriority) -> Look {
    match priority {
        AlarmPriority::High => Look {
            class: "high",
            icon: "▲",
            word: "HIGH",
        },
        AlarmPriority::Medium => Look {
            class: "medium",
            icon: "◆",
            word: "MEDIUM",
        },
        AlarmPriority::Low => Look {
            class: "low",
            icon: "●",
            word: "LOW",
        },
        AlarmPriority::Info => Look {
            class: "info",
            icon: "ℹ",
            word: "INFO",
        },
    }
}

/// A participant state as staff read it.
pub fn state_label(state: ParticipantState) -> &'static str {
    match state {
        ParticipantState::Invited => "invited",
        ParticipantState::Arrived => "arrived",
        ParticipantState::Ready => "ready",
        ParticipantState::Dosed => "dosed",
        ParticipantState::InExperience => "in experience",
        ParticipantState::Emerging => "emerging",
        ParticipantState::Integrating => "integrating",
        ParticipantState::Discharged => "discharged",
        ParticipantState::Withdrawn => "withdrawn",
    }
}

/// What a facilitator can see at a check, in the order the form offers it.
pub const OBSERVED: [ObservedStatus; 7] = [
    ObservedStatus::Resting,
    ObservedStatus::Calm,
    ObservedStatus::Tearful,
    ObservedStatus::Distressed,
    ObservedStatus::Asleep,
    ObservedStatus::NeedsMedical,
    ObservedStatus::OutOfRoom,
];

/// An observed check-in's status as staff read it.
pub fn observed_label(status: ObservedStatus) -> &'static str {
    match status {
        ObservedStatus::Resting => "resting",
        ObservedStatus::Calm => "calm",
        ObservedStatus::Tearful => "tearful",
        ObservedStatus::Distressed => "distressed",
        ObservedStatus::Asleep => "asleep",
        ObservedStatus::NeedsMedical => "needs medical",
        ObservedStatus::OutOfRoom => "out of room",
    }
}

/// What the people in the room must keep in mind, in words for the tile:
/// no weight on record (a dose would be held), and from the arrival
/// check-in no supportive touch, not fasted, no ride home (until staff
/// confirm one).
pub fn tile_flags(seat: &Seat, policy: &protocol::ClinicPolicy) -> Vec<&'static str> {
    let mut flags = Vec::new();
    // A dose is held without a weight to check it against: weigh first.
    if seat.weight_kg.is_none() && !seat.state.has_left() && policy.dose_hold.hold_without_weight {
        flags.push("no weight");
    }
    let Some(form) = seat.arrival.as_ref().map(|a| &a.value) else {
        return flags;
    };
    if !form.consent_to_touch {
        flags.push("no touch");
    }
    if !form.fasting_confirmed {
        flags.push("not fasted");
    }
    if !form.ride_home_arranged && !seat.ride_home_confirmed {
        flags.push("no ride home");
    }
    flags
}

/// Which screen a participant's phone shows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PhoneScreen {
    /// The seat is not known yet (connecting).
    Waiting,
    /// The arrival check-in.
    Arrival,
    /// The post-session form, with the support buttons beside it.
    Journal,
    /// Discharged before writing it: the post-session form alone.
    JournalAfterDischarge,
    /// The post-session form is saved; the support buttons stay.
    Thanked,
    /// Discharged or withdrawn: only a goodbye.
    Done,
    /// "I'm OK" / "I need support".
    Buttons,
}

/// The phone's screen for its seat: the support buttons stay until the
/// participant has left (discharged or withdrawn), whatever was saved; someone
/// still in the room after the journal may still need a facilitator. The
/// journal stays open after discharge until it is saved or the session closes.
pub fn phone_screen(
    state: ParticipantState,
    arrived: bool,
    journal_saved: bool,
    phase: SessionPhase,
) -> PhoneScreen {
    let after = state == ParticipantState::Integrating || phase == SessionPhase::Integration;
    if phase == SessionPhase::Closed {
        // A closed session takes nothing more: no buttons that cannot work.
        PhoneScreen::Done
    } else if state == ParticipantState::Discharged && !journal_saved {
        PhoneScreen::JournalAfterDischarge
    } else if state.has_left() {
        PhoneScreen::Done
    } else if !arrived {
        PhoneScreen::Arrival
    } else if journal_saved {
        PhoneScreen::Thanked
    } else if after {
        PhoneScreen::Journal
    } else {
        PhoneScreen::Buttons
    }
}

/// A phase as staff read it.
pub fn phase_label(phase: SessionPhase) -> &'static str {
    match phase {
        SessionPhase::Preparation => "Preparation",
        SessionPhase::Intentions => "Intention circle",
        SessionPhase::Dosing => "Dosing",
        SessionPhase::Experience => "Experience",
        SessionPhase::Integration => "Integration",
        SessionPhase::Closed => "Closed",
    }
}

/// A number to two decimals, without needless zeros ("2.14", "0.5", "2").
fn hundredths(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A number without a needless ".0".
fn num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

/// A measurement as read aloud: "BP 128/82", "SpO2 97 %".
pub fn measurement(m: &Measurement) -> String {
    match *m {
        Measurement::BloodPressure {
            systolic,
            diastolic,
        } => format!("BP {}/{}", num(systolic), num(diastolic)),
        Measurement::HeartRate { value } => format!("HR {} /min", num(value)),
        Measurement::Spo2 { value } => format!("SpO2 {} %", num(value)),
        Measurement::RespiratoryRate { value } => format!("RR {} /min", num(value)),
        Measurement::BodyTemperature { value } => format!("Temp {} °C", num(value)),
        Measurement::BodyWeight { value } => format!("Weight {} kg", num(value)),
    }
}

/// One line of a participant's timeline.
pub fn describe(body: &EventBody) -> String {
    match body {
        EventBody::SessionCreated { title, .. } => format!("Session opened: {title}"),
        EventBody::SeatAdded { display_name, .. } => format!("Seat added for {display_name}"),
        EventBody::PhaseChanged { to, .. } => format!("Phase: {}", phase_label(*to)),
        EventBody::ParticipantStateChanged { from, to, .. } => {
            format!("{} → {}", state_label(*from), state_label(*to))
        }
        EventBody::ArrivalRecorded { form, .. } => format!(
            "Arrival check-in: mood {}, anxiety {}{}{}",
            form.mood.get(),
            form.anxiety.get(),
            if form.ride_home_arranged {
                ""
            } else {
                ", NO ride home"
            },
            if form.fasting_confirmed {
                ""
            } else {
                ", NOT fasted"
            }
        ),
        EventBody::SelfReported {
            report: SelfReport::Ok {},
            ..
        } => "“I'm OK”".into(),
        EventBody::SelfReported {
            report: SelfReport::NeedSupport { reasons, note },
            ..
        } => {
            let mut text = "“I need support”".to_string();
            if !reasons.is_empty() {
                let words: Vec<String> = reasons
                    .iter()
                    .map(|r| format!("{r:?}").to_lowercase())
                    .collect();
                text.push_str(&format!(": {}", words.join(", ")));
            }
            if let Some(note) = note {
                text.push_str(&format!(" — {note}"));
            }
            text
        }
        EventBody::SupportAcknowledged { .. } => "Support request acknowledged".into(),
        EventBody::ObservedCheckIn { status, note, .. } => {
            let status = observed_label(*status);
            match note {
                Some(n) => format!("Observed: {status} — {n}"),
                None => format!("Observed: {status}"),
            }
        }
        EventBody::VitalRecorded { reading, .. } => format!(
            "{}{}",
            measurement(&reading.measurement),
            match &reading.source {
                protocol::ReadingSource::Manual { .. } => String::new(),
                protocol::ReadingSource::Device { device, .. } => format!(" ({device})"),
            }
        ),
        EventBody::DoseRecorded { dose, .. } => format!(
            "Dose {} {} mg{}, lot {}{}",
            dose.route,
            num(dose.mg),
            dose.mg_per_kg
                .map(|k| format!(" ({k} mg/kg)"))
                .unwrap_or_default(),
            dose.lot,
            dose.hold_override
                .as_ref()
                .map(|h| format!(" — HOLD OVERRIDDEN: {}", h.reason))
                .unwrap_or_default()
        ),
        EventBody::NoteAdded { text, .. } => format!("Note: {text}"),
        EventBody::GroupMessagePosted { text } => format!("To the group: {text}"),
        EventBody::PostSessionRecorded { form, .. } => {
            format!("Post-session check-in: mood {}", form.mood.get())
        }
        EventBody::RatingRecorded {
            rating: Rating::Sedation { moaas },
            ..
        } => format!("MOAA/S {moaas}"),
        EventBody::RatingRecorded {
            rating: Rating::Dissociation { score },
            ..
        } => format!("Dissociation score {score}"),
        EventBody::FacilitatorAssigned { staff: Some(_), .. } => "Check rota assigned".into(),
        EventBody::FacilitatorAssigned { staff: None, .. } => "Check rota: any facilitator".into(),
        EventBody::RideHomeConfirmed { .. } => "Ride home confirmed".into(),
        EventBody::DeviceFeedEnded { device, .. } => format!("Device {device} removed"),
        EventBody::ParticipantConnected { .. } => "Phone connected".into(),
        EventBody::ParticipantDisconnected { .. } => "Phone disconnected".into(),
        EventBody::DischargeSigned {
            override_reason: None,
            ..
        } => "Discharge signed (checklist complete)".into(),
        EventBody::DischargeSigned {
            override_reason: Some(r),
            ..
        } => format!("Discharge signed with override: {r}"),
        EventBody::AlarmRuleSet { rule, .. } => format!("Alarm rule changed: {}", rule.label),
        EventBody::AlarmRaised {
            priority,
            label,
            detail,
            ..
        } => {
            format!(
                "{} alarm: {label} — {detail}",
                priority_look(*priority).word
            )
        }
        EventBody::AlarmConditionChanged { active: false, .. } => {
            "Alarm condition ended (latched until acknowledged)".into()
        }
        EventBody::AlarmConditionChanged { active: true, .. } => "Alarm condition returned".into(),
        EventBody::AlarmAcknowledged { .. } => "Alarm acknowledged".into(),
        EventBody::AlarmAudioPaused { .. } => "Alarm audio paused".into(),
        EventBody::AlarmEscalated { priority, .. } => format!(
            "Alarm escalated to every role ({})",
            priority_look(*priority).word
        ),
        EventBody::AlarmCleared { reason, .. } => {
            format!("Alarm cleared ({})", format!("{reason:?}").to_lowercase())
        }
    }
}

/// The order alarms are shown in, first to last, and which one a tile
/// shows: every alarm nobody has acknowledged before any acknowledged one
/// (an acknowledged high must not hide a new medium), then the most urgent,
/// then the oldest.
pub fn alarm_rank(alarm: &protocol::Alarm) -> (bool, std::cmp::Reverse<AlarmPriority>, Timestamp) {
    (
        alarm.acknowledged.is_some(),
        std::cmp::Reverse(alarm.priority),
        alarm.raised_at,
    )
}

/// An alarm as the list shows it now, which may differ from when it was
/// raised: who is on the check rota now (for rules that name the rota), and
/// for a person's request that still stands, its words now (reasons a
/// participant added after the first tap, the facilitator's latest note).
pub fn alarm_as_it_stands(
    state: &protocol::SessionState,
    alarm: &protocol::Alarm,
) -> (Option<StaffId>, String) {
    let found = state.seat(alarm.seat).and_then(|seat| {
        protocol::monitor::effective_rules(state, seat)
            .into_iter()
            .find(|r| r.id == alarm.rule)
            .map(|rule| (seat, rule))
    });
    let Some((seat, rule)) = found else {
        return (None, alarm.detail.clone());
    };
    let rota = seat.assigned_facilitator.filter(|_| rule.names_rota());
    let detail = match rule.kind() {
        protocol::AlarmKind::Request => {
            match protocol::monitor::condition(rule, seat, state, alarm.raised_at) {
                protocol::monitor::Status::Met { detail, .. } => detail,
                _ => alarm.detail.clone(),
            }
        }
        _ => alarm.detail.clone(),
    };
    (rota, detail)
}

/// The alarms a participant's tile shows: the most severe (it colours the
/// tile, acknowledged or not: a desaturation someone is on is still red),
/// and, if another is waiting for someone to acknowledge it, that one too
/// (an acknowledged high must not hide a new medium).
pub fn tile_alarms<'a>(
    alarms: impl Iterator<Item = &'a protocol::Alarm> + Clone,
) -> Vec<&'a protocol::Alarm> {
    let Some(worst) = alarms.clone().max_by_key(|a| (a.priority, a.raised_at)) else {
        return Vec::new();
    };
    let waiting = alarms
        .filter(|a| a.acknowledged.is_none() && a.id != worst.id)
        .min_by_key(|a| alarm_rank(a));
    match waiting {
        Some(next) if worst.acknowledged.is_some() => vec![worst, next],
        _ => vec![worst],
    }
}

/// What each MOAA/S score means (Modified Observer's Assessment of
/// Alertness/Sedation), 0 to 5, for the buttons that record it.
pub const MOAAS: [&str; 6] = [
    "no response after a painful trapezius squeeze",
    "responds only after a painful trapezius squeeze",
    "responds only after mild prodding or shaking",
    "responds only after the name is called loudly or repeatedly",
    "lethargic response to the name in a normal tone",
    "responds readily to the name in a normal tone",
];

/// What a participant has been given, by route, for the tile: "IM 150 mg
/// (2.14 mg/kg)", "IM 500 mg, intranasal 56 mg" without a weight (a further
/// dose adds to its route's total; the dose hold checks the same totals).
/// Empty before the first dose.
pub fn dose_totals(seat: &Seat) -> String {
    let mut totals: Vec<(protocol::Route, f64)> = Vec::new();
    for dose in &seat.doses {
        match totals.iter_mut().find(|(route, _)| *route == dose.route) {
            Some((_, mg)) => *mg += dose.mg,
            None => totals.push((dose.route, dose.mg)),
        }
    }
    totals
        .iter()
        .map(|(route, mg)| match seat.weight_kg {
            Some(kg) => format!("{route} {} mg ({} mg/kg)", num(*mg), hundredths(mg / kg)),
            None => format!("{route} {} mg", num(*mg)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A colleague's name for the board ("acknowledged by River"), from the
/// clinic's staff list. An id not on the list (it has not loaded, or the
/// account is gone) still reads as a person, never as a raw id.
pub fn staff_name(staff: &[StaffMember], id: StaffId) -> String {
    staff
        .iter()
        .find(|m| m.id == id)
        .map_or_else(|| "a colleague".into(), |m| m.display_name.clone())
}

/// Who made an event, for a participant's timeline: "by Dr. Mo", or "from
/// the phone"; nothing for what Holdspace itself recorded (alarms,
/// connections).
pub fn by_whom(actor: &Actor, staff: &[StaffMember]) -> Option<String> {
    match actor {
        Actor::Staff { staff: id, .. } => Some(format!("by {}", staff_name(staff, *id))),
        Actor::Participant { .. } => Some("from the phone".into()),
        Actor::System => None,
    }
}

/// One participant's timeline, newest first (at most `max` entries): the
/// events about their seat, with who made each, and what became of their
/// alarms (acknowledged by whom, escalated, cleared), which the log records
/// by alarm rather than by seat.
pub fn seat_timeline(
    events: &[protocol::Event],
    seat: protocol::SeatId,
    staff: &[StaffMember],
    max: usize,
) -> Vec<(Timestamp, String)> {
    let mut alarms: std::collections::HashMap<protocol::Seq, &str> = Default::default();
    let mut lines = Vec::new();
    for e in events {
        let text = match &e.body {
            EventBody::AlarmRaised { seat: s, label, .. } if *s == seat => {
                alarms.insert(e.seq, label);
                describe(&e.body)
            }
            EventBody::AlarmAcknowledged { alarm }
            | EventBody::AlarmAudioPaused { alarm, .. }
            | EventBody::AlarmEscalated { alarm, .. }
            | EventBody::AlarmCleared { alarm, .. } => match alarms.get(alarm) {
                Some(label) => format!("{}: {label}", describe(&e.body)),
                None => continue,
            },
            EventBody::FacilitatorAssigned {
                seat: s,
                staff: Some(who),
            } if *s == seat => format!("Check rota: {}", staff_name(staff, *who)),
            body if body.seat() == Some(seat) => describe(body),
            _ => continue,
        };
        let line = match by_whom(&e.actor, staff) {
            Some(who) => format!("{text} · {who}"),
            None => text,
        };
        lines.push((e.at, line));
    }
    lines.into_iter().rev().take(max).collect()
}

/// The facilitators a participant's check rota can name, by name.
pub fn rota_choices(staff: &[StaffMember]) -> Vec<&StaffMember> {
    let mut on_rota: Vec<&StaffMember> = staff
        .iter()
        .filter(|m| m.role == StaffRole::Facilitator)
        .collect();
    on_rota.sort_by(|a, b| a.display_name.cmp(&b.display_name));
    on_rota
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tile_adds_up_what_was_given_by_route() {
        use protocol::{Dose, Route};
        let mut seat = fresh_seat();
        assert_eq!(dose_totals(&seat), "");
        let dose = |route, mg| Dose {
            route,
            mg,
            mg_per_kg: None,
            lot: "L1".into(),
            administered_at: Timestamp(0),
            administered_by: StaffId::from_uuid(uuid::Uuid::from_u128(3)),
            pre_dose_bp: None,
            hold_override: None,
        };
        seat.doses.push(dose(Route::Im, 200.0));
        assert_eq!(dose_totals(&seat), "IM 200 mg");
        seat.doses.push(dose(Route::Intranasal, 56.0));
        seat.doses.push(dose(Route::Im, 300.5));
        assert_eq!(dose_totals(&seat), "IM 500.5 mg, intranasal 56 mg");
        seat.weight_kg = Some(70.0);
        assert_eq!(
            dose_totals(&seat),
            "IM 500.5 mg (7.15 mg/kg), intranasal 56 mg (0.8 mg/kg)"
        );
    }

    /// A session built from these events, in order, with the events.
    fn session_of(
        bodies: Vec<(protocol::Actor, EventBody)>,
    ) -> (protocol::SessionState, Vec<protocol::Event>) {
        let mut state = protocol::state::SessionState::empty(protocol::SessionId::from_uuid(
            uuid::Uuid::from_u128(1),
        ));
        let mut events = Vec::new();
        for (n, (actor, body)) in bodies.into_iter().enumerate() {
            let seq = n as u64 + 1;
            let event = protocol::Event {
                session: state.id,
                seq: protocol::Seq(seq),
                at: Timestamp(seq as i64 * 1000),
                actor,
                command: None,
                body,
            };
            assert!(state.apply(&event));
            events.push(event);
        }
        (state, events)
    }

    #[test]
    fn a_support_alarm_reads_as_it_stands_and_the_timeline_says_who_answered() {
        use protocol::Actor;
        let seat = protocol::SeatId::from_uuid(uuid::Uuid::from_u128(7));
        let other = protocol::SeatId::from_uuid(uuid::Uuid::from_u128(8));
        let fern = StaffId::from_uuid(uuid::Uuid::from_u128(3));
        let staff = [StaffMember {
            id: fern,
            display_name: "Fern".into(),
            role: StaffRole::Facilitator,
        }];
        let by_fern = Actor::Staff {
            staff: fern,
            role: StaffRole::Facilitator,
        };
        let press = |seat, reasons| EventBody::SelfReported {
            seat,
            report: SelfReport::NeedSupport {
                reasons,
                note: None,
            },
            made_at: None,
        };
        let raised = |seat| EventBody::AlarmRaised {
            seat,
            rule: "support-request".into(),
            label: "Participant asked for support".into(),
            priority: AlarmPriority::High,
            kind: protocol::AlarmKind::Request,
            detail: "asked for support".into(),
            notify: vec![],
            assigned_to: None,
            latching: false,
        };
        let added = |seat, name: &str| EventBody::SeatAdded {
            seat,
            display_name: name.into(),
            weight_kg: None,
            location: None,
        };
        let (state, events) = session_of(vec![
            (
                Actor::System,
                EventBody::SessionCreated {
                    clinic: protocol::ClinicId::from_uuid(uuid::Uuid::from_u128(2)),
                    title: "t".into(),
                    policy: protocol::ClinicPolicy::default(),
                },
            ),
            (by_fern, added(seat, "Ana")),
            (by_fern, added(other, "Ben")),
            (Actor::Participant { seat }, press(seat, vec![])),
            (Actor::System, raised(seat)),
            (Actor::Participant { seat: other }, press(other, vec![])),
            (Actor::System, raised(other)),
            (
                Actor::Participant { seat },
                press(seat, vec![protocol::SupportReason::Cold]),
            ),
            (
                by_fern,
                EventBody::FacilitatorAssigned {
                    seat,
                    staff: Some(fern),
                },
            ),
            (
                by_fern,
                EventBody::AlarmAcknowledged {
                    alarm: protocol::Seq(7),
                },
            ),
            (
                by_fern,
                EventBody::AlarmAudioPaused {
                    alarm: protocol::Seq(5),
                    until: Timestamp(120_000),
                },
            ),
            (
                by_fern,
                EventBody::AlarmAcknowledged {
                    alarm: protocol::Seq(5),
                },
            ),
        ]);
        // Ana's alarm, as raised and as it stands.
        let alarm = state.alarms.iter().find(|a| a.seat == seat).unwrap();
        assert_eq!(alarm.detail, "asked for support");
        assert_eq!(
            alarm_as_it_stands(&state, alarm),
            (Some(fern), "asked for support: cold".to_string())
        );
        // Her timeline: her alarm's answer, not Ben's; who did what.
        let lines: Vec<String> = seat_timeline(&events, seat, &staff, 100)
            .into_iter()
            .map(|(_, text)| text)
            .collect();
        assert_eq!(
            lines,
            [
                "Alarm acknowledged: Participant asked for support · by Fern",
                "Alarm audio paused: Participant asked for support · by Fern",
                "Check rota: Fern · by Fern",
                "“I need support”: cold · from the phone",
                "HIGH alarm: Participant asked for support — asked for support",
                "“I need support” · from the phone",
                "Seat added for Ana · by Fern",
            ]
        );
        assert_eq!(seat_timeline(&events, seat, &staff, 2).len(), 2);
    }

    #[test]
    fn an_alarm_nobody_answered_comes_before_an_acknowledged_one() {
        let alarm = |id: u64, priority, acknowledged: bool| protocol::Alarm {
            id: protocol::Seq(id),
            seat: protocol::SeatId::from_uuid(uuid::Uuid::from_u128(7)),
            rule: "r".into(),
            label: "l".into(),
            priority,
            kind: protocol::AlarmKind::Physiological,
            detail: String::new(),
            raised_at: Timestamp(i64::try_from(id).unwrap()),
            notify: vec![],
            assigned_to: None,
            condition_active: true,
            latching: false,
            acknowledged: acknowledged.then(|| protocol::state::Acknowledgement {
                by: StaffId::from_uuid(uuid::Uuid::from_u128(3)),
                at: Timestamp(9),
            }),
            escalations: 0,
            last_notified_at: Timestamp(0),
            audio_paused_until: None,
        };
        // A tile: the acknowledged high colours it, the medium waits beside it.
        let acked_high = alarm(1, AlarmPriority::High, true);
        let medium = alarm(2, AlarmPriority::Medium, false);
        let low = alarm(5, AlarmPriority::Low, false);
        let ids = |shown: Vec<&protocol::Alarm>| shown.iter().map(|a| a.id.0).collect::<Vec<_>>();
        assert_eq!(
            ids(tile_alarms([&acked_high, &low, &medium].into_iter())),
            [1, 2]
        );
        assert_eq!(
            ids(tile_alarms([&low, &medium].into_iter())),
            [2],
            "nothing acknowledged: the worst alone"
        );
        assert_eq!(ids(tile_alarms([&acked_high].into_iter())), [1]);
        assert!(tile_alarms(std::iter::empty()).is_empty());
        let mut list = [
            alarm(1, AlarmPriority::High, true),
            alarm(2, AlarmPriority::Medium, false),
            alarm(3, AlarmPriority::High, false),
            alarm(4, AlarmPriority::Medium, false),
        ];
        list.sort_by_key(alarm_rank);
        let order: Vec<u64> = list.iter().map(|a| a.id.0).collect();
        assert_eq!(order, [3, 2, 4, 1]);
    }

    #[test]
    fn colleagues_read_by_name_and_only_facilitators_go_on_the_rota() {
        let member = |n: u128, name: &str, role| StaffMember {
            id: StaffId::from_uuid(uuid::Uuid::from_u128(n)),
            display_name: name.into(),
            role,
        };
        let staff = vec![
            member(1, "Ada", StaffRole::Admin),
            member(2, "River", StaffRole::Facilitator),
            member(3, "Fern", StaffRole::Facilitator),
            member(4, "Mo", StaffRole::Medical),
        ];
        assert_eq!(staff_name(&staff, staff[3].id), "Mo");
        let gone = StaffId::from_uuid(uuid::Uuid::from_u128(9));
        assert_eq!(staff_name(&staff, gone), "a colleague");
        assert_eq!(staff_name(&[], staff[1].id), "a colleague");
        let fern = Actor::Staff {
            staff: staff[2].id,
            role: StaffRole::Facilitator,
        };
        assert_eq!(by_whom(&fern, &staff).as_deref(), Some("by Fern"));
        let phone = Actor::Participant {
            seat: protocol::SeatId::from_uuid(uuid::Uuid::from_u128(7)),
        };
        assert_eq!(by_whom(&phone, &staff).as_deref(), Some("from the phone"));
        assert_eq!(by_whom(&Actor::System, &staff), None);
        let names: Vec<&str> = rota_choices(&staff)
            .iter()
            .map(|m| m.display_name.as_str())
            .collect();
        assert_eq!(names, ["Fern", "River"]);
    }

    #[test]
    fn the_support_buttons_stay_until_the_participant_has_left() {
        use ParticipantState::*;
        use SessionPhase::*;
        let screen = |state, arrived, saved, phase| phone_screen(state, arrived, saved, phase);
        assert_eq!(
            screen(Invited, false, false, Preparation),
            PhoneScreen::Arrival
        );
        assert_eq!(screen(Ready, true, false, Dosing), PhoneScreen::Buttons);
        assert_eq!(
            screen(Emerging, true, false, Integration),
            PhoneScreen::Journal
        );
        assert_eq!(
            screen(Integrating, true, false, Experience),
            PhoneScreen::Journal
        );
        assert_eq!(
            screen(Integrating, true, true, Integration),
            PhoneScreen::Thanked,
            "the journal saved, still in the room"
        );
        assert_eq!(
            screen(Discharged, true, false, Integration),
            PhoneScreen::JournalAfterDischarge
        );
        assert_eq!(
            screen(Discharged, true, true, Integration),
            PhoneScreen::Done
        );
        assert_eq!(
            screen(Withdrawn, false, false, Experience),
            PhoneScreen::Done
        );
        assert_eq!(
            screen(Discharged, true, false, Closed),
            PhoneScreen::Done,
            "closed takes nothing"
        );
        assert_eq!(screen(Ready, true, false, Closed), PhoneScreen::Done);
    }

    /// A seat just added, as the reducer makes it.
    fn fresh_seat() -> Seat {
        let mut state = protocol::state::SessionState::empty(protocol::SessionId::from_uuid(
            uuid::Uuid::from_u128(1),
        ));
        let id = protocol::SeatId::from_uuid(uuid::Uuid::from_u128(7));
        assert!(state.apply(&protocol::Event {
            session: state.id,
            seq: protocol::Seq(1),
            at: Timestamp(0),
            actor: protocol::Actor::System,
            command: None,
            body: EventBody::SeatAdded {
                seat: id,
                display_name: "Ana".into(),
                weight_kg: None,
                location: None,
            },
        }));
        state.seat(id).unwrap().clone()
    }

    #[test]
    fn the_tile_names_what_the_arrival_check_in_asks_staff_to_keep_in_mind() {
        let mut seat = fresh_seat();
        assert_eq!(
            tile_flags(&seat, &protocol::ClinicPolicy::default()),
            ["no weight"]
        );
        seat.weight_kg = Some(60.0);
        assert!(
            tile_flags(&seat, &protocol::ClinicPolicy::default()).is_empty(),
            "no check-in yet"
        );
        let form = |touch, fasted, ride| protocol::ArrivalForm {
            mood: 5.try_into().unwrap(),
            anxiety: 5.try_into().unwrap(),
            intention: String::new(),
            fasting_confirmed: fasted,
            ride_home_arranged: ride,
            consent_to_touch: touch,
        };
        let stamp = |value| protocol::state::Stamped {
            value,
            at: Timestamp(0),
            seq: protocol::Seq(1),
        };
        seat.arrival = Some(stamp(form(true, true, true)));
        assert!(tile_flags(&seat, &protocol::ClinicPolicy::default()).is_empty());
        seat.arrival = Some(stamp(form(false, false, false)));
        assert_eq!(
            tile_flags(&seat, &protocol::ClinicPolicy::default()),
            ["no touch", "not fasted", "no ride home"]
        );
        seat.ride_home_confirmed = true;
        assert_eq!(
            tile_flags(&seat, &protocol::ClinicPolicy::default()),
            ["no touch", "not fasted"],
            "staff confirmed a ride"
        );
    }

    #[test]
    fn every_observed_status_is_offered_once_in_words() {
        let labels: Vec<_> = OBSERVED.iter().map(|s| observed_label(*s)).collect();
        let mut distinct = labels.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), labels.len());
        assert_eq!(
            observed_label(ObservedStatus::NeedsMedical),
            "needs medical"
        );
    }

    #[test]
    fn times_and_durations_read_at_a_glance() {
        assert_eq!(clock(Timestamp(0), 0), "00:00");
        assert_eq!(
            clock(Timestamp(21 * 3_600_000 + 4 * 60_000 + 59_000), 0),
            "21:04"
        );
        assert_eq!(
            clock(Timestamp(30 * 60_000), -60),
            "23:30",
            "west of UTC wraps to the previous day"
        );
        assert_eq!(day_and_time(Timestamp(0), 0), "Thu 1 Jan 00:00");
        // 2026-12-05 18:32 UTC, and an hour east of it; 2024-02-29 (a leap day).
        assert_eq!(
            day_and_time(Timestamp(1_796_495_539_741), 0),
            "Sat 5 Dec 18:32"
        );
        assert_eq!(
            day_and_time(Timestamp(1_796_495_539_741), 6 * 60),
            "Sun 6 Dec 00:32"
        );
        assert_eq!(
            day_and_time(Timestamp(1_709_208_000_000), 0),
            "Thu 29 Feb 12:00"
        );
        assert_eq!(duration(45_000), "45 s");
        assert_eq!(duration(12 * 60_000 + 30_000), "12 min");
        assert_eq!(duration(2 * 3_600_000 + 5 * 60_000), "2 h 05");
        assert_eq!(countdown(245_000), "4:05");
        assert_eq!(countdown(-130_000), "overdue 2:10");
    }

    #[test]
    fn timeline_lines_say_what_happened() {
        let m = Measurement::BloodPressure {
            systolic: 128.0,
            diastolic: 82.5,
        };
        assert_eq!(measurement(&m), "BP 128/82.5");
        let seat = protocol::SeatId::from_uuid(uuid::Uuid::nil());
        let report = SelfReport::NeedSupport {
            reasons: vec![protocol::SupportReason::Nausea],
            note: None,
        };
        assert_eq!(
            describe(&EventBody::SelfReported {
                seat,
                report,
                made_at: None
            }),
            "“I need support”: nausea"
        );
        assert_eq!(
            describe(&EventBody::ParticipantStateChanged {
                seat,
                from: ParticipantState::Ready,
                to: ParticipantState::Dosed
            }),
            "ready → dosed"
        );
    }

    #[test]
    fn every_priority_differs_in_colour_icon_and_word() {
        let looks: Vec<Look> = [
            AlarmPriority::High,
            AlarmPriority::Medium,
            AlarmPriority::Low,
            AlarmPriority::Info,
        ]
        .map(priority_look)
        .into();
        for (i, a) in looks.iter().enumerate() {
            for b in &looks[i + 1..] {
                assert!(a.class != b.class && a.icon != b.icon && a.word != b.word);
            }
        }
    }
}

#[cfg(test)]
mod contrast {
    //! WCAG 2.2 AA: text needs a contrast ratio of at least 4.5:1. The pairs
    //! are read from the stylesheet's colour variables, so changing a colour
    //! there is checked here.

    fn channel(c: f64) -> f64 {
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }

    fn luminance(hex: &str) -> f64 {
        let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).expect("a #rrggbb colour");
        let [r, g, b] = [16, 8, 0].map(|s| channel(f64::from((v >> s) & 0xff) / 255.0));
        0.2126 * r + 0.7152 * g + 0.0722 * b
    }

    fn ratio(a: &str, b: &str) -> f64 {
        let (x, y) = (luminance(a), luminance(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    fn var(css: &str, name: &str) -> String {
        let key = format!("--{name}:");
        let start = css.find(&key).unwrap_or_else(|| panic!("{key} in app.css")) + key.len();
        css[start..].trim_start().chars().take(7).collect()
    }

    #[test]
    fn every_text_colour_pair_meets_wcag_aa() {
        let css = include_str!("../static/app.css");
        let pairs = [
            ("text", "bg"),
            ("text", "panel"),
            ("muted", "panel"),
            ("muted", "panel-2"),
            ("focus", "bg"),
            ("help-text", "help"),
        ];
        for (fg, bg) in pairs {
            let r = ratio(&var(css, fg), &var(css, bg));
            assert!(r >= 4.5, "--{fg} on --{bg}: {r:.2}:1");
        }
        for (bg, fg) in [
            ("high", "#ffffff"),
            ("low", "#ffffff"),
            ("info", "#ffffff"),
            ("ok", "#ffffff"),
            ("medium", "#111111"),
        ] {
            let r = ratio(fg, &var(css, bg));
            assert!(r >= 4.5, "{fg} on --{bg}: {r:.2}:1");
        }
    }
}
