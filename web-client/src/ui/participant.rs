//! The participant's phone: join with a code, the arrival check-in, then one
//! screen with two huge buttons, and the journal after the session. Usable
//! without reading, one-handed, in the dark: every state is colour + icon +
//! word, every target at least 48 px.

use super::browser;
use super::live::LiveSession;
use super::net::{self, LinkStatus};
use crate::i18n::{Key, Lang, text};
use crate::present::{self, PhoneScreen};
use leptos::prelude::*;
use protocol::rest::{JoinRequest, Joined};
use protocol::{ArrivalForm, Command, CommandId, PostSessionForm, SelfReport, SupportReason};

const CREDENTIALS: &str = "holdspace.participant";
const TOKEN: &str = "holdspace.participant.token";
const LANGUAGE: &str = "holdspace.language";

/// This phone has joined a seat.
pub fn has_joined() -> bool {
    browser::load(CREDENTIALS).is_some()
}

fn credentials() -> Option<Joined> {
    browser::load(CREDENTIALS).and_then(|t| serde_json::from_str(&t).ok())
}

fn leave() {
    browser::forget(CREDENTIALS);
    browser::forget(TOKEN);
}

#[component]
pub fn ParticipantPage(code: Option<String>) -> impl IntoView {
    let lang = RwSignal::new(Lang::from_tag(
        &browser::load(LANGUAGE).unwrap_or_else(browser::language),
    ));
    Effect::new(move |_| browser::set_document_language(lang.get().tag()));
    let joined = RwSignal::new(credentials());
    let error = RwSignal::new(None::<String>);
    // Arriving by a join link: join with its code straight away. A refused
    // code stays in the form with the reason beside it, and leaves the
    // address without rebuilding the page (which would lose the reason), so
    // a reload does not spend another attempt on it.
    if let Some(code) = code.clone() {
        leptos::task::spawn_local(async move {
            match net::call::<Joined>("POST", "/api/join", None, Some(&JoinRequest { code })).await
            {
                Ok(j) => remember(j, joined),
                Err(_) if joined.get_untracked().is_some() => browser::go("/join"),
                Err(e) => {
                    browser::replace_address("/join");
                    error.set(Some(e));
                }
            }
        });
    }
    let switch = move |_| {
        let next = lang.get().other();
        browser::store(LANGUAGE, next.tag());
        lang.set(next);
    };
    view! {
        <main class="phone">
            <header class="phone-head">
                <span class="who">{move || joined.get().map(|j| j.display_name).unwrap_or_default()}</span>
                <button class="lang" on:click=switch>{move || text(lang.get(), Key::LanguageSwitch)}</button>
            </header>
            {move || match joined.get() {
                None => view! { <JoinForm lang joined error initial=code.clone().unwrap_or_default()/> }.into_any(),
                Some(j) => view! { <Seated lang credentials=j joined/> }.into_any(),
            }}
        </main>
    }
}

fn remember(j: Joined, joined: RwSignal<Option<Joined>>) {
    browser::store(TOKEN, &j.token.token);
    browser::store(CREDENTIALS, &serde_json::to_string(&j).expect("serializes"));
    joined.set(Some(j));
    // A code in the address is spent: a reload must not try it again.
    browser::go("/join");
}

#[component]
fn JoinForm(
    lang: RwSignal<Lang>,
    joined: RwSignal<Option<Joined>>,
    error: RwSignal<Option<String>>,
    initial: String,
) -> impl IntoView {
    let code = RwSignal::new(initial);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        let code = code.get_untracked();
        leptos::task::spawn_local(async move {
            match net::call::<Joined>("POST", "/api/join", None, Some(&JoinRequest { code })).await
            {
                Ok(j) => remember(j, joined),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="join" on:submit=submit>
            <h1>{say(lang, Key::JoinTitle)}</h1>
            <label for="join-code">{say(lang, Key::JoinCode)}</label>
            <input id="join-code" name="code" autocomplete="off" autocapitalize="characters" spellcheck="false"
                prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev))/>
            <button class="big primary" type="submit" disabled=move || busy.get()>{say(lang, Key::JoinButton)}</button>
            {move || error.get().map(|e| view! { <p class="notice" role="alert">{say(lang, Key::JoinFailed)} ": " {e}</p> })}
        </form>
    }
}

