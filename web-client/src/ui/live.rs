//! One followed session in the app: the state (folded by the shared reducer),
//! the vital series, the outbox of unanswered commands, the connection
//! status, and the last refusal to show in words.

use super::browser;
use super::net::{Link, LinkStatus};
use crate::FollowedSession;
use crate::history::VitalHistory;
use crate::outbox::Outbox;
use leptos::prelude::*;
#[cfg(feature = "staff")]
use protocol::Context;
use protocol::{
    Actor, ClientMessage, Command, CommandId, Event, EventBody, RejectCode, Role, SeatId, Seq,
    ServerMessage, SessionId, StaffId, StaffRole,
};

/// Non-vital events kept for the detail timelines (vitals are in the history).
const TIMELINE_MAX: usize = 5_000;

/// Who this app is in the session (from the server's `welcome`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Me {
    /// Role.
    pub role: Role,
    /// The participant's seat.
    pub seat: Option<SeatId>,
    /// Server time minus browser time, ms.
    pub clock_offset_ms: i64,
}

/// Everything the views read about one session, as signals.
#[derive(Clone, Copy)]
pub struct LiveSession {
    /// The state, folded from snapshot and events.
    pub followed: RwSignal<FollowedSession>,
    /// Vital series (staff boards replay the whole session for these).
    pub history: RwSignal<VitalHistory>,
    /// Recent non-vital events, oldest first.
    pub timeline: RwSignal<Vec<Event>>,
    /// Commands the server has not answered yet.
    pub outbox: RwSignal<Outbox>,
    /// Commands the server accepted, newest last (for "noted" feedback).
    pub accepted: RwSignal<Vec<CommandId>>,
    /// The last refusal or error, in words.
    pub notice: RwSignal<Option<String>>,
    /// The connection.
    pub status: RwSignal<LinkStatus>,
    /// Role and seat, once welcomed.
    pub me: RwSignal<Option<Me>>,
    link: StoredValue<Option<Link>, LocalStorage>,
    outbox_key: StoredValue<Option<String>>,
    token_key: StoredValue<String>,
}

impl LiveSession {
    /// Follows `session` with `token`. `replay_all`: start from the first event
    /// (a staff board drawing charts) instead of a snapshot. `outbox_key`:
    /// keep unanswered commands in storage under this key (a phone).
    pub fn start(
        token_key: &str,
        session: SessionId,
        replay_all: bool,
        outbox_key: Option<String>,
    ) -> LiveSession {
        let token = browser::load(token_key).unwrap_or_default();
        let outbox = outbox_key
            .as_deref()
            .and_then(browser::load)
            .map(|t| Outbox::from_json(&t))
            .unwrap_or_default();
        let live = LiveSession {
            followed: RwSignal::new(FollowedSession::new()),
            history: RwSignal::new(VitalHistory::default()),
            timeline: RwSignal::new(Vec::new()),
            outbox: RwSignal::new(outbox),
            accepted: RwSignal::new(Vec::new()),
            notice: RwSignal::new(None),
            status: RwSignal::new(LinkStatus::Connecting),
            me: RwSignal::new(None),
            link: StoredValue::new_local(None),
            outbox_key: StoredValue::new(outbox_key),
            token_key: StoredValue::new(token_key.to_string()),
        };
        let followed = live.followed;
        let link = Link::start(
            token,
            session,
            move || {
                followed.update_untracked(|f| f.reconnecting());
                followed.with_untracked(|f| match f.state() {
                    Some(_) => Some(f.resume_point()),
                    None if replay_all => Some(Seq::ZERO),
                    None => None,
                })
            },
            move |msg| live.receive(msg),
            move |status| live.status.set(status),
        );
        live.link.set_value(Some(link));
        on_cleanup(move || {
            live.link.with_value(|l| {
                if let Some(l) = l {
                    l.stop()
                }
            })
        });
        live
    }

