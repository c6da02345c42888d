//! Every name CloudAlbum's app and its deployer must agree on, written once.
//!
//! The deployer writes these names into the stage's template (the function's
//! environment, the table's key schema, the stack's outputs, the bucket's
//! policy and IAM resources); the app reads them back at run time. A name typed
//! in both crates would drift, so neither crate spells one out: both use the
//! constants here. This crate has no dependencies, so depending on it costs
//! nothing.

/// Environment variables the template gives the function and the app reads at
/// start-up (`cloudalbum::config::Settings`).
pub mod env {
    /// The deployer stage (`dev`, `prod`, `local`, …).
    pub const STAGE: &str = "STAGE";
    /// The photos table.
    pub const TABLE_NAME: &str = "TABLE_NAME";
    /// The photos bucket (photos, thumbnails and the static assets).
    pub const BUCKET_NAME: &str = "BUCKET_NAME";
    /// The Cognito user pool.
    pub const USER_POOL_ID: &str = "USER_POOL_ID";
    /// The user pool's app client (its secret is read from Cognito, never passed).
    pub const USER_POOL_CLIENT_ID: &str = "USER_POOL_CLIENT_ID";
    /// `iss` of the pool's tokens.
    pub const COGNITO_ISSUER: &str = "COGNITO_ISSUER";
    /// Where the pool's signing keys are served (default `<issuer>/.well-known/jwks.json`).
    pub const COGNITO_JWKS_URL: &str = "COGNITO_JWKS_URL";
    /// Base URL of the public assets (`static/` in the bucket).
    pub const STATIC_URL: &str = "STATIC_URL";
    /// The versioned names of the public assets: an
    /// [`assets::Manifest`](crate::assets::Manifest), written by the deployer
    /// from the bytes it uploads. Absent in a local run (unversioned names).
    pub const STATIC_ASSETS: &str = "STATIC_ASSETS";
    /// The box thumbnails fit in, in pixels.
    pub const THUMBNAIL_WIDTH: &str = "THUMBNAIL_WIDTH";
    pub const THUMBNAIL_HEIGHT: &str = "THUMBNAIL_HEIGHT";
    /// The largest upload accepted, in bytes.
    pub const MAX_UPLOAD_BYTES: &str = "MAX_UPLOAD_BYTES";
    /// Decoded images above this many pixels are refused.
    pub const MAX_PIXELS: &str = "MAX_PIXELS";
    /// The function's configured memory in MB: what image processing budgets for.
    pub const MEMORY_MB: &str = "MEMORY_MB";
    /// An AWS-compatible endpoint (the local emulator) for the SDK inside the
    /// function; set only when the stage is deployed to one.
    pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
    /// `lambda_http`: API Gateway REST events carry the stage in the path; the
    /// app's routes do not.
    pub const IGNORE_STAGE_IN_PATH: &str = "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH";
}

/// The photos table's key schema (the template declares it, the app queries it).
pub mod table {
    /// Partition key: the user's Cognito `sub`.
    pub const PARTITION_KEY: &str = "user_id";
    /// Sort key: a time-sortable photo id, so the album is a `Query`, newest first.
    pub const SORT_KEY: &str = "photo_id";
    /// When the photo was taken (ISO 8601), an attribute of each photo item.
    pub const TAKEN_AT: &str = "taken_at";
}

/// Key prefixes in the photos bucket.
pub mod prefix {
    /// Photos and thumbnails: private, shown through presigned URLs.
    pub const PHOTOS: &str = "photos/";
    /// The site's assets: public-read.
    pub const STATIC: &str = "static/";
    /// Under a user's photo prefix: the thumbnails.
    pub const THUMBNAILS: &str = "thumbnails/";
    /// Where the browser uploads (`staging/<sub>/<id>.<ext>`) before the app
    /// has verified the file; the bucket's lifecycle rule expires what is
    /// left here after [`STAGING_EXPIRY_DAYS`](super::defaults::STAGING_EXPIRY_DAYS).
    pub const STAGING: &str = "staging/";
}

/// Paths of the app that the deployer requests too.
pub mod routes {
    /// Answers `{"status":"ok","stage":…}` without touching a table or a
    /// bucket: `up` invokes it once after a deploy (the first request).
    pub const HEALTH: &str = "/health";
}

/// The stack's outputs.
pub mod outputs {
    pub const API_URL: &str = "ApiUrl";
    pub const STATIC_URL: &str = "StaticUrl";
    pub const BUCKET_NAME: &str = "BucketName";
    pub const TABLE_NAME: &str = "TableName";
    pub const USER_POOL_ID: &str = "UserPoolId";
    pub const USER_POOL_CLIENT_ID: &str = "UserPoolClientId";
    pub const FUNCTION_NAME: &str = "FunctionName";
}

