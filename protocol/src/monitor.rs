//! Watching over the group: alarm rule evaluation, the BP schedule, the check
//! and rating rotas, the pre-dose hold, the discharge checklist and the
//! monitoring form. All pure: state + rules + now → what should happen, so
//! the server's session task and the browser reach the same conclusions and
//! the board can say exactly why an alarm fired.
//!
//! The session task calls [`evaluate`] after every batch of commands and at
//! [`next_deadline`]; the events it returns are recorded like any other.

use crate::alarm::{AlarmPriority, AlarmRule, ClearReason, Limit, Trigger};
use crate::event::{Event, EventBody};
use crate::ids::{MINUTE_MS, SeatId, StaffId, Timestamp};
use crate::phase::{ParticipantState, SessionPhase};
use crate::policy::ClinicPolicy;
use crate::records::{BpValue, ObservedStatus, Rating, Route};
use crate::role::Role;
use crate::state::{Onset, Seat, SessionState};
use crate::vitals::{Measurement, Num, VitalComponent, VitalKind, VitalReading};
use serde::{Deserialize, Serialize};

/// Every staff role: who an escalated alarm notifies.
pub const ALL_STAFF: [Role; 3] = [Role::Facilitator, Role::Medical, Role::Admin];

/// The rules in force for a seat: the policy's, then the session's
/// overrides, then the seat's, each replacing a rule with the same id.
pub fn effective_rules<'a>(state: &'a SessionState, seat: &'a Seat) -> Vec<&'a AlarmRule> {
    layered(
        &state.policy.alarm_rules,
        &state.rule_overrides,
        &seat.rule_overrides,
    )
}

fn layered<'a>(
    base: &'a [AlarmRule],
    session: &'a [AlarmRule],
    seat: &'a [AlarmRule],
) -> Vec<&'a AlarmRule> {
    // Run for every reading: without overrides (the usual case) the policy's
    // rules stand as they are, their ids unique (`ClinicPolicy::validate`).
    if session.is_empty() && seat.is_empty() {
        return base.iter().collect();
    }
    let mut out: Vec<&AlarmRule> = Vec::with_capacity(base.len());
    for rule in base.iter().chain(session).chain(seat) {
        match out.iter_mut().find(|r| r.id == rule.id) {
            Some(slot) => *slot = rule,
            None => out.push(rule),
        }
    }
    out
}

/// The value of one component in a measurement.
fn component_value(m: &Measurement, c: VitalComponent) -> Option<f64> {
    match (*m, c) {
        (Measurement::BloodPressure { systolic, .. }, VitalComponent::Systolic) => Some(systolic),
        (Measurement::BloodPressure { diastolic, .. }, VitalComponent::Diastolic) => {
            Some(diastolic)
        }
        (Measurement::HeartRate { value }, VitalComponent::HeartRate)
        | (Measurement::Spo2 { value }, VitalComponent::Spo2)
        | (Measurement::RespiratoryRate { value }, VitalComponent::RespiratoryRate)
        | (Measurement::BodyTemperature { value }, VitalComponent::BodyTemperature)
        | (Measurement::BodyWeight { value }, VitalComponent::BodyWeight) => Some(value),
        _ => None,
    }
}

fn kind_of(c: VitalComponent) -> VitalKind {
    match c {
        VitalComponent::Systolic | VitalComponent::Diastolic => VitalKind::BloodPressure,
        VitalComponent::HeartRate => VitalKind::HeartRate,
        VitalComponent::Spo2 => VitalKind::Spo2,
        VitalComponent::RespiratoryRate => VitalKind::RespiratoryRate,
        VitalComponent::BodyTemperature => VitalKind::BodyTemperature,
        VitalComponent::BodyWeight => VitalKind::BodyWeight,
    }
}

fn latest_value(seat: &Seat, c: VitalComponent) -> Option<f64> {
    seat.latest(kind_of(c))
        .and_then(|r| component_value(&r.measurement, c))
}

fn bp_of(r: &VitalReading) -> Option<BpValue> {
    match r.measurement {
        Measurement::BloodPressure {
            systolic,
            diastolic,
        } => Some(BpValue {
            systolic,
            diastolic,
            measured_at: r.measured_at,
        }),
        _ => None,
    }
}

/// BP readings in measured order.
fn bps(seat: &Seat) -> Vec<BpValue> {
    let mut all: Vec<BpValue> = seat.bp_history.iter().filter_map(bp_of).collect();
    all.sort_by_key(|b| b.measured_at);
    all
}

/// The last BP measured at or before `at` (of equal times, the last recorded).
fn bp_at(seat: &Seat, at: Timestamp) -> Option<BpValue> {
    seat.bp_history
        .iter()
        .filter_map(bp_of)
        .filter(|b| b.measured_at <= at)
        .max_by_key(|b| b.measured_at)
}

/// The latest BP measured (of equal times, the last recorded).
fn latest_bp(seat: &Seat) -> Option<BpValue> {
    seat.bp_history
        .iter()
        .filter_map(bp_of)
        .max_by_key(|b| b.measured_at)
}

/// The pre-dose baseline: the last BP measured before the first dose.
pub fn baseline_bp(seat: &Seat) -> Option<BpValue> {
    bp_at(seat, seat.first_dose_at()?)
}

