//! The staff side: login, today's sessions, and the group board — one tile
//! per seat, the alarm list with tones, a participant's detail with charts,
//! timeline and forms, and the session's controls (phases, seats, join codes).

use super::audio::{Sound, Tone};
use super::browser;
use super::chart::{SessionChart, Sparkline};
use super::live::LiveSession;
use super::net::{self, LinkStatus};
use super::qr;
use crate::history::Series;
use crate::present::{self, priority_look};
use leptos::prelude::*;
use protocol::rest::{
    CreateSession, JoinCodeIssued, LoginRequest, LoginResponse, SessionSummary, StaffMember,
};
use protocol::{
    Alarm, AlarmPriority, Command, CommandKind, Measurement, ObservedStatus, ParticipantState,
    Rating, Route, SeatId, SessionId, SessionPhase, StaffId, Timestamp,
};

const STAFF: &str = "holdspace.staff";
const TOKEN: &str = "holdspace.staff.token";
const SOUND: &str = "holdspace.sound";

/// The stored login. Its token is renewed over the socket while a board is
/// open; if the server refuses it, the board says so and the login returns.
fn signed_in() -> Option<LoginResponse> {
    serde_json::from_str(&browser::load(STAFF)?).ok()
}

fn sign_out(me: RwSignal<Option<LoginResponse>>) {
    browser::forget(STAFF);
    browser::forget(TOKEN);
    me.set(None);
}

/// Shows its children to a signed-in staff member, a login form otherwise.
#[component]
pub fn StaffGate(children: ChildrenFn) -> impl IntoView {
    let me = RwSignal::new(signed_in());
    provide_context(me);
    move || {
        if me.get().is_some() {
            children().into_any()
        } else {
            view! { <Login me/> }.into_any()
        }
    }
}

