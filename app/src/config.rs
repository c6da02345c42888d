//! Settings from the environment the CloudFormation template gives the
//! function (and a developer gives the local binary). Read once at start-up.

use std::env;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "`{0}` is not set; the stage's template sets it on Lambda, and `deployer status --stage <stage>` shows the values to set for a local run"
    )]
    Missing(&'static str),
    #[error("`{name}` must be {what}, got `{value}`")]
    Invalid {
        name: &'static str,
        what: &'static str,
        value: String,
    },
}

/// What the app needs to know about its stage.
#[derive(Debug, Clone)]
pub struct Settings {
    pub stage: String,
    pub region: String,
    pub table: String,
    pub bucket: String,
    pub user_pool_id: String,
    pub client_id: String,
    /// `iss` of the pool's tokens.
    pub issuer: String,
    /// Where the pool's signing keys are served.
    pub jwks_url: String,
    /// Base URL of the public assets, ending in `/`.
    pub static_url: String,
    /// An AWS-compatible endpoint (the local emulator), if any.
    pub endpoint: Option<String>,
    pub thumbnail_width: u32,
    pub thumbnail_height: u32,
    pub max_upload_bytes: u64,
    /// Decoded images above this many pixels are refused (decompression bombs).
    pub max_pixels: u64,
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError::Missing(name))
}

fn number<T: std::str::FromStr>(
    name: &'static str,
    default: T,
    what: &'static str,
) -> Result<T, ConfigError> {
    match env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| ConfigError::Invalid { name, what, value }),
        Err(_) => Ok(default),
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let region = env::var("AWS_REGION")
            .or_else(|_| env::var("AWS_DEFAULT_REGION"))
            .map_err(|_| ConfigError::Missing("AWS_REGION"))?;
        let user_pool_id = required("USER_POOL_ID")?;
        let issuer = env::var("COGNITO_ISSUER").unwrap_or_else(|_| {
            format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}")
        });
        let jwks_url = env::var("COGNITO_JWKS_URL")
            .unwrap_or_else(|_| format!("{issuer}/.well-known/jwks.json"));
        let mut static_url = env::var("STATIC_URL").unwrap_or_else(|_| "/static/".to_owned());
        if !static_url.ends_with('/') {
            static_url.push('/');
        }
        Ok(Self {
            stage: env::var("STAGE").unwrap_or_else(|_| "local".to_owned()),
            table: required("TABLE_NAME")?,
            bucket: required("BUCKET_NAME")?,
            client_id: required("USER_POOL_CLIENT_ID")?,
            user_pool_id,
            issuer,
            jwks_url,
            static_url,
            endpoint: env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.is_empty()),
            thumbnail_width: number("THUMBNAIL_WIDTH", 300, "a width in pixels")?,
            thumbnail_height: number("THUMBNAIL_HEIGHT", 200, "a height in pixels")?,
            max_upload_bytes: number("MAX_UPLOAD_BYTES", 20 * 1024 * 1024, "a size in bytes")?,
            max_pixels: number("MAX_PIXELS", 60_000_000, "a pixel count")?,
            region,
        })
    }

    /// The origin of the bucket's URLs (photos, presigned uploads), for CSP.
    pub fn bucket_origin(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => format!("https://{}.s3.{}.amazonaws.com", self.bucket, self.region),
        }
    }

    /// The origin of the static assets, for CSP (`'self'` when served locally).
    pub fn static_origin(&self) -> String {
        origin_of(&self.static_url).unwrap_or_else(|| "'self'".to_owned())
    }
}

/// `scheme://host[:port]` of an absolute URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_port() {
        assert_eq!(
            origin_of("http://127.0.0.1:4566/bucket/static/").as_deref(),
            Some("http://127.0.0.1:4566")
        );
        assert_eq!(
            origin_of("https://b.s3.ap-southeast-1.amazonaws.com/static/").as_deref(),
            Some("https://b.s3.ap-southeast-1.amazonaws.com")
        );
        assert_eq!(origin_of("/static/"), None);
    }
}
