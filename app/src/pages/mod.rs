//! Routes and the pieces every page shares: the page context, security
//! headers, and error pages rendered from templates.

pub mod account;
pub mod photos;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::AppState;
use crate::auth::session::Session;
use crate::error::{AppError, ErrorPage};
use crate::html::render;

/// What the layout needs on every page.
#[derive(Debug, Serialize)]
pub struct PageContext {
    pub title: String,
    pub base: String,
    pub csrf: String,
    pub user: Option<UserView>,
}

#[derive(Debug, Serialize)]
pub struct UserView {
    pub name: String,
    pub email: String,
}

impl PageContext {
    pub fn new(session: &Session, title: &str) -> Self {
        Self {
            title: title.to_owned(),
            base: session.base.clone(),
            csrf: session.csrf.clone(),
            user: session.user.as_ref().map(|u| UserView {
                name: if u.name.is_empty() {
                    u.email.clone()
                } else {
                    u.name.clone()
                },
                email: u.email.clone(),
            }),
        }
    }
}

/// Renders `template` with `page` and the page's own `data` (merged at the top level).
pub fn page(
    state: &AppState,
    session: &Session,
    template: &str,
    title: &str,
    data: serde_json::Value,
) -> Result<Html<String>, AppError> {
    let mut context = match data {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    context.insert(
        "page".to_owned(),
        serde_json::to_value(PageContext::new(session, title)).map_err(AppError::internal)?,
    );
    render(&state.templates, template, &context).map(Html)
}

/// Security headers on every response; CSP allows the bucket and the static
/// assets' origins and OpenStreetMap tiles, and no inline script.
/// `Referrer-Policy: same-origin` keeps the pages' paths from other sites; the
/// map's tile images alone override it with `strict-origin-when-cross-origin`
/// (the tile layer's `referrerPolicy` in `static/js/map.js`), because
/// OpenStreetMap's tile policy refuses requests without a referrer.
pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let s = &state.settings;
    let bucket = s.bucket_origin();
    let assets = s.static_origin();
    let csp = format!(
        "default-src 'self'; script-src 'self' {assets}; style-src 'self' {assets}; \
         img-src 'self' data: blob: {bucket} {assets} https://tile.openstreetmap.org; \
         connect-src 'self' {bucket}; font-src 'self' {assets}; frame-ancestors 'none'; \
         base-uri 'self'; form-action 'self'; object-src 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Turns an error response into the error page, with the layout.
pub async fn error_pages(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let session = request.extensions().get::<Session>().cloned();
    let response = next.run(request).await;
    let Some(error) = response.extensions().get::<ErrorPage>().cloned() else {
        return response;
    };
    let Some(session) = session else {
        return response;
    };
    let title = error.status.canonical_reason().unwrap_or("Error");
    match page(
        &state,
        &session,
        "error",
        title,
        serde_json::json!({ "status": error.status.as_u16(), "message": error.message }),
    ) {
        Ok(html) => {
            let mut out = (error.status, html).into_response();
            for cookie in response.headers().get_all(header::SET_COOKIE) {
                out.headers_mut().append(header::SET_COOKIE, cookie.clone());
            }
            out
        }
        Err(_) => response,
    }
}

/// Unknown routes: a 404 page.
pub async fn not_found() -> AppError {
    AppError::NotFound
}
