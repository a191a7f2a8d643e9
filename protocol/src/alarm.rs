//! Alarms, modelled on IEC 60601-1-8: priorities, kinds, and rules as data.
//! A rule says what condition, held for how long, raises an alarm of which
//! priority; the default table is `domain.md`'s, and a clinic, a session or
//! one participant may override any rule by its id. Evaluation is in
//! [`crate::monitor`].

use crate::ids::{SeatId, Seq, StaffId, Timestamp};
use crate::role::Role;
use crate::state::Acknowledgement;
use crate::vitals::VitalComponent;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How urgently someone must act.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmPriority {
    /// For information.
    Info,
    /// Be aware.
    Low,
    /// Act promptly.
    Medium,
    /// Potentially life-threatening: act now.
    High,
}

impl fmt::Display for AlarmPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlarmPriority::Info => "info",
            AlarmPriority::Low => "low",
            AlarmPriority::Medium => "medium",
            AlarmPriority::High => "high",
        })
    }
}

/// What sort of condition an alarm is about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// A vital sign or rating out of range.
    Physiological,
    /// Equipment: a device feed gone quiet, a participant's phone offline.
    Technical,
    /// A participant asked for help.
    Request,
    /// Something due was not done (a check, a BP, a rating).
    Schedule,
}

/// How a value is compared with a limit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// value < limit
    Below,
    /// value ≤ limit
    AtMost,
    /// value ≥ limit
    AtLeast,
    /// value > limit
    Above,
}

impl Comparison {
    /// Whether `value` meets the alarm condition against `limit`.
    pub fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Comparison::Below => value < limit,
            Comparison::AtMost => value <= limit,
            Comparison::AtLeast => value >= limit,
            Comparison::Above => value > limit,
        }
    }

    /// Whether `value` is back on the safe side by at least `hysteresis`, so
    /// that a value hovering at the limit does not raise and clear in turn.
    pub fn cleared(self, value: f64, limit: f64, hysteresis: f64) -> bool {
        match self {
            Comparison::Below | Comparison::AtMost => {
                value >= limit + hysteresis && !self.holds(value, limit)
            }
            Comparison::AtLeast | Comparison::Above => {
                value <= limit - hysteresis && !self.holds(value, limit)
            }
        }
    }

    /// Symbol for explanations.
    pub const fn symbol(self) -> &'static str {
        match self {
            Comparison::Below => "<",
            Comparison::AtMost => "≤",
            Comparison::AtLeast => "≥",
            Comparison::Above => ">",
        }
    }
}

/// One limit on one vital component.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Which value.
    pub component: VitalComponent,
    /// How it is compared.
    pub comparison: Comparison,
    /// The limit.
    pub value: f64,
    /// How far back past the limit the value must come to clear.
    #[serde(default)]
    pub hysteresis: f64,
}

/// What makes a rule's condition true.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// Any of these limits met by the latest reading of its component.
    Vital {
        /// The limits (OR).
        any: Vec<Limit>,
    },
    /// After the first dose, the latest BP has risen from the pre-dose
    /// baseline by at least `systolic` or `diastolic` mm[Hg].
    BpRiseFromBaseline {
        /// Systolic rise, mm[Hg].
        systolic: f64,
        /// Diastolic rise, mm[Hg].
        diastolic: f64,
        /// Margin below the rise needed to clear, mm[Hg].
        #[serde(default)]
        hysteresis: f64,
    },
    /// The latest MOAA/S sedation rating is at most this.
    Sedation {
        /// MOAA/S (0 = no response … 5 = alert).
        at_most: u8,
    },
    /// The participant pressed "I need support" and nobody has acknowledged it.
    SupportRequest,
    /// A facilitator's latest observed check-in says the participant needs
    /// medical attention: the medical provider must hear of it, not only read
    /// it on a tile.
    NeedsMedical,
    /// A participant under monitoring (dosed, in the experience, emerging) has
    /// not had a facilitator's observed check-in for `every_min` + `grace_min`.
    CheckOverdue {
        /// Check interval, minutes.
        every_min: u32,
        /// Grace, minutes.
        grace_min: u32,
    },
    /// A BP on the schedule (see [`crate::monitor::bp_schedule`]) is due and
    /// was not taken within `grace_min`.
    BpDue {
        /// Grace, minutes.
        grace_min: u32,
    },
    /// While emerging, no observer sedation rating for `every_min` + `grace_min`.
    RatingDue {
        /// Rating interval, minutes.
        every_min: u32,
        /// Grace, minutes.
        grace_min: u32,
    },
    /// A device that has been streaming for this participant sent nothing for
    /// `after_s` seconds.
    FeedStale {
        /// Seconds of silence.
        after_s: u32,
    },
    /// The participant's phone has been disconnected for `grace_s` seconds.
    DeviceOffline {
        /// Seconds of grace.
        grace_s: u32,
    },
}

