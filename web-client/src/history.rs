//! Vital sign series per participant, for the board's sparklines and the
//! whole-session charts. Built from `vital_recorded` events (a staff board
//! replays the session from its start).

use protocol::{Event, EventBody, Measurement, SeatId, Timestamp};
use std::collections::{BTreeMap, VecDeque};

/// Points kept per series: 6 hours at 1 Hz. Older points are dropped.
pub const MAX_POINTS: usize = 6 * 3600;

/// One vital over time, in measured order.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Series {
    points: VecDeque<(Timestamp, f64)>,
}

impl Series {
    fn record(&mut self, at: Timestamp, value: f64) {
        // Readings arrive in order; a late paper entry is placed where it belongs.
        let i = self.points.partition_point(|(t, _)| *t <= at);
        self.points.insert(i, (at, value));
        if self.points.len() > MAX_POINTS {
            self.points.pop_front();
        }
    }

    /// Every point.
    pub fn points(&self) -> impl Iterator<Item = (Timestamp, f64)> + '_ {
        self.points.iter().copied()
    }

    /// Points measured at or after `from`.
    pub fn since(&self, from: Timestamp) -> impl Iterator<Item = (Timestamp, f64)> + '_ {
        let i = self.points.partition_point(|(t, _)| *t < from);
        self.points.range(i..).copied()
    }

    /// The most recent point.
    pub fn last(&self) -> Option<(Timestamp, f64)> {
        self.points.back().copied()
    }

    /// How many points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// No points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// The series of one participant.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct SeatHistory {
    /// SpO2, %.
    pub spo2: Series,
    /// Heart rate, /min.
    pub heart_rate: Series,
    /// Systolic BP, mm[Hg].
    pub systolic: Series,
    /// Diastolic BP, mm[Hg].
    pub diastolic: Series,
    /// Respiratory rate, /min.
    pub respiratory_rate: Series,
}

/// Every participant's series.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct VitalHistory {
    seats: BTreeMap<SeatId, SeatHistory>,
}

impl VitalHistory {
    /// Takes what a `vital_recorded` event says; other events change nothing.
    pub fn record(&mut self, event: &Event) {
        let EventBody::VitalRecorded { seat, reading } = &event.body else {
            return;
        };
        let h = self.seats.entry(*seat).or_default();
        let at = reading.measured_at;
        match reading.measurement {
            Measurement::Spo2 { value } => h.spo2.record(at, value),
            Measurement::HeartRate { value } => h.heart_rate.record(at, value),
            Measurement::RespiratoryRate { value } => h.respiratory_rate.record(at, value),
            Measurement::BloodPressure {
                systolic,
                diastolic,
            } => {
                h.systolic.record(at, systolic);
                h.diastolic.record(at, diastolic);
            }
            Measurement::BodyTemperature { .. } | Measurement::BodyWeight { .. } => {}
        }
    }

    /// One participant's series.
    pub fn seat(&self, seat: SeatId) -> Option<&SeatHistory> {
        self.seats.get(&seat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Actor, ReadingSource, Seq, SessionId, StaffId, VitalReading};
    use uuid::Uuid;

    fn reading(seq: u64, at: i64, measurement: Measurement) -> Event {
        Event {
            session: SessionId::from_uuid(Uuid::from_u128(1)),
            seq: Seq(seq),
            at: Timestamp(at),
            actor: Actor::System,
            command: None,
            body: EventBody::VitalRecorded {
                seat: SeatId::from_uuid(Uuid::from_u128(2)),
                reading: VitalReading {
                    measurement,
                    measured_at: Timestamp(at),
                    received_at: Timestamp(at),
                    source: ReadingSource::Manual {
                        by: StaffId::from_uuid(Uuid::from_u128(3)),
                    },
                },
            },
        }
    }

    #[test]
    fn series_stay_in_measured_order() {
        let mut h = VitalHistory::default();
        h.record(&reading(1, 1000, Measurement::Spo2 { value: 97.0 }));
        h.record(&reading(2, 3000, Measurement::Spo2 { value: 95.0 }));
        h.record(&reading(3, 2000, Measurement::Spo2 { value: 96.0 }));
        h.record(&reading(
            4,
            2500,
            Measurement::BloodPressure {
                systolic: 130.0,
                diastolic: 85.0,
            },
        ));
        let seat = h.seat(SeatId::from_uuid(Uuid::from_u128(2))).unwrap();
        let values: Vec<f64> = seat.spo2.points().map(|(_, v)| v).collect();
        assert_eq!(values, [97.0, 96.0, 95.0]);
        assert_eq!(seat.spo2.since(Timestamp(2000)).count(), 2);
        assert_eq!(seat.systolic.last(), Some((Timestamp(2500), 130.0)));
    }
}
