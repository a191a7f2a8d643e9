//! Commands waiting for the server's answer. Each keeps the idempotency key
//! it was made with, so resending after a reconnect (or after the phone was
//! offline) records it exactly once. The participant page keeps its outbox
//! in the browser's storage, so a tap survives a reload.

use protocol::{Command, CommandId};
use serde::{Deserialize, Serialize};

/// One command and its key.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Queued {
    /// Idempotency key.
    pub id: CommandId,
    /// The command.
    pub command: Command,
    /// It has gone out at least once, so the server may have recorded it:
    /// send it again as a `retry` (checked against the log however old).
    #[serde(default)]
    pub sent: bool,
}

/// Commands not yet answered, oldest first.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct Outbox {
    pending: Vec<Queued>,
}

impl Outbox {
    /// Adds a command under its key.
    pub fn push(&mut self, id: CommandId, command: Command) {
        if !self.pending.iter().any(|q| q.id == id) {
            self.pending.push(Queued {
                id,
                command,
                sent: false,
            });
        }
    }

    /// Command `id` has gone out.
    pub fn sent(&mut self, id: CommandId) {
        for q in self.pending.iter_mut().filter(|q| q.id == id) {
            q.sent = true;
        }
    }

    /// Every waiting command has now gone out at least once.
    pub fn all_sent(&mut self) {
        for q in &mut self.pending {
            q.sent = true;
        }
    }

    /// The server answered `id` (accepted or refused): forget it. Returns
    /// whether it was waiting.
    pub fn settle(&mut self, id: CommandId) -> bool {
        let before = self.pending.len();
        self.pending.retain(|q| q.id != id);
        before != self.pending.len()
    }

    /// What still waits, to (re)send in order.
    pub fn pending(&self) -> &[Queued] {
        &self.pending
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// For storage.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("commands serialize")
    }

    /// From storage; an unreadable entry (another version) is an empty outbox.
    pub fn from_json(text: &str) -> Outbox {
        serde_json::from_str(text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{SeatId, SelfReport};
    use uuid::Uuid;

    #[test]
    fn taps_made_offline_survive_storage_and_leave_once_answered() {
        let seat = SeatId::from_uuid(Uuid::from_u128(7));
        let ok = Command::SelfReport {
            seat,
            report: SelfReport::Ok {},
        };
        let (a, b) = (
            CommandId::from_uuid(Uuid::from_u128(1)),
            CommandId::from_uuid(Uuid::from_u128(2)),
        );
        let mut outbox = Outbox::default();
        outbox.push(a, ok.clone());
        outbox.push(b, ok.clone());
        outbox.push(a, ok.clone());
        assert_eq!(outbox.pending().len(), 2, "a key is queued once");
        let mut reloaded = Outbox::from_json(&outbox.to_json());
        assert_eq!(reloaded, outbox);
        assert!(reloaded.settle(a));
        assert!(!reloaded.settle(a));
        assert_eq!(
            reloaded.pending().iter().map(|q| q.id).collect::<Vec<_>>(),
            [b]
        );
        assert!(Outbox::from_json("not json").is_empty());

        // What went out once goes again as a retry, also after a reload; an
        // outbox stored before `sent` existed reads as never sent.
        assert!(!reloaded.pending()[0].sent);
        reloaded.all_sent();
        let again = Outbox::from_json(&reloaded.to_json());
        assert!(again.pending()[0].sent);
        let old = r#"{"pending":[{"id":"00000000-0000-0000-0000-000000000002","command":{"type":"self_report","seat":"00000000-0000-0000-0000-000000000007","report":{"status":"ok"}}}]}"#;
        assert!(!Outbox::from_json(old).pending()[0].sent);
        assert_eq!(Outbox::from_json(old).pending().len(), 1);
    }
}