    fn receive(&self, msg: ServerMessage) {
        match &msg {
            ServerMessage::Welcome {
                role,
                seat,
                server_time,
                ..
            } => {
                let offset = server_time.ms_since(browser::now());
                self.me.set(Some(Me {
                    role: *role,
                    seat: *seat,
                    clock_offset_ms: offset,
                }));
            }
            ServerMessage::Event { event } => {
                if matches!(event.body, EventBody::VitalRecorded { .. }) {
                    self.history.update(|h| h.record(event));
                }
                if !matches!(&event.body, EventBody::VitalRecorded { reading, .. } if matches!(reading.source, protocol::ReadingSource::Device { .. }))
                {
                    self.timeline.update(|t| {
                        if t.last().is_none_or(|last| last.seq < event.seq) {
                            t.push((**event).clone());
                            if t.len() > TIMELINE_MAX {
                                t.remove(0);
                            }
                        }
                    });
                }
            }
            // Resend what the server has not answered: same keys, so whatever
            // it had already recorded is not recorded again.
            ServerMessage::CaughtUp { .. } => self.resend_pending(),
            ServerMessage::Accepted { id, .. } => {
                self.settle(*id);
                self.accepted.update(|a| a.push(*id));
            }
            ServerMessage::Rejected { id, rejection } => {
                if matches!(
                    rejection.code,
                    RejectCode::StorageUnavailable | RejectCode::Busy
                ) {
                    // Nothing was recorded and the server asks for a retry:
                    // keep the command and send it again, same key, shortly.
                    let live = *self;
                    browser::after(2_000, move || live.resend_pending());
                } else {
                    self.settle(*id);
                }
                self.notice.set(Some(rejection.message.clone()));
            }
            ServerMessage::TokenRefreshed { token, .. } => {
                self.token_key.with_value(|k| browser::store(k, token));
                self.link.with_value(|l| {
                    if let Some(l) = l {
                        l.set_token(token.clone());
                    }
                });
            }
            ServerMessage::Error { message, .. } => self.notice.set(Some(message.clone())),
            ServerMessage::Snapshot { .. } => {}
        }
        self.followed.update(|f| {
            f.receive(&msg);
        });
    }

    fn resend_pending(&self) {
        let pending: Vec<_> = self.outbox.with_untracked(|o| o.pending().to_vec());
        if pending.is_empty() {
            return;
        }
        let mut gone = false;
        for q in pending {
            self.link.with_value(|l| {
                if let Some(l) = l {
                    // One that went out before may have been recorded, its
                    // answer lost with the connection: a retry is checked
                    // against the log and never recorded twice.
                    l.send(&q.message(browser::now()));
                    gone = true;
                }
            });
        }
        if gone {
            let seen = self.seen();
            self.outbox.update(|o| o.all_sent(seen));
            self.persist();
        }
    }

    /// The last seq this page has seen (what a command sent now comes after).
    fn seen(&self) -> Seq {
        self.followed.with_untracked(FollowedSession::resume_point)
    }

    fn settle(&self, id: CommandId) {
        self.outbox.update(|o| {
            o.settle(id);
        });
        self.persist();
    }

    fn persist(&self) {
        self.outbox_key.with_value(|key| {
            if let Some(key) = key {
                browser::store(key, &self.outbox.with_untracked(|o| o.to_json()));
            }
        });
    }

    /// Now by the server's clock (the browser's, corrected at welcome).
    #[cfg(feature = "staff")]
    pub fn now(&self) -> protocol::Timestamp {
        let offset = self
            .me
            .with_untracked(|m| m.map_or(0, |m| m.clock_offset_ms));
        browser::now().plus_ms(offset)
    }

    /// Checks `command` with the server's own rules against what this app
    /// knows, then sends it (or keeps it until the connection returns).
    /// Returns the refusal in words if the rules say no.
    pub fn send(&self, command: Command) -> Result<CommandId, String> {
        let Some(me) = self.me.get_untracked() else {
            return Err("not connected yet".into());
        };
        let actor = match (me.role, me.seat) {
            (Role::Participant, Some(seat)) => Actor::Participant { seat },
            (role, _) => Actor::Staff {
                staff: StaffId::from_uuid(uuid::Uuid::nil()),
                role: match role {
                    Role::Admin => StaffRole::Admin,
                    Role::Medical => StaffRole::Medical,
                    _ => StaffRole::Facilitator,
                },
            },
        };
        // The staff board checks every form with the server's own rules
        // before sending. The phone's bundle leaves the rules out to stay
        // small; the server still refuses in words what it cannot record.
        #[cfg(feature = "staff")]
        if let Some(state) = self.followed.with_untracked(|f| f.state().cloned()) {
            let ctx = Context {
                actor,
                now: self.now(),
                fresh_id: uuid::Uuid::nil(),
                made_at: None,
            };
            protocol::decide(&state, &ctx, &command).map_err(|r| r.message)?;
        }
        #[cfg(not(feature = "staff"))]
        let _ = actor;
        let id = browser::new_command_id();
        self.outbox
            .update(|o| o.push(id, command.clone(), browser::now()));
        self.persist();
        self.notice.set(None);
        let gone = self.link.with_value(|l| {
            l.as_ref()
                .map(|l| {
                    l.send(&ClientMessage::Command {
                        id,
                        command,
                        age_ms: None,
                    })
                })
                .is_some()
        });
        if gone {
            let seen = self.seen();
            self.outbox.update(|o| o.sent(id, seen));
            self.persist();
        }
        Ok(id)
    }

    /// Asks for a fresh token (the server renews only while allowed).
    pub fn refresh_token(&self) {
        self.link.with_value(|l| {
            if let Some(l) = l {
                l.send(&ClientMessage::RefreshToken {});
            }
        });
    }

    /// Drops the connection (it reconnects and resumes).
    #[cfg(feature = "staff")]
    pub fn reconnect(&self) {
        self.link.with_value(|l| {
            if let Some(l) = l {
                l.drop_connection();
            }
        });
    }
}
