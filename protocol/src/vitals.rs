//! Vital signs: what can be measured (with LOINC codes and UCUM units), one
//! reading with its provenance, and the plausibility check every reading passes
//! before it is recorded.

use crate::ids::{StaffId, Timestamp};
use crate::policy::{PlausibleRange, VitalLimits};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What was measured. Blood pressure is one measurement of two components.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VitalKind {
    /// Blood pressure panel (systolic + diastolic).
    BloodPressure,
    /// Heart rate.
    HeartRate,
    /// Oxygen saturation.
    Spo2,
    /// Respiratory rate.
    RespiratoryRate,
    /// Body temperature.
    BodyTemperature,
    /// Body weight (used for mg/kg).
    BodyWeight,
}

impl VitalKind {
    /// Every kind.
    pub const ALL: [VitalKind; 6] = [
        VitalKind::BloodPressure,
        VitalKind::HeartRate,
        VitalKind::Spo2,
        VitalKind::RespiratoryRate,
        VitalKind::BodyTemperature,
        VitalKind::BodyWeight,
    ];

    /// LOINC code of the observation (the panel code for blood pressure).
    pub const fn loinc(self) -> &'static str {
        match self {
            VitalKind::BloodPressure => "85354-9",
            VitalKind::HeartRate => "8867-4",
            VitalKind::Spo2 => "2708-6",
            VitalKind::RespiratoryRate => "9279-1",
            VitalKind::BodyTemperature => "8310-5",
            VitalKind::BodyWeight => "29463-7",
        }
    }

    /// Human label.
    pub const fn label(self) -> &'static str {
        match self {
            VitalKind::BloodPressure => "blood pressure",
            VitalKind::HeartRate => "heart rate",
            VitalKind::Spo2 => "SpO2",
            VitalKind::RespiratoryRate => "respiratory rate",
            VitalKind::BodyTemperature => "body temperature",
            VitalKind::BodyWeight => "body weight",
        }
    }
}

/// One numeric component of a measurement: the unit of plausibility checks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VitalComponent {
    /// Systolic blood pressure.
    Systolic,
    /// Diastolic blood pressure.
    Diastolic,
    /// Heart rate.
    HeartRate,
    /// Oxygen saturation.
    Spo2,
    /// Respiratory rate.
    RespiratoryRate,
    /// Body temperature.
    BodyTemperature,
    /// Body weight.
    BodyWeight,
}

impl VitalComponent {
    /// LOINC code.
    pub const fn loinc(self) -> &'static str {
        match self {
            VitalComponent::Systolic => "8480-6",
            VitalComponent::Diastolic => "8462-4",
            VitalComponent::HeartRate => "8867-4",
            VitalComponent::Spo2 => "2708-6",
            VitalComponent::RespiratoryRate => "9279-1",
            VitalComponent::BodyTemperature => "8310-5",
            VitalComponent::BodyWeight => "29463-7",
        }
    }

    /// The unit as people read it ("mmHg", "°C"); the UCUM code stays in
    /// records and exports.
    pub const fn unit(self) -> &'static str {
        match self {
            VitalComponent::Systolic | VitalComponent::Diastolic => "mmHg",
            VitalComponent::BodyTemperature => "°C",
            other => other.ucum(),
        }
    }

    /// UCUM unit.
    pub const fn ucum(self) -> &'static str {
        match self {
            VitalComponent::Systolic | VitalComponent::Diastolic => "mm[Hg]",
            VitalComponent::HeartRate | VitalComponent::RespiratoryRate => "/min",
            VitalComponent::Spo2 => "%",
            VitalComponent::BodyTemperature => "Cel",
            VitalComponent::BodyWeight => "kg",
        }
    }

    /// Human label.
    pub const fn label(self) -> &'static str {
        match self {
            VitalComponent::Systolic => "systolic BP",
            VitalComponent::Diastolic => "diastolic BP",
            VitalComponent::HeartRate => "heart rate",
            VitalComponent::Spo2 => "SpO2",
            VitalComponent::RespiratoryRate => "respiratory rate",
            VitalComponent::BodyTemperature => "body temperature",
            VitalComponent::BodyWeight => "body weight",
        }
    }
}

