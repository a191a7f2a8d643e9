//! `holdspace demo`: a seeded clinic and a simulator that plays realistic group
//! sessions, one after another, through the public API like any client:
//! staff log in over REST, participants join with one-time codes, everything
//! else goes over WebSockets (arrivals, baseline vitals, dosing, 1 Hz pulse
//! oximetry with an occasional dip, a support request, facilitator rounds,
//! integration, discharge).

use crate::app::App;
use crate::auth;
use crate::client::{Api, ClientError, Live, LiveSender, Received};
use protocol::alarm::{RaisePriority, Trigger};
use protocol::rest::AddSeat;
use protocol::{
    AlarmPriority, ArrivalForm, ClinicPolicy, Command, Measurement, ObservedStatus,
    ParticipantState, PostSessionForm, Rating, Route, SeatId, SelfReport, ServerMessage, SessionId,
    SessionPhase, StaffRole, SupportReason,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Password of every demo account (the demo is for looking, not for patients).
pub const DEMO_PASSWORD: &str = "holdspace-demo";

const STAFF: [(&str, &str, StaffRole); 5] = [
    ("facilitator", "Fern", StaffRole::Facilitator),
    ("facilitator2", "River", StaffRole::Facilitator),
    ("medical", "Dr. Mo", StaffRole::Medical),
    ("admin", "Clinic admin", StaffRole::Admin),
    // The pulse oximeters' bridge runs as a medical-role account.
    (
        "oximeter-bridge",
        "Pulse oximeter bridge",
        StaffRole::Medical,
    ),
];

/// The simulated group: name, weight (kg), place in the room.
const GROUP: [(&str, f64, &str); 8] = [
    ("Ana", 62.0, "nest 1 (window)"),
    ("Ben", 84.0, "nest 2"),
    ("Chloé", 58.0, "nest 3"),
    ("Dev", 77.0, "nest 4"),
    ("Eli", 70.0, "nest 5"),
    ("Farah", 66.0, "nest 6"),
    ("Gus", 91.0, "nest 7"),
    ("Hana", 55.0, "remote (home)"),
];

/// The seeded clinic's logins.
pub struct Seeded {
    created: usize,
}

impl Seeded {
    /// What to print for the person who started the demo.
    pub fn banner(&self, addr: SocketAddr) -> String {
        let mut out = format!(
            "\nDemo clinic ready ({} account(s) created). Staff logins, password \"{DEMO_PASSWORD}\":\n",
            self.created
        );
        for (username, name, role) in STAFF {
            out.push_str(&format!("  {username:<16} {name} ({})\n", role.as_str()));
        }
        out.push_str(&format!(
            "Open http://{addr}/ ; API at http://{addr}/api, live hub at ws://{addr}/ws.\n\
             A simulated group of {} starts now and repeats; Ctrl-C stops the server.\n\
             The demo clinic's policy compresses time: discharge 3 min after the dose (not 2 h), BP 2 min after.",
            GROUP.len()
        ));
        out
    }
}

/// Creates the demo clinic and its staff accounts (once; later runs reuse them).
pub async fn seed(app: &Arc<App>) -> Result<Seeded, crate::store::StoreError> {
    let now = app.clock.now();
    let clinic = app
        .store
        .ensure_clinic("Holdspace demo clinic".into(), now)
        .await?;
    app.store.set_clinic_policy(clinic, demo_policy()).await?;
    let mut created = 0;
    for (username, name, role) in STAFF {
        if app
            .store
            .staff_by_username(username.into())
            .await?
            .is_some()
        {
            continue;
        }
        let hash = tokio::task::spawn_blocking(|| auth::hash_password(DEMO_PASSWORD))
            .await
            .map_err(|e| crate::store::StoreError::Unavailable(e.to_string()))?;
        app.store
            .add_staff(clinic, username.into(), name.into(), role, hash, now)
            .await?;
        created += 1;
    }
    Ok(Seeded { created })
}

/// Starts the simulator; it stops with the server.
pub fn spawn_simulator(app: &Arc<App>, addr: SocketAddr, _seeded: Seeded, pace: f64) {
    let shutdown = app.shutdown.clone();
    let pace = if pace.is_finite() && pace > 0.0 {
        pace
    } else {
        1.0
    };
    tokio::spawn(async move {
        let mut round = 1;
        while !shutdown.is_cancelled() {
            match play_session(addr, pace, round, &shutdown).await {
                Ok(()) => tracing::info!(round, "simulated session finished"),
                Err(e) => tracing::warn!(round, error = %e, "simulated session stopped early"),
            }
            round += 1;
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs_f64(30.0 / pace)) => {}
            }
        }
    });
}