#[component]
fn Seated(
    lang: RwSignal<Lang>,
    credentials: Joined,
    joined: RwSignal<Option<Joined>>,
) -> impl IntoView {
    // Per seat: a shared tablet re-joined for another seat never sends the
    // first participant's taps under the second's token.
    let outbox_key = format!(
        "holdspace.outbox.{}.{}",
        credentials.session, credentials.seat
    );
    let live = LiveSession::start(TOKEN, credentials.session, false, Some(outbox_key));
    let seat_id = credentials.seat;
    let t = move |k| text(lang.get(), k);
    let seat = Memo::new(move |_| {
        live.followed
            .with(|f| f.state().and_then(|s| s.seat(seat_id).cloned()))
    });
    let phase = Memo::new(move |_| live.followed.with(|f| f.state().map(|s| s.phase)));
    let screen = Memo::new(move |_| match (seat.get(), phase.get()) {
        (Some(s), Some(phase)) => present::phone_screen(
            s.state,
            s.arrival.is_some(),
            s.post_session.is_some(),
            phase,
        ),
        _ => PhoneScreen::Waiting,
    });
    let messages = Memo::new(move |_| {
        live.followed.with(|f| {
            f.state()
                .map(|s| {
                    s.group_messages
                        .iter()
                        .rev()
                        .take(3)
                        .map(|m| m.text.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    // Keep the token fresh while the participant is in the session.
    let refresh = set_interval_with_handle(
        move || {
            if seat.get_untracked().is_some_and(|s| !s.state.has_left()) {
                live.refresh_token();
            }
        },
        std::time::Duration::from_secs(30 * 60),
    );
    on_cleanup(move || {
        if let Ok(h) = refresh {
            h.clear();
        }
    });
    let rejoin = move |_| {
        leave();
        joined.set(None);
    };
    view! {
        <div class=move || format!("status status-{}", status_class(&live.status.get()))  role="status">
            {move || match live.status.get() {
                LinkStatus::Live => format!("● {}", t(Key::Connected)),
                LinkStatus::Connecting => format!("◌ {}", t(Key::Connecting)),
                LinkStatus::Offline => format!("○ {}", t(Key::Offline)),
                LinkStatus::Refused(reason) => format!("✖ {reason}"),
            }}
        </div>
        {move || matches!(live.status.get(), LinkStatus::Refused(_)).then(|| view! {
            <button class="big primary" on:click=rejoin>{say(lang, Key::JoinTitle)}</button>
        })}
        // Rebuilt only when the screen changes, not at every reading of the
        // seat: a half-written journal must survive the oximeter's updates.
        {move || match screen.get() {
            PhoneScreen::Waiting => view! { <p class="waiting">{say(lang, Key::Connecting)}</p> }.into_any(),
            PhoneScreen::Arrival => view! { <Arrival lang live seat=seat_id/> }.into_any(),
            // Help stays within reach of a thumb; the journal can wait below it.
            PhoneScreen::Journal => view! { <Buttons lang live seat=seat_id/> <AfterSession lang live seat=seat_id/> }.into_any(),
            PhoneScreen::JournalAfterDischarge => view! { <AfterSession lang live seat=seat_id/> }.into_any(),
            PhoneScreen::Thanked => view! { <p class="done">{say(lang, Key::AfterDone)}</p> <Buttons lang live seat=seat_id/> }.into_any(),
            PhoneScreen::Done => view! { <p class="done">{say(lang, Key::AfterDone)}</p> }.into_any(),
            PhoneScreen::Buttons => view! { <Buttons lang live seat=seat_id/> }.into_any(),
        }}
        {move || live.notice.get().map(|n| view! { <p class="notice" role="alert">{say(lang, Key::Refused)} ": " {n}</p> })}
        {move || {
            let m = messages.get();
            (!m.is_empty()).then(|| view! {
                <section class="messages">
                    <h2>{say(lang, Key::FromFacilitators)}</h2>
                    <ul>{m.into_iter().map(|text| view! { <li>{text}</li> }).collect_view()}</ul>
                </section>
            })
        }}
    }
}

/// A text in the page's language that follows the language switch. One
/// function (not a closure per text) keeps the phone's bundle small.
fn say(lang: RwSignal<Lang>, key: Key) -> impl IntoView + use<> {
    move || text(lang.get(), key)
}

fn status_class(status: &LinkStatus) -> &'static str {
    match status {
        LinkStatus::Live => "live",
        LinkStatus::Connecting => "connecting",
        LinkStatus::Offline => "offline",
        LinkStatus::Refused(_) => "refused",
    }
}

#[component]
fn Buttons(lang: RwSignal<Lang>, live: LiveSession, seat: protocol::SeatId) -> impl IntoView {
    let t = move |k| text(lang.get(), k);
    let last_ok = RwSignal::new(None::<CommandId>);
    let tap = move |report: SelfReport| match live.send(Command::SelfReport {
        seat,
        report: report.clone(),
    }) {
        Ok(id) => {
            if matches!(report, SelfReport::Ok {}) {
                last_ok.set(Some(id));
            }
        }
        Err(e) => live.notice.set(Some(e)),
    };
    let support = Memo::new(move |_| {
        live.followed.with(|f| {
            f.state()
                .and_then(|s| s.seat(seat))
                .and_then(|s| s.support.clone())
        })
    });
    let waiting = Memo::new(move |_| !live.outbox.with(|o| o.is_empty()));
    let ok_noted = move || {
        last_ok
            .get()
            .is_some_and(|id| live.accepted.with(|a| a.contains(&id)))
    };
    // A reason already sent shows as chosen (a tick, not colour alone), so a
    // participant can see what staff were told.
    let reason = move |r: SupportReason, key: Key| {
        let chosen = move || support.with(|s| s.as_ref().is_some_and(|s| s.reasons.contains(&r)));
        view! {
            <button class=move || if chosen() { "chip on" } else { "chip" } aria-pressed=move || chosen().to_string()
                on:click=move |_| tap(SelfReport::NeedSupport { reasons: vec![r], note: None })>
                {move || if chosen() { format!("✔ {}", t(key)) } else { t(key).to_string() }}
            </button>
        }
    };
    view! {
        <div class="buttons">
            <button class="big ok" on:click=move |_| tap(SelfReport::Ok {})>
                <span class="icon" aria-hidden="true">"✔"</span>
                <span>{say(lang, Key::ImOk)}</span>
            </button>
            <button class="big help" on:click=move |_| tap(SelfReport::NeedSupport { reasons: vec![], note: None })>
                <span class="icon" aria-hidden="true">"⚑"</span>
                <span>{say(lang, Key::NeedSupport)}</span>
            </button>
        </div>
        <div class="feedback" role="status" aria-live="polite">
            {move || {
                if waiting.get() && live.status.get() != LinkStatus::Live {
                    view! { <p class="fb saved"><span aria-hidden="true">"⋯ "</span>{say(lang, Key::Saved)}</p> }.into_any()
                } else if let Some(s) = support.get() {
                    if s.is_open() {
                        view! {
                            <p class="fb sent"><span aria-hidden="true">"⚑ "</span>{say(lang, Key::SupportSent)}</p>
                            <p class="hint">{say(lang, Key::AddReason)}</p>
                            <div class="chips">
                                {reason(SupportReason::Nausea, Key::Nausea)}
                                {reason(SupportReason::Bathroom, Key::Bathroom)}
                                {reason(SupportReason::Anxious, Key::Anxious)}
                                {reason(SupportReason::Cold, Key::Cold)}
                                {reason(SupportReason::Other, Key::Other)}
                            </div>
                        }.into_any()
                    } else if ok_noted() {
                        view! { <p class="fb ok"><span aria-hidden="true">"✔ "</span>{say(lang, Key::OkNoted)}</p> }.into_any()
                    } else {
                        view! { <p class="fb seen"><span aria-hidden="true">"✔ "</span>{say(lang, Key::SupportSeen)}</p> }.into_any()
                    }
                } else if ok_noted() {
                    view! { <p class="fb ok"><span aria-hidden="true">"✔ "</span>{say(lang, Key::OkNoted)}</p> }.into_any()
                } else {
                    ().into_any()
                }
            }}
        </div>
    }
}

#[component]
fn Scale(label: Signal<&'static str>, value: RwSignal<u8>, id: &'static str) -> impl IntoView {
    view! {
        <div class="scale">
            <label for=id>{move || label.get()}</label>
            <div class="scale-row">
                <input type="range" id=id min="0" max="10" step="1" prop:value=move || value.get().to_string()
                    on:input=move |ev| value.set(event_target_value(&ev).parse().unwrap_or(5))/>
                <output for=id>{move || value.get()}</output>
            </div>
        </div>
    }
}

#[component]
fn Check(label: Signal<&'static str>, value: RwSignal<bool>, id: &'static str) -> impl IntoView {
    view! {
        <label class="tick" for=id>
            <input type="checkbox" id=id prop:checked=move || value.get() on:change=move |ev| value.set(event_target_checked(&ev))/>
            <span>{move || label.get()}</span>
        </label>
    }
}

fn score(n: u8) -> protocol::Score {
    protocol::Score::try_from(n.min(10)).expect("clamped")
}

#[component]
fn Arrival(lang: RwSignal<Lang>, live: LiveSession, seat: protocol::SeatId) -> impl IntoView {
    let t = move |k| text(lang.get(), k);
    let (mood, anxiety) = (RwSignal::new(5u8), RwSignal::new(5u8));
    let intention = RwSignal::new(String::new());
    let (fasting, ride, touch) = (
        RwSignal::new(false),
        RwSignal::new(false),
        RwSignal::new(false),
    );
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = ArrivalForm {
            mood: score(mood.get()),
            anxiety: score(anxiety.get()),
            intention: intention.get(),
            fasting_confirmed: fasting.get(),
            ride_home_arranged: ride.get(),
            consent_to_touch: touch.get(),
        };
        if let Err(e) = live.send(Command::SubmitArrival { seat, form }) {
            live.notice.set(Some(e));
        }
    };
    let label = move |k| Signal::derive(move || t(k));
    view! {
        <form class="arrival" on:submit=submit>
            <h1>{say(lang, Key::Welcome)}</h1>
            <Scale label=label(Key::Mood) value=mood id="mood"/>
            <Scale label=label(Key::Anxiety) value=anxiety id="anxiety"/>
            <label for="intention">{say(lang, Key::Intention)}</label>
            <textarea id="intention" rows="3" prop:value=move || intention.get() on:input=move |ev| intention.set(event_target_value(&ev))></textarea>
            <Check label=label(Key::Fasting) value=fasting id="fasting"/>
            <Check label=label(Key::RideHome) value=ride id="ride"/>
            <Check label=label(Key::Touch) value=touch id="touch"/>
            <button class="big primary" type="submit">{say(lang, Key::Arrived)}</button>
        </form>
    }
}

#[component]
fn AfterSession(lang: RwSignal<Lang>, live: LiveSession, seat: protocol::SeatId) -> impl IntoView {
    let t = move |k| text(lang.get(), k);
    let mood = RwSignal::new(5u8);
    let journal = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = PostSessionForm {
            mood: score(mood.get()),
            journal: journal.get(),
        };
        if let Err(e) = live.send(Command::SubmitPostSession { seat, form }) {
            live.notice.set(Some(e));
        }
    };
    view! {
        <form class="after" on:submit=submit>
            <h1>{say(lang, Key::AfterTitle)}</h1>
            <Scale label=Signal::derive(move || t(Key::MoodAfter)) value=mood id="mood-after"/>
            <label for="journal">{say(lang, Key::Journal)}</label>
            <textarea id="journal" rows="6" prop:value=move || journal.get() on:input=move |ev| journal.set(event_target_value(&ev))></textarea>
            <button class="big primary" type="submit">{say(lang, Key::Save)}</button>
        </form>
    }
}
