//! CloudAlbum: a photo album that runs on AWS Lambda and as a local server.
//!
//! The whole app is one [`axum::Router`] built by [`router`]. The Lambda entry
//! (`src/bin/bootstrap.rs`) serves it through `lambda_http`; the local entry
//! (`src/bin/cloudalbum.rs`) serves the very same router with `axum::serve`.

use axum::{Json, Router, routing::get};
use serde::Serialize;

/// Shared state handed to every handler. Grows as the app does (SDK clients,
/// templates); built once at start-up.
#[derive(Debug, Clone, Default)]
pub struct AppState {
    /// The deployment stage this instance serves (`dev`, `prod`, `local`).
    pub stage: String,
}

impl AppState {
    /// Reads the settings the CloudFormation template puts in the function's
    /// environment. Missing optional settings fall back to local defaults.
    pub fn from_env() -> Self {
        Self {
            stage: std::env::var("STAGE").unwrap_or_else(|_| "local".to_owned()),
        }
    }
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    stage: String,
}

async fn health(axum::extract::State(state): axum::extract::State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        stage: state.stage,
    })
}

/// The application: every route of CloudAlbum.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_reports_ok_and_the_stage() {
        let app = router(AppState {
            stage: "dev".to_owned(),
        });
        let response = app
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], "ok");
        assert_eq!(json["stage"], "dev");
    }

    #[tokio::test]
    async fn unknown_route_is_404() {
        let app = router(AppState::default());
        let response = app
            .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
