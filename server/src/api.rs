//! The REST API (JSON) for what is not live: login, sessions, seats, join
//! codes, health. Every error is `{"error": code, "message": words}`; user
//! errors keep their status and a precise message, internal ones are logged
//! and the client sees a generic one.

use crate::app::App;
use crate::auth::{self, Principal, TokenError};
use crate::export::{Fhir, Records, fhir_start};
use crate::hub::{CommandOutcome, HubError, SessionHandle};
use crate::store::{EventLog, Redeem, StoreError};
use crate::ws;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use protocol::monitor;
use protocol::policy::text_limits;
use protocol::rest::{
    AddSeat, ApiError, CreateSession, JoinCodeIssued, JoinRequest, Joined, LoginRequest,
    LoginResponse, SeatCreated, SessionSummary, StaffMember, TokenResponse,
};
use protocol::{
    ClinicPolicy, Command, CommandId, EventBody, RejectCode, Rejection, SeatId, SessionId,
    StaffRole, Viewer,
};
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// All routes: the API, the hub, and the browser app's files.
pub fn router(app: Arc<App>) -> Router {
    let not_found =
        || async { AppError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint") };
    let api = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/api/login", post(login))
        .route("/api/join", post(join))
        .route("/api/staff", get(list_staff))
        .route("/api/sessions", get(list_sessions).post(create_session))
        .route("/api/sessions/{session}", get(session_snapshot))
        .route("/api/sessions/{session}/seats", post(add_seat))
        .route(
            "/api/sessions/{session}/seats/{seat}/join-code",
            post(issue_join_code),
        )
        .route("/api/sessions/{session}/monitoring", get(monitoring_all))
        .route("/api/sessions/{session}/records.csv", get(export_records))
        .route("/api/sessions/{session}/log.ndjson", get(export_log))
        .route(
            "/api/sessions/{session}/records.fhir.json",
            get(export_fhir),
        )
        .route(
            "/api/sessions/{session}/seats/{seat}/monitoring",
            get(monitoring_one),
        )
        .route("/api/policy", get(get_policy).put(put_policy))
        .route("/ws", get(ws::upgrade))
        .route(
            "/api/{*rest}",
            get(not_found).post(not_found).put(not_found),
        );
    let web = match &app.config.web_dir {
        // Every file is revalidated (ETag), so a new build is picked up at once;
        // gzip copies made by the build are sent to browsers that accept them.
        Some(dir) => Router::new().fallback_service(
            tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::overriding(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-cache"),
                ))
                .service(ServeDir::new(dir).precompressed_gzip()),
        ),
        None => Router::new().route("/", get(index)).fallback(not_found),
    };
    api.merge(web).with_state(app)
}

/// An error answer.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AppError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AppError {
        AppError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ApiError {
            error: self.code.to_string(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::AlreadyExists(what) => AppError::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("{what} already exists"),
            ),
            other => {
                tracing::error!(error = %other, "storage error");
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the record store is unavailable; nothing was changed, try again",
                )
            }
        }
    }
}

impl From<HubError> for AppError {
    fn from(e: HubError) -> AppError {
        match e {
            HubError::Store(s) => s.into(),
            HubError::Stopped => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server is shutting down",
            ),
        }
    }
}

impl From<Rejection> for AppError {
    fn from(r: Rejection) -> AppError {
        let (status, code) = match r.code {
            RejectCode::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            RejectCode::UnknownSeat => (StatusCode::NOT_FOUND, "unknown_seat"),
            RejectCode::ImplausibleVital => (StatusCode::UNPROCESSABLE_ENTITY, "implausible_vital"),
            RejectCode::InvalidInput => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            RejectCode::SessionClosed => (StatusCode::CONFLICT, "session_closed"),
            RejectCode::WrongPhase => (StatusCode::CONFLICT, "wrong_phase"),
            RejectCode::InvalidTransition => (StatusCode::CONFLICT, "invalid_transition"),
            RejectCode::AlreadyRecorded => (StatusCode::CONFLICT, "already_recorded"),
            RejectCode::NothingToDo => (StatusCode::CONFLICT, "nothing_to_do"),
            RejectCode::StorageUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
            }
            RejectCode::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            RejectCode::DoseHold => (StatusCode::CONFLICT, "dose_hold"),
            RejectCode::DischargeNotReady => (StatusCode::CONFLICT, "discharge_not_ready"),
            RejectCode::UnknownAlarm => (StatusCode::NOT_FOUND, "unknown_alarm"),
        };
        AppError::new(status, code, r.message)
    }
}

