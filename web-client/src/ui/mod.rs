//! The user interface (browser only). Thin views over [`live::LiveSession`];
//! the clinical rules are the `protocol` crate's, the same as the server's.

#[cfg(feature = "staff")]
mod audio;
mod browser;
#[cfg(feature = "staff")]
mod chart;
mod live;
mod net;
mod participant;
#[cfg(feature = "staff")]
mod qr;
#[cfg(feature = "staff")]
mod staff;

use leptos::prelude::*;
use protocol::SessionId;

/// Mounts the app on `<body>`.
pub fn mount() {
    leptos::mount::mount_to_body(App);
}

/// Where the app is, from the address after `#`.
#[derive(Clone, PartialEq, Debug)]
enum Route {
    Home,
    Join(Option<String>),
    Sessions,
    Board(SessionId),
}

fn route(hash: &str) -> Route {
    let parts: Vec<&str> = hash.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        // A code as typed into an address bar or mangled by a messenger
        // ("%20", a stray "/") still reaches the join form, which says what
        // is wrong with it.
        ["join", code @ ..] => {
            let code = code.join("/");
            let code = js_sys::decode_uri_component(&code)
                .ok()
                .and_then(|c| c.as_string())
                .unwrap_or(code);
            Route::Join(Some(code.trim().to_string()).filter(|c| !c.is_empty()))
        }
        ["sessions"] => Route::Sessions,
        ["board", id] => id.parse().map(Route::Board).unwrap_or(Route::Sessions),
        _ if participant::has_joined() => Route::Join(None),
        _ => Route::Home,
    }
}

#[component]
fn App() -> impl IntoView {
    let current = RwSignal::new(route(&browser::hash()));
    let handle = window_event_listener(leptos::ev::hashchange, move |_| {
        current.set(route(&browser::hash()))
    });
    on_cleanup(move || handle.remove());
    move || match current.get() {
        Route::Home => view! { <Home/> }.into_any(),
        Route::Join(code) => view! { <participant::ParticipantPage code=code/> }.into_any(),
        #[cfg(feature = "staff")]
        Route::Sessions => {
            view! { <staff::StaffGate><staff::Sessions/></staff::StaffGate> }.into_any()
        }
        #[cfg(feature = "staff")]
        Route::Board(id) => {
            view! { <staff::StaffGate><staff::Board session=id/></staff::StaffGate> }.into_any()
        }
        // The phone's bundle has no staff board: a staff address loads the full app.
        #[cfg(not(feature = "staff"))]
        Route::Sessions | Route::Board(_) => {
            browser::reload_page();
            ().into_any()
        }
    }
}

#[component]
fn Home() -> impl IntoView {
    view! {
        <main class="home">
            <h1>"Holdspace"</h1>
            <p class="lead">"Live coordination for group ketamine-assisted therapy sessions."</p>
            <nav class="home-choices">
                <a class="choice" href="#/join">"I am a participant" <small>"Join with your code"</small></a>
                <a class="choice" href="#/sessions">"I am staff" <small>"Log in to the group board"</small></a>
            </nav>
        </main>
    }
}
