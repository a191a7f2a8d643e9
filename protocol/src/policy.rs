//! The clinic's configurable numbers. Every clinical threshold is a default a
//! clinic may change; the policy in force is recorded in the session's first
//! event, so replaying a session's log always reaches the same decisions.

use crate::alarm::{AlarmRule, EscalationPolicy, default_rules};
use crate::records::Route;
use crate::vitals::VitalComponent;
use serde::{Deserialize, Serialize};

/// An inclusive range of accepted values.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlausibleRange {
    /// Lowest accepted value.
    pub min: f64,
    /// Highest accepted value.
    pub max: f64,
}

impl PlausibleRange {
    /// Whether `value` lies in the range, bounds included.
    pub fn contains(&self, value: f64) -> bool {
        (self.min..=self.max).contains(&value)
    }
}

const fn range(min: f64, max: f64) -> PlausibleRange {
    PlausibleRange { min, max }
}

/// Plausible input ranges: readings outside are refused as typing or device
/// errors (they are not alarm thresholds).
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitalLimits {
    /// Systolic BP, mm[Hg].
    pub systolic: PlausibleRange,
    /// Diastolic BP, mm[Hg] (and always below systolic).
    pub diastolic: PlausibleRange,
    /// Heart rate, /min.
    pub heart_rate: PlausibleRange,
    /// SpO2, %.
    pub spo2: PlausibleRange,
    /// Respiratory rate, /min.
    pub respiratory_rate: PlausibleRange,
    /// Body temperature, Cel.
    pub body_temperature: PlausibleRange,
    /// Body weight, kg.
    pub body_weight: PlausibleRange,
}

impl Default for VitalLimits {
    fn default() -> Self {
        VitalLimits {
            systolic: range(50.0, 300.0),
            diastolic: range(20.0, 200.0),
            heart_rate: range(20.0, 300.0),
            spo2: range(50.0, 100.0),
            respiratory_rate: range(2.0, 80.0),
            body_temperature: range(30.0, 45.0),
            body_weight: range(20.0, 350.0),
        }
    }
}

impl VitalLimits {
    /// The range for one component.
    pub fn range(&self, component: VitalComponent) -> PlausibleRange {
        match component {
            VitalComponent::Systolic => self.systolic,
            VitalComponent::Diastolic => self.diastolic,
            VitalComponent::HeartRate => self.heart_rate,
            VitalComponent::Spo2 => self.spo2,
            VitalComponent::RespiratoryRate => self.respiratory_rate,
            VitalComponent::BodyTemperature => self.body_temperature,
            VitalComponent::BodyWeight => self.body_weight,
        }
    }
}

/// Everything a session's decisions depend on that a clinic may configure.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicPolicy {
    /// Plausible input ranges for vitals.
    pub vital_limits: VitalLimits,
    /// Most seats one session may have (groups are 4–12; a few spare).
    pub max_seats: u32,
    /// Largest single dose accepted, mg (a guard against typing 500 for 50).
    pub max_single_dose_mg: f64,
    /// How far in the future a measured-at or administered-at time may lie,
    /// ms: tolerates clock differences between devices and the server.
    pub future_tolerance_ms: i64,
    /// How far back a measured-at or administered-at time may lie, ms: late
    /// entry of a paper reading is fine, a reading from yesterday is an error.
    pub backdate_limit_ms: i64,
    /// The alarm rules (`domain.md`'s table by default).
    pub alarm_rules: Vec<AlarmRule>,
    /// When unacknowledged alarms re-notify every staff role.
    pub escalation: EscalationPolicy,
    /// The pre-dose BP hold.
    pub dose_hold: DoseHoldPolicy,
    /// When BP readings are due.
    pub bp_schedule: BpSchedulePolicy,
    /// What discharge requires.
    pub discharge: DischargePolicy,
}

impl Default for ClinicPolicy {
    fn default() -> Self {
        ClinicPolicy {
            vital_limits: VitalLimits::default(),
            max_seats: 16,
            max_single_dose_mg: 500.0,
            future_tolerance_ms: 60_000,
            backdate_limit_ms: 6 * 60 * 60_000,
            alarm_rules: default_rules(),
            escalation: EscalationPolicy::default(),
            dose_hold: DoseHoldPolicy::default(),
            bp_schedule: BpSchedulePolicy::default(),
            discharge: DischargePolicy::default(),
        }
    }
}

impl ClinicPolicy {
    /// Checks the policy a clinic submits; the message names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for rule in &self.alarm_rules {
            rule.validate()?;
            if !ids.insert(rule.id.as_str()) {
                return Err(format!("rule id {} appears twice", rule.id));
            }
        }
        for (name, r) in [
            ("systolic", self.vital_limits.systolic),
            ("diastolic", self.vital_limits.diastolic),
            ("heart_rate", self.vital_limits.heart_rate),
            ("spo2", self.vital_limits.spo2),
            ("respiratory_rate", self.vital_limits.respiratory_rate),
            ("body_temperature", self.vital_limits.body_temperature),
            ("body_weight", self.vital_limits.body_weight),
        ] {
            if !(r.min.is_finite() && r.max.is_finite() && r.min < r.max) {
                return Err(format!("vital_limits.{name}: min must be below max"));
            }
        }
        if !(1..=64).contains(&self.max_seats) {
            return Err("max_seats must be 1 to 64".into());
        }
        if !(self.max_single_dose_mg.is_finite() && self.max_single_dose_mg > 0.0) {
            return Err("max_single_dose_mg must be more than 0".into());
        }
        if self.vital_limits.body_weight.min <= 0.0 {
            return Err(
                "vital_limits.body_weight: min must be above 0 (doses are checked per kg)".into(),
            );
        }
        let per_kg = self.dose_hold.mg_per_kg_above;
        for (name, v) in [
            ("iv", per_kg.iv),
            ("im", per_kg.im),
            ("sublingual_oral", per_kg.sublingual_oral),
            ("intranasal", per_kg.intranasal),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!(
                    "dose_hold.mg_per_kg_above.{name} must be more than 0"
                ));
            }
        }
        if self.future_tolerance_ms < 0 || self.backdate_limit_ms < 0 {
            return Err("time tolerances must not be negative".into());
        }
        Ok(())
    }
}