/// JSON body whose parse errors come back as [`AppError`]s.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AppError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_json",
                "send the body as JSON with Content-Type: application/json",
            )),
            Err(e) => Err(AppError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                e.body_text(),
            )),
        }
    }
}

/// A caller with a valid staff token.
pub struct Staff(pub Principal);

impl FromRequestParts<Arc<App>> for Staff {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, AppError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                AppError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "log in first: no bearer token was sent",
                )
            })?;
        let verified = app
            .keys
            .verify(token, app.clock.now())
            .map_err(|e| match e {
                TokenError::Expired => {
                    AppError::new(StatusCode::UNAUTHORIZED, "token_expired", e.to_string())
                }
                TokenError::Invalid(_) => {
                    AppError::new(StatusCode::UNAUTHORIZED, "invalid_token", e.to_string())
                }
            })?;
        match verified.principal {
            p @ Principal::Staff { .. } => Ok(Staff(p)),
            Principal::Participant { .. } => Err(AppError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "staff only",
            )),
        }
    }
}

/// Without the browser app's files (`--web`), a page that says what is missing.
async fn index() -> Html<&'static str> {
    Html(
        "<!doctype html><meta charset=utf-8><title>Holdspace</title>\
         <h1>Holdspace</h1><p>The server is running, but the browser app was not found. \
         Build it with <code>cargo run -p xtask -- build-web</code> and start the server with \
         <code>--web web-client/dist</code>. The API lives under <code>/api</code>, the live hub at \
         <code>/ws</code>; see docs/protocol.md.</p>",
    )
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.is_ready() {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

/// Refused before any work: this address has failed too often lately.
fn too_many_attempts(wait: std::time::Duration) -> AppError {
    AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!(
            "too many failed attempts from this network; try again in {} min, or ask staff",
            wait.as_secs().div_ceil(60)
        ),
    )
}

async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    Body(req): Body<LoginRequest>,
) -> Result<Json<LoginResponse>, AppError> {
    let attempt = app
        .login_attempts
        .begin(address.ip())
        .map_err(too_many_attempts)?;
    let busy = || {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many logins at once; try again in a moment",
        )
    };
    let _permit = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.password_checks.acquire(),
    )
    .await
    .map_err(|_| busy())?
    .map_err(|_| busy())?;
    let record = app.store.staff_by_username(req.username.clone()).await?;
    let password_hash = record.as_ref().map(|r| r.password_hash.clone());
    // Hash even for an unknown username so timing does not reveal which names exist.
    let ok = tokio::task::spawn_blocking(move || match password_hash {
        Some(hash) => auth::verify_password(&req.password, &hash),
        None => {
            let dummy = DUMMY_HASH.get_or_init(|| auth::hash_password("not a password anyone has"));
            auth::verify_password(&req.password, dummy);
            false
        }
    })
    .await
    .unwrap_or(false);
    let Some(record) = record.filter(|_| ok) else {
        attempt.failed();
        return Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "unknown username or wrong password",
        ));
    };
    let staff = record.profile;
    let principal = Principal::Staff {
        id: staff.id,
        role: staff.role,
        clinic: staff.clinic,
    };
    let (token, expires_at) = app.issue_token(&principal);
    tracing::info!(staff = %staff.id, role = staff.role.as_str(), "staff logged in");
    Ok(Json(LoginResponse {
        token: TokenResponse { token, expires_at },
        staff,
    }))
}

/// A hash checked against for unknown usernames.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn list_sessions(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
) -> Result<Json<Vec<SessionSummary>>, AppError> {
    Ok(Json(app.store.sessions_of(p.clinic()).await?))
}

async fn list_staff(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
) -> Result<Json<Vec<StaffMember>>, AppError> {
    Ok(Json(app.store.staff_of(p.clinic()).await?))
}

async fn create_session(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
    Body(req): Body<CreateSession>,
) -> Result<(StatusCode, Json<SessionSummary>), AppError> {
    let title = req.title.trim().to_string();
    if title.is_empty() || title.chars().count() > text_limits::SESSION_TITLE {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            format!(
                "title must be 1 to {} characters",
                text_limits::SESSION_TITLE
            ),
        ));
    }
    // The clinic's policy at this moment is recorded in the session's first
    // event and governs the whole session.
    let policy = app.store.clinic_policy(p.clinic()).await?;
    let handle = app
        .hub
        .create_session(p.clinic(), title.clone(), p.actor(), policy)
        .await?;
    let state = handle.snapshot(Viewer::Staff).await?;
    tracing::info!(session = %handle.id, role = %p.role(), "session created");
    Ok((
        StatusCode::CREATED,
        Json(SessionSummary {
            id: state.id,
            title,
            phase: state.phase,
            created_at: state.created_at,
        }),
    ))
}