impl Trigger {
    /// Triggers evaluated on the latest readings and ratings (with a
    /// confirmation delay tracked from when the condition began).
    pub fn is_reading_driven(&self) -> bool {
        matches!(
            self,
            Trigger::Vital { .. } | Trigger::BpRiseFromBaseline { .. } | Trigger::Sedation { .. }
        )
    }
}

/// Raise the priority of an alarm nobody has acknowledged.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaisePriority {
    /// The new priority.
    pub to: AlarmPriority,
    /// Minutes after the alarm was raised.
    pub after_min: u32,
}

/// One alarm rule. Rules are data: the default table can be changed per
/// clinic, per session and per participant, each by the rule's `id`.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmRule {
    /// Stable id ("spo2-critical"); overrides replace the rule with the same id.
    pub id: String,
    /// What staff read ("SpO2 below 88 %").
    pub label: String,
    /// Priority when raised.
    pub priority: AlarmPriority,
    /// The condition.
    pub trigger: Trigger,
    /// Seconds the condition must hold before the alarm is raised (alarm
    /// fatigue: a single dip of a finger probe is not an emergency).
    #[serde(default)]
    pub confirm_s: u32,
    /// Stays after the condition ends until someone acknowledges it.
    #[serde(default)]
    pub latching: bool,
    /// Off rules raise nothing (and clear what they raised).
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// Raise the priority if still unacknowledged after a while.
    #[serde(default)]
    pub raise_to: Option<RaisePriority>,
}

fn enabled_default() -> bool {
    true
}

impl AlarmRule {
    /// The alarm kind, from the trigger.
    pub fn kind(&self) -> AlarmKind {
        match self.trigger {
            Trigger::Vital { .. }
            | Trigger::BpRiseFromBaseline { .. }
            | Trigger::Sedation { .. } => AlarmKind::Physiological,
            Trigger::SupportRequest | Trigger::NeedsMedical => AlarmKind::Request,
            Trigger::CheckOverdue { .. } | Trigger::BpDue { .. } | Trigger::RatingDue { .. } => {
                AlarmKind::Schedule
            }
            Trigger::FeedStale { .. } | Trigger::DeviceOffline { .. } => AlarmKind::Technical,
        }
    }

    /// Whether its alarms name the facilitator on the participant's check
    /// rota: an overdue check, and a participant's own request for support.
    pub fn names_rota(&self) -> bool {
        matches!(
            self.trigger,
            Trigger::CheckOverdue { .. } | Trigger::SupportRequest
        )
    }

    /// Who is notified first. Escalation widens this to every staff role.
    pub fn first_notified(&self) -> Vec<Role> {
        match self.trigger {
            Trigger::SupportRequest | Trigger::CheckOverdue { .. } => vec![Role::Facilitator],
            Trigger::Vital { .. }
            | Trigger::BpRiseFromBaseline { .. }
            | Trigger::Sedation { .. }
            | Trigger::NeedsMedical
            | Trigger::BpDue { .. }
            | Trigger::RatingDue { .. }
            | Trigger::FeedStale { .. }
            | Trigger::DeviceOffline { .. } => vec![Role::Medical],
        }
    }

