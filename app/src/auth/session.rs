//! The session: ID, access and refresh tokens in `HttpOnly; Secure;
//! SameSite=Lax` cookies (`Secure` is dropped only for plain http on
//! loopback; a `Secure` cookie's name carries the `__Host-` prefix, so no
//! sibling domain can set it), verified on every request.
//!
//! - The CSRF token every form sends is derived from the browser's session id
//!   (`ca_sid`, random, `HttpOnly`), which changes at sign-in and sign-out: a
//!   token seen before signing in is worthless after, and a session id
//!   planted by someone else is replaced.
//! - An expired ID token is refreshed with Cognito only on a page navigation
//!   (a `GET` of a page, not a form post or a fetch), at most once per
//!   [`REFRESH_INTERVAL`] per refresh token, and at most
//!   [`MAX_REFRESHES_PER_SECOND`] per instance: a flood of made-up refresh
//!   cookies cannot use up the pool's quota.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{ACCEPT, COOKIE, HOST, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::AppError;

const ID: &str = "ca_id";
const ACCESS: &str = "ca_access";
const REFRESH: &str = "ca_refresh";
const USERNAME: &str = "ca_user";
/// The browser's session id; the CSRF token is derived from it.
const SESSION: &str = "ca_sid";
/// Refresh tokens live 30 days in Cognito by default.
const REFRESH_MAX_AGE: u64 = 30 * 24 * 3600;
/// One refresh token is used at most this often.
pub const REFRESH_INTERVAL: Duration = Duration::from_mins(1);
/// Refreshes one instance sends Cognito, at most, each second.
pub const MAX_REFRESHES_PER_SECOND: u32 = 10;
/// Refresh tokens remembered (their hashes) for [`REFRESH_INTERVAL`].
const MAX_REMEMBERED: usize = 10_000;

/// The signed-in user, from a verified ID token.
#[derive(Debug, Clone)]
pub struct User {
    pub sub: String,
    pub email: String,
    pub name: String,
}

/// What every handler knows about the request's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: Option<User>,
    pub access_token: Option<String>,
    /// The CSRF token forms must send back (derived from the session id).
    pub csrf: String,
    /// The path prefix of links: `/<stage>` behind API Gateway, empty locally.
    pub base: String,
    pub secure: bool,
    /// The path of this request (for `next=` after signing in).
    pub path: String,
}

impl Session {
    /// Checks a form's CSRF token against the cookie, in constant time.
    pub fn check_csrf(&self, sent: &str) -> Result<(), AppError> {
        let a = self.csrf.as_bytes();
        let b = sent.as_bytes();
        let same =
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
        if same && !a.is_empty() {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "this form has expired or was not sent by this site; reload the page and try again"
                    .to_owned(),
            ))
        }
    }

    /// `Set-Cookie` values that store a fresh sign-in, with a new session
    /// id (so a new CSRF token).
    pub fn sign_in_cookies(
        &self,
        tokens: &crate::auth::cognito::Tokens,
        username: &str,
    ) -> Result<Vec<String>, AppError> {
        let s = self.secure;
        let mut out = vec![
            cookie(ID, &tokens.id, Some(3600), s),
            cookie(ACCESS, &tokens.access, Some(3600), s),
            cookie(USERNAME, username, Some(REFRESH_MAX_AGE), s),
            cookie(SESSION, &random_token()?, None, s),
        ];
        if let Some(refresh) = &tokens.refresh {
            out.push(cookie(REFRESH, refresh, Some(REFRESH_MAX_AGE), s));
        }
        Ok(out)
    }

    /// `Set-Cookie` values that end the session (and start a new session id).
    pub fn sign_out_cookies(&self) -> Result<Vec<String>, AppError> {
        let mut out: Vec<String> = [ID, ACCESS, REFRESH, USERNAME]
            .iter()
            .map(|name| cookie(name, "", Some(0), self.secure))
            .collect();
        out.push(cookie(SESSION, &random_token()?, None, self.secure));
        Ok(out)
    }

    /// A `Set-Cookie` value that drops the ID token (the next page
    /// navigation refreshes it).
    pub fn drop_id_cookie(&self) -> String {
        cookie(ID, "", Some(0), self.secure)
    }

    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A cookie's name: `__Host-<name>` when it is `Secure`.
pub fn cookie_name(name: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// One cookie: `HttpOnly; SameSite=Lax; Path=/`, no `Domain`; `Secure` (and
/// the `__Host-` prefix) unless plain local http.
pub fn cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> String {
    use std::fmt::Write as _;
    let mut c = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax",
        cookie_name(name, secure)
    );
    if let Some(age) = max_age {
        let _ = write!(c, "; Max-Age={age}");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The CSRF token of a session id.
pub fn csrf_token(session_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"cloudalbum csrf\0")
        .chain_update(session_id.as_bytes())
        .finalize();
    hex(&digest)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The value of cookie `name` under the name a request of this kind uses
/// (`__Host-` prefixed when secure).
fn get<'a>(cookies: &'a [(String, String)], name: &str, secure: bool) -> Option<&'a str> {
    let name = cookie_name(name, secure);
    cookies
        .iter()
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Plain http is allowed only to this machine (the local cloud and the
/// local binary); everywhere else cookies are `Secure`.
fn is_local_plain_http(headers: &HeaderMap) -> bool {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    !forwarded_https && (host == "127.0.0.1" || host == "localhost" || host.ends_with(".localhost"))
}

/// The API Gateway stage the request came through, as a link prefix.
fn base_path(request: &Request) -> String {
    use lambda_http::request::RequestContext;
    match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx
            .stage
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "$default")
            .map(|s| format!("/{s}"))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// 32 random bytes as hex; without an entropy source no token is made.
fn random_token() -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::Internal(format!("no randomness from the OS: {e}")))?;
    Ok(hex(&bytes))
}