/// The session, if it exists and the caller's clinic owns it (otherwise 404:
/// other clinics' ids are not confirmed).
async fn session_for(
    app: &App,
    p: &Principal,
    session: SessionId,
) -> Result<SessionHandle, AppError> {
    match app.hub.session(session).await? {
        Some(h) if p.may_open(session, h.clinic) => Ok(h),
        _ => Err(AppError::new(
            StatusCode::NOT_FOUND,
            "session_not_found",
            format!("there is no session {session}"),
        )),
    }
}

fn path_id<T: std::str::FromStr>(what: &str, raw: &str) -> Result<T, AppError> {
    raw.parse().map_err(|_| {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("{raw:?} is not a valid {what} id"),
        )
    })
}

async fn session_snapshot(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
    Path(session): Path<String>,
) -> Result<Json<protocol::SessionState>, AppError> {
    let handle = session_for(&app, &p, path_id("session", &session)?).await?;
    Ok(Json(handle.snapshot(Viewer::Staff).await?))
}

/// Optional `Idempotency-Key` header (a UUID); a fresh key when absent.
fn idempotency_key(headers: &HeaderMap) -> Result<CommandId, AppError> {
    match headers.get("idempotency-key") {
        None => Ok(CommandId::from_uuid(uuid::Uuid::new_v4())),
        Some(v) => v.to_str().ok().and_then(|s| s.parse().ok()).ok_or_else(|| {
            AppError::new(
                StatusCode::BAD_REQUEST,
                "invalid_id",
                "Idempotency-Key must be a UUID",
            )
        }),
    }
}

async fn add_seat(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
    Path(session): Path<String>,
    headers: HeaderMap,
    Body(req): Body<AddSeat>,
) -> Result<(StatusCode, Json<SeatCreated>), AppError> {
    let handle = session_for(&app, &p, path_id("session", &session)?).await?;
    let key = idempotency_key(&headers)?;
    let command = Command::AddSeat {
        display_name: req.display_name,
        weight_kg: req.weight_kg,
        location: req.location,
    };
    // A request with an Idempotency-Key may be a resend, however late: have
    // the session check its log if it no longer remembers the key.
    let retry = headers
        .contains_key("idempotency-key")
        .then_some(protocol::Seq(0));
    let first = match handle.command(p.actor(), key, command, retry).await? {
        CommandOutcome::Accepted { first, .. } => first,
        CommandOutcome::Rejected(r) => return Err(r.into()),
    };
    // The seat's id was made by the session task; read it from the event.
    let event = app
        .hub
        .log()
        .read(handle.id, protocol::Seq(first.0 - 1), 1)
        .await?;
    match event.first().map(|e| &e.body) {
        Some(EventBody::SeatAdded { seat, .. }) => Ok((
            StatusCode::CREATED,
            Json(SeatCreated {
                seat: *seat,
                seq: first,
            }),
        )),
        // The key's first use recorded something else.
        _ => Err(AppError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request",
        )),
    }
}

/// How many codes `issue_join_code` draws before it gives up.
const JOIN_CODE_DRAWS: usize = 4;

async fn issue_join_code(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
    Path((session, seat)): Path<(String, String)>,
) -> Result<(StatusCode, Json<JoinCodeIssued>), AppError> {
    let handle = session_for(&app, &p, path_id("session", &session)?).await?;
    let seat: SeatId = path_id("seat", &seat)?;
    let state = handle.snapshot(Viewer::Staff).await?;
    let Some(s) = state.seat(seat) else {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            "unknown_seat",
            format!("there is no seat {seat} in this session"),
        ));
    };
    if state.phase == protocol::SessionPhase::Closed || s.state.has_left() {
        return Err(AppError::new(
            StatusCode::CONFLICT,
            "seat_closed",
            "this seat can no longer be joined",
        ));
    }
    let expires_at = app
        .clock
        .now()
        .plus_ms(app.config.join_code_ttl.as_millis() as i64);
    // A code already on record is drawn again (40 random bits: a repeat is
    // rare, two in a row rarer than a disk failing).
    let mut code = None;
    for _ in 0..JOIN_CODE_DRAWS {
        let drawn = auth::new_join_code();
        let hash = auth::join_code_hash(&drawn);
        if app
            .store
            .save_join_code(hash, handle.id, seat, expires_at)
            .await?
        {
            code = Some(drawn);
            break;
        }
        tracing::warn!(session = %handle.id, %seat, "a join code drawn is already on record; drawing another");
    }
    let Some(code) = code else {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "join_code_unavailable",
            "no unused join code could be drawn; nothing was changed, try again",
        ));
    };
    tracing::info!(session = %handle.id, %seat, "join code issued");
    Ok((
        StatusCode::CREATED,
        Json(JoinCodeIssued {
            code,
            session: handle.id,
            seat,
            expires_at,
        }),
    ))
}

