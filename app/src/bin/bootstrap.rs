//! AWS Lambda entry point: serves [`cloudalbum::router`] through `lambda_http`.
//!
//! The template sets `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true`, so the router
//! sees `/health`, not `/<stage>/health`, behind an API Gateway REST API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = cloudalbum::router(cloudalbum::AppState::from_env());
    lambda_http::run(app).await
}