    /// Checks that the rule makes sense; the message says what does not.
    pub fn validate(&self) -> Result<(), String> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 40
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !id_ok {
            return Err("a rule id is 1 to 40 lowercase letters, digits or '-'".into());
        }
        if self.label.trim().is_empty() || self.label.chars().count() > 80 {
            return Err(format!(
                "rule {}: the label must be 1 to 80 characters",
                self.id
            ));
        }
        if self.confirm_s > 600 {
            return Err(format!(
                "rule {}: a confirmation delay is at most 600 s",
                self.id
            ));
        }
        let finite = |v: f64, what: &str| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("rule {}: {what} must be a number ≥ 0", self.id))
            }
        };
        match &self.trigger {
            Trigger::Vital { any } => {
                if any.is_empty() {
                    return Err(format!(
                        "rule {}: a vital rule needs at least one limit",
                        self.id
                    ));
                }
                for limit in any {
                    finite(limit.value, "a limit")?;
                    finite(limit.hysteresis, "hysteresis")?;
                }
            }
            Trigger::BpRiseFromBaseline {
                systolic,
                diastolic,
                hysteresis,
            } => {
                finite(*systolic, "the systolic rise")?;
                finite(*diastolic, "the diastolic rise")?;
                finite(*hysteresis, "hysteresis")?;
            }
            Trigger::Sedation { at_most } if *at_most > 5 => {
                return Err(format!("rule {}: MOAA/S runs from 0 to 5", self.id));
            }
            Trigger::CheckOverdue { every_min: 0, .. }
            | Trigger::RatingDue { every_min: 0, .. } => {
                return Err(format!(
                    "rule {}: the interval must be at least 1 minute",
                    self.id
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// An alarm that is raised and not yet cleared. Its id is the seq of the
/// event that raised it.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Alarm {
    /// The `alarm_raised` event's seq.
    pub id: Seq,
    /// Whose.
    pub seat: SeatId,
    /// The rule that raised it.
    pub rule: String,
    /// The rule's label.
    pub label: String,
    /// Current priority (may have been raised).
    pub priority: AlarmPriority,
    /// Kind.
    pub kind: AlarmKind,
    /// Why it fired, in words ("SpO2 87 % < 88 % since 21:04:10").
    pub detail: String,
    /// When raised.
    pub raised_at: Timestamp,
    /// Roles notified (widened by escalation).
    pub notify: Vec<Role>,
    /// The facilitator on the rota for this participant, if any.
    pub assigned_to: Option<StaffId>,
    /// Whether the condition still holds.
    pub condition_active: bool,
    /// Latching: stays after the condition ends until acknowledged.
    pub latching: bool,
    /// Who acknowledged it and when.
    pub acknowledged: Option<Acknowledgement>,
    /// Escalations so far.
    pub escalations: u32,
    /// When staff were last notified (raise or escalation).
    pub last_notified_at: Timestamp,
    /// Audio silenced for this occurrence until then (at most 2 minutes).
    pub audio_paused_until: Option<Timestamp>,
}

impl Alarm {
    /// Audio should sound: raised, unacknowledged, not paused at `now`.
    pub fn sounding(&self, now: Timestamp) -> bool {
        self.acknowledged.is_none() && self.audio_paused_until.is_none_or(|until| now >= until)
    }
}

/// Why an alarm left the list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClearReason {
    /// The condition ended (and the alarm was acknowledged or not latching).
    ConditionEnded,
    /// Acknowledged after its condition had ended (a latched alarm).
    Acknowledged,
    /// The participant was discharged or withdrew.
    ParticipantLeft,
    /// The rule was switched off or removed.
    RuleDisabled,
    /// The session closed.
    SessionClosed,
    /// Reported again after the acknowledgement (a second "needs medical"
    /// check-in): a new alarm takes its place.
    Recurred,
}

/// Longest audio pause, by IEC 60601-1-8 practice.
pub const MAX_AUDIO_PAUSE_S: u32 = 120;

/// Seconds after which an unacknowledged alarm re-notifies, widened to every
/// staff role, per priority. `None`: no escalation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    /// High priority, seconds.
    pub high_s: Option<u32>,
    /// Medium priority, seconds.
    pub medium_s: Option<u32>,
    /// Low priority, seconds.
    pub low_s: Option<u32>,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy {
            high_s: Some(60),
            medium_s: Some(180),
            low_s: None,
        }
    }
}

impl EscalationPolicy {
    /// The delay for a priority, in ms.
    pub fn delay_ms(&self, priority: AlarmPriority) -> Option<i64> {
        let s = match priority {
            AlarmPriority::High => self.high_s,
            AlarmPriority::Medium => self.medium_s,
            AlarmPriority::Low => self.low_s,
            AlarmPriority::Info => None,
        };
        s.map(|s| i64::from(s) * 1000)
    }
}

fn limit(component: VitalComponent, comparison: Comparison, value: f64, hysteresis: f64) -> Limit {
    Limit {
        component,
        comparison,
        value,
        hysteresis,
    }
}

fn rule(
    id: &str,
    label: &str,
    priority: AlarmPriority,
    trigger: Trigger,
    confirm_s: u32,
    latching: bool,
) -> AlarmRule {
    AlarmRule {
        id: id.into(),
        label: label.into(),
        priority,
        trigger,
        confirm_s,
        latching,
        enabled: true,
        raise_to: None,
    }
}