/// What a reading-driven rule sees in the latest values.
struct ReadingStatus {
    holds: bool,
    cleared: bool,
    /// The values behind it, put in words only when an alarm needs them:
    /// this runs for every reading, and words are made far less often.
    detail: Detail,
}

enum Detail {
    /// The first limit that holds, and the value that meets it (if one does).
    Vital(Option<(Limit, f64)>),
    BpRise {
        now: BpValue,
        base: BpValue,
    },
    Sedation(u8),
}

impl Detail {
    fn words(&self) -> String {
        match *self {
            Detail::Vital(None) => String::new(),
            Detail::Vital(Some((limit, value))) => format!(
                "{} {} {} (alarm when {} {})",
                limit.component.label(),
                Num(value),
                limit.component.unit(),
                limit.comparison.symbol(),
                Num(limit.value)
            ),
            Detail::BpRise { now, base } => format!(
                "BP {}/{} is up {}/{} from the pre-dose {}/{}",
                Num(now.systolic),
                Num(now.diastolic),
                Num(now.systolic - base.systolic),
                Num(now.diastolic - base.diastolic),
                Num(base.systolic),
                Num(base.diastolic)
            ),
            Detail::Sedation(moaas) => format!("MOAA/S {moaas}"),
        }
    }
}

fn reading_status(rule: &AlarmRule, seat: &Seat) -> Option<ReadingStatus> {
    match &rule.trigger {
        Trigger::Vital { any } => {
            let mut seen = false;
            let mut holds = None;
            let mut cleared = true;
            for limit in any {
                let Some(value) = latest_value(seat, limit.component) else {
                    continue;
                };
                seen = true;
                if limit.comparison.holds(value, limit.value) && holds.is_none() {
                    holds = Some((*limit, value));
                }
                cleared &= limit
                    .comparison
                    .cleared(value, limit.value, limit.hysteresis);
            }
            seen.then_some(ReadingStatus {
                holds: holds.is_some(),
                cleared,
                detail: Detail::Vital(holds),
            })
        }
        Trigger::BpRiseFromBaseline {
            systolic,
            diastolic,
            hysteresis,
        } => {
            let base = baseline_bp(seat)?;
            let first = seat.first_dose_at()?;
            let now = latest_bp(seat).filter(|b| b.measured_at > first)?;
            let (up_s, up_d) = (now.systolic - base.systolic, now.diastolic - base.diastolic);
            Some(ReadingStatus {
                holds: up_s >= *systolic || up_d >= *diastolic,
                cleared: up_s < systolic - hysteresis && up_d < diastolic - hysteresis,
                detail: Detail::BpRise { now, base },
            })
        }
        Trigger::Sedation { at_most } => {
            let (moaas, _) = seat.latest_sedation()?;
            let holds = moaas <= *at_most;
            Some(ReadingStatus {
                holds,
                cleared: !holds,
                detail: Detail::Sedation(moaas),
            })
        }
        _ => None,
    }
}

/// What an event changed that reading-driven rules read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Changed {
    /// A vital reading of this kind.
    Reading(VitalKind),
    /// A rating.
    Rating,
    /// A dose (it moves the pre-dose baseline and what counts as after it).
    Dose,
    /// The rules themselves: every reading-driven rule is looked at afresh.
    Rules,
}

/// Whether a rule's condition can change with `changed`. Readings of other
/// kinds leave a rule's inputs (`reading_status`) as they were.
fn reads(trigger: &Trigger, changed: Changed) -> bool {
    match (trigger, changed) {
        (_, Changed::Rules) => trigger.is_reading_driven(),
        (Trigger::Vital { any }, Changed::Reading(kind)) => {
            any.iter().any(|limit| kind_of(limit.component) == kind)
        }
        (Trigger::BpRiseFromBaseline { .. }, Changed::Reading(kind)) => {
            kind == VitalKind::BloodPressure
        }
        (Trigger::BpRiseFromBaseline { .. }, Changed::Dose)
        | (Trigger::Sedation { .. }, Changed::Rating) => true,
        _ => false,
    }
}

/// Keeps `seat.onsets` true after new readings or ratings: a reading-driven
/// rule's condition holds since the first reading of the current run that met
/// it. Called by the reducer, for every reading; only the rules that read what
/// `changed` names are looked at (an SpO2 reading cannot move a BP rule).
pub(crate) fn update_onsets(
    policy_rules: &[AlarmRule],
    session_rules: &[AlarmRule],
    seat: &mut Seat,
    at: Timestamp,
    changed: Changed,
) {
    // Decided first, applied after, so that only a run just starting copies
    // its rule's id: the reducer runs this for every reading, twice on the
    // server (the working state and the committed one).
    let mut started: Vec<String> = Vec::new();
    let mut ended: Vec<usize> = Vec::new();
    for rule in layered(policy_rules, session_rules, &seat.rule_overrides) {
        if !reads(&rule.trigger, changed) {
            continue;
        }
        let holds = reading_status(rule, seat).is_some_and(|s| s.holds);
        match (holds, seat.onsets.iter().position(|o| o.rule == rule.id)) {
            (true, None) => started.push(rule.id.clone()),
            (false, Some(i)) => ended.push(i),
            _ => {}
        }
    }
    ended.sort_unstable();
    for i in ended.into_iter().rev() {
        seat.onsets.remove(i);
    }
    seat.onsets
        .extend(started.into_iter().map(|rule| Onset { rule, since: at }));
}

