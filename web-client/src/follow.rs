//! Following a session from server messages with the very same reducer the
//! server uses, and knowing where to resume after a dropped connection.

use protocol::{Seq, ServerMessage, SessionState};

/// One session as a browser follows it: a snapshot or replay, then live events.
#[derive(Debug, Default)]
pub struct FollowedSession {
    state: Option<SessionState>,
    caught_up: bool,
    last_seq: Seq,
}

impl FollowedSession {
    /// Nothing received yet.
    pub fn new() -> FollowedSession {
        FollowedSession::default()
    }

    /// The state, once a snapshot or the session's first event arrived.
    pub fn state(&self) -> Option<&SessionState> {
        self.state.as_ref()
    }

    /// Whether the replay or snapshot is complete and events are live.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    /// Where to resume after a reconnect: the last event applied or the
    /// `caught_up` mark, whichever is later.
    pub fn resume_point(&self) -> Seq {
        self.last_seq
    }

    /// A reconnect starts: events are not live until the next `caught_up`.
    pub fn reconnecting(&mut self) {
        self.caught_up = false;
    }

    /// Folds one server message in; returns whether the state changed. Events
    /// already applied (sent again around a reconnect) change nothing.
    pub fn receive(&mut self, msg: &ServerMessage) -> bool {
        match msg {
            ServerMessage::Snapshot { state } => {
                self.last_seq = self.last_seq.max(state.last_seq);
                self.state = Some((**state).clone());
                true
            }
            ServerMessage::Event { event } => {
                let state = self
                    .state
                    .get_or_insert_with(|| SessionState::empty(event.session));
                let applied = state.apply(event);
                self.last_seq = self.last_seq.max(event.seq);
                applied
            }
            ServerMessage::CaughtUp { seq } => {
                self.last_seq = self.last_seq.max(*seq);
                if let Some(state) = &mut self.state {
                    // A participant's stream skips other seats' events; the
                    // mark tells how far the whole log has been considered.
                    state.last_seq = state.last_seq.max(*seq);
                }
                self.caught_up = true;
                false
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{
        Actor, ClinicId, ClinicPolicy, Event, EventBody, SessionId, StaffId, StaffRole,
    };

    fn event(seq: u64, body: EventBody) -> ServerMessage {
        ServerMessage::Event {
            event: Box::new(Event {
                session: SessionId::from_uuid(uuid::Uuid::from_u128(1)),
                seq: Seq(seq),
                at: protocol::Timestamp(seq as i64),
                actor: Actor::Staff {
                    staff: StaffId::from_uuid(uuid::Uuid::from_u128(3)),
                    role: StaffRole::Facilitator,
                },
                command: None,
                body,
            }),
        }
    }

    #[test]
    fn replayed_events_after_a_reconnect_are_shown_once() {
        let mut s = FollowedSession::new();
        let created = event(
            1,
            EventBody::SessionCreated {
                clinic: ClinicId::from_uuid(uuid::Uuid::from_u128(2)),
                title: "t".into(),
                policy: ClinicPolicy::default(),
            },
        );
        let message = event(2, EventBody::GroupMessagePosted { text: "hi".into() });
        assert!(s.receive(&created));
        assert!(s.receive(&message));
        assert!(!s.receive(&ServerMessage::CaughtUp { seq: Seq(5) }));
        assert!(s.is_caught_up());
        s.reconnecting();
        assert!(!s.is_caught_up());
        assert!(
            !s.receive(&message),
            "an event seen before is not applied twice"
        );
        assert_eq!(s.resume_point(), Seq(5));
        assert_eq!(s.state().unwrap().group_messages.len(), 1);
    }
}
