//! Deciding: a command, checked against the sender's role and the session's
//! current state, becomes the events that record it, or a [`Rejection`]. Pure,
//! so the browser can check a form with exactly the server's rules.

use crate::alarm::{Alarm, ClearReason, MAX_AUDIO_PAUSE_S, Trigger};
use crate::command::{Command, RejectCode, Rejection};
use crate::event::EventBody;
use crate::ids::{SeatId, Seq, Timestamp};
use crate::monitor;
use crate::phase::{ParticipantState, SessionPhase};
use crate::policy::text_limits;
use crate::records::HoldOverride;
use crate::records::{ObservedStatus, SelfReport};
use crate::role::{Actor, Role};
use crate::state::{Seat, SessionState};
use crate::vitals::{Measurement, ReadingSource, VitalReading};
use uuid::Uuid;

/// What a decision may depend on besides the state and the command.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// Who sent the command.
    pub actor: Actor,
    /// The server's time now.
    pub now: Timestamp,
    /// A fresh UUID made by the server, for a command that creates something
    /// (a seat; [`Command::creates_id`]). `protocol` has no randomness of its
    /// own.
    pub fresh_id: Uuid,
    /// When the sender made the command, if it waited before going out (see
    /// [`Context::made_at`]).
    pub made_at: Option<Timestamp>,
}

/// A command that reached the server this long after it was made is dated by
/// when it was made; younger ones are dated by their arrival.
pub const LATE_AFTER_MS: u64 = 2_000;

/// The furthest back a late command is dated: a phone's clock may have
/// jumped while it waited.
pub const LATE_AT_MOST_MS: u64 = 60 * 60 * 1000;

impl Context {
    /// When a command received at `now` that its sender made `age_ms` before
    /// sending was made: `None` when it was not late (the arrival dates it).
    pub fn made_at(now: Timestamp, age_ms: Option<u64>) -> Option<Timestamp> {
        let age = age_ms.filter(|a| *a >= LATE_AFTER_MS)?;
        let age = i64::try_from(age.min(LATE_AT_MOST_MS)).unwrap_or(0);
        Some(now.plus_ms(-age))
    }
}

/// Checks the role table and the participant's seat scope. Runs first in
/// [`decide`], so no command can skip it.
pub fn authorize(actor: &Actor, command: &Command) -> Result<(), Rejection> {
    let kind = command.kind();
    let Some(role) = actor.role() else {
        return Err(Rejection::new(
            RejectCode::Forbidden,
            "the system does not send commands",
        ));
    };
    if !kind.permits(role) {
        return Err(Rejection::new(
            RejectCode::Forbidden,
            format!(
                "the {role} role may not {}",
                kind.as_str().replace('_', " ")
            ),
        ));
    }
    if let (Actor::Participant { seat: own }, Some(target)) = (actor, command.seat())
        && *own != target
    {
        return Err(Rejection::new(
            RejectCode::Forbidden,
            "a participant may act only for their own seat",
        ));
    }
    debug_assert!(role != Role::Participant || command.seat().is_some());
    Ok(())
}