fn is_token(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Verifies the session on every request and puts a [`Session`] in the
/// request's extensions; sets refreshed token and CSRF cookies on the response.
pub async fn middleware(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let jar = cookies(request.headers());
    let secure = !is_local_plain_http(request.headers());
    let mut set_cookies: Vec<String> = Vec::new();

    let session_id = if let Some(id) = get(&jar, SESSION, secure).filter(|v| is_token(v)) {
        id.to_owned()
    } else {
        let id = match random_token() {
            Ok(id) => id,
            Err(err) => return err.into_response(),
        };
        set_cookies.push(cookie(SESSION, &id, None, secure));
        id
    };

    let mut access_token = get(&jar, ACCESS, secure).map(str::to_owned);
    let mut user = None;
    if let Some(id) = get(&jar, ID, secure) {
        match state.verifier.verify(id).await {
            Ok(claims) => user = Some(claims),
            Err(err) => tracing_log(&format!("session: {err}")),
        }
    }
    if user.is_none()
        && is_navigation(&request)
        && let (Some(refresh), Some(username)) =
            (get(&jar, REFRESH, secure), get(&jar, USERNAME, secure))
        && state.refresh_gate.admit(refresh, Instant::now())
    {
        match state.cognito.refresh(refresh, username).await {
            Ok(tokens) => {
                if let Ok(claims) = state.verifier.verify(&tokens.id).await {
                    set_cookies.push(cookie(ID, &tokens.id, Some(3600), secure));
                    set_cookies.push(cookie(ACCESS, &tokens.access, Some(3600), secure));
                    access_token = Some(tokens.access.clone());
                    user = Some(claims);
                }
            }
            Err(err) => {
                tracing_log(&format!("session refresh: {err}"));
                for name in [ID, ACCESS, REFRESH, USERNAME] {
                    set_cookies.push(cookie(name, "", Some(0), secure));
                }
            }
        }
    }
    let csrf = csrf_token(&session_id);
    let session = Session {
        user: user.map(|c| User {
            sub: c.sub,
            email: c.email,
            name: c.name,
        }),
        access_token,
        csrf,
        base: base_path(&request),
        secure,
        path: request.uri().path().to_owned(),
    };
    request.extensions_mut().insert(session);
    let mut response = next.run(request).await;
    for value in set_cookies {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}

/// A page navigation: a `GET` that asks for a page, not a form post, a
/// `fetch` or an asset. Only these may refresh tokens.
fn is_navigation(request: &Request) -> bool {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let document = header("sec-fetch-dest").is_none_or(|d| d == "document");
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|a| a.contains("text/html") || a.contains("*/*"));
    request.method() == Method::GET
        && document
        && wants_html
        && request.uri().path() != contract::routes::HEALTH
}

/// Who may refresh now: one refresh token at most once per
/// [`REFRESH_INTERVAL`], and at most [`MAX_REFRESHES_PER_SECOND`] in all.
/// Refresh tokens are remembered by their SHA-256, never in clear.
#[derive(Debug, Default)]
pub struct RefreshGate {
    inner: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    recent: HashMap<[u8; 32], Instant>,
    second: Option<Instant>,
    in_second: u32,
}

impl RefreshGate {
    /// Whether `refresh_token` may be sent to Cognito at `now`; if so, it is
    /// counted.
    pub fn admit(&self, refresh_token: &str, now: Instant) -> bool {
        let Ok(mut gate) = self.inner.lock() else {
            return false;
        };
        let key: [u8; 32] = Sha256::digest(refresh_token.as_bytes()).into();
        if gate
            .recent
            .get(&key)
            .is_some_and(|at| now.saturating_duration_since(*at) < REFRESH_INTERVAL)
        {
            return false;
        }
        if gate
            .second
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1))
        {
            gate.second = Some(now);
            gate.in_second = 0;
        }
        if gate.in_second >= MAX_REFRESHES_PER_SECOND {
            return false;
        }
        if gate.recent.len() >= MAX_REMEMBERED {
            gate.recent
                .retain(|_, at| now.saturating_duration_since(*at) < REFRESH_INTERVAL);
            if gate.recent.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        gate.in_second += 1;
        gate.recent.insert(key, now);
        true
    }
}

/// Logs to stderr (CloudWatch on Lambda) without tokens or secrets. Control
/// characters are escaped and the line is bounded, so text an attacker
/// chose (a token's `kid`, a cookie) cannot forge or flood log lines.
pub fn tracing_log(message: &str) {
    eprintln!("{}", log_safe(message, 2000));
}

