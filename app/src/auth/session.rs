//! The session: ID, access and refresh tokens in `HttpOnly; Secure;
//! SameSite=Lax` cookies (`Secure` is dropped only for plain http on
//! loopback), verified on every request and refreshed when the ID token has
//! expired; and a CSRF token (double-submit cookie) for every form.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{COOKIE, HOST, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::AppState;
use crate::error::AppError;

const ID: &str = "ca_id";
const ACCESS: &str = "ca_access";
const REFRESH: &str = "ca_refresh";
const USERNAME: &str = "ca_user";
const CSRF: &str = "ca_csrf";
/// Refresh tokens live 30 days in Cognito by default.
const REFRESH_MAX_AGE: u64 = 30 * 24 * 3600;

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
    /// The CSRF token forms must send back.
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

    /// `Set-Cookie` values that store a fresh sign-in.
    pub fn sign_in_cookies(
        &self,
        tokens: &crate::auth::cognito::Tokens,
        username: &str,
    ) -> Vec<String> {
        let mut out = vec![
            cookie(ID, &tokens.id, Some(3600), self.secure),
            cookie(ACCESS, &tokens.access, Some(3600), self.secure),
            cookie(USERNAME, username, Some(REFRESH_MAX_AGE), self.secure),
        ];
        if let Some(refresh) = &tokens.refresh {
            out.push(cookie(REFRESH, refresh, Some(REFRESH_MAX_AGE), self.secure));
        }
        out
    }

    /// `Set-Cookie` values that end the session.
    pub fn sign_out_cookies(&self) -> Vec<String> {
        [ID, ACCESS, REFRESH, USERNAME]
            .iter()
            .map(|name| cookie(name, "", Some(0), self.secure))
            .collect()
    }

    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// One cookie: `HttpOnly; SameSite=Lax; Path=/`, `Secure` unless plain local http.
pub fn cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> String {
    use std::fmt::Write as _;
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        let _ = write!(c, "; Max-Age={age}");
    }
    if secure {
        c.push_str("; Secure");
    }
    c
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

fn get<'a>(cookies: &'a [(String, String)], name: &str) -> Option<&'a str> {
    cookies
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
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
    use std::fmt::Write as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::Internal(format!("no randomness from the OS: {e}")))?;
    Ok(bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    }))
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

    let csrf = if let Some(token) = get(&jar, CSRF).filter(|v| is_token(v)) {
        token.to_owned()
    } else {
        let token = match random_token() {
            Ok(token) => token,
            Err(err) => return err.into_response(),
        };
        set_cookies.push(cookie(CSRF, &token, None, secure));
        token
    };

    let mut access_token = get(&jar, ACCESS).map(str::to_owned);
    let mut user = None;
    if let Some(id) = get(&jar, ID) {
        match state.verifier.verify(id).await {
            Ok(claims) => user = Some(claims),
            Err(err) => tracing_log(&format!("session: {err}")),
        }
    }
    if user.is_none()
        && let (Some(refresh), Some(username)) = (get(&jar, REFRESH), get(&jar, USERNAME))
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

/// Logs to stderr (CloudWatch on Lambda) without tokens or secrets.
pub fn tracing_log(message: &str) {
    eprintln!("{message}");
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
    fn cookies_are_http_only_lax_and_secure_off_loopback() {
        let c = cookie("ca_id", "t", Some(3600), true);
        assert_eq!(
            c,
            "ca_id=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600; Secure"
        );
        assert!(!cookie("ca_id", "t", None, false).contains("Secure"));
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
