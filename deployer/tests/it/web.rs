//! A user of a deployed stage, as a browser acts: forms with the CSRF token,
//! cookies, the presigned upload straight to S3. Over plain HTTP to the
//! emulator on loopback only (`localcloud::http_request` refuses any other
//! host), so nothing leaves the machine.

use std::collections::BTreeMap;

use deployer::localcloud::{HttpResponse, http_request};

/// A browser session against the stage's API URL (`.../<stage>/`).
pub struct WebUser {
    base: String,
    cookies: BTreeMap<String, String>,
}

impl WebUser {
    pub fn new(api_url: &str) -> Self {
        Self {
            base: api_url.trim_end_matches('/').to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !cookie.is_empty() {
            all.push(("Cookie", &cookie));
        }
        let url = format!("{}{path}", self.base);
        let response = http_request(method, &url, &all, body)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        for (name, value) in &response.headers {
            if !name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = value.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || value.contains("Max-Age=0") {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_owned(), v.to_owned());
                }
            }
        }
        response
    }

    pub fn get(&mut self, path: &str) -> HttpResponse {
        self.send("GET", path, &[], &[])
    }

    /// The CSRF token a page of the app carries (`data-csrf` on `<body>`).
    fn csrf(&mut self, page: &str) -> String {
        let body = self.get(page).body_text();
        attribute(&body, "data-csrf=\"")
            .unwrap_or_else(|| panic!("no CSRF token on {page}: {body}"))
    }

    /// Posts a form from `page` (which supplies the CSRF token).
    pub fn post_form(&mut self, page: &str, path: &str, fields: &[(&str, &str)]) -> HttpResponse {
        let csrf = self.csrf(page);
        let mut pairs: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        pairs.push(format!("csrf={}", encode(&csrf)));
        self.send(
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            pairs.join("&").as_bytes(),
        )
    }

    /// Signs up and confirms (the emulator takes any code, `docs/emulator.md`).
    pub fn sign_up(&mut self, email: &str, name: &str, password: &str) {
        let page = self.post_form(
            "/signup",
            "/signup",
            &[("email", email), ("name", name), ("password", password)],
        );
        assert_eq!(page.status, 303, "sign-up: {}", page.body_text());
        let page = self.post_form(
            "/signin",
            "/confirm",
            &[("email", email), ("code", "123456")],
        );
        assert_eq!(page.status, 303, "confirm: {}", page.body_text());
    }

    pub fn sign_in(&mut self, email: &str, password: &str) {
        let page = self.post_form(
            "/signin",
            "/signin",
            &[("email", email), ("password", password)],
        );
        assert_eq!(page.status, 303, "sign-in: {}", page.body_text());
        assert!(
            self.cookies.keys().any(|k| k.ends_with("ca_id")),
            "no ID token cookie after sign-in: {:?}",
            self.cookies.keys()
        );
    }

    /// Uploads a JPEG as the upload page's script does: a presigned PUT
    /// straight to the bucket, then the form that claims it. Returns its id.
    pub fn upload_jpeg(&mut self, jpeg: &[u8], description: &str) -> String {
        let csrf = self.csrf("/photos/new");
        let request = serde_json::json!({ "content_type": "image/jpeg", "size": jpeg.len() });
        let grant = self.send(
            "POST",
            "/photos/uploads",
            &[
                ("Content-Type", "application/json"),
                ("X-CSRF-Token", &csrf),
            ],
            request.to_string().as_bytes(),
        );
        assert_eq!(grant.status, 200, "upload grant: {}", grant.body_text());
        let grant: serde_json::Value = serde_json::from_slice(&grant.body).unwrap();
        let put = http_request(
            "PUT",
            grant["url"].as_str().unwrap(),
            &[("Content-Type", grant["content_type"].as_str().unwrap())],
            jpeg,
        )
        .unwrap();
        assert_eq!(put.status, 200, "presigned PUT: {}", put.body_text());
        let id = grant["id"].as_str().unwrap().to_owned();
        let page = self.post_form(
            "/photos/new",
            "/photos",
            &[
                ("id", &id),
                ("ext", grant["ext"].as_str().unwrap()),
                ("filename", "seoul.jpg"),
                ("tags", "retained"),
                ("description", description),
            ],
        );
        assert_eq!(
            page.status,
            303,
            "claiming the upload: {}",
            page.body_text()
        );
        id
    }

    /// The URL of a photo's original on its detail page (presigned).
    pub fn original_url(&mut self, id: &str) -> String {
        let page = self.get(&format!("/photos/{id}"));
        assert_eq!(page.status, 200, "photo {id}: {}", page.body_text());
        let body = page.body_text();
        let figure = &body[body.find("<figure>").unwrap()..];
        attribute(figure, "src=\"").unwrap()
    }
}

/// The (HTML-unescaped) value of the first attribute after `prefix`.
fn attribute(html: &str, prefix: &str) -> Option<String> {
    let start = html.find(prefix)? + prefix.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&#x3D;", "=")
            .replace("&#x2F;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

fn encode(value: &str) -> String {
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