/// A rule's condition for one seat at one moment.
#[derive(Clone, PartialEq, Debug)]
pub enum Status {
    /// Holds since `since` (raise once `since + confirm_s` has passed).
    Met {
        /// Since when.
        since: Timestamp,
        /// Why, in words.
        detail: String,
    },
    /// Does not hold.
    Unmet {
        /// Clear of it (past any hysteresis band): a raised alarm may end.
        cleared: bool,
        /// When it will hold if nothing changes (a schedule running out).
        from: Option<Timestamp>,
    },
}

const CLEAR: Status = Status::Unmet {
    cleared: true,
    from: None,
};

/// At most `max` characters of `text`, with "…" where it was cut.
fn shortened(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", text[..cut].trim_end()),
        None => text.to_string(),
    }
}

fn minutes(ms: i64) -> i64 {
    ms / MINUTE_MS
}

fn due_status(met_at: Timestamp, now: Timestamp, detail: impl FnOnce() -> String) -> Status {
    if now >= met_at {
        Status::Met {
            since: met_at,
            detail: detail(),
        }
    } else {
        Status::Unmet {
            cleared: true,
            from: Some(met_at),
        }
    }
}

/// Participants under the check rota: dosed and not yet in the circle.
fn under_observation(seat: &Seat) -> bool {
    matches!(
        seat.state,
        ParticipantState::Dosed | ParticipantState::InExperience | ParticipantState::Emerging
    )
}

/// For a participant under the check rota: the first dose, and the last
/// observed check since it.
fn check_rota(seat: &Seat) -> Option<(Timestamp, Option<Timestamp>)> {
    let start = seat.first_dose_at().filter(|_| under_observation(seat))?;
    let last = seat
        .last_observed
        .as_ref()
        .map(|o| o.at)
        .filter(|at| *at > start);
    Some((start, last))
}

/// When the next observed check is due for a participant (under the rota
/// and with the check rule enabled), for the board's countdown.
pub fn next_check_due(state: &SessionState, seat: &Seat) -> Option<Timestamp> {
    let (start, last) = check_rota(seat)?;
    effective_rules(state, seat)
        .into_iter()
        .filter(|r| r.enabled)
        .find_map(|r| match r.trigger {
            Trigger::CheckOverdue { every_min, .. } => Some(
                last.unwrap_or(start)
                    .plus_ms(i64::from(every_min) * MINUTE_MS),
            ),
            _ => None,
        })
}

/// Evaluates one rule for one seat.
pub fn condition(rule: &AlarmRule, seat: &Seat, state: &SessionState, now: Timestamp) -> Status {
    match &rule.trigger {
        Trigger::Vital { .. } | Trigger::BpRiseFromBaseline { .. } | Trigger::Sedation { .. } => {
            match reading_status(rule, seat) {
                None => CLEAR,
                Some(s) if s.holds => Status::Met {
                    since: seat.onset(&rule.id).unwrap_or(now),
                    detail: s.detail.words(),
                },
                Some(s) => Status::Unmet {
                    cleared: s.cleared,
                    from: None,
                },
            }
        }
        Trigger::SupportRequest => match &seat.support {
            Some(request) if request.is_open() => {
                let reasons: Vec<String> = request
                    .reasons
                    .iter()
                    .map(|r| format!("{r:?}").to_lowercase())
                    .collect();
                Status::Met {
                    since: request.requested_at,
                    detail: if reasons.is_empty() {
                        "asked for support".into()
                    } else {
                        format!("asked for support: {}", reasons.join(", "))
                    },
                }
            }
            _ => CLEAR,
        },
        Trigger::NeedsMedical => match &seat.last_observed {
            Some(seen) if seen.status == ObservedStatus::NeedsMedical => Status::Met {
                since: seen.at,
                // The facilitator's words are what medical needs first.
                detail: match seen.note.as_deref().map(str::trim) {
                    Some(note) if !note.is_empty() => format!(
                        "a facilitator saw them needing medical attention: “{}”",
                        shortened(note, 140)
                    ),
                    _ => "a facilitator saw them needing medical attention".into(),
                },
            },
            _ => CLEAR,
        },
        Trigger::CheckOverdue {
            every_min,
            grace_min,
        } => {
            let Some((start, last)) = check_rota(seat) else {
                return CLEAR;
            };
            let due = last
                .unwrap_or(start)
                .plus_ms(i64::from(*every_min) * MINUTE_MS);
            // Details name the threshold, not a measured wait: they are
            // written once, at the raise, and must stay true while the
            // alarm is listed (the board shows how long ago it was raised).
            let overdue = every_min + grace_min;
            due_status(
                due.plus_ms(i64::from(*grace_min) * MINUTE_MS),
                now,
                || match last {
                    Some(_) => format!("no observed check for over {overdue} min"),
                    None => format!("no observed check since the dose, over {overdue} min"),
                },
            )
        }
        Trigger::BpDue { grace_min } => {
            let grace = i64::from(*grace_min) * MINUTE_MS;
            let Some(first) = bp_schedule(seat, state)
                .into_iter()
                .filter(|d| d.taken_at.is_none())
                .min_by_key(|d| d.due_at)
            else {
                return CLEAR;
            };
            due_status(first.due_at.plus_ms(grace), now, || {
                format!(
                    "BP {} overdue by over {grace_min} min",
                    first.reason.describe()
                )
            })
        }
        Trigger::RatingDue {
            every_min,
            grace_min,
        } => {
            let Some(emerged) = seat
                .emerged_at
                .filter(|_| seat.state == ParticipantState::Emerging)
            else {
                return CLEAR;
            };
            let last = seat
                .latest_sedation()
                .map(|(_, at)| at)
                .filter(|at| *at >= emerged);
            let due = last.map_or(emerged, |at| at.plus_ms(i64::from(*every_min) * MINUTE_MS));
            due_status(due.plus_ms(i64::from(*grace_min) * MINUTE_MS), now, || {
                "a sedation (MOAA/S) rating is due during emergence".into()
            })
        }
        Trigger::FeedStale { after_s } => {
            let after = i64::from(*after_s) * 1000;
            let Some(quietest) = seat
                .feeds
                .iter()
                .filter(|f| !f.ended)
                .min_by_key(|f| f.last_received_at)
            else {
                return CLEAR;
            };
            due_status(quietest.last_received_at.plus_ms(after), now, || {
                format!("no reading from {} for over {after_s} s", quietest.device)
            })
        }
        Trigger::DeviceOffline { grace_s } => match seat.presence {
            Some(p) if !p.connected => {
                due_status(p.since.plus_ms(i64::from(*grace_s) * 1000), now, || {
                    format!("phone disconnected for over {grace_s} s")
                })
            }
            _ => CLEAR,
        },
    }
}

