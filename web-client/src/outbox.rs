//! Commands waiting for the server's answer. Each keeps the idempotency key
//! it was made with, so resending after a reconnect (or after the phone was
//! offline) records it exactly once. The participant page keeps its outbox
//! in the browser's storage, so a tap survives a reload.

use protocol::{ClientMessage, Command, CommandId, Seq, Timestamp};
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
    /// The last seq this page had seen when the command first went out: if
    /// the server recorded it, it did so after that, and a retry says so,
    /// so that the server reads only the log since instead of the whole
    /// session's. (Absent in an outbox stored before it existed.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Seq>,
    /// When it was made, by this browser's clock: each send says how long
    /// ago that was, so a tap that waited for the network is dated by the
    /// tap. (Absent in an outbox stored before it existed.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_at: Option<Timestamp>,
}

impl Queued {
    fn went_out(&mut self, seen: Seq) {
        // Only the first send counts: a command stored before `after`
        // existed keeps none (and the server reads the whole log for it).
        if !self.sent {
            self.after = Some(seen);
        }
        self.sent = true;
    }

    /// How to send it at `now` (this browser's clock): a first send is a
    /// `command`, any later one a `retry` saying when it first went out.
    pub fn message(&self, now: Timestamp) -> ClientMessage {
        let (id, command) = (self.id, self.command.clone());
        let age_ms = self
            .made_at
            .map(|made| u64::try_from(now.ms_since(made)).unwrap_or(0));
        if self.sent {
            ClientMessage::Retry {
                id,
                command,
                after: self.after,
                age_ms,
            }
        } else {
            ClientMessage::Command {
                id,
                command,
                age_ms,
            }
        }
    }
}

/// Commands not yet answered, oldest first.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
pub struct Outbox {
    pending: Vec<Queued>,
}

impl Outbox {
    /// Adds a command under its key, made at `now` (this browser's clock).
    pub fn push(&mut self, id: CommandId, command: Command, now: Timestamp) {
        if !self.pending.iter().any(|q| q.id == id) {
            self.pending.push(Queued {
                id,
                command,
                sent: false,
                after: None,
                made_at: Some(now),
            });
        }
    }

    /// Command `id` has gone out; the page had seen the log up to `seen`.
    pub fn sent(&mut self, id: CommandId, seen: Seq) {
        for q in self.pending.iter_mut().filter(|q| q.id == id) {
            q.went_out(seen);
        }
    }

    /// Every waiting command has now gone out at least once; the page had
    /// seen the log up to `seen`.
    pub fn all_sent(&mut self, seen: Seq) {
        for q in &mut self.pending {
            q.went_out(seen);
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
        let t0 = Timestamp(1_795_000_000_000);
        let mut outbox = Outbox::default();
        outbox.push(a, ok.clone(), t0);
        outbox.push(b, ok.clone(), t0.plus_ms(5));
        outbox.push(a, ok.clone(), t0.plus_ms(9));
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

        // What went out once goes again as a retry, also after a reload,
        // saying what the page had seen at the first send (not at later
        // ones); an outbox stored before `sent` existed reads as never sent.
        assert!(!reloaded.pending()[0].sent);
        // Each send says how long ago the tap was, by this browser's clock.
        assert_eq!(
            reloaded.pending()[0].message(t0.plus_ms(35_005)),
            ClientMessage::Command {
                id: b,
                command: ok.clone(),
                age_ms: Some(35_000)
            }
        );
        reloaded.all_sent(Seq(40));
        reloaded.all_sent(Seq(52));
        reloaded.push(a, ok.clone(), t0.plus_ms(60_000));
        reloaded.sent(a, Seq(60));
        let again = Outbox::from_json(&reloaded.to_json());
        assert!(again.pending()[0].sent);
        assert_eq!(
            again.pending()[0].message(t0.plus_ms(120_005)),
            ClientMessage::Retry {
                id: b,
                command: ok.clone(),
                after: Some(Seq(40)),
                age_ms: Some(120_000)
            }
        );
        // A clock set back while it waited never makes a negative age.
        assert_eq!(
            match again.pending()[0].message(t0) {
                ClientMessage::Retry { age_ms, .. } => age_ms,
                _ => None,
            },
            Some(0)
        );
        assert_eq!(again.pending()[1].after, Some(Seq(60)));
        let old = r#"{"pending":[{"id":"00000000-0000-0000-0000-000000000002","command":{"type":"self_report","seat":"00000000-0000-0000-0000-000000000007","report":{"status":"ok"}}}]}"#;
        assert!(!Outbox::from_json(old).pending()[0].sent);
        assert_eq!(Outbox::from_json(old).pending().len(), 1);
        // One sent before `after` existed: a retry that names no point, so
        // the server reads the whole log for it.
        let sent_before = old.replace(r#"}}}]"#, r#"}},"sent":true}]"#);
        let mut stored = Outbox::from_json(&sent_before);
        stored.all_sent(Seq(70));
        // Nor when it was made: the server dates it by its arrival.
        assert_eq!(
            stored.pending()[0].message(t0),
            ClientMessage::Retry {
                id: b,
                command: ok,
                after: None,
                age_ms: None
            }
        );
    }
}