/// Defaults both sides use: the deployer when a stage file leaves a setting
/// out, the app when its environment does (a local run).
pub mod defaults {
    pub const THUMBNAIL_WIDTH: u32 = 300;
    pub const THUMBNAIL_HEIGHT: u32 = 200;
    pub const MAX_UPLOAD_MB: u32 = 20;
    pub const MEMORY_MB: u32 = 512;
    /// The stage `deployer local` deploys, and the app's stage when none is set.
    pub const LOCAL_STAGE: &str = "local";
    /// Days after which the bucket's lifecycle rule expires staged uploads.
    pub const STAGING_EXPIRY_DAYS: u32 = 1;
}

/// Versioned asset names: how a file under `static/` is published and named
/// in pages. The deployer hashes the bytes it uploads and writes the hashes
/// into a [`Manifest`](assets::Manifest); the app reads the manifest from its
/// environment ([`env::STATIC_ASSETS`]) and links to the names
/// [`Manifest::url_path`](assets::Manifest::url_path) gives. Both sides use
/// this one rule, so a page never names a file the deployer did not upload.
///
/// - A file is a unit of its own: `css/site.css` with hash `1a2b3c4d` is
///   published as `css/site.1a2b3c4d.css` (`LICENSE` as `LICENSE.1a2b3c4d`).
/// - A library under `vendor/<lib>/` is one unit, hashed over all its files and
///   published under a versioned folder (`vendor/leaflet.1a2b3c4d/leaflet.css`),
///   so the relative references between its files (`leaflet.css` →
///   `images/layers.png`) keep working.
pub mod assets {
    use std::collections::BTreeMap;
    use std::fmt;

    /// Where front-end libraries are copied in, one folder per library.
    pub const VENDOR_DIR: &str = "vendor/";
    /// Hex digits of the content hash in a published name.
    pub const HASH_LEN: usize = 8;

    /// The unit `path` (relative to `static/`) is versioned by: `vendor/<lib>`
    /// for a library's files, the path itself otherwise.
    pub fn unit(path: &str) -> &str {
        if let Some(rest) = path.strip_prefix(VENDOR_DIR)
            && let Some((lib, inner)) = rest.split_once('/')
            && !lib.is_empty()
            && !inner.is_empty()
        {
            return &path[..VENDOR_DIR.len() + lib.len()];
        }
        path
    }

    /// Where `path` is published when its unit's hash is `hash`.
    pub fn versioned(path: &str, hash: &str) -> String {
        let unit = unit(path);
        if unit.len() < path.len() {
            // A library: its folder carries the hash.
            return format!("{unit}.{hash}{}", &path[unit.len()..]);
        }
        let name_start = path.rfind('/').map_or(0, |i| i + 1);
        match path[name_start..].rfind('.') {
            Some(dot) if dot > 0 => {
                let dot = name_start + dot;
                format!("{}.{hash}{}", &path[..dot], &path[dot..])
            }
            _ => format!("{path}.{hash}"),
        }
    }