/// `text` with control characters escaped (`\n`, `\u{1b}`), at most `max`
/// characters of it.
pub fn log_safe(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| AppError::Internal("the session layer is missing".to_owned()))
    }
}

/// A handler argument that requires a signed-in user; others are sent to
/// the sign-in page (303) and come back afterwards.
#[derive(Debug, Clone)]
pub struct SignedIn(pub User, pub Session);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if let Some(user) = session.user.clone() {
            Ok(Self(user, session))
        } else {
            let next = crate::html::url_encode(&session.path);
            Err(Redirect::to(&format!("{}/signin?next={next}", session.base)).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_lax_and_secure_host_only_off_loopback() {
        let c = cookie("ca_id", "t", Some(3600), true);
        assert_eq!(
            c,
            "__Host-ca_id=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600; Secure"
        );
        assert!(!c.contains("Domain"));
        let local = cookie("ca_id", "t", None, false);
        assert_eq!(local, "ca_id=t; Path=/; HttpOnly; SameSite=Lax");
        // A secure request reads only the prefixed cookie.
        let jar = vec![
            ("ca_id".to_owned(), "planted".to_owned()),
            ("__Host-ca_id".to_owned(), "real".to_owned()),
        ];
        assert_eq!(get(&jar, ID, true), Some("real"));
        assert_eq!(get(&jar, ID, false), Some("planted"));
    }

    #[test]
    fn the_csrf_token_follows_the_session_id() {
        let a = csrf_token(&"a".repeat(64));
        assert!(is_token(&a));
        assert_eq!(a, csrf_token(&"a".repeat(64)));
        assert_ne!(a, csrf_token(&"b".repeat(64)));
        assert_ne!(a, "a".repeat(64), "the token is not the cookie itself");
    }

    #[test]
    fn refreshes_are_once_per_interval_per_token_and_bounded_per_second() {
        let gate = RefreshGate::default();
        let t0 = Instant::now();
        assert!(gate.admit("token-a", t0));
        assert!(!gate.admit("token-a", t0 + Duration::from_secs(30)));
        assert!(gate.admit("token-a", t0 + REFRESH_INTERVAL));
        // A flood of made-up tokens: at most the per-second budget gets through.
        let flood = (0..1000)
            .filter(|i| gate.admit(&format!("made-up-{i}"), t0 + REFRESH_INTERVAL))
            .count();
        assert_eq!(flood, MAX_REFRESHES_PER_SECOND as usize - 1);
        let later = t0 + REFRESH_INTERVAL + Duration::from_secs(1);
        assert!(gate.admit("made-up-999", later));
    }

    #[test]
    fn only_page_navigations_refresh() {
        let request = |method: &str, path: &str, headers: &[(&str, &str)]| {
            let mut r = axum::http::Request::builder().method(method).uri(path);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.body(axum::body::Body::empty()).unwrap()
        };
        assert!(is_navigation(&request("GET", "/", &[])));
        assert!(is_navigation(&request(
            "GET",
            "/photos",
            &[("accept", "text/html,*/*"), ("sec-fetch-dest", "document")]
        )));
        assert!(!is_navigation(&request("POST", "/photos", &[])));
        assert!(!is_navigation(&request(
            "GET",
            contract::routes::HEALTH,
            &[]
        )));
        assert!(!is_navigation(&request(
            "GET",
            "/",
            &[("sec-fetch-dest", "image")]
        )));
        assert!(!is_navigation(&request(
            "GET",
            "/",
            &[("accept", "application/json")]
        )));
    }

    #[test]
    fn logged_text_has_no_control_characters_and_is_bounded() {
        assert_eq!(log_safe("kid\n\u{1b}[31m", 100), "kid\\n\\u{1b}[31m");
        assert_eq!(log_safe(&"x".repeat(10), 4), "xxxx…");
    }

    #[test]
    fn only_loopback_plain_http_drops_secure() {
        let mut h = HeaderMap::new();
        h.insert(
            HOST,
            HeaderValue::from_static("abc.execute-api.localhost:4566"),
        );
        assert!(is_local_plain_http(&h));
        h.insert(
            HOST,
            HeaderValue::from_static("abc.execute-api.ap-southeast-1.amazonaws.com"),
        );
        assert!(!is_local_plain_http(&h));
        h.insert(HOST, HeaderValue::from_static("127.0.0.1:8080"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(!is_local_plain_http(&h));
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let session = Session {
            user: None,
            access_token: None,
            csrf: "a".repeat(64),
            base: String::new(),
            secure: true,
            path: "/".to_owned(),
        };
        assert!(session.check_csrf(&"a".repeat(64)).is_ok());
        assert!(session.check_csrf(&"b".repeat(64)).is_err());
        assert!(session.check_csrf("").is_err());
    }

    #[test]
    fn random_tokens_are_64_hex() {
        let a = random_token().unwrap();
        assert!(is_token(&a));
        assert_ne!(a, random_token().unwrap());
    }
}