/// A small deterministic noise source (the demo needs variety, not randomness).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as f64) / ((1u64 << 31) as f64)
    }

    fn around(&mut self, centre: f64, spread: f64) -> f64 {
        ((centre + (self.next() - 0.5) * 2.0 * spread) * 10.0).round() / 10.0
    }
}

/// A connection whose incoming messages are drained (and refusals logged) by
/// a background task, so the simulator never falls behind.
async fn connect(
    addr: SocketAddr,
    token: &str,
    session: SessionId,
    who: &'static str,
) -> Result<LiveSender, ClientError> {
    let live = Live::connect(addr, token, session, None).await?;
    let (tx, mut rx) = live.split();
    tokio::spawn(async move {
        while let Some(received) = rx.recv().await {
            match received {
                Received::Message(ServerMessage::Rejected { rejection, .. }) => {
                    // Some refusals are part of the script (the dose hold, an
                    // early discharge). The message names the participant;
                    // logs carry ids and codes only.
                    tracing::info!(%session, who, code = ?rejection.code, "simulated command refused");
                }
                Received::Closed(_) => break,
                _ => {}
            }
        }
    });
    Ok(tx)
}

struct Participant {
    seat: SeatId,
    tx: LiveSender,
    arrived: bool,
    dosed: bool,
    discharged: bool,
    oximeter: String,
}