#[component]
fn Login(me: RwSignal<Option<LoginResponse>>) -> impl IntoView {
    let (username, password) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let req = LoginRequest {
            username: username.get_untracked().trim().to_string(),
            password: password.get_untracked(),
        };
        // Said here, not by a failed login that would count against the address.
        if req.username.is_empty() || req.password.is_empty() {
            error.set(Some(
                match (req.username.is_empty(), req.password.is_empty()) {
                    (true, true) => "Enter your username and password.",
                    (true, false) => "Enter your username.",
                    _ => "Enter your password.",
                }
                .into(),
            ));
            return;
        }
        leptos::task::spawn_local(async move {
            match net::call::<LoginResponse>("POST", "/api/login", None, Some(&req)).await {
                Ok(login) => {
                    browser::store(TOKEN, &login.token.token);
                    browser::store(STAFF, &serde_json::to_string(&login).expect("serializes"));
                    me.set(Some(login));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <main class="login">
            <form on:submit=submit>
                <h1>"Holdspace — staff"</h1>
                <label for="username">"Username"</label>
                <input id="username" autocomplete="username" prop:value=move || username.get() on:input=move |ev| username.set(event_target_value(&ev))/>
                <label for="password">"Password"</label>
                <input id="password" type="password" autocomplete="current-password" prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev))/>
                <button class="primary" type="submit">"Log in"</button>
                {move || error.get().map(|e| view! { <p class="notice" role="alert">{e}</p> })}
            </form>
        </main>
    }
}

fn token() -> String {
    browser::load(TOKEN).unwrap_or_default()
}

/// Today's sessions and a form to open a new one.
#[component]
pub fn Sessions() -> impl IntoView {
    let me = expect_context::<RwSignal<Option<LoginResponse>>>();
    let sessions = RwSignal::new(Vec::<SessionSummary>::new());
    let error = RwSignal::new(None::<String>);
    let title = RwSignal::new(String::new());
    let load = move || {
        leptos::task::spawn_local(async move {
            match net::call::<Vec<SessionSummary>>(
                "GET",
                "/api/sessions",
                Some(&token()),
                None::<&()>,
            )
            .await
            {
                Ok(list) => sessions.set(list),
                Err(e) => error.set(Some(e)),
            }
        })
    };
    load();
    let offset = browser::utc_offset_min();
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = CreateSession {
            title: title.get_untracked(),
        };
        leptos::task::spawn_local(async move {
            match net::call::<SessionSummary>("POST", "/api/sessions", Some(&token()), Some(&body))
                .await
            {
                Ok(s) => browser::go(&format!("/board/{}", s.id)),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    view! {
        <main class="sessions">
            <header class="bar">
                <h1>"Sessions"</h1>
                <span class="who">{move || me.get().map(|m| format!("{} ({})", m.staff.display_name, m.staff.role.as_str())).unwrap_or_default()}</span>
                <button on:click=move |_| sign_out(me)>"Log out"</button>
            </header>
            <form class="new-session" on:submit=create>
                <label for="title">"New session"</label>
                <input id="title" placeholder="Tuesday evening group" prop:value=move || title.get() on:input=move |ev| title.set(event_target_value(&ev))/>
                <button class="primary" type="submit">"Open"</button>
            </form>
            {move || error.get().map(|e| view! { <p class="notice" role="alert">{e}</p> })}
            // Open sessions first; closed ones below, as a record (newest first in each).
            {move || {
                let (closed, open): (Vec<_>, Vec<_>) = sessions
                    .get()
                    .into_iter()
                    .partition(|s| s.phase == SessionPhase::Closed);
                let list = move |items: Vec<SessionSummary>| view! {
                    <ul class="session-list">
                        {items.into_iter().map(|s| view! {
                            <li>
                                <a href=format!("#/board/{}", s.id)>{s.title}</a> " "
                                <span class="phase">{present::phase_label(s.phase)}</span> " "
                                <time class="when">{present::day_and_time(s.created_at, offset)}</time>
                            </li>
                        }).collect_view()}
                    </ul>
                };
                view! {
                    {list(open)}
                    {(!closed.is_empty()).then(|| view! { <h2 class="closed-heading">"Closed"</h2> {list(closed)} })}
                }
            }}
        </main>
    }
}

fn status_view(status: LinkStatus) -> (&'static str, String) {
    match status {
        LinkStatus::Live => ("live", "● Live".into()),
        LinkStatus::Connecting => ("connecting", "◌ Connecting…".into()),
        LinkStatus::Offline => ("offline", "○ Offline — reconnecting".into()),
        LinkStatus::Refused(r) => ("refused", format!("✖ {r}")),
    }
}

/// The group board of one session.
#[component]
pub fn Board(session: SessionId) -> impl IntoView {
    let me = expect_context::<RwSignal<Option<LoginResponse>>>();
    let live = LiveSession::start(TOKEN, session, true, None);
    let now = RwSignal::new(browser::now());
    let selected = RwSignal::new(None::<SeatId>);
    let controls = RwSignal::new(false);
    let sound = StoredValue::new_local(Sound::default());
    let muted = RwSignal::new(browser::load(SOUND).as_deref() == Some("off"));
    let sound_on = RwSignal::new(false);
    // Seconds the browser has held the started sound suspended.
    let held_for = StoredValue::new(0u32);
    // Colleagues' names, for "acknowledged by" and the check rota.
    let staff = RwSignal::new(Vec::<StaffMember>::new());
    leptos::task::spawn_local(async move {
        match net::call::<Vec<StaffMember>>("GET", "/api/staff", Some(&token()), None::<&()>).await
        {
            Ok(list) => {
                staff.try_set(list);
            }
            Err(e) => {
                live.notice
                    .try_set(Some(format!("The staff list did not load: {e}")));
            }
        }
    });
    let tick = set_interval_with_handle(
        move || {
            now.set(live.now());
            let tone = if muted.get_untracked() {
                None
            } else {
                live.followed.with_untracked(|f| {
                    loudest(
                        f.state().map(|s| s.alarms.as_slice()).unwrap_or(&[]),
                        live.now(),
                    )
                })
            };
            sound.with_value(|s| s.tick(tone));
            // Sound the browser did not let start is not "on": say so, and
            // let the next gesture try again. (Two ticks: starting takes a
            // moment even when allowed.)
            let held = sound_on.get_untracked() && sound.with_value(Sound::held);
            held_for.update_value(|n| *n = if held { *n + 1 } else { 0 });
            if held_for.get_value() >= 2 {
                sound_on.set(false);
            }
        },
        std::time::Duration::from_secs(1),
    );
    let refresh = set_interval_with_handle(
        move || live.refresh_token(),
        std::time::Duration::from_secs(30 * 60),
    );
    on_cleanup(move || {
        sound.with_value(|s| s.close());
        for h in [tick, refresh].into_iter().flatten() {
            h.clear();
        }
    });
    // A refused token (expired, revoked) means a new login.
    Effect::new(move |_| {
        if let LinkStatus::Refused(reason) = live.status.get()
            && reason.contains("token")
        {
            sign_out(me);
        }
    });
    // Browsers let a page sound only after a gesture, so after every reload
    // the first click or key anywhere on the board turns the alarm sound on,
    // unless this device muted it. (A click on the sound button itself is
    // handled by the button first.)
    let unlock = move || {
        if !sound_on.get_untracked() && !muted.get_untracked() {
            sound.with_value(|s| s.enable());
            sound_on.set(true);
        }
    };
    let click = window_event_listener(leptos::ev::click, move |_| unlock());
    // Keyboard: Escape closes the participant detail.
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        // Browsers do not count Escape as a gesture that may start sound.
        if ev.key() == "Escape" {
            selected.set(None);
        } else {
            unlock();
        }
    });
    on_cleanup(move || {
        click.remove();
        keys.remove();
    });
    let seats = Memo::new(move |_| {
        live.followed.with(|f| {
            f.state()
                .map(|s| s.seats.iter().map(|x| x.id).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    let title = Memo::new(move |_| {
        live.followed
            .with(|f| f.state().map(|s| (s.title.clone(), s.phase)))
    });
    let toggle_sound = move |_| {
        if muted.get() || !sound_on.get() {
            sound.with_value(|s| s.enable());
            sound_on.set(true);
            muted.set(false);
        } else {
            muted.set(true);
        }
        browser::store(SOUND, if muted.get_untracked() { "off" } else { "on" });
    };
    view! {
        // `data-seq`: the last event applied, for tests and support staff.
        <div class="board" data-seq=move || live.followed.with(|f| f.resume_point().0.to_string())>
            <header class="bar">
                <a class="back" href="#/sessions" aria-label="All sessions">"◀"</a>
                <h1>{move || title.get().map(|t| t.0).unwrap_or_else(|| "…".into())}</h1>
                <span class="phase-badge">{move || title.get().map(|t| present::phase_label(t.1)).unwrap_or_default()}</span>
                <span class=move || format!("status status-{}", status_view(live.status.get()).0) role="status" data-testid="connection">
                    {move || status_view(live.status.get()).1}
                </span>
                <button class="sound" on:click=toggle_sound aria-pressed=move || (sound_on.get() && !muted.get()).to_string()>
                    {move || if muted.get() { "✕ Sound muted" } else if !sound_on.get() { "♪ Enable alarm sound" } else { "♪ Sound on" }}
                </button>
                // The session's controls open above the tiles, so a participant's detail
                // (which would cover them) closes.
                <button on:click=move |_| {
                    if !controls.get() {
                        selected.set(None);
                    }
                    controls.update(|c| *c = !*c)
                } aria-expanded=move || controls.get().to_string()>"Session ▾"</button>
                <button on:click=move |_| live.reconnect() title="Reconnect now">"⟳"</button>
            </header>
            {move || live.notice.get().map(|n| view! {
                <p class="notice toast" role="alert">{n} <button class="x" aria-label="Dismiss" on:click=move |_| live.notice.set(None)>"✕"</button></p>
            })}
            {move || controls.get().then(|| view! { <Controls live session/> })}
            <div class="board-body">
                <section class="tiles" aria-label="Participants">
                    <For each=move || seats.get() key=|id| *id children=move |id| view! { <Tile live id now selected staff/> }/>
                </section>
                <AlarmList live now staff/>
            </div>
            {move || selected.get().map(|id| view! { <Detail live id now selected staff/> })}
        </div>
    }
}

/// The tone for the most urgent alarm that should sound now.
fn loudest(alarms: &[Alarm], now: Timestamp) -> Option<Tone> {
    let top = alarms
        .iter()
        .filter(|a| a.sounding(now))
        .map(|a| a.priority)
        .max()?;
    match top {
        AlarmPriority::High => Some(Tone::High),
        AlarmPriority::Medium => Some(Tone::Medium),
        _ => None,
    }
}

fn series(
    live: LiveSession,
    id: SeatId,
    pick: fn(&crate::history::SeatHistory) -> &Series,
) -> Signal<Series> {
    Signal::derive(move || {
        live.history
            .with(|h| h.seat(id).map(|s| pick(s).clone()).unwrap_or_default())
    })
}

#[component]
fn Tile(
    live: LiveSession,
    id: SeatId,
    now: RwSignal<Timestamp>,
    selected: RwSignal<Option<SeatId>>,
    staff: RwSignal<Vec<StaffMember>>,
) -> impl IntoView {
    let seat = Memo::new(move |_| {
        live.followed
            .with(|f| f.state().and_then(|s| s.seat(id).cloned()))
    });
    let shown = Memo::new(move |_| {
        live.followed.with(|f| {
            f.state()
                .map(|s| {
                    present::tile_alarms(s.alarms.iter().filter(|a| a.seat == id))
                        .into_iter()
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    let flags = Memo::new(move |_| {
        live.followed.with(|f| {
            f.state()
                .and_then(|s| s.seat(id).map(|x| present::tile_flags(x, &s.policy)))
                .unwrap_or_default()
        })
    });
    let next_check = Memo::new(move |_| {
        live.followed.with(|f| {
            f.state().and_then(|s| {
                s.seat(id)
                    .and_then(|seat| protocol::monitor::next_check_due(s, seat))
            })
        })
    });
    let spo2 = series(live, id, |h| &h.spo2);
    let open = move || selected.set(Some(id));
    let acknowledge = move |ev: leptos::ev::MouseEvent| {
        ev.stop_propagation();
        if let Err(e) = live.send(Command::AcknowledgeSupport { seat: id }) {
            live.notice.set(Some(e));
        }
    };
    let value = move |kind: protocol::VitalKind| {
        seat.with(|s| {
            s.as_ref()
                .and_then(|s| s.latest(kind).map(|r| r.measurement))
        })
    };
    move || {
        let Some(s) = seat.get() else {
            return ().into_any();
        };
        let needs = s.needs_support();
        let shown = shown.get();
        let alarm = shown.first().cloned();
        let class = format!(
            "tile{}{}",
            if needs { " support" } else { "" },
            alarm
                .as_ref()
                .map(|a| format!(" alarm-{}", priority_look(a.priority).class))
                .unwrap_or_default()
        );
        let reasons = s
            .support
            .as_ref()
            .map(|r| {
                r.reasons
                    .iter()
                    .map(|x| format!("{x:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        // From the tap, which may be before the request reached the server.
        let asked = s.support.as_ref().map(|r| r.requested_at);
        let first_dose = s.first_dose_at();
        let observed = s.last_observed.clone();
        let rota = s.assigned_facilitator;
        let seen = observed.is_some();
        view! {
            <article class=class tabindex="0" role="button" aria-label=format!("{}, {}", s.display_name, present::state_label(s.state))
                data-seat=id.to_string() on:click=move |_| open() on:keydown=move |ev| { if ev.key() == "Enter" { open() } }>
                {needs.then(|| view! {
                    <div class="support-banner" role="alert">
                        <span class="icon" aria-hidden="true">"⚑"</span>
                        <strong>"NEEDS SUPPORT"</strong>
                        <span class="reasons">{reasons.clone()}</span>
                        {asked.map(|at| view! { <span class="waited">{move || format!("· asked {} ago", present::duration(now.get().ms_since(at)))}</span> })}
                        <button class="ack" on:click=acknowledge>"Acknowledge"</button>
                    </div>
                })}
                <div class="tile-head">
                    <h2>{s.display_name.clone()}</h2>
                    <span class="flags">{flags.get().into_iter().map(|f| view! { <span class="flag">{f}</span> }).collect_view()}</span>
                    <span class="loc">{s.location.clone().unwrap_or_default()}</span>
                </div>
                <div class="tile-state">
                    <span class=format!("state state-{:?}", s.state).to_lowercase()>{present::state_label(s.state)}</span>
                    {first_dose.map(|d| view! {
                        <span class="given">{format!(" · {}", present::dose_totals(&s))}</span>
                        <span class="since">{move || format!(" · first dose {} ago", present::duration(now.get().ms_since(d)))}</span>
                    })}
                </div>
                <div class="vitals">
                    <span class="v">{move || value(protocol::VitalKind::Spo2).map(|m| present::measurement(&m)).unwrap_or_else(|| "SpO2 —".into())}</span>
                    <span class="v">{move || value(protocol::VitalKind::HeartRate).map(|m| present::measurement(&m)).unwrap_or_else(|| "HR —".into())}</span>
                    <span class="v">{move || value(protocol::VitalKind::BloodPressure).map(|m| present::measurement(&m)).unwrap_or_else(|| "BP —".into())}</span>
                    <Sparkline series=spo2 now=Signal::derive(move || now.get()) lo=80.0 hi=100.0 label="SpO2, last 10 minutes"/>
                </div>
                {shown.into_iter().map(|a| {
                    let look = priority_look(a.priority);
                    view! {
                        <div class=format!("alarm-badge {}", look.class)>
                            <span aria-hidden="true">{look.icon}</span> <strong>{look.word}</strong> " " {a.label.clone()}
                            {a.acknowledged.is_some().then_some(" (acknowledged)")}
                        </div>
                    }
                }).collect_view()}
                <div class="check">
                    {observed.map(|o| view! { <span>{move || format!("seen: {} {} ago", present::observed_label(o.status), present::duration(now.get().ms_since(o.at)))}</span> })}
                    {move || next_check.get().map(|due| view! {
                        <span class=move || { if now.get() > due { "countdown overdue" } else { "countdown" } }>
                            {move || format!("{}next check {}", if seen { " · " } else { "" }, present::countdown(due.ms_since(now.get())))}
                        </span>
                    })}
                    {rota.map(|who| view! { <span class="rota">{move || {
                        let after = if seen || next_check.get().is_some() { " · " } else { "" };
                        staff.with(|l| format!("{after}checks: {}", present::staff_name(l, who)))
                    }}</span> })}
                </div>
            </article>
        }.into_any()
    }
}

#[component]
fn AlarmList(
    live: LiveSession,
    now: RwSignal<Timestamp>,
    staff: RwSignal<Vec<StaffMember>>,
) -> impl IntoView {
    let alarms = Memo::new(move |_| {
        live.followed.with(|f| {
            let Some(s) = f.state() else {
                return Vec::new();
            };
            let mut list: Vec<(Alarm, String, Option<StaffId>, String)> = s
                .alarms
                .iter()
                .map(|a| {
                    let name = s.seat(a.seat).map(|x| x.display_name.clone());
                    let (rota, detail) = present::alarm_as_it_stands(s, a);
                    (a.clone(), name.unwrap_or_default(), rota, detail)
                })
                .collect();
            list.sort_by_key(|(a, ..)| present::alarm_rank(a));
            list
        })
    });
    let act = move |command: Command| {
        if let Err(e) = live.send(command) {
            live.notice.set(Some(e));
        }
    };
    view! {
        <aside class="alarms" aria-label="Alarms">
            <h2>"Alarms" <span class="count">{move || alarms.get().len()}</span></h2>
            {move || alarms.get().is_empty().then(|| view! { <p class="quiet">"No active alarms."</p> })}
            <ul>
                {move || alarms.get().into_iter().map(|(a, name, rota, detail)| {
                    let look = priority_look(a.priority);
                    let id = a.id;
                    let acked = a.acknowledged.is_some();
                    let acked_by = a.acknowledged.as_ref().map(|k| k.by);
                    let paused_until = a.audio_paused_until;
                    view! {
                        <li class=format!("alarm {}{}", look.class, if acked { " acked" } else { "" }) data-alarm=id.0.to_string()>
                            <div class="alarm-title"><span aria-hidden="true">{look.icon}</span> <strong>{look.word}</strong> " " {name} ": " {a.label.clone()}</div>
                            <div class="alarm-detail">{detail}</div>
                            <div class="alarm-meta">
                                {move || format!("{} ago", present::duration(now.get().ms_since(a.raised_at)))}
                                {(a.escalations > 0).then(|| format!(" · escalated ×{}", a.escalations))}
                                {(!a.condition_active).then_some(" · condition ended")}
                                {rota.map(|who| move || staff.with(|l| format!(" · rota: {}", present::staff_name(l, who))))}
                                {acked_by.map(|who| move || staff.with(|l| format!(" · acknowledged by {}", present::staff_name(l, who))))}
                            </div>
                            {(!acked).then(|| view! {
                                <div class="alarm-actions">
                                    <button class="primary" on:click=move |_| act(Command::AcknowledgeAlarm { alarm: id })>"Acknowledge"</button>
                                    <button disabled=move || paused_until.is_some_and(|u| u > now.get()) on:click=move |_| act(Command::PauseAlarmAudio { alarm: id, seconds: 120 })>
                                        {move || match paused_until.filter(|u| *u > now.get()) {
                                            Some(until) => format!("Sound paused {}", present::countdown(until.ms_since(now.get()))),
                                            None => "Pause sound 2 min".into(),
                                        }}
                                    </button>
                                </div>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </aside>
    }
}

fn can(live: LiveSession, kind: CommandKind) -> bool {
    live.me.with(|m| m.is_some_and(|m| kind.permits(m.role)))
}

#[component]
fn Detail(
    live: LiveSession,
    id: SeatId,
    now: RwSignal<Timestamp>,
    selected: RwSignal<Option<SeatId>>,
    staff: RwSignal<Vec<StaffMember>>,
) -> impl IntoView {
    let seat = Memo::new(move |_| {
        live.followed
            .with(|f| f.state().and_then(|s| s.seat(id).cloned()))
    });
    let started = Signal::derive(move || {
        live.followed
            .with(|f| f.state().map(|s| s.created_at).unwrap_or_default())
    });
    let now_signal = Signal::derive(move || now.get());
    let timeline = Memo::new(move |_| {
        staff.with(|names| {
            live.timeline
                .with(|t| present::seat_timeline(t, id, names, 100))
        })
    });
    let offset = browser::utc_offset_min();
    view! {
        <section class="detail" role="dialog" aria-label="Participant detail">
            <header class="bar">
                <h2>{move || seat.get().map(|s| format!("{} — {}", s.display_name, present::state_label(s.state))).unwrap_or_default()}</h2>
                <button class="x" aria-label="Close" on:click=move |_| selected.set(None)>"✕"</button>
            </header>
            // What the phone promises: the journal is seen by the care team.
            {move || seat.get().and_then(|s| s.post_session).map(|p| view! {
                <p class="arrival-summary">
                    {format!("After the session: mood {}", p.value.mood.get())}
                    {(!p.value.journal.trim().is_empty()).then(|| format!(" · journal: “{}”", p.value.journal.trim()))}
                </p>
            })}
            {move || seat.get().and_then(|s| s.arrival).map(|a| {
                let form = a.value;
                view! {
                    <p class="arrival-summary">
                        {format!("Arrival: mood {}, anxiety {}", form.mood.get(), form.anxiety.get())}
                        {(!form.intention.trim().is_empty()).then(|| format!(" · intention: “{}”", form.intention.trim()))}
                        {format!(" · supportive touch: {}", if form.consent_to_touch { "yes" } else { "no" })}
                    </p>
                }
            })}
            <div class="charts">
                <SessionChart series=series(live, id, |h| &h.spo2) from=started now=now_signal lo=80.0 hi=100.0 title="SpO2 %" class="spo2"/>
                <SessionChart series=series(live, id, |h| &h.heart_rate) from=started now=now_signal lo=40.0 hi=160.0 title="Heart rate /min" class="hr"/>
                <SessionChart series=series(live, id, |h| &h.systolic) from=started now=now_signal lo=60.0 hi=200.0 title="Systolic BP mmHg" class="bp"/>
            </div>
            <div class="forms">
                {can(live, CommandKind::RecordVital).then(|| view! { <VitalForm live id/> })}
                {can(live, CommandKind::ObserveCheckIn).then(|| view! { <CheckForm live id/> })}
                {can(live, CommandKind::AssignFacilitator).then(|| view! { <RotaForm live id seat staff/> })}
                {can(live, CommandKind::RecordDose).then(|| view! { <DoseForm live id/> })}
                {can(live, CommandKind::RecordRating).then(|| view! { <RatingForm live id/> })}
                {can(live, CommandKind::AddNote).then(|| view! { <NoteForm live id/> })}
                <StateForm live id seat/>
            </div>
            <section class="timeline">
                <h3>"Timeline"</h3>
                <ol>{move || timeline.get().into_iter().map(|(at, text)| view! { <li><time>{present::clock(at, offset)}</time> " " {text}</li> }).collect_view()}</ol>
            </section>
        </section>
    }
}

fn send(live: LiveSession, command: Command) -> bool {
    match live.send(command) {
        Ok(_) => {
            // The last refusal is answered by this attempt; a new refusal
            // shows again when the server's answer arrives.
            live.notice.set(None);
            true
        }
        Err(e) => {
            live.notice.set(Some(e));
            false
        }
    }
}

fn number(text: &str) -> f64 {
    text.trim().replace(',', ".").parse().unwrap_or(f64::NAN)
}

#[component]
fn VitalForm(live: LiveSession, id: SeatId) -> impl IntoView {
    let kind = RwSignal::new("blood_pressure".to_string());
    let (a, b) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (x, y) = (number(&a.get()), number(&b.get()));
        let measurement = match kind.get().as_str() {
            "blood_pressure" => Measurement::BloodPressure {
                systolic: x,
                diastolic: y,
            },
            "heart_rate" => Measurement::HeartRate { value: x },
            "spo2" => Measurement::Spo2 { value: x },
            "respiratory_rate" => Measurement::RespiratoryRate { value: x },
            "body_temperature" => Measurement::BodyTemperature { value: x },
            _ => Measurement::BodyWeight { value: x },
        };
        if send(
            live,
            Command::RecordVital {
                seat: id,
                measurement,
                measured_at: None,
                device: None,
            },
        ) {
            a.set(String::new());
            b.set(String::new());
        }
    };
    view! {
        <form class="mini" on:submit=submit aria-label="Record a vital sign">
            <h3>"Vital sign"</h3>
            <select aria-label="Which vital" on:change=move |ev| kind.set(event_target_value(&ev))>
                <option value="blood_pressure">"Blood pressure"</option>
                <option value="heart_rate">"Heart rate"</option>
                <option value="spo2">"SpO2"</option>
                <option value="respiratory_rate">"Respiratory rate"</option>
                <option value="body_temperature">"Temperature °C"</option>
                <option value="body_weight">"Weight kg"</option>
            </select>
            <input inputmode="decimal" aria-label=move || if kind.get() == "blood_pressure" { "Systolic" } else { "Value" }
                placeholder=move || if kind.get() == "blood_pressure" { "systolic" } else { "value" }
                prop:value=move || a.get() on:input=move |ev| a.set(event_target_value(&ev))/>
            {move || (kind.get() == "blood_pressure").then(|| view! {
                <input inputmode="decimal" aria-label="Diastolic" placeholder="diastolic" prop:value=move || b.get() on:input=move |ev| b.set(event_target_value(&ev))/>
            })}
            <button type="submit">"Record"</button>
        </form>
    }
}

#[component]
fn CheckForm(live: LiveSession, id: SeatId) -> impl IntoView {
    let status = RwSignal::new(ObservedStatus::Resting);
    let note = RwSignal::new(String::new());
    let statuses = present::OBSERVED.map(|s| (s, present::observed_label(s)));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = note.get();
        let note_value = (!text.trim().is_empty()).then_some(text);
        if send(
            live,
            Command::ObserveCheckIn {
                seat: id,
                status: status.get(),
                note: note_value,
            },
        ) {
            note.set(String::new());
        }
    };
    view! {
        <form class="mini" on:submit=submit aria-label="Observed check-in">
            <h3>"Check-in"</h3>
            <select aria-label="What you see" on:change=move |ev| {
                let v = event_target_value(&ev);
                if let Some((s, _)) = statuses.iter().find(|(_, l)| *l == v) { status.set(*s) }
            }>
                {statuses.iter().map(|(_, l)| view! { <option value=*l>{*l}</option> }).collect_view()}
            </select>
            <input aria-label="Note (optional)" placeholder="note (optional)" prop:value=move || note.get() on:input=move |ev| note.set(event_target_value(&ev))/>
            <button type="submit">"Checked"</button>
        </form>
    }
}

/// Who does this participant's 15-minute checks: their check-overdue and
/// support alarms name that facilitator.
#[component]
fn RotaForm(
    live: LiveSession,
    id: SeatId,
    seat: Memo<Option<protocol::Seat>>,
    staff: RwSignal<Vec<StaffMember>>,
) -> impl IntoView {
    let current = move || seat.with(|s| s.as_ref().and_then(|s| s.assigned_facilitator));
    let choose = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        let chosen = staff.with_untracked(|l| {
            present::rota_choices(l)
                .into_iter()
                .find(|m| m.id.to_string() == value)
                .map(|m| m.id)
        });
        if chosen != current() {
            send(
                live,
                Command::AssignFacilitator {
                    seat: id,
                    staff: chosen,
                },
            );
        }
    };
    view! {
        <form class="mini" aria-label="Check rota" on:submit=|ev: leptos::ev::SubmitEvent| ev.prevent_default()>
            <h3>"Checks by"</h3>
            // Without the staff list the current choice could not be shown.
            <select aria-label="Facilitator on the check rota" on:change=choose disabled=move || staff.with(Vec::is_empty)
                prop:value=move || current().map(|c| c.to_string()).unwrap_or_default()>
                <option value="">"nobody named"</option>
                {move || staff.with(|l| present::rota_choices(l).into_iter().map(|m| {
                    let value = m.id.to_string();
                    view! { <option value=value.clone() selected=move || current().map(|c| c.to_string()) == Some(value.clone())>{m.display_name.clone()}</option> }
                }).collect_view())}
            </select>
        </form>
    }
}

#[component]
fn DoseForm(live: LiveSession, id: SeatId) -> impl IntoView {
    let route = RwSignal::new(Route::Im);
    let (mg, lot, reason) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = reason.get();
        let override_reason = (!text.trim().is_empty()).then_some(text);
        let command = Command::RecordDose {
            seat: id,
            route: route.get(),
            mg: number(&mg.get()),
            lot: lot.get(),
            administered_at: None,
            override_reason,
        };
        if send(live, command) {
            mg.set(String::new());
            reason.set(String::new());
        }
    };
    view! {
        <form class="mini" on:submit=submit aria-label="Record a dose">
            <h3>"Dose"</h3>
            <select aria-label="Route" on:change=move |ev| route.set(match event_target_value(&ev).as_str() {
                "iv" => Route::Iv, "sublingual_oral" => Route::SublingualOral, "intranasal" => Route::Intranasal, _ => Route::Im,
            })>
                <option value="im">"IM"</option>
                <option value="iv">"IV"</option>
                <option value="sublingual_oral">"Sublingual / oral"</option>
                <option value="intranasal">"Intranasal"</option>
            </select>
            <input inputmode="decimal" aria-label="Dose in mg" placeholder="mg" prop:value=move || mg.get() on:input=move |ev| mg.set(event_target_value(&ev))/>
            <input aria-label="Lot" placeholder="lot" prop:value=move || lot.get() on:input=move |ev| lot.set(event_target_value(&ev))/>
            <input aria-label="Hold override reason (only to dose despite a hold: pre-dose BP, dose per kg, weight, fasting; at least 10 characters)" placeholder="override reason, if held (10+ characters)" prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev))/>
            <button type="submit">"Record dose"</button>
        </form>
    }
}

#[component]
fn RatingForm(live: LiveSession, id: SeatId) -> impl IntoView {
    let score = RwSignal::new(String::new());
    view! {
        <div class="mini" role="group" aria-label="Observer ratings">
            <h3>"MOAA/S"</h3>
            <div class="scale-buttons">
                {(0u8..=5).map(|m| view! {
                    <button on:click=move |_| { send(live, Command::RecordRating { seat: id, rating: Rating::Sedation { moaas: m } }); }
                        title=format!("{m}: {}", present::MOAAS[usize::from(m)])
                        aria-label=format!("MOAA/S {m}: {}", present::MOAAS[usize::from(m)])>{m}</button>
                }).collect_view()}
            </div>
            <form on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                let Ok(s) = score.get().trim().parse::<u8>() else {
                    live.notice.set(Some("Enter the dissociation score as a whole number from 0 to 100.".into()));
                    return;
                };
                if send(live, Command::RecordRating { seat: id, rating: Rating::Dissociation { score: s } }) { score.set(String::new()) }
            }>
                <input inputmode="numeric" aria-label="Dissociation score" placeholder="dissociation 0–100" prop:value=move || score.get() on:input=move |ev| score.set(event_target_value(&ev))/>
                <button type="submit">"Rate"</button>
            </form>
        </div>
    }
}

#[component]
fn NoteForm(live: LiveSession, id: SeatId) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if send(
            live,
            Command::AddNote {
                seat: id,
                text: text.get(),
            },
        ) {
            text.set(String::new());
        }
    };
    view! {
        <form class="mini" on:submit=submit aria-label="Add a note">
            <h3>"Note"</h3>
            <textarea aria-label="Note" rows="2" prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            <button type="submit">"Add note"</button>
        </form>
    }
}

#[component]
fn StateForm(live: LiveSession, id: SeatId, seat: Memo<Option<protocol::Seat>>) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    // Withdrawing cannot be undone (the phone's help buttons go with it): it
    // asks once more, in the page.
    let withdrawing = RwSignal::new(false);
    // Signing the discharge cannot be undone either.
    let discharging = RwSignal::new(false);
    let next = move || {
        seat.get()
            .map(|s| {
                s.state
                    .legal_next()
                    .iter()
                    .copied()
                    .filter(|t| {
                        !matches!(
                            t,
                            ParticipantState::Arrived
                                | ParticipantState::Dosed
                                | ParticipantState::Discharged
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let discharge = move |_| {
        let text = reason.get();
        send(
            live,
            Command::Discharge {
                seat: id,
                override_reason: (!text.trim().is_empty()).then_some(text),
            },
        );
    };
    view! {
        <div class="mini" role="group" aria-label="Participant state">
            <h3>"State"</h3>
            {move || can(live, CommandKind::SetParticipantState).then(|| next().into_iter().map(|to| {
                let label = format!("→ {}", present::state_label(to));
                if to != ParticipantState::Withdrawn {
                    return view! { <button on:click=move |_| { send(live, Command::SetParticipantState { seat: id, to }); }>{label}</button> }.into_any();
                }
                view! {
                    {move || if withdrawing.get() {
                        view! {
                            <span class="confirm" role="alert">"Withdraw for good? It cannot be undone, and their phone loses its help buttons."</span>
                            <button class="danger" on:click=move |_| { withdrawing.set(false); send(live, Command::SetParticipantState { seat: id, to }); }>"Yes, withdraw"</button>
                            <button on:click=move |_| withdrawing.set(false)>"Keep them"</button>
                        }.into_any()
                    } else {
                        let label = label.clone();
                        view! { <button on:click=move |_| withdrawing.set(true)>{label}</button> }.into_any()
                    }}
                }.into_any()
            }).collect_view())}
            {move || (can(live, CommandKind::ConfirmRideHome) && seat.get().is_some_and(|s| !s.ride_home_confirmed)).then(|| view! {
                <button on:click=move |_| { send(live, Command::ConfirmRideHome { seat: id }); }>"Ride home confirmed"</button>
            })}
            {move || (can(live, CommandKind::Discharge) && seat.get().is_some_and(|s| s.state.can_move_to(ParticipantState::Discharged))).then(|| view! {
                <input aria-label="Discharge override reason (only if the checklist is not complete; at least 10 characters)" placeholder="override reason, if needed (10+ characters)"
                    prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev))/>
                {move || if discharging.get() {
                    view! {
                        <span class="confirm" role="alert">{move || format!("Sign {}'s discharge? It cannot be undone.", seat.get().map(|s| s.display_name).unwrap_or_default())}</span>
                        <button class="primary" on:click=move |ev| { discharging.set(false); discharge(ev) }>"Yes, discharge"</button>
                        <button on:click=move |_| discharging.set(false)>"Not yet"</button>
                    }.into_any()
                } else {
                    view! { <button class="primary" on:click=move |_| discharging.set(true)>"Discharge"</button> }.into_any()
                }}
            })}
        </div>
    }
}

/// A message every phone of the session shows ("From your facilitators").
#[component]
fn GroupMessageForm(live: LiveSession) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let post = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if send(live, Command::PostGroupMessage { text: text.get() }) {
            text.set(String::new());
        }
    };
    view! {
        <form class="group-message" on:submit=post>
            <h3>"Message to the group"</h3>
            <input aria-label="Message to every participant's phone" placeholder="shown on every phone" prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))/>
            <button type="submit">"Post"</button>
        </form>
    }
}

#[component]
fn Controls(live: LiveSession, session: SessionId) -> impl IntoView {
    let phase = Memo::new(move |_| live.followed.with(|f| f.state().map(|s| s.phase)));
    let seats = Memo::new(move |_| {
        live.followed.with(|f| {
            f.state()
                .map(|s| {
                    s.seats
                        .iter()
                        .map(|x| (x.id, x.display_name.clone(), x.state))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    let (name, weight, place) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
    );
    let code = RwSignal::new(None::<(String, JoinCodeIssued)>);
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let w = weight.get();
        let command = Command::AddSeat {
            display_name: name.get(),
            weight_kg: (!w.trim().is_empty()).then(|| number(&w)),
            location: Some(place.get()).filter(|p| !p.trim().is_empty()),
        };
        if send(live, command) {
            name.set(String::new());
            weight.set(String::new());
            place.set(String::new());
        }
    };
    let issue = move |seat: SeatId, who: String| {
        leptos::task::spawn_local(async move {
            let path = format!("/api/sessions/{session}/seats/{seat}/join-code");
            match net::call::<JoinCodeIssued>("POST", &path, Some(&token()), None::<&()>).await {
                Ok(issued) => code.set(Some((who, issued))),
                Err(e) => live.notice.set(Some(e)),
            }
        });
    };
    let closing = RwSignal::new(false);
    let open = Memo::new(move |_| phase.get().is_some_and(|p| p != SessionPhase::Closed));
    // The clinical records for the clinic's files (see `GET .../records.csv`).
    let save = move |file: &'static str| {
        leptos::task::spawn_local(async move {
            let path = format!("/api/sessions/{session}/{file}");
            let name = format!("holdspace-{session}-{file}");
            if let Err(e) = net::download(&path, &token(), &name).await {
                live.notice.set(Some(e));
            }
        });
    };
    view! {
        <section class="controls" aria-label="Session controls">
            <div class="phase-controls">
                <h3>"Phase"</h3>
                {move || phase.get().map(|p| view! {
                    <span>{present::phase_label(p)}</span>
                    {p.next().filter(|n| *n != SessionPhase::Closed).map(|n| view! {
                        <button class="primary" on:click=move |_| { send(live, Command::ChangePhase { to: n }); }>{format!("Start {}", present::phase_label(n))}</button>
                    })}
                    // Closing cannot be undone: it asks once more, in the page.
                    {(p != SessionPhase::Closed).then(|| view! {
                        {move || if closing.get() {
                            view! {
                                <span class="confirm" role="alert">"Close this session for good? It cannot be reopened."</span>
                                <button class="danger" on:click=move |_| { closing.set(false); send(live, Command::ChangePhase { to: SessionPhase::Closed }); }>"Yes, close it"</button>
                                <button on:click=move |_| closing.set(false)>"Keep it open"</button>
                            }.into_any()
                        } else {
                            view! { <button on:click=move |_| closing.set(true)>"Close session"</button> }.into_any()
                        }}
                    })}
                })}
            </div>
            <div class="records">
                <h3>"Records"</h3>
                <button on:click=move |_| save("records.csv")>"Download records (CSV)"</button>
                <button on:click=move |_| save("records.fhir.json")>"Download for an EHR (FHIR)"</button>
                <button on:click=move |_| save("log.ndjson")>"Download the full log"</button>
            </div>
            // A closed session records nothing more: only its records remain.
            {move || open.get().then(|| view! {
                {can(live, CommandKind::PostGroupMessage).then(|| view! { <GroupMessageForm live/> })}
                <form class="add-seat" on:submit=add>
                    <h3>"Add a seat"</h3>
                    <input aria-label="First name or pseudonym" placeholder="first name or pseudonym" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
                    <input inputmode="decimal" aria-label="Weight kg" placeholder="kg" prop:value=move || weight.get() on:input=move |ev| weight.set(event_target_value(&ev))/>
                    <input aria-label="Place in the room" placeholder="nest / remote" prop:value=move || place.get() on:input=move |ev| place.set(event_target_value(&ev))/>
                    <button type="submit">"Add"</button>
                </form>
                <div class="codes">
                    <h3>"Join codes"</h3>
                    <ul>
                        {move || seats.get().into_iter().filter(|(_, _, st)| !st.has_left()).map(|(id, who, _)| {
                            let label = who.clone();
                            view! { <li>{who} " " <button on:click=move |_| issue(id, label.clone())>"Join code"</button></li> }
                        }).collect_view()}
                    </ul>
                    {move || code.get().map(|(who, issued)| {
                        let link = format!("{}/#/join/{}", browser::origin(), issued.code);
                        view! {
                            <div class="join-code" data-testid="join-code">
                                <p>{format!("For {who}: ")}<strong class="code">{issued.code.clone()}</strong></p>
                                <div class="qr" inner_html=qr::svg(&link)></div>
                                <p class="link">{link}</p>
                                <p class="quiet">{format!("A new code replaces any earlier one for {who}.")}</p>
                            </div>
                        }
                    })}
                </div>
            })}
        </section>
    }
}
