//! Local entry point: serves [`cloudalbum::router`] with `axum::serve` on 127.0.0.1.
//!
//! `PORT` picks the port (default 8080). Only loopback is ever bound.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
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
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: cannot listen on {addr}: {err}; set `PORT` to a free port");
            return ExitCode::from(1);
        }
    };
    let state = match cloudalbum::AppState::from_env().await {
        Ok(state) => state,
        Err(err) => {
            eprintln!("error: cannot start: {err}");
            return ExitCode::from(2);
        }
    };
    let app = cloudalbum::router(state);
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