/// The simulated timeline, in seconds at pace 1 (alarm delays are real time).
///
/// What it shows besides the routine: Ben's high pre-dose BP holds his dose
/// until the medical provider overrides; Farah's SpO2 dips long enough for an
/// alarm, which latches after she recovers and is acknowledged; Gus's call for
/// support goes unanswered long enough to escalate; Hana has no ride home, so
/// her discharge is refused until one is confirmed.
async fn play_session(
    addr: SocketAddr,
    pace: f64,
    round: u32,
    shutdown: &CancellationToken,
) -> Result<(), ClientError> {
    let api = Api::new(addr);
    let login = |name: &'static str| {
        let api = api.clone();
        async move { api.login(name, DEMO_PASSWORD).await.map(|l| l.token.token) }
    };
    let fac_token = login("facilitator").await?;
    let fac_api = api.with_token(fac_token.clone());
    let session = fac_api
        .create_session(&format!("Demo evening group {round}"))
        .await?
        .id;
    tracing::info!(%session, round, "simulated session starting");

    let mut group = Vec::new();
    for (i, (name, kg, place)) in GROUP.iter().enumerate() {
        let seat = fac_api
            .add_seat(
                session,
                &AddSeat {
                    display_name: (*name).into(),
                    weight_kg: Some(*kg),
                    location: Some((*place).into()),
                },
            )
            .await?
            .seat;
        let code = fac_api.join_code(session, seat).await?.code;
        let joined = api.join(&code).await?;
        let tx = connect(addr, &joined.token.token, session, "participant").await?;
        group.push(Participant {
            seat,
            tx,
            arrived: false,
            dosed: false,
            discharged: false,
            oximeter: format!("oximeter-{}", i + 1),
        });
    }
    let mut fac = connect(addr, &fac_token, session, "facilitator").await?;
    let mut fac2 = connect(addr, &login("facilitator2").await?, session, "facilitator").await?;
    let mut med = connect(addr, &login("medical").await?, session, "medical").await?;
    let mut bridge = connect(addr, &login("oximeter-bridge").await?, session, "bridge").await?;
    // The check rota: Fern has the first half of the group, River the rest.
    let staff = fac_api.staff().await?;
    let named = |name: &str| staff.iter().find(|m| m.display_name == name).map(|m| m.id);
    let rota = [named("Fern"), named("River")];
    let mut noise = Noise(u64::from(round) * 7919);
    let (ben, farah, gus, hana) = (1, 5, 6, 7);

    // One tick per simulated second, so steps that depend on each other (an
    // arrival, then "ready") never race; oximetry stays at 1 Hz of real time.
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / pace));
    let (mut last_pulse, mut done_until) = (-1.0f64, -1.0f64);
    let (mut next_round, mut rounds) = (95.0f64, 0usize);
    let mut dip_until: Option<f64> = None;
    let mut unanswered_since: Option<f64> = None;
    let n = group.len();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let real = started.elapsed().as_secs_f64();
        let t = real * pace;
        let pulse = real - last_pulse >= 0.999;
        if pulse {
            last_pulse = real;
        }
        let due = |at: f64| at > done_until && at <= t;

        for i in 0..n {
            let arrive = 3.0 + 4.0 * i as f64;
            let dose_at = 62.0 + 3.0 * i as f64;
            let p = &mut group[i];
            let seat = p.seat;
            if due(arrive) {
                let form = ArrivalForm {
                    mood: score(4 + (i % 5) as u8),
                    anxiety: score(2 + (i % 6) as u8),
                    intention: "to be with whatever comes up".into(),
                    fasting_confirmed: true,
                    ride_home_arranged: i != hana,
                    consent_to_touch: i % 3 != 0,
                };
                p.tx.command(Command::SubmitArrival { seat, form }).await?;
                p.arrived = true;
                let staff = rota[usize::from(i >= n / 2)];
                fac.command(Command::AssignFacilitator { seat, staff })
                    .await?;
            }
            if due(arrive + 2.0) {
                let (systolic, diastolic) = if i == ben {
                    (152.0, 96.0)
                } else {
                    (
                        noise.around(122.0, 8.0).round(),
                        noise.around(78.0, 5.0).round(),
                    )
                };
                med.command(vital(
                    seat,
                    Measurement::BloodPressure {
                        systolic,
                        diastolic,
                    },
                    None,
                ))
                .await?;
                med.command(vital(
                    seat,
                    Measurement::BodyWeight { value: GROUP[i].1 },
                    None,
                ))
                .await?;
                med.command(vital(
                    seat,
                    Measurement::BodyTemperature {
                        value: noise.around(36.8, 0.3),
                    },
                    None,
                ))
                .await?;
            }
            if due(arrive + 3.0) {
                fac.command(Command::SetParticipantState {
                    seat,
                    to: ParticipantState::Ready,
                })
                .await?;
            }
            if due(dose_at) {
                // Ben's first attempt is held by the pre-dose BP hold.
                med.command(dose(i, seat, None)).await?;
                p.dosed = i != ben;
            }
            if i == ben && due(dose_at + 2.0) {
                med.command(vital(
                    seat,
                    Measurement::BloodPressure {
                        systolic: 148.0,
                        diastolic: 94.0,
                    },
                    None,
                ))
                .await?;
            }
            if i == ben && due(dose_at + 4.0) {
                let reason = "rechecked after rest, 148/94; anxious on arrival, benefit outweighs";
                med.command(dose(i, seat, Some(reason))).await?;
                p.dosed = true;
            }
            if due(91.0 + 2.0 * i as f64) {
                fac2.command(Command::SetParticipantState {
                    seat,
                    to: ParticipantState::InExperience,
                })
                .await?;
            }
            if due(140.0 + i as f64) {
                let bp = Measurement::BloodPressure {
                    systolic: noise.around(132.0, 10.0).round(),
                    diastolic: noise.around(84.0, 6.0).round(),
                };
                med.command(vital(seat, bp, None)).await?;
            }
            if due(150.0 + 5.0 * i as f64) || due(185.0 + 3.0 * i as f64) {
                p.tx.command(Command::SelfReport {
                    seat,
                    report: SelfReport::Ok {},
                })
                .await?;
            }
            if due(201.0 + 2.0 * i as f64) {
                fac.command(Command::SetParticipantState {
                    seat,
                    to: ParticipantState::Emerging,
                })
                .await?;
            }
            if due(205.0 + 2.0 * i as f64) {
                med.command(Command::RecordRating {
                    seat,
                    rating: Rating::Sedation { moaas: 4 },
                })
                .await?;
                med.command(Command::RecordRating {
                    seat,
                    rating: Rating::Dissociation {
                        score: 2 + (i % 3) as u8,
                    },
                })
                .await?;
            }
            if due(230.0 + i as f64) {
                fac.command(Command::SetParticipantState {
                    seat,
                    to: ParticipantState::Integrating,
                })
                .await?;
            }
            if due(245.0 + 2.0 * i as f64) {
                let form = PostSessionForm {
                    mood: score(6 + (i % 4) as u8),
                    journal: "Felt held. Want to write more tomorrow.".into(),
                };
                p.tx.command(Command::SubmitPostSession { seat, form })
                    .await?;
            }
            if due(250.0 + i as f64) {
                med.command(Command::RecordRating {
                    seat,
                    rating: Rating::Sedation { moaas: 5 },
                })
                .await?;
                med.command(Command::RecordRating {
                    seat,
                    rating: Rating::Dissociation { score: 0 },
                })
                .await?;
                let bp = Measurement::BloodPressure {
                    systolic: noise.around(120.0, 6.0).round(),
                    diastolic: noise.around(77.0, 4.0).round(),
                };
                med.command(vital(seat, bp, None)).await?;
            }
            if due(270.0 + 2.0 * i as f64) {
                // Hana's is refused: no ride home yet.
                med.command(Command::Discharge {
                    seat,
                    override_reason: None,
                })
                .await?;
                p.discharged = i != hana;
            }
            if i == hana && due(290.0) {
                fac.command(Command::ConfirmRideHome { seat }).await?;
            }
            if i == hana && due(292.0) {
                med.command(Command::Discharge {
                    seat,
                    override_reason: None,
                })
                .await?;
                p.discharged = true;
            }
            // 1 Hz pulse oximetry while in the room.
            if p.arrived && !p.discharged && pulse {
                let dipping = i == farah && dip_until.is_some_and(|end| real < end);
                // Whole percent, as a pulse oximeter reports it.
                let spo2 = if dipping {
                    noise.around(90.0, 0.8)
                } else {
                    noise.around(97.5, 1.2).min(100.0)
                }
                .round();
                let hr = noise.around(if p.dosed { 82.0 } else { 72.0 }, 6.0).round();
                let device = Some(p.oximeter.clone());
                bridge
                    .command(vital(
                        seat,
                        Measurement::Spo2 { value: spo2 },
                        device.clone(),
                    ))
                    .await?;
                bridge
                    .command(vital(seat, Measurement::HeartRate { value: hr }, device))
                    .await?;
            }
        }
        // Farah's dip lasts 25 real seconds, long enough to confirm an alarm.
        if due(130.0) {
            dip_until = Some(real + 25.0);
        }
        if dip_until.is_some_and(|end| real >= end + 10.0) {
            dip_until = None;
            if let Some(alarm) = first_alarm(&fac_api, session, group[farah].seat, "spo2-low").await
            {
                med.command(Command::AcknowledgeAlarm { alarm }).await?;
            }
        }
        // The facilitators' rounds: one participant every 6 s.
        while next_round <= t && next_round < 200.0 {
            let i = rounds % n;
            let status = match i {
                2 => ObservedStatus::Tearful,
                _ if i % 2 == 0 => ObservedStatus::Resting,
                _ => ObservedStatus::Calm,
            };
            let who = if i % 2 == 0 { &mut fac } else { &mut fac2 };
            who.command(Command::ObserveCheckIn {
                seat: group[i].seat,
                status,
                note: None,
            })
            .await?;
            rounds += 1;
            next_round += 6.0;
        }
        let dev = group[3].seat;
        if due(120.0) {
            let report = SelfReport::NeedSupport {
                reasons: vec![SupportReason::Nausea],
                note: None,
            };
            group[3]
                .tx
                .command(Command::SelfReport { seat: dev, report })
                .await?;
        }
        if due(128.0) {
            fac2.command(Command::AcknowledgeSupport { seat: dev })
                .await?;
        }
        if due(134.0) {
            fac2.command(Command::ObserveCheckIn {
                seat: dev,
                status: ObservedStatus::Calm,
                note: Some("nausea eased; bucket and ginger nearby".into()),
            })
            .await?;
        }
        // Gus calls and nobody answers for 75 s: the alarm escalates at 60 s.
        if due(160.0) {
            let report = SelfReport::NeedSupport {
                reasons: vec![SupportReason::Anxious],
                note: None,
            };
            let seat = group[gus].seat;
            group[gus]
                .tx
                .command(Command::SelfReport { seat, report })
                .await?;
            unanswered_since = Some(real);
        }
        if unanswered_since.is_some_and(|since| real >= since + 75.0) {
            unanswered_since = None;
            fac.command(Command::AcknowledgeSupport {
                seat: group[gus].seat,
            })
            .await?;
        }
        for (at, phase) in [
            (40.0, SessionPhase::Intentions),
            (60.0, SessionPhase::Dosing),
            (90.0, SessionPhase::Experience),
            (240.0, SessionPhase::Integration),
        ] {
            if due(at) {
                fac.command(Command::ChangePhase { to: phase }).await?;
            }
        }
        if due(41.0) {
            fac.command(Command::PostGroupMessage {
                text: "Welcome, everyone. Eye shades and headphones when you are ready.".into(),
            })
            .await?;
        }
        if due(241.0) {
            fac.command(Command::PostGroupMessage {
                text: "Welcome back. We'll gather in the circle in a few minutes.".into(),
            })
            .await?;
        }
        done_until = t;
        // Close once everyone is discharged and the unanswered call was answered.
        if t > 300.0
            && group.iter().all(|p| p.discharged)
            && unanswered_since.is_none()
            && dip_until.is_none()
        {
            fac.command(Command::ChangePhase {
                to: SessionPhase::Closed,
            })
            .await?;
            return Ok(());
        }
    }
}