    /// Whether `c` may appear in a unit's name in a manifest.
    pub fn allowed_in_name(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '@' | '+' | '~')
    }

    /// Every unit's hash, written `css/site.css=1a2b3c4d,vendor/leaflet=5e6f7a8b`
    /// (sorted, so the same files give the same text).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Manifest {
        hashes: BTreeMap<String, String>,
    }

    /// A manifest that does not parse.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ManifestError(pub String);

    impl fmt::Display for ManifestError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "`{}` is not `<path>=<{HASH_LEN} hex digits>,…`: {}",
                super::env::STATIC_ASSETS,
                self.0
            )
        }
    }

    impl std::error::Error for ManifestError {}

    impl Manifest {
        /// Records `hash` for `unit`; `None` if either is not allowed.
        pub fn insert(&mut self, unit: &str, hash: &str) -> Option<()> {
            let valid_unit = !unit.is_empty() && unit.chars().all(allowed_in_name);
            let valid_hash = hash.len() == HASH_LEN && hash.bytes().all(|b| b.is_ascii_hexdigit());
            if !(valid_unit && valid_hash) {
                return None;
            }
            self.hashes.insert(unit.to_owned(), hash.to_owned());
            Some(())
        }

        /// Parses what [`fmt::Display`] writes; empty text is an empty manifest.
        pub fn parse(text: &str) -> Result<Self, ManifestError> {
            let mut manifest = Self::default();
            for entry in text.split(',').filter(|e| !e.trim().is_empty()) {
                let (unit, hash) = entry
                    .trim()
                    .split_once('=')
                    .ok_or_else(|| ManifestError(format!("entry `{entry}` has no `=`")))?;
                manifest
                    .insert(unit, hash)
                    .ok_or_else(|| ManifestError(format!("entry `{entry}` is malformed")))?;
            }
            Ok(manifest)
        }

        pub fn is_empty(&self) -> bool {
            self.hashes.is_empty()
        }

        /// The units and their hashes, sorted.
        pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
            self.hashes.iter().map(|(u, h)| (u.as_str(), h.as_str()))
        }

        /// Where `path` is published, if its unit is in the manifest.
        pub fn url_path(&self, path: &str) -> Option<String> {
            self.hashes
                .get(unit(path))
                .map(|hash| versioned(path, hash))
        }

        /// Whether `published` (a path relative to `static/`) is a name this
        /// manifest's units are published under.
        pub fn owns(&self, published: &str) -> bool {
            self.hashes.iter().any(|(unit, hash)| {
                let in_folder = published
                    .strip_prefix(unit.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                    .and_then(|rest| rest.strip_prefix(hash.as_str()))
                    .is_some_and(|rest| rest.starts_with('/'));
                in_folder || published == versioned(unit, hash)
            })
        }
    }

    impl fmt::Display for Manifest {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (i, (unit, hash)) in self.hashes.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{unit}={hash}")?;
            }
            Ok(())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn files_carry_the_hash_before_their_extension() {
            assert_eq!(
                versioned("css/site.css", "1a2b3c4d"),
                "css/site.1a2b3c4d.css"
            );
            assert_eq!(
                versioned("js/app.min.js", "1a2b3c4d"),
                "js/app.min.1a2b3c4d.js"
            );
            assert_eq!(versioned("LICENSE", "1a2b3c4d"), "LICENSE.1a2b3c4d");
            assert_eq!(versioned("img/.hidden", "1a2b3c4d"), "img/.hidden.1a2b3c4d");
        }

        #[test]
        fn libraries_carry_the_hash_on_their_folder() {
            assert_eq!(unit("vendor/leaflet/images/layers.png"), "vendor/leaflet");
            assert_eq!(
                versioned("vendor/leaflet/images/layers.png", "1a2b3c4d"),
                "vendor/leaflet.1a2b3c4d/images/layers.png"
            );
            // A file directly in vendor/ is a unit of its own.
            assert_eq!(unit("vendor/notes.txt"), "vendor/notes.txt");
            assert_eq!(
                versioned("vendor/notes.txt", "1a2b3c4d"),
                "vendor/notes.1a2b3c4d.txt"
            );
        }

        #[test]
        fn a_manifest_round_trips_and_names_published_paths() {
            let mut m = Manifest::default();
            m.insert("vendor/leaflet", "5e6f7a8b").unwrap();
            m.insert("css/site.css", "1a2b3c4d").unwrap();
            let text = m.to_string();
            assert_eq!(text, "css/site.css=1a2b3c4d,vendor/leaflet=5e6f7a8b");
            assert_eq!(Manifest::parse(&text).unwrap(), m);
            assert_eq!(m.url_path("css/site.css").unwrap(), "css/site.1a2b3c4d.css");
            assert_eq!(
                m.url_path("vendor/leaflet/leaflet.js").unwrap(),
                "vendor/leaflet.5e6f7a8b/leaflet.js"
            );
            assert_eq!(m.url_path("js/app.js"), None);
            assert!(m.owns("css/site.1a2b3c4d.css"));
            assert!(m.owns("vendor/leaflet.5e6f7a8b/images/marker-icon.png"));
            assert!(!m.owns("css/site.css"));
            assert!(!m.owns("css/site.00000000.css"));
            assert!(!m.owns("vendor/leaflet.00000000/leaflet.js"));
            assert!(!m.owns("vendor/leaflet/leaflet.js"));
        }

        #[test]
        fn malformed_manifests_are_refused() {
            assert!(Manifest::parse("").unwrap().is_empty());
            for bad in [
                "css/site.css",
                "a=xyz",
                "a=1a2b3c4",
                "a b=1a2b3c4d",
                "=1a2b3c4d",
            ] {
                let err = Manifest::parse(bad).unwrap_err();
                assert!(err.to_string().contains("STATIC_ASSETS"), "{err}");
            }
            let mut m = Manifest::default();
            assert_eq!(m.insert("a,b", "1a2b3c4d"), None);
            assert_eq!(m.insert("a=b", "1a2b3c4d"), None);
        }
    }
}

/// Bytes in a megabyte, as Lambda and the stage file count them.
pub const MB: u64 = 1024 * 1024;