/// The measured values, tagged by kind: `{"kind": "spo2", "value": 97}`,
/// `{"kind": "blood_pressure", "systolic": 128, "diastolic": 82}`.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Measurement {
    /// Blood pressure in mm[Hg].
    BloodPressure {
        /// Systolic, mm[Hg].
        systolic: f64,
        /// Diastolic, mm[Hg].
        diastolic: f64,
    },
    /// Heart rate, /min.
    HeartRate {
        /// Beats per minute.
        value: f64,
    },
    /// Oxygen saturation, %.
    Spo2 {
        /// Percent.
        value: f64,
    },
    /// Respiratory rate, /min.
    RespiratoryRate {
        /// Breaths per minute.
        value: f64,
    },
    /// Body temperature, Cel.
    BodyTemperature {
        /// Degrees Celsius.
        value: f64,
    },
    /// Body weight, kg.
    BodyWeight {
        /// Kilograms.
        value: f64,
    },
}

impl Measurement {
    /// The kind of measurement.
    pub const fn kind(&self) -> VitalKind {
        match self {
            Measurement::BloodPressure { .. } => VitalKind::BloodPressure,
            Measurement::HeartRate { .. } => VitalKind::HeartRate,
            Measurement::Spo2 { .. } => VitalKind::Spo2,
            Measurement::RespiratoryRate { .. } => VitalKind::RespiratoryRate,
            Measurement::BodyTemperature { .. } => VitalKind::BodyTemperature,
            Measurement::BodyWeight { .. } => VitalKind::BodyWeight,
        }
    }

    /// Each numeric component with its value.
    pub fn components(&self) -> Vec<(VitalComponent, f64)> {
        match *self {
            Measurement::BloodPressure {
                systolic,
                diastolic,
            } => vec![
                (VitalComponent::Systolic, systolic),
                (VitalComponent::Diastolic, diastolic),
            ],
            Measurement::HeartRate { value } => vec![(VitalComponent::HeartRate, value)],
            Measurement::Spo2 { value } => vec![(VitalComponent::Spo2, value)],
            Measurement::RespiratoryRate { value } => {
                vec![(VitalComponent::RespiratoryRate, value)]
            }
            Measurement::BodyTemperature { value } => {
                vec![(VitalComponent::BodyTemperature, value)]
            }
            Measurement::BodyWeight { value } => vec![(VitalComponent::BodyWeight, value)],
        }
    }

    /// Checks every component against the plausible input ranges (bounds
    /// inclusive) and that diastolic is below systolic. Values outside are
    /// typing or device errors, never recorded.
    pub fn check_plausible(&self, limits: &VitalLimits) -> Result<(), VitalError> {
        for (component, value) in self.components() {
            if !value.is_finite() {
                return Err(VitalError::NotANumber { component });
            }
            let range = limits.range(component);
            if !range.contains(value) {
                return Err(VitalError::OutOfRange {
                    component,
                    value,
                    range,
                });
            }
        }
        if let Measurement::BloodPressure {
            systolic,
            diastolic,
        } = *self
            && diastolic >= systolic
        {
            return Err(VitalError::DiastolicNotBelowSystolic {
                systolic,
                diastolic,
            });
        }
        Ok(())
    }
}

/// Why a measurement was refused. The message names the vital, the value, the
/// unit and the accepted range, so the person typing can correct it.
#[derive(Clone, PartialEq, Debug, thiserror::Error)]
pub enum VitalError {
    /// NaN or infinity.
    #[error("{} must be a number", component.label())]
    NotANumber {
        /// Which component.
        component: VitalComponent,
    },
    /// Outside the plausible input range.
    #[error(
        "{} of {} {unit} is outside the plausible range {} to {} {unit}",
        component.label(), Num(*value), Num(range.min), Num(range.max), unit = component.unit()
    )]
    OutOfRange {
        /// Which component.
        component: VitalComponent,
        /// The value given.
        value: f64,
        /// The accepted range.
        range: PlausibleRange,
    },
    /// Diastolic at or above systolic.
    #[error(
        "diastolic BP ({} mmHg) must be lower than systolic BP ({} mmHg)",
        Num(*diastolic),
        Num(*systolic)
    )]
    DiastolicNotBelowSystolic {
        /// Systolic given.
        systolic: f64,
        /// Diastolic given.
        diastolic: f64,
    },
}