fn dose(i: usize, seat: SeatId, override_reason: Option<&str>) -> Command {
    let (route, mg) = if i % 3 == 2 {
        (Route::SublingualOral, 200.0)
    } else {
        (Route::Im, (0.5 * GROUP[i].1).round())
    };
    Command::RecordDose {
        seat,
        route,
        mg,
        lot: "KET-2611-04".into(),
        administered_at: None,
        override_reason: override_reason.map(str::to_string),
    }
}

/// The id of a participant's active alarm of one rule, read over REST as a
/// staff board would see it.
async fn first_alarm(
    staff: &Api,
    session: SessionId,
    seat: SeatId,
    rule: &str,
) -> Option<protocol::Seq> {
    let state = staff.session(session).await.ok()?;
    state
        .alarms
        .iter()
        .find(|a| a.seat == seat && a.rule == rule)
        .map(|a| a.id)
}

/// The demo clinic's policy: the defaults with the clock compressed so a
/// five-minute demo reaches discharge (3 minutes after the dose instead of 2
/// hours) and its schedules come due.
pub fn demo_policy() -> ClinicPolicy {
    let mut policy = ClinicPolicy::default();
    policy.discharge.min_after_first_dose_min = 3;
    policy.bp_schedule.after_dose_min = 2;
    policy.bp_schedule.elevated_after_dose_min = 1;
    policy.bp_schedule.after_further_dose_min = 2;
    for rule in &mut policy.alarm_rules {
        match rule.id.as_str() {
            "check-overdue" => {
                rule.trigger = Trigger::CheckOverdue {
                    every_min: 3,
                    grace_min: 1,
                }
            }
            "bp-due" => {
                rule.trigger = Trigger::BpDue { grace_min: 1 };
                rule.raise_to = Some(RaisePriority {
                    to: AlarmPriority::Medium,
                    after_min: 2,
                });
            }
            "rating-due" => {
                rule.trigger = Trigger::RatingDue {
                    every_min: 2,
                    grace_min: 1,
                }
            }
            _ => {}
        }
    }
    policy
}

fn score(n: u8) -> protocol::Score {
    protocol::Score::try_from(n.min(10)).expect("clamped to 0-10")
}

fn vital(seat: SeatId, measurement: Measurement, device: Option<String>) -> Command {
    Command::RecordVital {
        seat,
        measurement,
        measured_at: None,
        device,
    }
}
