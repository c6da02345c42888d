//! ID tokens verified on every request: RS256 signature against the pool's
//! JWKS (cached; fetched again for an unknown `kid`, at most once a minute),
//! then `iss`, `aud`, `token_use` and `exp`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

/// Why a token was refused. Never shown in detail to the browser.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token signed with `{0:?}`, only RS256 is accepted")]
    Algorithm(Algorithm),
    /// The `kid` is the token's (anyone's) text: shown escaped and bounded.
    #[error("no signing key `{}` in the pool's JWKS", crate::auth::session::log_safe(.0, 64))]
    UnknownKey(String),
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("not an ID token (`token_use` is `{0}`)")]
    NotIdToken(String),
    #[error("cannot fetch the pool's signing keys from {url}: {message}")]
    Jwks { url: String, message: String },
}

/// The claims of a Cognito ID token the app uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// What `SECRET_HASH` is computed over when refreshing.
    #[serde(rename = "cognito:username", default)]
    pub username: String,
    pub token_use: String,
    pub exp: u64,
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

/// The pool's signing keys and what a token must say.
pub struct Verifier {
    jwks_url: String,
    issuer: String,
    audience: String,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
    http: HttpsClient,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// The largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Unknown `kid`s trigger a fetch at most this often.
const REFETCH_AFTER: Duration = Duration::from_mins(1);

impl Verifier {
    pub fn new(jwks_url: &str, issuer: &str, audience: &str) -> Result<Self, TokenError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| TokenError::Jwks {
                url: jwks_url.to_owned(),
                message: format!("no TLS root certificates: {e}"),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(Self {
            jwks_url: jwks_url.to_owned(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            http,
        })
    }

    /// The verified claims of an ID token.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm(header.alg));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Malformed("no `kid` in the header".to_owned()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        if data.claims.token_use != "id" {
            return Err(TokenError::NotIdToken(data.claims.token_use));
        }
        Ok(data.claims)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(key.clone());
        }
        {
            let mut last = self.last_fetch.lock().await;
            let due = last.is_none_or(|at| at.elapsed() >= REFETCH_AFTER);
            // Another request may have fetched while we waited for the lock.
            if !self.keys.read().await.contains_key(kid) && due {
                // A failed fetch waits as long as a successful one: a flood
                // of unknown `kid`s while the JWKS is unreachable costs one
                // fetch a minute, not one a request.
                *last = Some(Instant::now());
                let fetched = self.fetch().await?;
                *self.keys.write().await = fetched;
            }
        }
        self.keys
            .read()
            .await
            .get(kid)
            .cloned()
            .ok_or_else(|| TokenError::UnknownKey(kid.to_owned()))
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, TokenError> {
        let error = |message: String| TokenError::Jwks {
            url: self.jwks_url.clone(),
            message,
        };
        let uri: hyper::Uri = self.jwks_url.parse().map_err(|e| error(format!("{e}")))?;
        let response = tokio::time::timeout(Duration::from_secs(5), self.http.get(uri))
            .await
            .map_err(|_| error("timed out".to_owned()))?
            .map_err(|e| error(e.to_string()))?;
        if !response.status().is_success() {
            return Err(error(format!("HTTP {}", response.status())));
        }
        // A JWKS is a few KB; a larger answer is refused, not buffered.
        let body = http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| error(e.to_string()))?
            .to_bytes();
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| error(e.to_string()))?;
        Ok(set
            .keys
            .iter()
            // Only RSA keys can verify RS256; anything else in the set is ignored.
            .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::RSA(_)))
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                Some((kid, DecodingKey::from_jwk(jwk).ok()?))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> Verifier {
        Verifier::new("http://127.0.0.1:9/jwks.json", "https://issuer", "client").unwrap()
    }

    fn token_with_kid(kid: &str) -> String {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": kid });
        format!(
            "{}.{}.c2ln",
            b64(&header.to_string()),
            b64(r#"{"sub":"x","token_use":"id","exp":9999999999}"#)
        )
    }

    #[tokio::test]
    async fn a_failed_jwks_fetch_starts_the_back_off() {
        let v = verifier();
        let first = v.verify(&token_with_kid("k1")).await.unwrap_err();
        assert!(matches!(first, TokenError::Jwks { .. }), "{first}");
        assert!(v.last_fetch.lock().await.is_some(), "no back-off started");
        // Within the minute: no second fetch, the key is simply unknown.
        let second = v.verify(&token_with_kid("k2")).await.unwrap_err();
        assert!(matches!(second, TokenError::UnknownKey(_)), "{second}");
    }

    #[test]
    fn a_kid_is_escaped_and_bounded_in_messages() {
        let err = TokenError::UnknownKey(format!(
            "k\n[ERROR] forged line\u{1b}[31m{}",
            "x".repeat(500)
        ));
        let text = err.to_string();
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains("\\n[ERROR]"), "{text}");
        assert!(text.len() < 200, "{}", text.len());
    }

    #[tokio::test]
    async fn garbage_is_malformed() {
        let err = verifier().verify("not.a.token").await.unwrap_err();
        assert!(matches!(err, TokenError::Malformed(_)), "{err}");
    }

    #[tokio::test]
    async fn unsigned_and_hmac_tokens_are_refused_before_any_key_lookup() {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let payload = b64(r#"{"sub":"x","token_use":"id","exp":9999999999}"#);
        let none = format!("{}.{payload}.", b64(r#"{"alg":"none","typ":"JWT"}"#));
        assert!(verifier().verify(&none).await.is_err());
        let hs = format!(
            "{}.{payload}.c2ln",
            b64(r#"{"alg":"HS256","typ":"JWT","kid":"k"}"#)
        );
        let err = verifier().verify(&hs).await.unwrap_err();
        assert!(
            matches!(err, TokenError::Algorithm(Algorithm::HS256)),
            "{err}"
        );
    }
}