async fn join(
    State(app): State<Arc<App>>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    Body(req): Body<JoinRequest>,
) -> Result<Json<Joined>, AppError> {
    let attempt = app
        .join_attempts
        .begin(address.ip())
        .map_err(too_many_attempts)?;
    let bad = |message: &str| {
        AppError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_join_code",
            message.to_string(),
        )
    };
    let redeemed = app
        .store
        .redeem_join_code(auth::join_code_hash(&req.code), app.clock.now())
        .await?;
    // A wrong code counts against the address: guessing must be slow.
    let refuse = move |message: &str| {
        attempt.failed();
        bad(message)
    };
    let (session, seat) = match redeemed {
        Redeem::Seat(session, seat) => (session, seat),
        Redeem::Unknown => {
            return Err(refuse(
                "this code is not known; check it, or ask staff for a new one",
            ));
        }
        Redeem::Used => {
            return Err(refuse(
                "this code has already been used; ask staff for a new one",
            ));
        }
        Redeem::Expired => return Err(refuse("this code has expired; ask staff for a new one")),
    };
    let handle = app
        .hub
        .session(session)
        .await?
        .ok_or_else(|| bad("this code's session no longer exists"))?;
    let state = handle.snapshot(Viewer::Staff).await?;
    let Some(s) = state.seat(seat) else {
        return Err(bad("this code's seat no longer exists"));
    };
    if state.phase == protocol::SessionPhase::Closed || s.state.has_left() {
        return Err(bad("this seat is no longer in an open session"));
    }
    let display_name = s.display_name.clone();
    let principal = Principal::Participant {
        clinic: handle.clinic,
        session,
        seat,
    };
    let (token, expires_at) = app.issue_token(&principal);
    tracing::info!(%session, %seat, "participant joined");
    Ok(Json(Joined {
        token: TokenResponse { token, expires_at },
        session,
        seat,
        display_name,
    }))
}

async fn get_policy(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
) -> Result<Json<ClinicPolicy>, AppError> {
    Ok(Json(app.store.clinic_policy(p.clinic()).await?))
}

/// Replaces the clinic's policy (admins only). Sessions already running keep
/// the policy they started with: it is recorded in their first event.
async fn put_policy(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
    Body(policy): Body<ClinicPolicy>,
) -> Result<Json<ClinicPolicy>, AppError> {
    if !matches!(
        p,
        Principal::Staff {
            role: StaffRole::Admin,
            ..
        }
    ) {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only an admin may change the clinic's policy",
        ));
    }
    policy
        .validate()
        .map_err(|m| AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", m))?;
    app.store
        .set_clinic_policy(p.clinic(), policy.clone())
        .await?;
    tracing::info!(clinic = %p.clinic(), "clinic policy changed");
    Ok(Json(policy))
}

/// `GET /api/sessions/{id}/records.csv`: the clinical records, one row per
/// value (see `export`).
async fn export_records(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
    Path(session): Path<String>,
) -> Result<Response, AppError> {
    let handle = session_for(&app, &p, path_id("session", &session)?).await?;
    let mut records = Records::new(&app.store.staff_of(p.clinic()).await?);
    let download = Download {
        content_type: "text/csv; charset=utf-8",
        name: "records.csv",
        start: Records::header(),
        end: Box::new(String::new),
    };
    export(&app, &p, handle.id, download, move |events| {
        events.iter().map(|e| records.lines(e)).collect()
    })
    .await
}

/// `GET /api/sessions/{id}/records.fhir.json`: the clinical records as a
/// FHIR R4 Bundle (see `export::Fhir`).
async fn export_fhir(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
    Path(session): Path<String>,
) -> Result<Response, AppError> {
    let handle = session_for(&app, &p, path_id("session", &session)?).await?;
    let mut fhir = Fhir::new(handle.id, &app.store.staff_of(p.clinic()).await?);
    let download = Download {
        content_type: "application/fhir+json",
        name: "records.fhir.json",
        start: fhir_start(app.clock.now()),
        end: Box::new(fhir.end()),
    };
    export(&app, &p, handle.id, download, move |events| {
        fhir.entries(events)
    })
    .await
}

