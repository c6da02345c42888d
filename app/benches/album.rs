//! The album and search pages of a user with 10,000 photos, through the local
//! server (`axum::serve` on 127.0.0.1, real HTTP, a signed-in session).
//!
//! For each request it records, from the app's own counters
//! (`cloudalbum::metrics`, an SDK interceptor around every attempt): the AWS
//! calls, the DynamoDB items read, and the time spent waiting on AWS. The
//! app's own time is the request's wall time minus that wait, so what the
//! emulator takes to answer a `Query` is not counted against the app. The
//! local cloud and the stage's resources come from the same setup as the
//! handler tests.
//!
//! Run with `scripts/bench.sh` (or `cargo bench --workspace --locked --bench album`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudalbum::metrics;
use cloudalbum::photos::Photo;
use http_body_util::BodyExt;
use support::{Browser, world};

const PHOTOS: usize = 10_000;
/// Requests timed per page, at most; and for at most [`BUDGET`] (at least
/// [`MIN_REQUESTS`]). The emulator answers a `Query` by sorting the whole
/// partition in Python (about a second for 10,000 items on this machine, more
/// for the search partition's 90,000), so runs are bounded in time; the app's
/// own time does not depend on it.
const REQUESTS: usize = 100;
const MIN_REQUESTS: usize = 20;
const BUDGET: Duration = Duration::from_secs(100);
/// Uploads written at once while seeding.
const SEEDERS: usize = 16;

struct Sample {
    wall: Duration,
    aws: Duration,
    own: Duration,
    calls: u64,
    items: u64,
}

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

        // 10,000 photos with their search words, as uploads store them.
        let seeding = Instant::now();
        seed(&state.store, &sub).await;
        eprintln!("seeded {PHOTOS} photos in {:.1} s", seeding.elapsed().as_secs_f64());

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = cloudalbum::router(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
        let cookie = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let run = |path: &'static str, tiles: usize| {
            let (client, cookie) = (client.clone(), cookie.clone());
            async move {
                let get = || {
                    let request = hyper::Request::get(format!("http://{address}{path}"))
                        .header("cookie", &cookie)
                        .body(http_body_util::Empty::new())
                        .unwrap();
                    client.request(request)
                };
                // Warm up: connections, JWKS.
                for _ in 0..3 {
                    let r = get().await.unwrap();
                    assert_eq!(r.status(), 200);
                    r.into_body().collect().await.unwrap();
                }
                let mut samples = Vec::with_capacity(REQUESTS);
                let started = Instant::now();
                while samples.len() < REQUESTS
                    && (samples.len() < MIN_REQUESTS || started.elapsed() < BUDGET)
                {
                    let before = metrics::snapshot();
                    let start = Instant::now();
                    let response = get().await.unwrap();
                    assert_eq!(response.status(), 200);
                    let body = response.into_body().collect().await.unwrap().to_bytes();
                    let wall = start.elapsed();
                    let used = metrics::snapshot() - before;
                    assert_eq!(String::from_utf8_lossy(&body).matches("class=\"tile\"").count(), tiles, "{path}");
                    samples.push(Sample {
                        wall,
                        own: wall.saturating_sub(used.aws_wait),
                        aws: used.aws_wait,
                        calls: used.aws_calls,
                        items: used.dynamodb_items_read,
                    });
                }
                samples
            }
        };
        let pages = [
            ("album page (newest 24)", "/", 24),
            ("search, a tag on 1,000 photos (`set3`, first 24)", "/search?q=set3", 24),
            ("search, a word of one photo (`4321`)", "/search?q=4321", 1),
        ];
        println!("| {PHOTOS} photos, local server | requests | AWS calls | DynamoDB items read | app's own time p50 / p99 | waiting on AWS p50 | end to end p50 / p99 | goal (own p50 ≤ 2 ms) |");
        println!("|---|---|---|---|---|---|---|---|");
        for (name, path, tiles) in pages {
            let samples = run(path, tiles).await;
            let calls = range(samples.iter().map(|s| s.calls));
            let items = range(samples.iter().map(|s| s.items));
            let (own50, own99) = percentiles(samples.iter().map(|s| s.own));
            let (wall50, wall99) = percentiles(samples.iter().map(|s| s.wall));
            let (aws50, _) = percentiles(samples.iter().map(|s| s.aws));
            println!(
                "| {name} | {} | {calls} | {items} | {:.2} / {:.2} ms | {:.1} ms | {:.1} / {:.1} ms | {} |",
                samples.len(),
                ms(own50),
                ms(own99),
                ms(aws50),
                ms(wall50),
                ms(wall99),
                if own50 <= Duration::from_millis(2) { "met" } else { "not met" }
            );
        }
    });
}

/// 10,000 photos with their search words, as uploads store them, a few at once.
async fn seed(store: &cloudalbum::photos::Store, sub: &str) {
    let store = Arc::new(store.clone());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut seeders = tokio::task::JoinSet::new();
    for _ in 0..SEEDERS {
        let (store, next, sub) = (store.clone(), next.clone(), sub.to_owned());
        seeders.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= PHOTOS {
                    break;
                }
                store.put(&sub, &photo(i), None).await.unwrap();
            }
        });
    }
    while let Some(done) = seeders.join_next().await {
        done.unwrap();
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentiles(values: impl Iterator<Item = Duration>) -> (Duration, Duration) {
    let mut v: Vec<Duration> = values.collect();
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

/// `n`, or `lo–hi` when requests differed.
fn range(values: impl Iterator<Item = u64>) -> String {
    let v: Vec<u64> = values.collect();
    let (lo, hi) = (v.iter().min().unwrap(), v.iter().max().unwrap());
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    }
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
        lat: Some(37.5 + (i as f64) / 100_000.0),
        lng: Some(126.9),
        taken_at: Some("2024-07-01T18:30:00".to_owned()),
        uploaded_at: "2026-11-29T01:00:00Z".to_owned(),
        make: Some("Canon".to_owned()),
        model: Some("EOS 5D".to_owned()),
        city: Some("Seoul".to_owned()),
        country: Some("Korea (Republic of)".to_owned()),
        address: Some("Seoul, Korea (Republic of)".to_owned()),
        rev: 0,
    }
}
