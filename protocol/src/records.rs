//! What staff and participants record about a seat: check-ins (self and
//! observed), doses, notes and the post-session form.

use crate::ids::{StaffId, Timestamp};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A 0–10 self-rating (mood, anxiety). The type cannot hold anything else.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Score(u8);

impl Score {
    /// The highest score.
    pub const MAX: u8 = 10;

    /// The score, 0–10.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Score {
    type Error = ScoreOutOfRange;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        if value <= Score::MAX {
            Ok(Score(value))
        } else {
            Err(ScoreOutOfRange(value))
        }
    }
}

impl From<Score> for u8 {
    fn from(score: Score) -> u8 {
        score.0
    }
}

/// A rating above 10.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("a rating must be between 0 and 10, got {0}")]
pub struct ScoreOutOfRange(pub u8);

/// The participant's arrival check-in.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrivalForm {
    /// Mood now, 0 (worst) – 10 (best).
    pub mood: Score,
    /// Anxiety now, 0 (none) – 10 (extreme).
    pub anxiety: Score,
    /// Their intention for the session, in their words (may be empty).
    pub intention: String,
    /// Has fasted as instructed.
    pub fasting_confirmed: bool,
    /// A ride home is arranged (no driving until the next day).
    pub ride_home_arranged: bool,
    /// Consents to supportive touch (a hand on the shoulder).
    pub consent_to_touch: bool,
}

/// Why a participant asked for support (any number, or none).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportReason {
    /// Feels sick.
    Nausea,
    /// Needs an escort to the bathroom.
    Bathroom,
    /// Anxious or panicking.
    Anxious,
    /// Cold.
    Cold,
    /// Something else.
    Other,
}

/// One tap from the participant's phone.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum SelfReport {
    /// "I'm OK". (An empty struct variant so unknown fields are refused.)
    Ok {},
    /// "I need support".
    NeedSupport {
        /// Optional reasons.
        #[serde(default)]
        reasons: Vec<SupportReason>,
        /// Optional words.
        #[serde(default)]
        note: Option<String>,
    },
}

/// What a facilitator saw on their round.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservedStatus {
    /// Lying quietly.
    Resting,
    /// Calm.
    Calm,
    /// Tearful.
    Tearful,
    /// Distressed: needs a facilitator.
    Distressed,
    /// Asleep.
    Asleep,
    /// Needs the medical provider.
    NeedsMedical,
    /// Not in the room (bathroom, outside).
    OutOfRoom,
}

/// Route of administration.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Intravenous (allows titration).
    Iv,
    /// Intramuscular.
    Im,
    /// Sublingual or oral (lozenge, troche).
    SublingualOral,
    /// Intranasal.
    Intranasal,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Route::Iv => "IV",
            Route::Im => "IM",
            Route::SublingualOral => "sublingual/oral",
            Route::Intranasal => "intranasal",
        })
    }
}

/// A BP value with its time, as the hold and the monitoring form quote it.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BpValue {
    /// Systolic, mm[Hg].
    pub systolic: f64,
    /// Diastolic, mm[Hg].
    pub diastolic: f64,
    /// When measured.
    pub measured_at: Timestamp,
}

/// A medical override of the pre-dose BP hold.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldOverride {
    /// What the hold was ("pre-dose BP 152/94 is above 140/90").
    pub held_because: String,
    /// The provider's reason for dosing anyway.
    pub reason: String,
}

/// One administered dose.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dose {
    /// Route.
    pub route: Route,
    /// Amount in mg.
    pub mg: f64,
    /// mg per kg of the seat's recorded weight, when a weight is known.
    pub mg_per_kg: Option<f64>,
    /// Medication lot.
    pub lot: String,
    /// When it was given.
    pub administered_at: Timestamp,
    /// Who gave it.
    pub administered_by: StaffId,
    /// The BP the hold looked at (the latest before the dose).
    pub pre_dose_bp: Option<BpValue>,
    /// Set when the dose was given despite the hold.
    pub hold_override: Option<HoldOverride>,
}

/// An observer rating. Scores only: copyrighted item text is not embedded.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "scale", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rating {
    /// Modified Observer's Assessment of Alertness/Sedation: 0 (no response
    /// to painful stimulus) … 5 (responds readily to name, alert).
    Sedation {
        /// 0–5.
        moaas: u8,
    },
    /// Observer-rated dissociation, the total score of the clinic's observer
    /// scale (e.g. CADSS observer items), 0 = none.
    Dissociation {
        /// 0–100.
        score: u8,
    },
}

impl Rating {
    /// Highest MOAA/S (fully alert).
    pub const MOAAS_ALERT: u8 = 5;
    /// Highest dissociation total accepted.
    pub const DISSOCIATION_MAX: u8 = 100;

    /// Whether the score is on its scale.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Rating::Sedation { moaas } if moaas > Rating::MOAAS_ALERT => {
                Err(format!("MOAA/S runs from 0 to 5, got {moaas}"))
            }
            Rating::Dissociation { score } if score > Rating::DISSOCIATION_MAX => Err(format!(
                "a dissociation score runs from 0 to 100, got {score}"
            )),
            _ => Ok(()),
        }
    }
}

/// Post-session check-in: mood after the integration circle and a journal entry.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostSessionForm {
    /// Mood now, 0–10.
    pub mood: Score,
    /// Journal text (seen by the participant and the clinical team only).
    pub journal: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_above_ten_do_not_parse() {
        assert_eq!(serde_json::from_str::<Score>("10").unwrap().get(), 10);
        let err = serde_json::from_str::<Score>("11").unwrap_err().to_string();
        assert!(err.contains("between 0 and 10, got 11"), "{err}");
        assert!(serde_json::from_str::<Score>("-1").is_err());
    }

    #[test]
    fn self_report_wire_form() {
        let r: SelfReport = serde_json::from_str(r#"{"status":"ok"}"#).unwrap();
        assert_eq!(r, SelfReport::Ok {});
        let r: SelfReport =
            serde_json::from_str(r#"{"status":"need_support","reasons":["nausea"]}"#).unwrap();
        assert_eq!(
            r,
            SelfReport::NeedSupport {
                reasons: vec![SupportReason::Nausea],
                note: None
            }
        );
        assert!(serde_json::from_str::<SelfReport>(r#"{"status":"ok","extra":1}"#).is_err());
    }
}
