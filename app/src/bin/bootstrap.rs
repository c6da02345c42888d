//! AWS Lambda entry point: serves [`cloudalbum::router`] through `lambda_http`.
//!
//! The template sets `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true`, so the router
//! sees `/health`, not `/<stage>/health`, behind an API Gateway REST API; links
//! get the stage back from the request context.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let state = match cloudalbum::AppState::from_env().await {
        Ok(state) => state,
        Err(err) => {
            eprintln!("error: cannot start: {err}");
            return Err(err.into());
        }
    };
    lambda_http::run(cloudalbum::router(state)).await
}