/// Turns a command into events, or refuses it. Nothing is recorded on refusal.
pub fn decide(
    state: &SessionState,
    ctx: &Context,
    command: &Command,
) -> Result<Vec<EventBody>, Rejection> {
    authorize(&ctx.actor, command)?;
    if state.phase == SessionPhase::Closed {
        return Err(Rejection::new(
            RejectCode::SessionClosed,
            "the session is closed; nothing more can be recorded",
        ));
    }
    match command {
        Command::AddSeat {
            display_name,
            weight_kg,
            location,
        } => {
            let display_name =
                required_text("display name", display_name, text_limits::DISPLAY_NAME)?;
            let location = optional_text("location", location.as_deref(), text_limits::LOCATION)?;
            if state.seats.len() >= state.policy.max_seats as usize {
                return Err(invalid(format!(
                    "this session already has the most seats allowed ({})",
                    state.policy.max_seats
                )));
            }
            // Two seats of one name get mixed up in an alarm or a dose record.
            if let Some(twin) = state
                .seats
                .iter()
                .find(|s| s.display_name.to_lowercase() == display_name.to_lowercase())
            {
                return Err(invalid(format!(
                    "{} is already the name of a participant in this session; add an initial or use a pseudonym so the two cannot be mixed up",
                    twin.display_name
                )));
            }
            if let Some(kg) = weight_kg {
                Measurement::BodyWeight { value: *kg }
                    .check_plausible(&state.policy.vital_limits)
                    .map_err(|e| Rejection::new(RejectCode::ImplausibleVital, e.to_string()))?;
            }
            Ok(vec![EventBody::SeatAdded {
                seat: SeatId::from_uuid(ctx.fresh_id),
                display_name,
                weight_kg: *weight_kg,
                location,
            }])
        }
        Command::ChangePhase { to } => {
            if *to == SessionPhase::Closed {
                let still_here: Vec<&str> = state
                    .seats
                    .iter()
                    .filter(|s| s.state.has_been_dosed() && s.state != ParticipantState::Discharged)
                    .map(|s| s.display_name.as_str())
                    .collect();
                if !still_here.is_empty() {
                    return Err(Rejection::new(
                        RejectCode::WrongPhase,
                        format!(
                            "the session cannot close while dosed participants are not discharged: {}",
                            still_here.join(", ")
                        ),
                    ));
                }
            }
            if !state.phase.can_move_to(*to) {
                return Err(Rejection::new(
                    RejectCode::WrongPhase,
                    format!(
                        "the session cannot move from {} to {}{}",
                        state.phase,
                        to,
                        match state.phase.next() {
                            Some(next) => format!(" (next is {next}, or closed)"),
                            None => String::new(),
                        }
                    ),
                ));
            }
            Ok(vec![EventBody::PhaseChanged {
                from: state.phase,
                to: *to,
            }])
        }
        Command::SetParticipantState { seat, to } => {
            let s = seat_of(state, *seat)?;
            use ParticipantState::*;
            let by_own_command = match to {
                Arrived => Some("submit the arrival check-in"),
                Dosed => Some("record a dose"),
                Discharged => Some("discharge the participant"),
                _ => None,
            };
            if let Some(how) = by_own_command {
                return Err(Rejection::new(
                    RejectCode::InvalidTransition,
                    format!("to mark a participant {to}, {how}"),
                ));
            }
            Ok(vec![transition(s, *to)?])
        }
        Command::SubmitArrival { seat, form } => {
            let s = seat_of(state, *seat)?;
            if s.arrival.is_some() {
                return Err(Rejection::new(
                    RejectCode::AlreadyRecorded,
                    format!("{}'s arrival check-in is already recorded", s.display_name),
                ));
            }
            optional_text("intention", Some(&form.intention), text_limits::INTENTION)?;
            Ok(vec![
                EventBody::ArrivalRecorded {
                    seat: *seat,
                    form: form.clone(),
                },
                transition(s, ParticipantState::Arrived)?,
            ])
        }
        Command::SelfReport { seat, report } => {
            let s = seat_of(state, *seat)?;
            not_left(s)?;
            let report = match report {
                SelfReport::Ok {} => SelfReport::Ok {},
                SelfReport::NeedSupport { reasons, note } => {
                    let note = optional_text("note", note.as_deref(), text_limits::SUPPORT_NOTE)?;
                    // Each reason once, in a fixed order, whatever was sent.
                    let mut reasons = reasons.clone();
                    reasons.sort();
                    reasons.dedup();
                    SelfReport::NeedSupport { reasons, note }
                }
            };
            let again = match report {
                SelfReport::NeedSupport { .. } => {
                    made_again(state, *seat, &Trigger::SupportRequest)
                }
                SelfReport::Ok {} => Vec::new(),
            };
            let mut events = vec![EventBody::SelfReported {
                seat: *seat,
                report,
                // Never before the session began, whatever the phone's clock.
                made_at: ctx.made_at.map(|at| at.max(state.created_at)),
            }];
            events.extend(again);
            Ok(events)
        }
        Command::AcknowledgeSupport { seat } => {
            let s = seat_of(state, *seat)?;
            if !s.needs_support() {
                return Err(Rejection::new(
                    RejectCode::NothingToDo,
                    format!("{} has no open support request", s.display_name),
                ));
            }
            let mut events = vec![EventBody::SupportAcknowledged { seat: *seat }];
            // Answering the request is acknowledging its alarm.
            let alarm = state.alarms.iter().find(|a| {
                a.seat == *seat && a.acknowledged.is_none() && is_support_alarm(state, a)
            });
            if let Some(a) = alarm {
                events.push(EventBody::AlarmAcknowledged { alarm: a.id });
            }
            Ok(events)
        }
        Command::ObserveCheckIn { seat, status, note } => {
            let s = seat_of(state, *seat)?;
            not_left(s)?;
            let note = optional_text("note", note.as_deref(), text_limits::NOTE)?;
            let mut events = vec![EventBody::ObservedCheckIn {
                seat: *seat,
                status: *status,
                note,
            }];
            if *status == ObservedStatus::NeedsMedical {
                events.extend(made_again(state, *seat, &Trigger::NeedsMedical));
            }
            Ok(events)
        }
        Command::RecordVital {
            seat,
            measurement,
            measured_at,
            device,
        } => {
            let s = seat_of(state, *seat)?;
            not_left(s)?;
            measurement
                .check_plausible(&state.policy.vital_limits)
                .map_err(|e| Rejection::new(RejectCode::ImplausibleVital, e.to_string()))?;
            let measured_at = time_within_policy(state, ctx, "measured-at", *measured_at)?;
            let Actor::Staff { staff, .. } = ctx.actor else {
                return Err(Rejection::new(
                    RejectCode::Forbidden,
                    "only staff record vitals",
                ));
            };
            let source = match device {
                None => ReadingSource::Manual { by: staff },
                Some(device) => ReadingSource::Device {
                    device: device_id(device)?,
                    relayed_by: staff,
                },
            };
            Ok(vec![EventBody::VitalRecorded {
                seat: *seat,
                reading: VitalReading {
                    measurement: *measurement,
                    measured_at,
                    received_at: ctx.now,
                    source,
                },
            }])
        }
        Command::RecordDose {
            seat,
            route,
            mg,
            lot,
            administered_at,
            override_reason,
        } => {
            let s = seat_of(state, *seat)?;
            if !matches!(state.phase, SessionPhase::Dosing | SessionPhase::Experience) {
                return Err(Rejection::new(
                    RejectCode::WrongPhase,
                    format!(
                        "doses are recorded in the dosing or experience phase, not {}",
                        state.phase
                    ),
                ));
            }
            use ParticipantState::*;
            if !matches!(s.state, Ready | Dosed | InExperience) {
                return Err(Rejection::new(
                    RejectCode::InvalidTransition,
                    format!(
                        "{} is not marked ready (now: {}); a dose needs the participant to be ready (or already dosed, for a further dose)",
                        s.display_name, s.state
                    ),
                ));
            }
            let max = state.policy.max_single_dose_mg;
            if !mg.is_finite() || *mg <= 0.0 || *mg > max {
                return Err(invalid(format!(
                    "a dose must be more than 0 and at most {max} mg"
                )));
            }
            let lot = required_text("lot", lot, text_limits::LOT)?;
            let administered_at =
                time_within_policy(state, ctx, "administered-at", *administered_at)?;
            let Actor::Staff { staff, .. } = ctx.actor else {
                return Err(Rejection::new(
                    RejectCode::Forbidden,
                    "only staff record doses",
                ));
            };
            let override_reason = optional_text(
                "override reason",
                override_reason.as_deref(),
                text_limits::NOTE,
            )?;
            // Every reason to hold, each with what clears it short of an
            // override (fasting cannot be confirmed again once asked).
            let (pre_dose_bp, bp_held) = monitor::dose_hold(s, &state.policy, administered_at);
            let held: Vec<(String, Option<&str>)> = [
                bp_held.map(|r| (r, Some("take a BP"))),
                monitor::dose_size_hold(s, &state.policy, *route, *mg)
                    .map(|(r, remedy)| (r, Some(remedy))),
                monitor::fasting_hold(s, &state.policy).map(|r| (r, None)),
            ]
            .into_iter()
            .flatten()
            .collect();
            let held_because = (!held.is_empty()).then(|| {
                held.iter()
                    .map(|(r, _)| r.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            let hold_override = match (held_because, override_reason) {
                (None, _) => None,
                (Some(held_because), Some(reason)) => Some(HoldOverride {
                    held_because,
                    reason: says_why(reason, "the dose hold")?,
                }),
                (Some(held_because), None) => {
                    let remedies: Vec<&str> = held.iter().filter_map(|(_, r)| *r).collect();
                    let what = match remedies.as_slice() {
                        [] => "Override with a reason.".to_string(),
                        [one] => format!("{}, or override with a reason.", capitalized(one)),
                        [first, rest @ ..] => format!(
                            "{} and {}, or override with a reason.",
                            capitalized(first),
                            rest.join(" and ")
                        ),
                    };
                    return Err(Rejection::new(
                        RejectCode::DoseHold,
                        format!("dose held: {held_because}. {what}"),
                    ));
                }
            };
            let mg_per_kg = s.weight_kg.map(|kg| round_to(mg / kg, 3));
            let mut events = vec![EventBody::DoseRecorded {
                seat: *seat,
                dose: crate::records::Dose {
                    route: *route,
                    mg: *mg,
                    mg_per_kg,
                    lot,
                    administered_at,
                    administered_by: staff,
                    pre_dose_bp,
                    hold_override,
                },
            }];
            if s.state == Ready {
                events.push(transition(s, Dosed)?);
            }
            Ok(events)
        }
        Command::Discharge {
            seat,
            override_reason,
        } => {
            let s = seat_of(state, *seat)?;
            let change = transition(s, ParticipantState::Discharged)?;
            let override_reason = optional_text(
                "override reason",
                override_reason.as_deref(),
                text_limits::NOTE,
            )?;
            let checklist = monitor::discharge_checklist(s, state, ctx.now);
            if !checklist.all_met() && override_reason.is_none() {
                return Err(Rejection::new(
                    RejectCode::DischargeNotReady,
                    format!(
                        "{} is not ready for discharge: {}. Override with a reason to discharge anyway.",
                        s.display_name,
                        checklist.unmet().join("; ")
                    ),
                ));
            }
            let override_reason = if checklist.all_met() {
                None
            } else {
                override_reason
                    .map(|r| says_why(r, "the discharge checklist"))
                    .transpose()?
            };
            Ok(vec![
                EventBody::DischargeSigned {
                    seat: *seat,
                    checklist,
                    override_reason,
                },
                change,
            ])
        }
        Command::RecordRating { seat, rating } => {
            let s = seat_of(state, *seat)?;
            not_left(s)?;
            if !s.state.has_been_dosed() {
                return Err(Rejection::new(
                    RejectCode::InvalidTransition,
                    format!(
                        "{} has not been dosed; ratings are recorded after the dose",
                        s.display_name
                    ),
                ));
            }
            rating.check().map_err(invalid)?;
            Ok(vec![EventBody::RatingRecorded {
                seat: *seat,
                rating: *rating,
            }])
        }
        Command::AssignFacilitator { seat, staff } => {
            not_left(seat_of(state, *seat)?)?;
            Ok(vec![EventBody::FacilitatorAssigned {
                seat: *seat,
                staff: *staff,
            }])
        }
        Command::ConfirmRideHome { seat } => {
            let s = seat_of(state, *seat)?;
            not_left(s)?;
            if s.ride_home_confirmed {
                return Err(Rejection::new(
                    RejectCode::AlreadyRecorded,
                    "the ride home is already confirmed",
                ));
            }
            Ok(vec![EventBody::RideHomeConfirmed { seat: *seat }])
        }
        Command::EndDeviceFeed { seat, device } => {
            let s = seat_of(state, *seat)?;
            if !s.feeds.iter().any(|f| &f.device == device && !f.ended) {
                return Err(Rejection::new(
                    RejectCode::NothingToDo,
                    format!("no device {device} is streaming for {}", s.display_name),
                ));
            }
            Ok(vec![EventBody::DeviceFeedEnded {
                seat: *seat,
                device: device.clone(),
            }])
        }
        Command::AcknowledgeAlarm { alarm } => {
            let a = alarm_of(state, *alarm)?;
            if a.acknowledged.is_some() {
                return Err(Rejection::new(
                    RejectCode::AlreadyRecorded,
                    "this alarm is already acknowledged",
                ));
            }
            let mut events = vec![EventBody::AlarmAcknowledged { alarm: *alarm }];
            if !a.condition_active {
                events.push(EventBody::AlarmCleared {
                    alarm: *alarm,
                    reason: ClearReason::Acknowledged,
                });
            }
            // Acknowledging a support alarm is answering the request.
            if is_support_alarm(state, a) && state.seat(a.seat).is_some_and(|s| s.needs_support()) {
                events.push(EventBody::SupportAcknowledged { seat: a.seat });
            }
            Ok(events)
        }
        Command::PauseAlarmAudio { alarm, seconds } => {
            let a = alarm_of(state, *alarm)?;
            if *seconds == 0 || *seconds > MAX_AUDIO_PAUSE_S {
                return Err(invalid(format!(
                    "an audio pause lasts 1 to {MAX_AUDIO_PAUSE_S} seconds"
                )));
            }
            if a.acknowledged.is_some() {
                return Err(Rejection::new(
                    RejectCode::NothingToDo,
                    "an acknowledged alarm is already silent",
                ));
            }
            Ok(vec![EventBody::AlarmAudioPaused {
                alarm: *alarm,
                until: ctx.now.plus_ms(i64::from(*seconds) * 1000),
            }])
        }
        Command::SetAlarmRule { seat, rule } => {
            if let Some(seat) = seat {
                seat_of(state, *seat)?;
            }
            rule.validate().map_err(invalid)?;
            Ok(vec![EventBody::AlarmRuleSet {
                seat: *seat,
                rule: rule.clone(),
            }])
        }
        Command::AddNote { seat, text } => {
            seat_of(state, *seat)?;
            let text = required_text("note", text, text_limits::NOTE)?;
            Ok(vec![EventBody::NoteAdded { seat: *seat, text }])
        }
        Command::PostGroupMessage { text } => {
            let text = required_text("message", text, text_limits::GROUP_MESSAGE)?;
            Ok(vec![EventBody::GroupMessagePosted { text }])
        }
        Command::SubmitPostSession { seat, form } => {
            let s = seat_of(state, *seat)?;
            if !matches!(
                s.state,
                ParticipantState::Integrating | ParticipantState::Discharged
            ) && state.phase != SessionPhase::Integration
            {
                return Err(Rejection::new(
                    RejectCode::WrongPhase,
                    "the post-session check-in opens at the integration circle",
                ));
            }
            if s.post_session.is_some() {
                return Err(Rejection::new(
                    RejectCode::AlreadyRecorded,
                    "the post-session check-in is already recorded",
                ));
            }
            optional_text("journal", Some(&form.journal), text_limits::JOURNAL)?;
            Ok(vec![EventBody::PostSessionRecorded {
                seat: *seat,
                form: form.clone(),
            }])
        }
    }
}

fn seat_of(state: &SessionState, seat: SeatId) -> Result<&Seat, Rejection> {
    state.seat(seat).ok_or_else(|| {
        Rejection::new(
            RejectCode::UnknownSeat,
            format!("there is no seat {seat} in this session"),
        )
    })
}

fn alarm_of(state: &SessionState, alarm: Seq) -> Result<&Alarm, Rejection> {
    state.alarm(alarm).ok_or_else(|| {
        Rejection::new(
            RejectCode::UnknownAlarm,
            format!("alarm {alarm} is not active (already cleared, or never raised)"),
        )
    })
}

fn not_left(seat: &Seat) -> Result<(), Rejection> {
    if seat.state.has_left() {
        return Err(Rejection::new(
            RejectCode::InvalidTransition,
            format!(
                "{} has {} and left the session",
                seat.display_name, seat.state
            ),
        ));
    }
    Ok(())
}

fn transition(seat: &Seat, to: ParticipantState) -> Result<EventBody, Rejection> {
    if !seat.state.can_move_to(to) {
        let next: Vec<&str> = seat.state.legal_next().iter().map(|s| s.as_str()).collect();
        return Err(Rejection::new(
            RejectCode::InvalidTransition,
            format!(
                "{} cannot go from {} to {} (possible: {})",
                seat.display_name,
                seat.state,
                to,
                if next.is_empty() {
                    "none".to_string()
                } else {
                    next.join(", ")
                }
            ),
        ));
    }
    Ok(EventBody::ParticipantStateChanged {
        seat: seat.id,
        from: seat.state,
        to,
    })
}

fn invalid(message: impl Into<String>) -> Rejection {
    Rejection::new(RejectCode::InvalidInput, message)
}

/// Whether `alarm` was raised by a support-request rule (not merely a request
/// kind: a facilitator's "needs medical" is a request to medical, and
/// answering a participant's request must not silence it).
fn is_support_alarm(state: &SessionState, alarm: &Alarm) -> bool {
    state.seat(alarm.seat).is_some_and(|seat| {
        monitor::effective_rules(state, seat)
            .iter()
            .any(|r| r.id == alarm.rule && r.trigger == Trigger::SupportRequest)
    })
}

/// A request made again after staff acknowledged the alarm of the one before
/// (a second "needs medical", a new press of "I need support"): that
/// acknowledgement answered the earlier request, so its alarm ends here
/// (`recurred`) and the evaluation after this command raises a new one, which
/// sounds. Decided here, in the order of the log, so an acknowledgement and a
/// new request in the same millisecond cannot be confused.
fn made_again(state: &SessionState, seat: SeatId, trigger: &Trigger) -> Vec<EventBody> {
    let Some(s) = state.seat(seat) else {
        return Vec::new();
    };
    let rules = monitor::effective_rules(state, s);
    state
        .alarms
        .iter()
        .filter(|a| a.seat == seat && a.acknowledged.is_some())
        .filter(|a| {
            rules
                .iter()
                .any(|r| r.id == a.rule && &r.trigger == trigger)
        })
        .map(|a| EventBody::AlarmCleared {
            alarm: a.id,
            reason: ClearReason::Recurred,
        })
        .collect()
}

/// An override reason that is used (something was held) must say why it
/// set `what` aside.
fn says_why(reason: String, what: &str) -> Result<String, Rejection> {
    let min = text_limits::OVERRIDE_REASON_MIN;
    if reason.chars().count() < min {
        return Err(invalid(format!(
            "an override reason is the record of why {what} was set aside: say why in at least {min} characters"
        )));
    }
    Ok(reason)
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Trimmed text that must not be empty, within `limit` characters, without
/// control characters (but newlines).
fn required_text(field: &str, text: &str, limit: usize) -> Result<String, Rejection> {
    let text = optional_text(field, Some(text), limit)?.unwrap_or_default();
    if text.is_empty() {
        return Err(invalid(format!("{field} must not be empty")));
    }
    Ok(text)
}

fn optional_text(
    field: &str,
    text: Option<&str>,
    limit: usize,
) -> Result<Option<String>, Rejection> {
    let Some(text) = text.map(str::trim) else {
        return Ok(None);
    };
    let len = text.chars().count();
    if len > limit {
        return Err(invalid(format!(
            "{field} is {len} characters long; the limit is {limit}"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(format!("{field} contains control characters")));
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

fn device_id(device: &str) -> Result<String, Rejection> {
    let ok = !device.is_empty()
        && device.len() <= text_limits::DEVICE_ID
        && device
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if !ok {
        return Err(invalid(format!(
            "device id must be 1 to {} letters, digits, '-', '_', '.' or ':'",
            text_limits::DEVICE_ID
        )));
    }
    Ok(device.to_string())
}

/// A clinical time given by the client, or now; refused when in the future or
/// too far back by the session's policy.
fn time_within_policy(
    state: &SessionState,
    ctx: &Context,
    field: &str,
    given: Option<Timestamp>,
) -> Result<Timestamp, Rejection> {
    let Some(at) = given else {
        return Ok(ctx.now);
    };
    let policy = &state.policy;
    if at.ms_since(ctx.now) > policy.future_tolerance_ms {
        return Err(invalid(format!(
            "{field} is {} s in the future; check the device's clock",
            at.ms_since(ctx.now) / 1000
        )));
    }
    if ctx.now.ms_since(at) > policy.backdate_limit_ms {
        return Err(invalid(format!(
            "{field} is more than {} minutes ago",
            policy.backdate_limit_ms / 60_000
        )));
    }
    Ok(at)
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}