/// The pre-dose BP hold: a dose is refused without a recent BP, or with a BP
/// above the threshold, unless the medical provider overrides with a reason.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoseHoldPolicy {
    /// A pre-dose BP must have been measured within this many minutes.
    pub bp_max_age_min: u32,
    /// Hold when systolic is above this, mm[Hg].
    pub systolic_above: f64,
    /// Hold when diastolic is above this, mm[Hg].
    pub diastolic_above: f64,
    /// Hold a dose that brings the session's total by its route above this
    /// many mg per kg of the participant's weight, per route: a slipped digit
    /// is ten times the dose. Sessions logged before this existed read the
    /// defaults.
    #[serde(default)]
    pub mg_per_kg_above: PerRoute,
    /// Hold a dose when no weight is on record to check it against (a
    /// clinic that gives fixed doses without weighing turns it off).
    #[serde(default = "on")]
    pub hold_without_weight: bool,
    /// Hold a dose when the arrival check-in does not confirm fasting (a
    /// clinic whose protocol allows a light meal turns it off).
    #[serde(default = "on")]
    pub hold_unless_fasted: bool,
}

fn on() -> bool {
    true
}

impl Default for DoseHoldPolicy {
    fn default() -> Self {
        DoseHoldPolicy {
            bp_max_age_min: 30,
            systolic_above: 140.0,
            diastolic_above: 90.0,
            mg_per_kg_above: PerRoute::default(),
            hold_without_weight: true,
            hold_unless_fasted: true,
        }
    }
}

/// One number per route of administration.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerRoute {
    /// Intravenous.
    pub iv: f64,
    /// Intramuscular.
    pub im: f64,
    /// Sublingual or oral (most of it is not absorbed).
    pub sublingual_oral: f64,
    /// Intranasal.
    pub intranasal: f64,
}

impl PerRoute {
    /// The number for `route`.
    pub fn of(&self, route: Route) -> f64 {
        match route {
            Route::Iv => self.iv,
            Route::Im => self.im,
            Route::SublingualOral => self.sublingual_oral,
            Route::Intranasal => self.intranasal,
        }
    }
}

impl Default for PerRoute {
    /// Upper bounds well past the usual single doses (IV 0.5–1, IM 0.5–1.5,
    /// intranasal up to about 1.5, sublingual/oral a few mg/kg): a hold asks
    /// for a second look and a reason, it does not prescribe.
    fn default() -> Self {
        PerRoute {
            iv: 1.0,
            im: 2.0,
            sublingual_oral: 10.0,
            intranasal: 2.0,
        }
    }
}

/// When BP readings are due (each satisfied by a BP taken from 5 minutes
/// before the due time on).
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BpSchedulePolicy {
    /// After the first dose (the BP peak), minutes.
    pub after_dose_min: u32,
    /// Also this soon after the first dose when the baseline was above the
    /// hold threshold, minutes.
    pub elevated_after_dose_min: u32,
    /// After each further dose (a dose increase), minutes.
    pub after_further_dose_min: u32,
}

impl Default for BpSchedulePolicy {
    fn default() -> Self {
        BpSchedulePolicy {
            after_dose_min: 40,
            elevated_after_dose_min: 25,
            after_further_dose_min: 40,
        }
    }
}

/// What the discharge checklist requires.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DischargePolicy {
    /// Minutes since the first dose (Spravato REMS: 120).
    pub min_after_first_dose_min: u32,
    /// The latest vitals must be at most this old, minutes.
    pub vitals_max_age_min: u32,
    /// Highest observer dissociation score that counts as resolved.
    pub dissociation_resolved_at_most: u8,
}

impl Default for DischargePolicy {
    fn default() -> Self {
        DischargePolicy {
            min_after_first_dose_min: 120,
            vitals_max_age_min: 30,
            dissociation_resolved_at_most: 0,
        }
    }
}

/// Length limits on free text, in characters. Not clinical: they bound what one
/// message can make the server store and send to everyone.
pub mod text_limits {
    /// Seat display name or pseudonym.
    pub const DISPLAY_NAME: usize = 60;
    /// Location in the room ("window nest", "remote").
    pub const LOCATION: usize = 60;
    /// Session title.
    pub const SESSION_TITLE: usize = 120;
    /// Arrival intention.
    pub const INTENTION: usize = 1_000;
    /// Optional note on a support request.
    pub const SUPPORT_NOTE: usize = 500;
    /// Staff note or observed check-in note.
    pub const NOTE: usize = 2_000;
    /// Fewest characters of an override reason: it is the record of why a
    /// hold or the discharge checklist was set aside ("x" is not a reason).
    pub const OVERRIDE_REASON_MIN: usize = 10;
    /// Message to the whole group.
    pub const GROUP_MESSAGE: usize = 1_000;
    /// Post-session journal.
    pub const JOURNAL: usize = 10_000;
    /// Medication lot number.
    pub const LOT: usize = 40;
    /// Device identifier.
    pub const DEVICE_ID: usize = 64;
}
