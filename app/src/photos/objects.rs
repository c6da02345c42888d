//! A photo's objects in the bucket: where they live, presigned URLs to them,
//! reading an upload back within a size bound, and the writes and deletes.
//!
//! - `staging/<sub>/<id>.<ext>`: where the browser's presigned PUT lands. Not
//!   trusted; a lifecycle rule expires what is left after a day.
//! - `photos/<sub>/<id>.<ext>`: the verified original, copied from staging on
//!   the server side, never overwritten.
//! - `photos/<sub>/thumbnails/<id>.jpg`: the thumbnail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::presigning::PresigningConfig;
use hyper::body::Bytes;

use contract::prefix::{PHOTOS, STAGING, THUMBNAILS};

use crate::images::Kind;

/// How long a presigned upload URL works.
pub const UPLOAD_URL_LIFETIME: Duration = Duration::from_mins(5);
/// How long a presigned view URL works.
pub const VIEW_URL_LIFETIME: Duration = Duration::from_hours(1);
/// A view URL is handed out again while it has at least this long left, so
/// a page shows the same thumbnail URLs on every visit (the browser's cache
/// keeps the images) and signs each only once per half hour.
pub const VIEW_URL_REUSE: Duration = Duration::from_mins(30);
/// View URLs remembered, at most (about 0.6 KB each).
const MAX_VIEW_URLS: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error(
        "s3 `{action}` of `{key}` in bucket `{bucket}` failed: {detail}; check that the bucket exists and that the function's role allows `s3:{action}` on the key"
    )]
    Aws {
        action: &'static str,
        bucket: String,
        key: String,
        detail: String,
    },
    #[error("the upload did not arrive; try again")]
    Missing,
    #[error("the file is empty")]
    Empty,
    #[error("this photo is {} KB; the limit is {} MB", .size.div_ceil(1024), .max / 1_048_576)]
    TooLarge { size: u64, max: u64 },
    /// The final key already holds an object (conditional copy refused).
    #[error("photo `{0}` is already stored")]
    Taken(String),
    /// The staged object changed after it was verified.
    #[error("the upload was replaced while it was being checked; upload the photo again")]
    SourceChanged,
}

pub fn original_key(user: &str, id: &str, ext: &str) -> String {
    format!("{PHOTOS}{user}/{id}.{ext}")
}

pub fn thumbnail_key(user: &str, id: &str) -> String {
    format!("{PHOTOS}{user}/{THUMBNAILS}{id}.jpg")
}

pub fn staged_key(user: &str, id: &str, ext: &str) -> String {
    format!("{STAGING}{user}/{id}.{ext}")
}

/// An upload read back from staging.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Bytes,
    /// Pins the copy to exactly these bytes.
    pub etag: String,
}

/// Checks an upload's declared or stored size against the limit.
pub fn check_size(size: u64, max: u64) -> Result<(), ObjectsError> {
    if size == 0 {
        Err(ObjectsError::Empty)
    } else if size > max {
        Err(ObjectsError::TooLarge { size, max })
    } else {
        Ok(())
    }
}

/// The bucket's photo objects.
#[derive(Debug, Clone)]
pub struct Objects {
    pub s3: Client,
    pub bucket: String,
    views: Arc<ViewUrls>,
}

/// Presigned view URLs by key, with when they were signed.
#[derive(Debug, Default)]
struct ViewUrls(Mutex<HashMap<String, (String, Instant)>>);

impl ViewUrls {
    fn get(&self, key: &str, now: Instant) -> Option<String> {
        let urls = self.0.lock().ok()?;
        let (url, signed) = urls.get(key)?;
        (now.saturating_duration_since(*signed) < VIEW_URL_REUSE).then(|| url.clone())
    }

    fn put(&self, key: &str, url: &str, now: Instant) {
        let Ok(mut urls) = self.0.lock() else {
            return;
        };
        if urls.len() >= MAX_VIEW_URLS {
            urls.retain(|_, (_, signed)| now.saturating_duration_since(*signed) < VIEW_URL_REUSE);
            if urls.len() >= MAX_VIEW_URLS {
                urls.clear();
            }
        }
        urls.insert(key.to_owned(), (url.to_owned(), now));
    }
}