/// Formats a number without a trailing `.0` (120, not 120.0; 37.5 stays).
pub(crate) struct Num(pub f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            write!(f, "{}", self.0 as i64)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Where a reading came from. Every reading keeps its source and who entered it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReadingSource {
    /// Typed in by a staff member (a BP cuff, a thermometer).
    Manual {
        /// Who entered it.
        by: StaffId,
    },
    /// Streamed by a device (a pulse oximeter) through a staff-authorised bridge.
    Device {
        /// The device's own identifier.
        device: String,
        /// The staff account the bridge runs as.
        relayed_by: StaffId,
    },
}

/// One recorded vital sign reading.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitalReading {
    /// The values.
    pub measurement: Measurement,
    /// When it was measured (device or staff clock).
    pub measured_at: Timestamp,
    /// When the server received it.
    pub received_at: Timestamp,
    /// Manual or device.
    pub source: ReadingSource,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> VitalLimits {
        VitalLimits::default()
    }

    #[test]
    fn boundaries_are_inclusive_and_outside_is_refused() {
        let l = limits();
        let ok = |m: Measurement| m.check_plausible(&l).is_ok();
        assert!(ok(Measurement::Spo2 { value: 50.0 }));
        assert!(ok(Measurement::Spo2 { value: 100.0 }));
        assert!(!ok(Measurement::Spo2 { value: 100.1 }));
        assert!(!ok(Measurement::Spo2 { value: 49.9 }));
        assert!(ok(Measurement::HeartRate { value: 20.0 }));
        assert!(ok(Measurement::HeartRate { value: 300.0 }));
        assert!(!ok(Measurement::HeartRate { value: 301.0 }));
        assert!(ok(Measurement::RespiratoryRate { value: 2.0 }));
        assert!(!ok(Measurement::RespiratoryRate { value: 81.0 }));
        assert!(ok(Measurement::BodyTemperature { value: 45.0 }));
        assert!(!ok(Measurement::BodyTemperature { value: 29.9 }));
        assert!(ok(Measurement::BodyWeight { value: 20.0 }));
        assert!(!ok(Measurement::BodyWeight { value: 351.0 }));
        assert!(ok(Measurement::BloodPressure {
            systolic: 300.0,
            diastolic: 200.0
        }));
        assert!(!ok(Measurement::BloodPressure {
            systolic: 301.0,
            diastolic: 80.0
        }));
        assert!(!ok(Measurement::BloodPressure {
            systolic: 120.0,
            diastolic: 19.0
        }));
        assert!(!ok(Measurement::Spo2 { value: f64::NAN }));
    }

    #[test]
    fn errors_name_the_vital_value_unit_and_range() {
        let err = Measurement::BloodPressure {
            systolic: 310.0,
            diastolic: 80.0,
        }
        .check_plausible(&limits())
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "systolic BP of 310 mmHg is outside the plausible range 50 to 300 mmHg"
        );
        let err = Measurement::BloodPressure {
            systolic: 120.0,
            diastolic: 120.0,
        }
        .check_plausible(&limits())
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "diastolic BP (120 mmHg) must be lower than systolic BP (120 mmHg)"
        );
        let err = Measurement::BodyTemperature { value: 46.5 }
            .check_plausible(&limits())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "body temperature of 46.5 °C is outside the plausible range 30 to 45 °C"
        );
    }

    #[test]
    fn wire_form_is_tagged_by_kind_and_strict() {
        let m: Measurement =
            serde_json::from_str(r#"{"kind":"blood_pressure","systolic":128,"diastolic":82}"#)
                .unwrap();
        assert_eq!(
            m,
            Measurement::BloodPressure {
                systolic: 128.0,
                diastolic: 82.0
            }
        );
        assert!(
            serde_json::from_str::<Measurement>(r#"{"kind":"spo2","value":97,"x":1}"#).is_err()
        );
        assert!(serde_json::from_str::<Measurement>(r#"{"kind":"glucose","value":5}"#).is_err());
    }

    #[test]
    fn every_kind_has_distinct_loinc_codes() {
        let mut codes: Vec<_> = VitalKind::ALL.iter().map(|k| k.loinc()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), VitalKind::ALL.len());
    }

    proptest! {
        #[test]
        fn spo2_is_accepted_exactly_inside_its_range(v in -1000.0f64..1000.0) {
            let ok = Measurement::Spo2 { value: v }.check_plausible(&limits()).is_ok();
            prop_assert_eq!(ok, (50.0..=100.0).contains(&v));
        }

        #[test]
        fn blood_pressure_needs_both_in_range_and_diastolic_below(s in 0.0f64..400.0, d in 0.0f64..300.0) {
            let ok = Measurement::BloodPressure { systolic: s, diastolic: d }
                .check_plausible(&limits())
                .is_ok();
            let expected = (50.0..=300.0).contains(&s) && (20.0..=200.0).contains(&d) && d < s;
            prop_assert_eq!(ok, expected);
        }
    }
}
