//! One local cloud per test binary with the stage's resources, and a small
//! browser: requests through the router with a cookie jar.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cloudalbum::AppState;
use cloudalbum::config::Settings;
use deployer::deploy::session::{Session, SessionOptions};
use deployer::deploy::{function, pipeline, prepare};
use deployer::localcloud::LocalCloud;
use deployer::output::Printer;
use deployer::stage::Stage;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const REGION: &str = "ap-southeast-1";

/// The emulator and the stage's outputs, shared by the tests of this binary.
/// Clients are made per test (each test has its own runtime).
pub struct World {
    /// The deployed function's environment, as Lambda holds it.
    pub function_env: BTreeMap<String, String>,
    pub settings: Settings,
    pub secret: Option<String>,
    endpoint: String,
    _cloud: LocalCloud,
    _data: tempfile::TempDir,
}

/// The world, started on first use. The emulator is a child process in its
/// own group; the test harness ending takes it down with the temp folder.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    // Built on a thread of its own: the tests calling this run inside a runtime.
    WORLD.get_or_init(|| std::thread::spawn(start).join().unwrap())
}

/// Deploys the `local` stage through the deployer's own pipeline, with
/// stand-in code (the function is not invoked here), and takes the app's
/// settings from the deployed function's environment.
fn start() -> World {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap();
    let project = Path::new(&manifest_dir).parent().unwrap();
    let data = tempfile::tempdir().unwrap();
    let cloud = LocalCloud::start_fresh(project, data.path()).unwrap();
    let endpoint = cloud.endpoint();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stage = Stage::load(project, contract::defaults::LOCAL_STAGE).unwrap();
    let options = SessionOptions {
        region: Some(REGION.to_owned()),
        profile: None,
        endpoint_url: Some(endpoint.clone()),
        artifacts_bucket: None,
        assume_yes: true,
        allow_replace: Vec::new(),
    };
    let function_env = rt.block_on(async {
        let session = Session::open(stage, &options, Printer::silent())
            .await
            .unwrap();
        let prepared =
            prepare::prepare_with_code(&session, b"#!/bin/sh\nexit 1\n", &project.join("static"))
                .unwrap();
        let report = pipeline::deploy(&session, &prepared).await.unwrap();
        assert!(!report.up_to_date, "{report}");
        function::environment(&session).await.unwrap()
    });
    let mut settings = Settings::from_lookup(|name| {
        function_env
            .get(name)
            .cloned()
            .or_else(|| (name == "AWS_REGION").then(|| REGION.to_owned()))
    })
    .unwrap();
    // Smaller limits than the stage's, so the tests' files stay small.
    settings.max_upload_bytes = 2 * 1024 * 1024;
    settings.max_pixels = 40_000_000;
    let sdk = rt.block_on(sdk_config(&endpoint));
    let secret = rt.block_on(async {
        aws_sdk_cognitoidentityprovider::Client::new(&sdk)
            .describe_user_pool_client()
            .user_pool_id(&settings.user_pool_id)
            .client_id(&settings.client_id)
            .send()
            .await
            .unwrap()
            .user_pool_client
            .and_then(|c| c.client_secret)
    });
    World {
        function_env,
        settings,
        secret,
        endpoint,
        _cloud: cloud,
        _data: data,
    }
}

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await
}

impl World {
    pub async fn state(&self) -> AppState {
        let sdk = sdk_config(&self.endpoint).await;
        AppState::with(
            self.settings.clone(),
            &sdk,
            self.secret.clone(),
            cloudalbum_pages::ALL,
        )
        .unwrap()
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let sdk = sdk_config(&self.endpoint).await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        )
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

/// A browser: a cookie jar and the router.
pub struct Browser {
    pub router: axum::Router,
    pub cookies: BTreeMap<String, String>,
    pub host: &'static str,
}

impl Browser {
    pub fn new(state: AppState) -> Self {
        Self {
            router: cloudalbum::router(state),
            cookies: BTreeMap::new(),
            host: "127.0.0.1:8080",
        }
    }

    pub async fn send(&mut self, request: Request<Body>) -> Page {
        let response = self.router.clone().oneshot(request).await.unwrap();
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let location = headers
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            location,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host)
            .header(header::COOKIE, cookie)
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.request("GET", path).body(Body::empty()).unwrap();
        self.send(request).await
    }

    /// POSTs a form; `csrf` is added from the cookie unless `with_csrf` is false.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)], with_csrf: bool) -> Page {
        let mut pairs: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        if with_csrf {
            pairs.push(format!("csrf={}", self.csrf()));
        }
        let request = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(pairs.join("&")))
            .unwrap();
        self.send(request).await
    }

    pub async fn post_json(&mut self, path: &str, json: &serde_json::Value) -> Page {
        let request = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-csrf-token", self.csrf())
            .body(Body::from(json.to_string()))
            .unwrap();
        self.send(request).await
    }

    /// The CSRF token pages carry: derived from the session id cookie.
    pub fn csrf(&self) -> String {
        self.cookies
            .get("ca_sid")
            .or_else(|| self.cookies.get("__Host-ca_sid"))
            .map(|sid| cloudalbum::auth::session::csrf_token(sid))
            .unwrap_or_default()
    }
}

fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A JPEG with GPS and camera EXIF, made here: `w`×`h`, at Deoksugung, Seoul.
pub fn jpeg_with_exif(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            u8::try_from(x * 255 / w).unwrap(),
            u8::try_from(y * 255 / h).unwrap(),
            90,
        ])
    });
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 85)
        .encode_image(&img)
        .unwrap();
    insert_app1(&plain, &exif_segment())
}

/// An EXIF APP1 segment: `Make`, `Model`, `DateTimeOriginal`, GPS 37°33'55.7"N 126°58'31.6"E.
fn exif_segment() -> Vec<u8> {
    use exif::experimental::Writer;
    use exif::{Field, In, Rational, Tag, Value};
    let fields = [
        Field {
            tag: Tag::Make,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"Canon".to_vec()]),
        },
        Field {
            tag: Tag::Model,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"EOS 5D".to_vec()]),
        },
        Field {
            tag: Tag::DateTimeOriginal,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"2024:07:01 18:30:00".to_vec()]),
        },
        Field {
            tag: Tag::GPSLatitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"N".to_vec()]),
        },
        Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![
                Rational { num: 37, denom: 1 },
                Rational { num: 33, denom: 1 },
                Rational {
                    num: 557,
                    denom: 10,
                },
            ]),
        },
        Field {
            tag: Tag::GPSLongitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![b"E".to_vec()]),
        },
        Field {
            tag: Tag::GPSLongitude,
            ifd_num: In::PRIMARY,
            value: Value::Rational(vec![
                Rational { num: 126, denom: 1 },
                Rational { num: 58, denom: 1 },
                Rational {
                    num: 316,
                    denom: 10,
                },
            ]),
        },
    ];
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).unwrap();
    let mut segment = b"Exif\0\0".to_vec();
    segment.extend(tiff.into_inner());
    segment
}

fn insert_app1(jpeg: &[u8], payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len() + 2).unwrap();
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend([0xFF, 0xE1]);
    out.extend(len.to_be_bytes());
    out.extend(payload);
    out.extend(&jpeg[2..]);
    out
}