/// `GET /api/sessions/{id}/log.ndjson`: every event of the session, one JSON
/// object per line, in order.
async fn export_log(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
    Path(session): Path<String>,
) -> Result<Response, AppError> {
    let handle = session_for(&app, &p, path_id("session", &session)?).await?;
    let download = Download {
        content_type: "application/x-ndjson",
        name: "log.ndjson",
        start: String::new(),
        end: Box::new(String::new),
    };
    export(&app, &p, handle.id, download, |events| {
        events
            .iter()
            .map(|e| serde_json::to_string(e).expect("events serialize") + "\n")
            .collect()
    })
    .await
}

/// A file an export makes: its type and name, and what comes before and
/// after the rendered events (the end is written once they all are).
struct Download {
    content_type: &'static str,
    name: &'static str,
    start: String,
    end: Box<dyn FnOnce() -> String + Send>,
}

/// Streams `session`'s log as a download, rendering a chunk of events at a
/// time between the file's start and end. The first chunk is read before
/// answering, so a store that cannot be read gives a clear error instead of
/// a cut-off file; one that fails later cuts the download off before the end
/// (and the log says so). The log names who exported, by id.
async fn export(
    app: &App,
    who: &Principal,
    session: SessionId,
    file: Download,
    mut render: impl FnMut(&[protocol::Event]) -> String + Send + 'static,
) -> Result<Response, AppError> {
    let (store, size) = (app.store.clone(), app.config.export_chunk.max(1));
    let chunk = EventLog::read(&*store, session, protocol::Seq(0), size).await?;
    let text = file.start + &render(&chunk);
    let next = (chunk.len() == size)
        .then(|| chunk.last().map(|e| e.seq))
        .flatten();
    let name = file.name;
    let rest = futures_util::stream::unfold((next, render), move |(after, mut render)| {
        let store = store.clone();
        async move {
            let after = after?;
            match EventLog::read(&*store, session, after, size).await {
                Err(e) => {
                    tracing::warn!(%session, export = name, error = %e, "export cut off: the log could not be read");
                    Some((Err(std::io::Error::other(e.to_string())), (None, render)))
                }
                Ok(chunk) => {
                    let next = (chunk.len() == size)
                        .then(|| chunk.last().map(|e| e.seq))
                        .flatten();
                    Some((Ok(render(&chunk)), (next, render)))
                }
            }
        }
    });
    let body = futures_util::stream::iter([Ok::<_, std::io::Error>(text)])
        .chain(rest)
        .chain(futures_util::stream::iter(std::iter::once_with(
            move || Ok((file.end)()),
        )))
        .map(|part: Result<String, std::io::Error>| part.map(axum::body::Bytes::from));
    let by = match who.actor() {
        protocol::Actor::Staff { staff, .. } => staff.to_string(),
        _ => String::new(),
    };
    tracing::info!(%session, staff = %by, export = name, "session export started");
    Ok((
        [
            (header::CONTENT_TYPE, file.content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"holdspace-{session}-{name}\""),
            ),
            // A clinical record: not kept in a browser's or a proxy's cache.
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

async fn monitoring_all(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
    Path(session): Path<String>,
) -> Result<Json<Vec<monitor::MonitoringSummary>>, AppError> {
    let handle = session_for(&app, &p, path_id("session", &session)?).await?;
    let state = handle.snapshot(Viewer::Staff).await?;
    let now = app.clock.now();
    Ok(Json(
        state
            .seats
            .iter()
            .map(|seat| monitor::monitoring_summary(seat, &state, now))
            .collect(),
    ))
}

async fn monitoring_one(
    State(app): State<Arc<App>>,
    Staff(p): Staff,
    Path((session, seat)): Path<(String, String)>,
) -> Result<Json<monitor::MonitoringSummary>, AppError> {
    let handle = session_for(&app, &p, path_id("session", &session)?).await?;
    let seat: SeatId = path_id("seat", &seat)?;
    let state = handle.snapshot(Viewer::Staff).await?;
    let Some(s) = state.seat(seat) else {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            "unknown_seat",
            format!("there is no seat {seat} in this session"),
        ));
    };
    Ok(Json(monitor::monitoring_summary(
        s,
        &state,
        app.clock.now(),
    )))
}
