//! The session's phases and each participant's state, with the only transitions
//! that are legal. Commands and the reducer both go through these functions.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where the whole group is in the session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionPhase {
    /// Arrival, arrival check-ins and baseline vitals.
    Preparation,
    /// The intention circle: sharing, relaxation, breathing.
    Intentions,
    /// Doses are given.
    Dosing,
    /// The ketamine experience: the 15-minute check rota runs.
    Experience,
    /// Return and the integration circle.
    Integration,
    /// Over: nothing more can be recorded.
    Closed,
}

impl SessionPhase {
    /// Every phase in session order.
    pub const ALL: [SessionPhase; 6] = [
        SessionPhase::Preparation,
        SessionPhase::Intentions,
        SessionPhase::Dosing,
        SessionPhase::Experience,
        SessionPhase::Integration,
        SessionPhase::Closed,
    ];

    /// The phase that normally follows this one.
    pub const fn next(self) -> Option<SessionPhase> {
        match self {
            SessionPhase::Preparation => Some(SessionPhase::Intentions),
            SessionPhase::Intentions => Some(SessionPhase::Dosing),
            SessionPhase::Dosing => Some(SessionPhase::Experience),
            SessionPhase::Experience => Some(SessionPhase::Integration),
            SessionPhase::Integration => Some(SessionPhase::Closed),
            SessionPhase::Closed => None,
        }
    }

    /// A session moves one phase forward at a time, never back (the record of
    /// what happened in a phase must not be reopened), and may be closed early
    /// from any phase (a session abandoned or ended by the team).
    pub fn can_move_to(self, to: SessionPhase) -> bool {
        self.next() == Some(to) || (to == SessionPhase::Closed && self != SessionPhase::Closed)
    }

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionPhase::Preparation => "preparation",
            SessionPhase::Intentions => "intentions",
            SessionPhase::Dosing => "dosing",
            SessionPhase::Experience => "experience",
            SessionPhase::Integration => "integration",
            SessionPhase::Closed => "closed",
        }
    }
}

impl fmt::Display for SessionPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one participant is in their own session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantState {
    /// Has a seat, has not arrived.
    Invited,
    /// Arrival check-in done.
    Arrived,
    /// Baseline taken; may be dosed.
    Ready,
    /// Has received a dose.
    Dosed,
    /// In the ketamine experience.
    InExperience,
    /// Coming back.
    Emerging,
    /// In the integration circle.
    Integrating,
    /// Discharged by the medical provider.
    Discharged,
    /// Left before being dosed.
    Withdrawn,
}

impl ParticipantState {
    /// Every state.
    pub const ALL: [ParticipantState; 9] = [
        ParticipantState::Invited,
        ParticipantState::Arrived,
        ParticipantState::Ready,
        ParticipantState::Dosed,
        ParticipantState::InExperience,
        ParticipantState::Emerging,
        ParticipantState::Integrating,
        ParticipantState::Discharged,
        ParticipantState::Withdrawn,
    ];

    /// The states reachable in one step. Once dosed, a participant cannot
    /// withdraw: they stay under monitoring until a medical discharge.
    pub const fn legal_next(self) -> &'static [ParticipantState] {
        use ParticipantState::*;
        match self {
            Invited => &[Arrived, Withdrawn],
            Arrived => &[Ready, Withdrawn],
            Ready => &[Dosed, Withdrawn],
            Dosed => &[InExperience, Emerging],
            InExperience => &[Emerging],
            Emerging => &[Integrating, Discharged],
            Integrating => &[Discharged],
            Discharged | Withdrawn => &[],
        }
    }

    /// Whether `to` is one legal step from here.
    pub fn can_move_to(self, to: ParticipantState) -> bool {
        self.legal_next().contains(&to)
    }

    /// Has this participant received ketamine in this session?
    pub const fn has_been_dosed(self) -> bool {
        use ParticipantState::*;
        matches!(
            self,
            Dosed | InExperience | Emerging | Integrating | Discharged
        )
    }

    /// No longer in the session (discharged or withdrawn).
    pub const fn has_left(self) -> bool {
        matches!(
            self,
            ParticipantState::Discharged | ParticipantState::Withdrawn
        )
    }

    /// Wire name.
    pub const fn as_str(self) -> &'static str {
        use ParticipantState::*;
        match self {
            Invited => "invited",
            Arrived => "arrived",
            Ready => "ready",
            Dosed => "dosed",
            InExperience => "in_experience",
            Emerging => "emerging",
            Integrating => "integrating",
            Discharged => "discharged",
            Withdrawn => "withdrawn",
        }
    }
}

impl fmt::Display for ParticipantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_move_forward_one_step_or_close() {
        use SessionPhase::*;
        assert!(Preparation.can_move_to(Intentions));
        assert!(Dosing.can_move_to(Experience));
        assert!(Integration.can_move_to(Closed));
        assert!(Preparation.can_move_to(Closed));
        assert!(!Preparation.can_move_to(Dosing), "no skipping");
        assert!(!Experience.can_move_to(Dosing), "no going back");
        assert!(!Closed.can_move_to(Closed));
        assert!(!Closed.can_move_to(Preparation));
        for p in SessionPhase::ALL {
            assert!(!p.can_move_to(p), "{p} to itself");
        }
    }

    #[test]
    fn participant_transitions_follow_the_clinic_path() {
        use ParticipantState::*;
        let path = [
            Invited,
            Arrived,
            Ready,
            Dosed,
            InExperience,
            Emerging,
            Integrating,
            Discharged,
        ];
        for pair in path.windows(2) {
            assert!(pair[0].can_move_to(pair[1]), "{} -> {}", pair[0], pair[1]);
        }
        assert!(Invited.can_move_to(Withdrawn));
        assert!(Ready.can_move_to(Withdrawn));
        assert!(
            !Dosed.can_move_to(Withdrawn),
            "a dosed participant stays monitored"
        );
        assert!(
            !InExperience.can_move_to(Discharged),
            "discharge only after emergence"
        );
        assert!(!Invited.can_move_to(Dosed));
        for s in ParticipantState::ALL {
            assert!(!s.can_move_to(s));
            if s.has_left() {
                assert!(s.legal_next().is_empty(), "{s} is final");
            }
        }
    }

    #[test]
    fn dosed_states_are_exactly_those_after_a_dose() {
        let dosed: Vec<_> = ParticipantState::ALL
            .into_iter()
            .filter(|s| s.has_been_dosed())
            .collect();
        use ParticipantState::*;
        assert_eq!(
            dosed,
            [Dosed, InExperience, Emerging, Integrating, Discharged]
        );
    }
}