/// The default rules of `domain.md`.
pub fn default_rules() -> Vec<AlarmRule> {
    use AlarmPriority::*;
    use Comparison::*;
    use VitalComponent::*;
    let mut bp_due = rule(
        "bp-due",
        "BP reading due",
        Low,
        Trigger::BpDue { grace_min: 5 },
        0,
        false,
    );
    bp_due.raise_to = Some(RaisePriority {
        to: Medium,
        after_min: 10,
    });
    vec![
        rule(
            "spo2-critical",
            "SpO2 below 88 %",
            High,
            Trigger::Vital {
                any: vec![limit(Spo2, Below, 88.0, 1.0)],
            },
            15,
            true,
        ),
        rule(
            "spo2-low",
            "SpO2 below 92 %",
            Medium,
            Trigger::Vital {
                any: vec![limit(Spo2, Below, 92.0, 1.0)],
            },
            15,
            true,
        ),
        rule(
            "bp-critical",
            "BP at or above 180/110",
            High,
            Trigger::Vital {
                any: vec![
                    limit(Systolic, AtLeast, 180.0, 5.0),
                    limit(Diastolic, AtLeast, 110.0, 5.0),
                ],
            },
            0,
            true,
        ),
        rule(
            "bp-high",
            "BP at or above 160/100",
            Medium,
            Trigger::Vital {
                any: vec![
                    limit(Systolic, AtLeast, 160.0, 5.0),
                    limit(Diastolic, AtLeast, 100.0, 5.0),
                ],
            },
            0,
            true,
        ),
        rule(
            "bp-rise",
            "BP risen 40/25 from baseline",
            Medium,
            Trigger::BpRiseFromBaseline {
                systolic: 40.0,
                diastolic: 25.0,
                hysteresis: 5.0,
            },
            0,
            true,
        ),
        rule(
            "hr-out-of-range",
            "Heart rate above 130 or below 45",
            Medium,
            Trigger::Vital {
                any: vec![
                    limit(HeartRate, Above, 130.0, 3.0),
                    limit(HeartRate, Below, 45.0, 3.0),
                ],
            },
            30,
            true,
        ),
        rule(
            "rr-out-of-range",
            "Respiratory rate below 8 or above 30",
            High,
            Trigger::Vital {
                any: vec![
                    limit(RespiratoryRate, Below, 8.0, 1.0),
                    limit(RespiratoryRate, Above, 30.0, 1.0),
                ],
            },
            0,
            true,
        ),
        rule(
            "sedation-deep",
            "Deep sedation (MOAA/S ≤ 1)",
            High,
            Trigger::Sedation { at_most: 1 },
            0,
            true,
        ),
        rule(
            "support-request",
            "Participant asked for support",
            High,
            Trigger::SupportRequest,
            0,
            false,
        ),
        rule(
            "needs-medical",
            "Facilitator asks for medical review",
            High,
            Trigger::NeedsMedical,
            0,
            true,
        ),
        rule(
            "check-overdue",
            "Facilitator check overdue",
            Medium,
            Trigger::CheckOverdue {
                every_min: 15,
                grace_min: 2,
            },
            0,
            false,
        ),
        bp_due,
        rule(
            "rating-due",
            "Sedation rating due",
            Low,
            Trigger::RatingDue {
                every_min: 15,
                grace_min: 5,
            },
            0,
            false,
        ),
        rule(
            "feed-stale",
            "Device feed silent",
            Medium,
            Trigger::FeedStale { after_s: 30 },
            0,
            false,
        ),
        rule(
            "device-offline",
            "Participant's phone offline",
            Low,
            Trigger::DeviceOffline { grace_s: 20 },
            0,
            false,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_needs_a_margin_past_the_limit() {
        assert!(Comparison::Below.holds(87.9, 88.0));
        assert!(!Comparison::Below.holds(88.0, 88.0));
        assert!(
            !Comparison::Below.cleared(88.5, 88.0, 1.0),
            "inside the band"
        );
        assert!(Comparison::Below.cleared(89.0, 88.0, 1.0));
        assert!(Comparison::AtLeast.holds(180.0, 180.0));
        assert!(!Comparison::AtLeast.cleared(176.0, 180.0, 5.0));
        assert!(Comparison::AtLeast.cleared(175.0, 180.0, 5.0));
    }

    #[test]
    fn default_rules_are_valid_and_unique() {
        let rules = default_rules();
        let mut ids: Vec<_> = rules.iter().map(|r| r.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), rules.len());
        for r in &rules {
            r.validate().unwrap();
        }
    }
}
