//! `static/` → `s3://<bucket>/static/`: public-read, the right `Content-Type`
//! and `Cache-Control`, uploaded in parallel, only what changed (by content
//! hash against the object's `ETag`), and remote files removed locally are deleted.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use contract::prefix::STATIC as STATIC_PREFIX;
use md5::{Digest, Md5};
use serde::Serialize;

use crate::aws::{Aws, AwsError};
use crate::digest::hex;

/// Uploads in flight at once.
const PARALLEL_UPLOADS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AssetsError {
    #[error("no static folder `{}`: create it (it may be empty) or run from the project root", .0.display())]
    Missing(PathBuf),
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` has a name that is not UTF-8; rename it", .0.display())]
    Name(PathBuf),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SyncReport {
    pub files: usize,
    pub uploaded: usize,
    pub skipped: usize,
    pub deleted: usize,
    pub bytes_uploaded: u64,
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "static files: {} uploaded ({} bytes), {} unchanged, {} deleted",
            self.uploaded, self.bytes_uploaded, self.skipped, self.deleted
        )
    }
}

/// One local file to publish.
#[derive(Debug, Clone)]
struct LocalFile {
    key: String,
    path: PathBuf,
    md5: String,
    size: u64,
}

/// Content type by file extension.
pub fn content_type(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("ico") => "image/vnd.microsoft.icon",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("ttf") => "font/ttf",
        Some("otf") => "font/otf",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// Cache lifetime: an hour for assets, revalidated pages.
pub fn cache_control(key: &str) -> &'static str {
    if key.to_ascii_lowercase().ends_with(".html") {
        "no-cache"
    } else {
        "public, max-age=3600"
    }
}

/// The files under `dir` (dot-files skipped), sorted by key, with their MD5.
fn local_files(dir: &Path) -> Result<Vec<LocalFile>, AssetsError> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<LocalFile>) -> Result<(), AssetsError> {
        let read = |source| AssetsError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(read)?
            .collect::<Result<_, _>>()
            .map_err(read)?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| AssetsError::Name(path.clone()))?;
            if name.starts_with('.') {
                continue;
            }
            let kind = entry.file_type().map_err(|source| AssetsError::Read {
                path: path.clone(),
                source,
            })?;
            if kind.is_dir() {
                walk(&path, root, out)?;
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).map_err(|source| AssetsError::Read {
                    path: path.clone(),
                    source,
                })?;
                let relative = path
                    .strip_prefix(root)
                    .ok()
                    .and_then(Path::to_str)
                    .ok_or_else(|| AssetsError::Name(path.clone()))?;
                out.push(LocalFile {
                    key: format!("{STATIC_PREFIX}{}", relative.replace('\\', "/")),
                    md5: hex(&Md5::digest(&bytes)),
                    size: bytes.len() as u64,
                    path,
                });
            }
        }
        Ok(())
    }
    if !dir.is_dir() {
        return Err(AssetsError::Missing(dir.to_owned()));
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Objects under `static/` and their `ETag`s (quotes removed).
async fn remote_files(aws: &Aws, bucket: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let mut out = BTreeMap::new();
    let mut token = None;
    loop {
        let page = aws
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(STATIC_PREFIX)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("s3:ListBucket", aws.target(), e))?;
        for object in page.contents() {
            if let Some(key) = &object.key {
                let etag = object.e_tag.as_deref().unwrap_or("").trim_matches('"');
                out.insert(key.clone(), etag.to_owned());
            }
        }
        token = page.next_continuation_token;
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Publishes `dir` to the bucket's `static/` prefix.
pub async fn sync(aws: &Aws, bucket: &str, dir: &Path) -> Result<SyncReport, AssetsError> {
    let local = local_files(dir)?;
    let remote = remote_files(aws, bucket).await?;
    let mut report = SyncReport {
        files: local.len(),
        ..SyncReport::default()
    };

    let changed: Vec<LocalFile> = local
        .iter()
        .filter(|f| remote.get(&f.key) != Some(&f.md5))
        .cloned()
        .collect();
    report.skipped = local.len() - changed.len();

    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL_UPLOADS));
    let mut uploads = tokio::task::JoinSet::new();
    for file in changed {
        let s3 = aws.s3.clone();
        let target = aws.target();
        let bucket = bucket.to_owned();
        let limit = Arc::clone(&limit);
        uploads.spawn(async move {
            let _permit = limit.acquire_owned().await;
            upload(&s3, &target, &bucket, &file)
                .await
                .map(|()| file.size)
        });
    }
    let mut first_error = None;
    while let Some(joined) = uploads.join_next().await {
        match joined {
            Ok(Ok(size)) => {
                report.uploaded += 1;
                report.bytes_uploaded += size;
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(join) => {
                first_error.get_or_insert(AssetsError::Read {
                    path: dir.to_owned(),
                    source: std::io::Error::other(join.to_string()),
                });
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }

    let local_keys: std::collections::BTreeSet<&str> =
        local.iter().map(|f| f.key.as_str()).collect();
    let stale: Vec<&String> = remote
        .keys()
        .filter(|k| !local_keys.contains(k.as_str()))
        .collect();
    for batch in stale.chunks(1000) {
        delete_keys(aws, bucket, batch.iter().map(|k| k.as_str())).await?;
        report.deleted += batch.len();
    }
    Ok(report)
}

async fn upload(
    s3: &aws_sdk_s3::Client,
    target: &str,
    bucket: &str,
    file: &LocalFile,
) -> Result<(), AssetsError> {
    let body = aws_sdk_s3::primitives::ByteStream::from_path(&file.path)
        .await
        .map_err(|e| AssetsError::Read {
            path: file.path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    s3.put_object()
        .bucket(bucket)
        .key(&file.key)
        .body(body)
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .content_type(content_type(&file.key))
        .cache_control(cache_control(&file.key))
        .customize()
        .config_override(Aws::upload_timeouts())
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3:PutObject", target.to_owned(), e))?;
    Ok(())
}

/// Deletes up to 1000 keys in one call.
pub async fn delete_keys<'a>(
    aws: &Aws,
    bucket: &str,
    keys: impl Iterator<Item = &'a str>,
) -> Result<(), AwsError> {
    let versions: Vec<(&str, Option<&str>)> = keys.map(|k| (k, None)).collect();
    delete_versions(aws, bucket, &versions).await
}

/// Deletes objects (a key, and a version id for a given version) in one request.
pub async fn delete_versions(
    aws: &Aws,
    bucket: &str,
    versions: &[(&str, Option<&str>)],
) -> Result<(), AwsError> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let objects: Vec<ObjectIdentifier> = versions
        .iter()
        .filter_map(|(key, version)| {
            ObjectIdentifier::builder()
                .key(*key)
                .set_version_id(version.map(str::to_owned))
                .build()
                .ok()
        })
        .collect();
    if objects.is_empty() {
        return Ok(());
    }
    let delete = Delete::builder()
        .set_objects(Some(objects))
        .quiet(true)
        .build()
        .map_err(|e| AwsError::other("s3:DeleteObject", aws.target(), e))?;
    let result = aws
        .s3
        .delete_objects()
        .bucket(bucket)
        .delete(delete)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("s3:DeleteObject", aws.target(), e))?;
    if let Some(failed) = result.errors().first() {
        return Err(AwsError {
            action: "s3:DeleteObject",
            target: aws.target(),
            kind: crate::aws::ErrorKind::Other,
            code: failed.code.clone(),
            message: format!(
                "could not delete `{}`: {}",
                failed.key.as_deref().unwrap_or("?"),
                failed.message.as_deref().unwrap_or("no reason given")
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            content_type("static/css/site.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(
            content_type("static/js/app.JS"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("static/img/logo.svg"), "image/svg+xml");
        assert_eq!(content_type("static/img/a.jpeg"), "image/jpeg");
        assert_eq!(content_type("static/LICENSE"), "application/octet-stream");
    }

    #[test]
    fn local_files_are_keyed_sorted_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("css")).unwrap();
        std::fs::write(dir.path().join("css/site.css"), "body{}").unwrap();
        std::fs::write(dir.path().join("app.js"), "").unwrap();
        std::fs::write(dir.path().join(".gitkeep"), "").unwrap();
        let files = local_files(dir.path()).unwrap();
        let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["static/app.js", "static/css/site.css"]);
        assert_eq!(files[0].md5, "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn a_missing_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = local_files(&dir.path().join("static")).unwrap_err();
        assert!(err.to_string().contains("no static folder"));
    }
}
