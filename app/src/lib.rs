//! CloudAlbum: a photo album that runs on AWS Lambda and as a local server.
//!
//! The whole app is one [`axum::Router`] built by [`router`]. On Lambda,
//! [`entry::lambda`] serves it through `lambda_http`; locally, [`entry::local`]
//! serves the very same router with `axum::serve`. The binaries in
//! `app/entry` call them with the page templates (`app/pages`).

pub mod access_log;
pub mod auth;
pub mod config;
pub mod entry;
pub mod error;
pub mod geo;
pub mod html;
pub mod images;
pub mod metrics;
pub mod pages;
pub mod photos;
pub mod state;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde_json::json;

pub use state::AppState;

use pages::{account, photos as photo_pages};

/// Forms are small: photos go to S3, never through the app.
const MAX_FORM_BYTES: usize = 64 * 1024;

async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "stage": state.settings.stage }))
}

/// The application: every route of CloudAlbum.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(contract::routes::HEALTH, get(health))
        .route("/", get(photo_pages::album))
        .route("/signin", get(account::signin_page).post(account::signin))
        .route("/signup", get(account::signup_page).post(account::signup))
        .route(
            "/confirm",
            get(account::confirm_page).post(account::confirm),
        )
        .route("/signout", post(account::signout))
        .route("/forgot", get(account::forgot_page).post(account::forgot))
        .route("/reset", get(account::reset_page).post(account::reset))
        .route(
            "/profile",
            get(account::profile_page).post(account::profile),
        )
        .route(
            "/photos",
            get(photo_pages::album).post(photo_pages::finish_upload),
        )
        .route("/photos/new", get(photo_pages::upload_page))
        .route("/photos/uploads", post(photo_pages::upload_url))
        .route("/photos/{id}", get(photo_pages::detail))
        .route(
            "/photos/{id}/edit",
            get(photo_pages::edit_page).post(photo_pages::edit),
        )
        .route(
            "/photos/{id}/delete",
            get(photo_pages::delete_page).post(photo_pages::delete),
        )
        .route("/photos/{id}/map", get(photo_pages::map_one))
        .route("/search", get(photo_pages::search))
        .route("/map", get(photo_pages::map_all))
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            pages::error_pages,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::session::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            pages::security_headers,
        ))
        .layer(middleware::from_fn_with_state(
            access_log::Sink::stdout(),
            access_log::middleware,
        ))
        .with_state(state)
}
