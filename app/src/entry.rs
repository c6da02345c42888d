//! The two ways the app runs, as plain functions the binaries in `app/entry`
//! call with the page templates: on AWS Lambda ([`lambda`]) and as a local
//! server ([`local`]).
//!
//! They live in the library, not the binaries, so that the generic runtime
//! and server code is compiled here, once: a binary then only links, and a
//! page edit (which rebuilds the binary) takes about a second.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use crate::html::Sources;
use crate::{AppState, router};

/// Serves the router through `lambda_http` on AWS Lambda.
///
/// The template sets `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true`, so the router
/// sees `/health`, not `/<stage>/health`, behind an API Gateway REST API; links
/// get the stage back from the request context.
pub fn lambda(pages: Sources) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let state = match AppState::from_env(pages).await {
            Ok(state) => state,
            Err(err) => {
                // Lambda reports a failed init with this line in the logs.
                eprintln!("error: cannot start: {err}");
                return ExitCode::FAILURE;
            }
        };
        match lambda_http::run(router(state)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: the Lambda runtime stopped: {err}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Serves the router with `axum::serve` on 127.0.0.1: `PORT` picks the port
/// (default 8080). Only loopback is ever bound; Ctrl-C stops.
pub fn local(pages: Sources) -> ExitCode {
    let port = match std::env::var("PORT") {
        Ok(value) => {
            let Ok(port) = value.parse::<u16>() else {
                eprintln!("error: `PORT` must be a port number 0..=65535, got `{value}`");
                return ExitCode::from(2);
            };
            port
        }
        Err(_) => 8080,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve_locally(pages, port))
}

async fn serve_locally(pages: Sources, port: u16) -> ExitCode {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: cannot listen on {addr}: {err}; set `PORT` to a free port");
            return ExitCode::from(1);
        }
    };
    let state = match AppState::from_env(pages).await {
        Ok(state) => state,
        Err(err) => {
            eprintln!("error: cannot start: {err}");
            return ExitCode::from(2);
        }
    };
    let app = router(state);
    match listener.local_addr() {
        Ok(bound) => eprintln!("cloudalbum listening on http://{bound}/"),
        Err(_) => eprintln!("cloudalbum listening on http://{addr}/"),
    }
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    {
        eprintln!("error: server stopped: {err}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
