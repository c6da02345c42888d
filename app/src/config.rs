//! Settings from the environment the CloudFormation template gives the
//! function (and a developer gives the local binary). Read once at start-up.

use contract::assets::Manifest;
use contract::{defaults, env};

use crate::images::Limits;

/// The function's configured memory in MB, as Lambda tells every function.
pub const LAMBDA_MEMORY_ENV: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// The function's memory in MB as the stage's template passes it (read when
/// Lambda's own variable is absent, as in a local run).
pub const MEMORY_ENV: &str = env::MEMORY_MB;

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
    /// The assets' versioned names (empty in a local run: names as they are).
    pub assets: Manifest,
    /// An AWS-compatible endpoint (the local emulator), if any.
    pub endpoint: Option<String>,
    pub thumbnail_width: u32,
    pub thumbnail_height: u32,
    pub max_upload_bytes: u64,
    /// Decoded images above this many pixels are refused (decompression bombs).
    pub max_pixels: u64,
    /// The function's memory in MB, which image processing budgets for.
    pub memory_mb: u32,
}

impl Settings {
    /// The settings of this process's environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The settings `lookup` gives, as if it were the environment: the
    /// function's configured environment, say, in a test.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let number = |name: &'static str, default: u64, what: &'static str| match get(name) {
            Some(value) => {
                value
                    .parse::<u64>()
                    .map_err(|_| ConfigError::Invalid { name, what, value })
            }
            None => Ok(default),
        };
        let side = |name: &'static str, default: u32| {
            number(name, u64::from(default), "a size in pixels").and_then(|n| {
                u32::try_from(n).map_err(|_| ConfigError::Invalid {
                    name,
                    what: "a size in pixels",
                    value: n.to_string(),
                })
            })
        };
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .ok_or(ConfigError::Missing("AWS_REGION"))?;
        let user_pool_id = required(env::USER_POOL_ID)?;
        let issuer = get(env::COGNITO_ISSUER).unwrap_or_else(|| {
            format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}")
        });
        let jwks_url =
            get(env::COGNITO_JWKS_URL).unwrap_or_else(|| format!("{issuer}/.well-known/jwks.json"));
        let mut static_url = get(env::STATIC_URL).unwrap_or_else(|| "/static/".to_owned());
        if !static_url.ends_with('/') {
            static_url.push('/');
        }
        let assets = match get(env::STATIC_ASSETS) {
            Some(value) => Manifest::parse(&value).map_err(|e| ConfigError::Invalid {
                name: env::STATIC_ASSETS,
                what: "the deployer's asset manifest (redeploy the stage)",
                value: e.to_string(),
            })?,
            None => Manifest::default(),
        };
        Ok(Self {
            stage: get(env::STAGE).unwrap_or_else(|| defaults::LOCAL_STAGE.to_owned()),
            table: required(env::TABLE_NAME)?,
            bucket: required(env::BUCKET_NAME)?,
            client_id: required(env::USER_POOL_CLIENT_ID)?,
            user_pool_id,
            issuer,
            jwks_url,
            static_url,
            assets,
            endpoint: get(env::AWS_ENDPOINT_URL),
            thumbnail_width: side(env::THUMBNAIL_WIDTH, defaults::THUMBNAIL_WIDTH)?,
            thumbnail_height: side(env::THUMBNAIL_HEIGHT, defaults::THUMBNAIL_HEIGHT)?,
            max_upload_bytes: number(
                env::MAX_UPLOAD_BYTES,
                u64::from(defaults::MAX_UPLOAD_MB) * contract::MB,
                "a size in bytes",
            )?,
            max_pixels: number(env::MAX_PIXELS, 60_000_000, "a pixel count")?,
            memory_mb: memory_mb(&get)?,
            region,
        })
    }

    /// What processing one uploaded image may use.
    pub fn image_limits(&self) -> Limits {
        Limits::for_function(self.memory_mb, self.max_pixels)
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

/// The function's memory: Lambda's own variable, else the template's, else
/// the local default.
fn memory_mb(get: &impl Fn(&str) -> Option<String>) -> Result<u32, ConfigError> {
    for name in [LAMBDA_MEMORY_ENV, MEMORY_ENV] {
        if let Some(value) = get(name) {
            return value
                .parse::<u32>()
                .ok()
                .filter(|mb| (128..=10_240).contains(mb))
                .ok_or(ConfigError::Invalid {
                    name,
                    what: "a memory size in MB (128..=10240)",
                    value,
                });
        }
    }
    Ok(defaults::MEMORY_MB)
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
    fn settings_come_from_the_lookup_with_defaults() {
        let vars = [
            ("AWS_REGION", "ap-southeast-1"),
            (env::USER_POOL_ID, "pool"),
            (env::TABLE_NAME, "table"),
            (env::BUCKET_NAME, "bucket"),
            (env::USER_POOL_CLIENT_ID, "client"),
            (env::THUMBNAIL_WIDTH, "320"),
        ];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let settings = Settings::from_lookup(lookup).unwrap();
        assert_eq!(settings.table, "table");
        assert_eq!(settings.thumbnail_width, 320);
        assert_eq!(settings.thumbnail_height, defaults::THUMBNAIL_HEIGHT);
        assert_eq!(settings.stage, defaults::LOCAL_STAGE);
        assert_eq!(
            settings.issuer,
            "https://cognito-idp.ap-southeast-1.amazonaws.com/pool"
        );
        assert_eq!(settings.static_url, "/static/");
        assert_eq!(settings.memory_mb, defaults::MEMORY_MB);
        let missing =
            Settings::from_lookup(|name| (name != env::TABLE_NAME).then(|| lookup(name)).flatten());
        assert!(matches!(missing, Err(ConfigError::Missing(name)) if name == env::TABLE_NAME));
        let bad = Settings::from_lookup(|name| {
            if name == env::THUMBNAIL_HEIGHT {
                Some("tall".to_owned())
            } else {
                lookup(name)
            }
        });
        assert!(matches!(bad, Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn memory_comes_from_lambda_then_the_template() {
        let base = [
            ("AWS_REGION", "ap-southeast-1"),
            (env::USER_POOL_ID, "pool"),
            (env::TABLE_NAME, "table"),
            (env::BUCKET_NAME, "bucket"),
            (env::USER_POOL_CLIENT_ID, "client"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let vars: Vec<_> = base.iter().chain(extra).copied().collect();
            Settings::from_lookup(move |name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        assert_eq!(with(&[(MEMORY_ENV, "1024")]).unwrap().memory_mb, 1024);
        let both = with(&[(MEMORY_ENV, "1024"), (LAMBDA_MEMORY_ENV, "256")]).unwrap();
        assert_eq!(both.memory_mb, 256);
        assert_eq!(both.image_limits().memory_bytes, 128 * 1024 * 1024);
        let bad = with(&[(MEMORY_ENV, "lots")]).unwrap_err();
        assert!(bad.to_string().contains("MEMORY_MB"), "{bad}");
        assert!(with(&[(LAMBDA_MEMORY_ENV, "64")]).is_err());
    }

    #[test]
    fn the_asset_manifest_comes_from_the_template() {
        let base = [
            ("AWS_REGION", "ap-southeast-1"),
            (env::USER_POOL_ID, "pool"),
            (env::TABLE_NAME, "table"),
            (env::BUCKET_NAME, "bucket"),
            (env::USER_POOL_CLIENT_ID, "client"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let vars: Vec<_> = base.iter().chain(extra).copied().collect();
            Settings::from_lookup(move |name| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        assert!(with(&[]).unwrap().assets.is_empty());
        let settings = with(&[(env::STATIC_ASSETS, "js/app.js=0123abcd")]).unwrap();
        assert_eq!(
            settings.assets.url_path("js/app.js").as_deref(),
            Some("js/app.0123abcd.js")
        );
        let bad = with(&[(env::STATIC_ASSETS, "js/app.js")]).unwrap_err();
        assert!(bad.to_string().contains(env::STATIC_ASSETS), "{bad}");
    }

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
