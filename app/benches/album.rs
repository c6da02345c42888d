//! The album page of a user with 1,000 photos, through the local server
//! (`axum::serve` on 127.0.0.1, real HTTP, a signed-in session): p50 and p99.
//! Each request verifies the ID token, queries the newest 24 items and signs
//! 48 URLs. The local cloud and the stage's resources come from the same
//! setup as the handler tests.
//!
//! Run with `scripts/bench.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use cloudalbum::store::{Photo, Store};
use http_body_util::BodyExt;
use support::{Browser, world};

const PHOTOS: usize = 1000;
const REQUESTS: usize = 300;

fn main() {
    let w = world();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let state = w.state().await;
        // A signed-in user, through the app's own forms.
        let mut b = Browser::new(state.clone());
        b.get("/signin").await;
        b.post("/signup", &[("email", "bench@example.com"), ("name", "Bench"), ("password", "Passw0rd!x")], true).await;
        b.post("/confirm", &[("email", "bench@example.com"), ("code", "123456")], true).await;
        let page = b.post("/signin", &[("email", "bench@example.com"), ("password", "Passw0rd!x")], true).await;
        assert_eq!(page.status, 303, "{}", page.body);
        let sub = state.verifier.verify(&b.cookies["ca_id"]).await.unwrap().sub;

        let store = Store { ddb: state.store.ddb.clone(), table: state.store.table.clone() };
        for i in 0..PHOTOS {
            store.put(&sub, &photo(i)).await.unwrap();
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = cloudalbum::router(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
        let cookie = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let get = || {
            let request = hyper::Request::get(format!("http://{address}/"))
                .header("cookie", &cookie)
                .body(http_body_util::Empty::new())
                .unwrap();
            client.request(request)
        };
        // Warm up: connections, JWKS.
        for _ in 0..10 {
            let r = get().await.unwrap();
            assert_eq!(r.status(), 200);
            r.into_body().collect().await.unwrap();
        }
        let mut times: Vec<Duration> = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            let start = Instant::now();
            let response = get().await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            times.push(start.elapsed());
            assert_eq!(String::from_utf8_lossy(&body).matches("class=\"tile\"").count(), 24);
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p50 = times[REQUESTS / 2];
        let p99 = times[REQUESTS * 99 / 100];
        println!("| measure | p50 | p99 | goal |");
        println!("|---|---|---|---|");
        println!(
            "| album page, {PHOTOS} photos, {REQUESTS} requests, local server | {:.1} ms | {:.1} ms | p50 ≤ 20 ms {} |",
            ms(p50),
            ms(p99),
            if p50 <= Duration::from_millis(20) { "met" } else { "not met" }
        );
    });
}

fn photo(i: usize) -> Photo {
    Photo {
        id: ulid::Ulid::from_parts(1_700_000_000_000 + i as u64, i as u128).to_string(),
        tags: vec!["bench".to_owned(), format!("set{}", i % 10)],
        description: format!("Photo number {i}"),
        filename: format!("IMG_{i:04}.jpg"),
        ext: "jpg".to_owned(),
        content_type: "image/jpeg".to_owned(),
        size: 2_000_000,
        width: 4000,
        height: 3000,
        lat: Some(37.5 + (i as f64) / 10_000.0),
        lng: Some(126.9),
        taken_at: Some("2024-07-01T18:30:00".to_owned()),
        uploaded_at: "2026-11-29T01:00:00Z".to_owned(),
        make: Some("Canon".to_owned()),
        model: Some("EOS 5D".to_owned()),
        city: Some("Seoul".to_owned()),
        country: Some("Korea (Republic of)".to_owned()),
        address: Some("Seoul, Korea (Republic of)".to_owned()),
    }
}