/// Which seats an evaluation looks at.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Every seat.
    All,
    /// Only these; the caller knows nothing can have changed for the others:
    /// no event about them, and none of their deadlines has passed.
    Seats(&'a [SeatId]),
}

impl Scope<'_> {
    /// Whether the evaluation looks at `seat`.
    pub fn covers(self, seat: SeatId) -> bool {
        match self {
            Scope::All => true,
            Scope::Seats(seats) => seats.contains(&seat),
        }
    }
}

/// The seats whose alarm rules these events can change, or `None` when they
/// can change any seat's: a phase change, a session-wide rule, a group
/// message, anything naming an alarm by its number.
pub fn touched_seats<'a>(events: impl IntoIterator<Item = &'a Event>) -> Option<Vec<SeatId>> {
    let mut seats = Vec::new();
    for event in events {
        let seat = event.body.seat()?;
        if !seats.contains(&seat) {
            seats.push(seat);
        }
    }
    Some(seats)
}

/// The alarm transitions due at `now`: raises, condition changes, clears,
/// escalations. Recording them and applying them is the caller's job.
pub fn evaluate(state: &SessionState, now: Timestamp) -> Vec<EventBody> {
    evaluate_in(state, now, Scope::All)
}

/// [`evaluate`] for some seats only. A session task runs this after each
/// batch for the seats the batch touched (the work grows with the batch, not
/// with the group), and everything when a deadline comes.
pub fn evaluate_in(state: &SessionState, now: Timestamp, scope: Scope<'_>) -> Vec<EventBody> {
    let mut out = Vec::new();
    if state.phase == SessionPhase::Closed {
        for a in &state.alarms {
            out.push(EventBody::AlarmCleared {
                alarm: a.id,
                reason: ClearReason::SessionClosed,
            });
        }
        return out;
    }
    let mut ending = Vec::new();
    for a in state.alarms.iter().filter(|a| scope.covers(a.seat)) {
        let seat = state.seat(a.seat);
        let reason = match seat {
            None => Some(ClearReason::ParticipantLeft),
            Some(s) if s.state.has_left() => Some(ClearReason::ParticipantLeft),
            Some(s)
                if !effective_rules(state, s)
                    .iter()
                    .any(|r| r.id == a.rule && r.enabled) =>
            {
                Some(ClearReason::RuleDisabled)
            }
            Some(_) => None,
        };
        if let Some(reason) = reason {
            out.push(EventBody::AlarmCleared {
                alarm: a.id,
                reason,
            });
            ending.push(a.id);
        }
    }
    for seat in state
        .seats
        .iter()
        .filter(|s| !s.state.has_left() && scope.covers(s.id))
    {
        for rule in effective_rules(state, seat)
            .into_iter()
            .filter(|r| r.enabled)
        {
            let active = state
                .alarms
                .iter()
                .find(|a| a.seat == seat.id && a.rule == rule.id);
            match (active, condition(rule, seat, state, now)) {
                (None, Status::Met { since, detail })
                    if now >= since.plus_ms(i64::from(rule.confirm_s) * 1000) =>
                {
                    out.push(raise(rule, seat, detail));
                }
                (Some(a), Status::Met { .. }) if !a.condition_active => {
                    out.push(EventBody::AlarmConditionChanged {
                        alarm: a.id,
                        active: true,
                    });
                }
                (Some(a), Status::Unmet { cleared: true, .. }) if a.condition_active => {
                    if a.acknowledged.is_some() || !a.latching {
                        out.push(EventBody::AlarmCleared {
                            alarm: a.id,
                            reason: ClearReason::ConditionEnded,
                        });
                        ending.push(a.id);
                    } else {
                        out.push(EventBody::AlarmConditionChanged {
                            alarm: a.id,
                            active: false,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    for a in state
        .alarms
        .iter()
        .filter(|a| a.acknowledged.is_none() && !ending.contains(&a.id) && scope.covers(a.seat))
    {
        if let Some((at, priority)) = escalation_due(state, a, now)
            && now >= at
        {
            out.push(EventBody::AlarmEscalated {
                alarm: a.id,
                priority,
                notify: ALL_STAFF.to_vec(),
            });
        }
    }
    out
}

fn raise(rule: &AlarmRule, seat: &Seat, detail: String) -> EventBody {
    let kind = rule.kind();
    EventBody::AlarmRaised {
        seat: seat.id,
        rule: rule.id.clone(),
        label: rule.label.clone(),
        priority: rule.priority,
        kind,
        detail,
        notify: rule.first_notified(),
        assigned_to: seat.assigned_facilitator.filter(|_| rule.names_rota()),
        latching: rule.latching,
    }
}

/// When an unacknowledged alarm next escalates, and to which priority: the
/// earlier of the policy's re-notification (same priority) and a rule's
/// `raise_to` (a higher priority), whichever comes first.
///
/// When both are already due (the evaluation runs late: a restart, a stretch of
/// storage failures), the raise wins: it re-notifies too, and picking the
/// re-notification would leave the raise due in the past, where no deadline
/// would wake the task for it.
fn escalation_due(
    state: &SessionState,
    a: &crate::alarm::Alarm,
    now: Timestamp,
) -> Option<(Timestamp, AlarmPriority)> {
    let rule = state.seat(a.seat).and_then(|s| {
        effective_rules(state, s)
            .into_iter()
            .find(|r| r.id == a.rule)
    });
    let raise = rule
        .and_then(|r| r.raise_to)
        .filter(|r| r.to > a.priority)
        .map(|r| {
            (
                a.raised_at.plus_ms(i64::from(r.after_min) * MINUTE_MS),
                r.to,
            )
        });
    let renotify = state
        .policy
        .escalation
        .delay_ms(a.priority)
        .map(|d| (a.last_notified_at.plus_ms(d), a.priority));
    match (raise, renotify) {
        (Some(r), Some(n)) => Some(if r.0 <= n.0.max(now) { r } else { n }),
        (r, n) => r.or(n),
    }
}

/// The next moment at which [`evaluate`] may have something new to say,
/// strictly after `now` (the session task sleeps until then).
pub fn next_deadline(state: &SessionState, now: Timestamp) -> Option<Timestamp> {
    state
        .seats
        .iter()
        .filter_map(|seat| seat_deadline(state, seat, now))
        .min()
}

/// [`next_deadline`] for one seat: its rules and its alarms' escalations.
/// Only events about the seat, a session-wide change or the deadline itself
/// passing can move it, so a session task keeps one per seat.
pub fn seat_deadline(state: &SessionState, seat: &Seat, now: Timestamp) -> Option<Timestamp> {
    deadline_of(state, seat, now, true)
}

/// [`seat_deadline`], taking reading-driven rules from `seat.onsets` if
/// `from_onsets`, else from the readings themselves (what the tests compare
/// it with).
pub(crate) fn deadline_of(
    state: &SessionState,
    seat: &Seat,
    now: Timestamp,
    from_onsets: bool,
) -> Option<Timestamp> {
    if state.phase == SessionPhase::Closed {
        return None;
    }
    let mut times = Vec::new();
    if !seat.state.has_left() {
        for rule in effective_rules(state, seat)
            .into_iter()
            .filter(|r| r.enabled)
        {
            let active = || {
                state
                    .alarms
                    .iter()
                    .any(|a| a.seat == seat.id && a.rule == rule.id)
            };
            if from_onsets && rule.trigger.is_reading_driven() {
                // The reducer keeps `seat.onsets` as exactly the reading-driven
                // rules that hold, so the readings need not be looked at again:
                // this runs after every batch, for every rule of the seat.
                if let Some(since) = seat.onset(&rule.id)
                    && !active()
                {
                    times.push(since.plus_ms(i64::from(rule.confirm_s) * 1000));
                }
                continue;
            }
            match condition(rule, seat, state, now) {
                Status::Met { since, .. } if !active() => {
                    times.push(since.plus_ms(i64::from(rule.confirm_s) * 1000))
                }
                Status::Unmet { from: Some(at), .. } => times.push(at),
                _ => {}
            }
        }
    }
    for a in state
        .alarms
        .iter()
        .filter(|a| a.seat == seat.id && a.acknowledged.is_none())
    {
        if let Some((at, _)) = escalation_due(state, a, now) {
            times.push(at);
        }
    }
    times.into_iter().filter(|t| *t > now).min()
}

// ---- BP schedule -----------------------------------------------------------

/// Why a BP is due.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BpDueReason {
    /// Before the first dose (the participant is ready, the group is dosing).
    BeforeDose,
    /// At the BP peak after the first dose (~40 min).
    AfterDose,
    /// Earlier after the dose because the baseline was elevated.
    AfterDoseElevatedBaseline,
    /// After a further dose (a dose increase).
    AfterFurtherDose,
    /// Before discharge (from emergence on).
    BeforeDischarge,
}

impl BpDueReason {
    fn describe(self) -> &'static str {
        match self {
            BpDueReason::BeforeDose => "before the dose",
            BpDueReason::AfterDose => "after the dose",
            BpDueReason::AfterDoseElevatedBaseline => "after the dose (elevated baseline)",
            BpDueReason::AfterFurtherDose => "after the further dose",
            BpDueReason::BeforeDischarge => "before discharge",
        }
    }
}

/// One BP on the schedule.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
pub struct BpDue {
    /// Why.
    pub reason: BpDueReason,
    /// When.
    pub due_at: Timestamp,
    /// When a BP satisfying it was measured.
    pub taken_at: Option<Timestamp>,
}

/// A BP taken this long before its due time still counts.
const BP_EARLY_MS: i64 = 5 * MINUTE_MS;

/// The participant's BP schedule (see [`crate::policy::BpSchedulePolicy`]).
pub fn bp_schedule(seat: &Seat, state: &SessionState) -> Vec<BpDue> {
    if seat.state.has_left() {
        return Vec::new();
    }
    let policy = &state.policy;
    let readings = bps(seat);
    let taken_from = |from: Timestamp| readings.iter().map(|b| b.measured_at).find(|t| *t >= from);
    let mut out = Vec::new();
    let mut due = |reason, due_at: Timestamp, from: Timestamp| {
        out.push(BpDue {
            reason,
            due_at,
            taken_at: taken_from(from),
        })
    };
    if seat.state == ParticipantState::Ready && state.phase == SessionPhase::Dosing {
        let at = seat.state_since.max(state.phase_since);
        due(
            BpDueReason::BeforeDose,
            at,
            at.plus_ms(-i64::from(policy.dose_hold.bp_max_age_min) * MINUTE_MS),
        );
    }
    let mut doses: Vec<Timestamp> = seat.doses.iter().map(|d| d.administered_at).collect();
    doses.sort();
    if let Some(first) = doses.first().copied() {
        let at = first.plus_ms(i64::from(policy.bp_schedule.after_dose_min) * MINUTE_MS);
        due(BpDueReason::AfterDose, at, at.plus_ms(-BP_EARLY_MS));
        let elevated = baseline_bp(seat).is_some_and(|b| {
            b.systolic > policy.dose_hold.systolic_above
                || b.diastolic > policy.dose_hold.diastolic_above
        });
        if elevated {
            let at =
                first.plus_ms(i64::from(policy.bp_schedule.elevated_after_dose_min) * MINUTE_MS);
            due(
                BpDueReason::AfterDoseElevatedBaseline,
                at,
                at.plus_ms(-BP_EARLY_MS),
            );
        }
        for further in doses.iter().skip(1) {
            let at =
                further.plus_ms(i64::from(policy.bp_schedule.after_further_dose_min) * MINUTE_MS);
            due(BpDueReason::AfterFurtherDose, at, at.plus_ms(-BP_EARLY_MS));
        }
    }
    if let Some(emerged) = seat.emerged_at {
        due(BpDueReason::BeforeDischarge, emerged, emerged);
    }
    out
}

// ---- pre-dose hold -----------------------------------------------------------

/// Why a dose of `mg` by `route` is held for its size, if it is, with what
/// clears it short of an override: the session's total by that route, this
/// dose included, above the policy's mg per kg for the route at the
/// participant's latest weight (a further dose adds to the first), or no
/// weight to check it against.
pub fn dose_size_hold(
    seat: &Seat,
    policy: &ClinicPolicy,
    route: Route,
    mg: f64,
) -> Option<(String, &'static str)> {
    let Some(kg) = seat.weight_kg else {
        return policy.dose_hold.hold_without_weight.then(|| {
            (
                "no weight is recorded to check the dose per kg".into(),
                "record a weight",
            )
        });
    };
    let limit = policy.dose_hold.mg_per_kg_above.of(route);
    let before: f64 = seat
        .doses
        .iter()
        .filter(|d| d.route == route)
        .map(|d| d.mg)
        .sum();
    // To the microgram, so that doses adding up to the limit exactly (2.2 +
    // 83.4 + 14.4 mg at 50 kg) are not held by a rounding error.
    let total = ((before + mg) * 1000.0).round() / 1000.0;
    let per_kg = total / kg;
    (per_kg > limit * (1.0 + 1e-9)).then(|| {
        // Two decimals, or three where two would read as the limit itself.
        let shown = [100.0, 1000.0]
            .into_iter()
            .map(|scale| (per_kg * scale).floor() / scale)
            .find(|shown| *shown > limit)
            .unwrap_or(per_kg);
        let what = if before > 0.0 {
            format!(
                "{} mg {route} brings the session's {route} total to {} mg, {} mg/kg at {} kg",
                Num(mg),
                Num(total),
                Num(shown),
                Num(kg)
            )
        } else {
            format!(
                "{} mg {route} is {} mg/kg at {} kg",
                Num(mg),
                Num(shown),
                Num(kg)
            )
        };
        (
            format!("{what}, above the hold threshold of {} mg/kg", Num(limit)),
            "check the dose",
        )
    })
}

/// Why a dose is held for fasting, if it is: vomiting under ketamine
/// sedation risks aspiration, so a dose for someone whose arrival check-in
/// does not confirm fasting (or who has none) needs a reason.
pub fn fasting_hold(seat: &Seat, policy: &ClinicPolicy) -> Option<String> {
    if !policy.dose_hold.hold_unless_fasted {
        return None;
    }
    match &seat.arrival {
        Some(a) if a.value.fasting_confirmed => None,
        Some(_) => Some("fasting is not confirmed on the arrival check-in".into()),
        None => Some("there is no arrival check-in to confirm fasting".into()),
    }
}

/// Why a dose given at `at` would be held, or `None` if it may go ahead.
pub fn dose_hold(
    seat: &Seat,
    policy: &ClinicPolicy,
    at: Timestamp,
) -> (Option<BpValue>, Option<String>) {
    let hold = &policy.dose_hold;
    let last = bp_at(seat, at);
    let reason = match last {
        None => Some("no pre-dose BP is recorded".to_string()),
        Some(b) if at.ms_since(b.measured_at) > i64::from(hold.bp_max_age_min) * MINUTE_MS => {
            Some(format!(
                "the last BP was measured {} min before the dose; it must be within {} min",
                minutes(at.ms_since(b.measured_at)),
                hold.bp_max_age_min
            ))
        }
        Some(b) if b.systolic > hold.systolic_above || b.diastolic > hold.diastolic_above => {
            Some(format!(
                "pre-dose BP {}/{} is above the hold threshold {}/{}",
                Num(b.systolic),
                Num(b.diastolic),
                Num(hold.systolic_above),
                Num(hold.diastolic_above)
            ))
        }
        Some(_) => None,
    };
    (last, reason)
}

// ---- discharge -------------------------------------------------------------

/// One point of the discharge checklist.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DischargeCheck {
    /// Enough time since the first dose (2 h by default).
    TimeSinceDose,
    /// Sedation resolved: the latest MOAA/S is 5.
    SedationResolved,
    /// Dissociation resolved: the latest observer score (if any) is resolved.
    DissociationResolved,
    /// Recent BP and SpO2, and no vital alarm condition holding.
    VitalsAcceptable,
    /// Ride home confirmed.
    RideHome,
    /// No active high or medium alarm.
    NoActiveAlarms,
}

/// One checklist item with its result.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ChecklistItem {
    /// What.
    pub check: DischargeCheck,
    /// Holds.
    pub met: bool,
    /// In words.
    pub detail: String,
}

/// The discharge checklist at one moment.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct DischargeChecklist {
    /// Every item.
    pub items: Vec<ChecklistItem>,
}

impl DischargeChecklist {
    /// Every item holds.
    pub fn all_met(&self) -> bool {
        self.items.iter().all(|i| i.met)
    }

    /// The items that do not hold, in words.
    pub fn unmet(&self) -> Vec<&str> {
        self.items
            .iter()
            .filter(|i| !i.met)
            .map(|i| i.detail.as_str())
            .collect()
    }
}

/// The discharge checklist for a seat at `now`.
pub fn discharge_checklist(
    seat: &Seat,
    state: &SessionState,
    now: Timestamp,
) -> DischargeChecklist {
    let policy = &state.policy.discharge;
    let mut items = Vec::new();
    let mut item = |check, met, detail: String| items.push(ChecklistItem { check, met, detail });

    let need = i64::from(policy.min_after_first_dose_min) * MINUTE_MS;
    match seat.first_dose_at() {
        Some(first) => {
            let since = now.ms_since(first);
            item(
                DischargeCheck::TimeSinceDose,
                since >= need,
                format!(
                    "{} min since the first dose (at least {} min)",
                    minutes(since),
                    policy.min_after_first_dose_min
                ),
            );
        }
        None => item(
            DischargeCheck::TimeSinceDose,
            false,
            "no dose is recorded".into(),
        ),
    }
    match seat.latest_sedation() {
        Some((m, _)) => item(
            DischargeCheck::SedationResolved,
            m == Rating::MOAAS_ALERT,
            format!("latest MOAA/S is {m} (needs 5)"),
        ),
        None => item(
            DischargeCheck::SedationResolved,
            false,
            "no MOAA/S rating is recorded".into(),
        ),
    }
    match seat.latest_dissociation() {
        Some((score, _)) => item(
            DischargeCheck::DissociationResolved,
            score <= policy.dissociation_resolved_at_most,
            format!(
                "latest dissociation score is {score} (resolved at {} or less)",
                policy.dissociation_resolved_at_most
            ),
        ),
        None => item(
            DischargeCheck::DissociationResolved,
            true,
            "no dissociation was rated".into(),
        ),
    }
    let max_age = i64::from(policy.vitals_max_age_min) * MINUTE_MS;
    let mut problems = Vec::new();
    for kind in [VitalKind::BloodPressure, VitalKind::Spo2] {
        match seat.latest(kind) {
            None => problems.push(format!("no {} recorded", kind.label())),
            Some(r) if now.ms_since(r.measured_at) > max_age => problems.push(format!(
                "{} is {} min old",
                kind.label(),
                minutes(now.ms_since(r.measured_at))
            )),
            Some(_) => {}
        }
    }
    for rule in effective_rules(state, seat).into_iter().filter(|r| {
        r.enabled
            && matches!(
                r.trigger,
                Trigger::Vital { .. } | Trigger::BpRiseFromBaseline { .. }
            )
    }) {
        if let Some(status) = reading_status(rule, seat).filter(|s| s.holds) {
            problems.push(status.detail.words());
        }
    }
    item(
        DischargeCheck::VitalsAcceptable,
        problems.is_empty(),
        if problems.is_empty() {
            "recent vitals are in range".into()
        } else {
            format!("vitals: {}", problems.join("; "))
        },
    );
    item(
        DischargeCheck::RideHome,
        seat.ride_home_confirmed,
        if seat.ride_home_confirmed {
            "ride home confirmed".into()
        } else {
            "no ride home confirmed".into()
        },
    );
    let serious: Vec<&str> = state
        .alarms
        .iter()
        .filter(|a| a.seat == seat.id && a.priority >= AlarmPriority::Medium)
        .map(|a| a.label.as_str())
        .collect();
    item(
        DischargeCheck::NoActiveAlarms,
        serious.is_empty(),
        if serious.is_empty() {
            "no active high or medium alarm".into()
        } else {
            format!("active alarms: {}", serious.join(", "))
        },
    );
    DischargeChecklist { items }
}

// ---- the monitoring form ---------------------------------------------------------

/// The per-participant monitoring form.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct MonitoringSummary {
    /// Seat.
    pub seat: SeatId,
    /// Name on the seat.
    pub display_name: String,
    /// State now.
    pub state: ParticipantState,
    /// First dose.
    pub first_dose_at: Option<Timestamp>,
    /// Baseline: the last BP before the first dose.
    pub bp_before_dose: Option<BpValue>,
    /// The BP around the post-dose peak (the first taken from 5 min before it is due).
    pub bp_at_40_min: Option<BpValue>,
    /// The last BP from emergence to discharge.
    pub bp_before_discharge: Option<BpValue>,
    /// Vitals acceptable (the discharge checklist's item, now or at discharge).
    pub vitals_acceptable: bool,
    /// Sedation observed (any MOAA/S below 5 after the dose).
    pub sedation: bool,
    /// Dissociation observed (any observer score above the resolved level).
    pub dissociation: bool,
    /// Respiratory depression (SpO2 < 88 % or respiratory rate < 8 after the dose).
    pub respiratory_depression: bool,
    /// Minutes from the first dose to discharge (or now).
    pub minutes_monitored: i64,
    /// When discharged: ready to leave.
    pub ready_to_leave_at: Option<Timestamp>,
    /// Who signed the discharge.
    pub discharged_by: Option<StaffId>,
    /// The reason, if discharged although an item did not hold.
    pub discharge_override: Option<String>,
    /// The checklist at discharge, or as it stands now.
    pub checklist: DischargeChecklist,
}

/// SpO2 below this is respiratory depression on the monitoring form.
pub const RESP_DEPRESSION_SPO2: f64 = 88.0;
/// A respiratory rate below this is respiratory depression on the form.
pub const RESP_DEPRESSION_RR: f64 = 8.0;

/// The monitoring form for a seat at `now`.
pub fn monitoring_summary(seat: &Seat, state: &SessionState, now: Timestamp) -> MonitoringSummary {
    let first = seat.first_dose_at();
    let end = seat.discharge.as_ref().map_or(now, |d| d.at);
    let readings = bps(seat);
    let peak_due = first.map(|f| {
        f.plus_ms(i64::from(state.policy.bp_schedule.after_dose_min) * MINUTE_MS - BP_EARLY_MS)
    });
    let checklist = seat.discharge.as_ref().map_or_else(
        || discharge_checklist(seat, state, now),
        |d| d.checklist.clone(),
    );
    let after_dose = |at: Timestamp| first.is_some_and(|f| at >= f);
    MonitoringSummary {
        seat: seat.id,
        display_name: seat.display_name.clone(),
        state: seat.state,
        first_dose_at: first,
        bp_before_dose: baseline_bp(seat),
        bp_at_40_min: peak_due.and_then(|from| readings.iter().copied().find(|b| b.measured_at >= from && b.measured_at <= end)),
        bp_before_discharge: seat
            .emerged_at
            .and_then(|from| readings.iter().rev().copied().find(|b| b.measured_at >= from && b.measured_at <= end)),
        vitals_acceptable: checklist.items.iter().any(|i| i.check == DischargeCheck::VitalsAcceptable && i.met),
        sedation: seat.ratings.iter().any(|r| after_dose(r.at) && matches!(r.value, Rating::Sedation { moaas } if moaas < Rating::MOAAS_ALERT)),
        dissociation: seat.ratings.iter().any(|r| {
            matches!(r.value, Rating::Dissociation { score } if score > state.policy.discharge.dissociation_resolved_at_most)
        }),
        respiratory_depression: [seat.respiratory_lows.spo2, seat.respiratory_lows.respiratory_rate]
            .into_iter()
            .flatten()
            .any(after_dose),
        minutes_monitored: first.map_or(0, |f| minutes(end.ms_since(f)).max(0)),
        ready_to_leave_at: seat.discharge.as_ref().map(|d| d.at),
        discharged_by: seat.discharge.as_ref().map(|d| d.by),
        discharge_override: seat.discharge.as_ref().and_then(|d| d.override_reason.clone()),
        checklist,
    }
}
