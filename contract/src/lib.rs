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

/// Bytes in a megabyte, as Lambda and the stage file count them.
pub const MB: u64 = 1024 * 1024;