fn status(
    err: &aws_sdk_s3::error::SdkError<
        impl ProvideErrorMetadata,
        aws_sdk_s3::config::http::HttpResponse,
    >,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

impl Objects {
    pub fn new(s3: Client, bucket: String) -> Self {
        Self {
            s3,
            bucket,
            views: Arc::default(),
        }
    }

    fn aws(&self, action: &'static str, key: &str, err: impl std::error::Error) -> ObjectsError {
        ObjectsError::Aws {
            action,
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            detail: DisplayErrorContext(err).to_string(),
        }
    }

    /// A presigned GET of `key`, valid for at least [`VIEW_URL_REUSE`].
    pub async fn presign_get(&self, key: &str) -> Result<String, ObjectsError> {
        let now = Instant::now();
        if let Some(url) = self.views.get(key, now) {
            return Ok(url);
        }
        let config = PresigningConfig::expires_in(VIEW_URL_LIFETIME)
            .map_err(|e| self.aws("GetObject", key, e))?;
        let request = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| self.aws("GetObject", key, e))?;
        let url = request.uri().to_owned();
        self.views.put(key, &url, now);
        Ok(url)
    }

    /// A presigned PUT of one staged upload, bound to its type and size.
    pub async fn presign_upload(
        &self,
        user: &str,
        id: &str,
        kind: Kind,
        size: u64,
    ) -> Result<String, ObjectsError> {
        let key = staged_key(user, id, kind.ext());
        let config = PresigningConfig::expires_in(UPLOAD_URL_LIFETIME)
            .map_err(|e| self.aws("PutObject", &key, e))?;
        let length = i64::try_from(size).map_err(|_| ObjectsError::TooLarge { size, max: 0 })?;
        let presigned = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(kind.content_type())
            .content_length(length)
            .presigned(config)
            .await
            .map_err(|e| self.aws("PutObject", &key, e))?;
        Ok(presigned.uri().to_owned())
    }

    /// The staged object's bytes and `ETag`, if it is there and at most
    /// `max` bytes; never reads more than `max` bytes whatever it says.
    pub async fn fetch(&self, key: &str, max: u64) -> Result<Fetched, ObjectsError> {
        let object = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(object) => object,
            Err(err) if status(&err) == Some(404) => return Err(ObjectsError::Missing),
            Err(err) => return Err(self.aws("GetObject", key, err)),
        };
        let declared = u64::try_from(object.content_length.unwrap_or(0)).unwrap_or(0);
        check_size(declared, max)?;
        let etag = object.e_tag.clone().unwrap_or_default();
        let mut body = object.body;
        let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        while let Some(chunk) = body
            .next()
            .await
            .transpose()
            .map_err(|e| self.aws("GetObject", key, e))?
        {
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(ObjectsError::TooLarge {
                    size: (bytes.len() + chunk.len()) as u64,
                    max,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        check_size(bytes.len() as u64, max)?;
        Ok(Fetched {
            bytes: bytes.into(),
            etag,
        })
    }

    /// Copies the verified staged object to its final key on the server
    /// side: only if the staged object still has `etag` (the bytes that were
    /// checked) and nothing is at `to` yet (`If-None-Match: *`).
    pub async fn copy_verified(
        &self,
        from: &str,
        etag: &str,
        to: &str,
        content_type: &str,
    ) -> Result<(), ObjectsError> {
        let sent = self
            .s3
            .copy_object()
            .bucket(&self.bucket)
            .copy_source(format!("{}/{from}", self.bucket))
            .copy_source_if_match(etag)
            .if_none_match("*")
            .key(to)
            .content_type(content_type)
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // 412: one of the two conditions failed; which one, the key says.
            // 409: another conditional write to `to` was in flight.
            Err(err) if matches!(status(&err), Some(412 | 409)) => {
                if self.exists(to).await? {
                    Err(ObjectsError::Taken(to.to_owned()))
                } else {
                    Err(ObjectsError::SourceChanged)
                }
            }
            Err(err) => Err(self.aws("CopyObject", to, err)),
        }
    }

    pub async fn exists(&self, key: &str) -> Result<bool, ObjectsError> {
        match self
            .s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if status(&err) == Some(404) => Ok(false),
            Err(err) => Err(self.aws("HeadObject", key, err)),
        }
    }

    pub async fn put_thumbnail(&self, key: &str, jpeg: Vec<u8>) -> Result<(), ObjectsError> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("image/jpeg")
            .body(jpeg.into())
            .send()
            .await
            .map_err(|e| self.aws("PutObject", key, e))?;
        Ok(())
    }

    /// Deletes `key`; deleting what is not there succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), ObjectsError> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.aws("DeleteObject", key, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        assert_eq!(original_key("u", "ID", "jpg"), "photos/u/ID.jpg");
        assert_eq!(thumbnail_key("u", "ID"), "photos/u/thumbnails/ID.jpg");
        assert_eq!(staged_key("u", "ID", "png"), "staging/u/ID.png");
        // Staging is outside the photos prefix: nothing staged is ever shown.
        assert!(!staged_key("u", "ID", "jpg").starts_with(PHOTOS));
    }

    #[test]
    fn view_urls_are_reused_for_half_an_hour_and_bounded() {
        let urls = ViewUrls::default();
        let t0 = Instant::now();
        urls.put("k", "https://signed", t0);
        assert_eq!(
            urls.get("k", t0 + Duration::from_mins(29)).as_deref(),
            Some("https://signed")
        );
        assert_eq!(urls.get("k", t0 + VIEW_URL_REUSE), None);
        for i in 0..MAX_VIEW_URLS + 5 {
            urls.put(&format!("k{i}"), "u", t0);
        }
        assert!(urls.0.lock().unwrap().len() <= MAX_VIEW_URLS);
    }

    #[test]
    fn sizes_are_checked_before_reading() {
        assert!(matches!(check_size(0, 10), Err(ObjectsError::Empty)));
        assert!(check_size(10, 10).is_ok());
        let err = check_size(3 * 1_048_576, 2 * 1_048_576).unwrap_err();
        assert_eq!(err.to_string(), "this photo is 3072 KB; the limit is 2 MB");
    }
}
