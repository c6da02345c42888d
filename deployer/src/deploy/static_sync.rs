//! `static/` → `s3://<bucket>/static/`, every file under a versioned name
//! (`contract::assets`: `css/site.<hash>.css`, `vendor/leaflet.<hash>/…`)
//! with `Cache-Control: immutable`: public-read, the right `Content-Type`,
//! uploaded in parallel, only what is not there yet (by content hash against
//! the object's `ETag`).
//!
//! A deploy first [`publish`]es (adds files, never removes one), then the
//! function switches to the new [`Manifest`], then [`prune`] removes what
//! neither the new manifest nor the one it replaced names: a page served
//! before the deploy keeps finding every file it links to.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use contract::assets::{self, Manifest};
use contract::prefix::STATIC as STATIC_PREFIX;
use md5::Md5;
use serde::Serialize;
use sha2::{Digest, Sha256};

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
    #[error("`{}` cannot be published under a versioned name: use only letters, digits and `.-_@+~` in names under static/", .0.display())]
    Unversionable(PathBuf),
    #[error("the asset manifest of `{}` is {bytes} bytes, over the {MAX_MANIFEST_BYTES} the function's environment (4 KB in all) leaves it: fewer files at the top of static/, or move a library's files into one folder under static/vendor/ (versioned as one entry)", dir.display())]
    ManifestTooLarge { dir: PathBuf, bytes: usize },
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

/// The most the manifest may take of the function's environment (Lambda
/// allows 4 KB for all its variables).
pub const MAX_MANIFEST_BYTES: usize = 2048;

/// `Cache-Control` of a versioned file: its content never changes under its
/// name, so browsers keep it a year without asking again.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of a file under a name without a hash (none is published
/// so today; a page is revalidated, anything else kept five minutes).
pub const SHORT_LIVED: &str = "public, max-age=300";

/// One local file to publish: read once, hashed, and uploaded from these bytes.
#[derive(Debug, Clone)]
struct LocalFile {
    /// The path under `static/` (`css/site.css`), what pages ask for.
    path: String,
    /// The bucket key it is published under (`static/css/site.1a2b3c4d.css`).
    key: String,
    bytes: Vec<u8>,
    md5: String,
}

/// `static/` as it is published: each file's bytes and versioned key, and the
/// manifest the function is given.
#[derive(Debug, Clone)]
pub struct Site {
    files: Vec<LocalFile>,
    pub manifest: Manifest,
}

impl Site {
    /// Reads every file under `dir` (dot-files skipped) and names it by the
    /// hash of its unit (`contract::assets::unit`): the file itself, or its
    /// library's whole folder under `vendor/`.
    pub fn read(dir: &Path) -> Result<Self, AssetsError> {
        let raw = local_files(dir)?;
        let mut units: BTreeMap<&str, Sha256> = BTreeMap::new();
        for (path, file_path, bytes) in &raw {
            let unit = assets::unit(path);
            if !unit.chars().all(assets::allowed_in_name) {
                return Err(AssetsError::Unversionable(file_path.clone()));
            }
            unit_hasher(units.entry(unit).or_default(), unit, path, bytes);
        }
        let mut manifest = Manifest::default();
        for (unit, hasher) in units {
            let hash = hex(&hasher.finalize());
            manifest
                .insert(unit, &hash[..assets::HASH_LEN])
                .ok_or_else(|| AssetsError::Unversionable(dir.join(unit)))?;
        }
        let bytes = manifest.to_string().len();
        if bytes > MAX_MANIFEST_BYTES {
            return Err(AssetsError::ManifestTooLarge {
                dir: dir.to_owned(),
                bytes,
            });
        }
        let files = raw
            .into_iter()
            .map(|(path, file_path, bytes)| {
                let published = manifest
                    .url_path(&path)
                    .ok_or(AssetsError::Unversionable(file_path))?;
                Ok(LocalFile {
                    key: format!("{STATIC_PREFIX}{published}"),
                    md5: hex(&Md5::digest(&bytes)),
                    bytes,
                    path,
                })
            })
            .collect::<Result<Vec<_>, AssetsError>>()?;
        Ok(Self { files, manifest })
    }

    /// How many files are published.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Each file's path under `static/` and the key it is published under.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files.iter().map(|f| (f.path.as_str(), f.key.as_str()))
    }
}

/// Feeds one file of `unit` to its hash: a file alone is hashed by its bytes;
/// a library's files by their path in the folder, length and bytes, in order,
/// so renaming or moving a file inside it changes the folder's hash too.
fn unit_hasher(hasher: &mut Sha256, unit: &str, path: &str, bytes: &[u8]) {
    if unit.len() < path.len() {
        hasher.update(&path.as_bytes()[unit.len()..]);
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
    }
    hasher.update(bytes);
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

/// Cache lifetime of `published` (a path under `static/`): immutable when the
/// manifest versions it, else revalidated pages and short-lived assets.
pub fn cache_control(manifest: &Manifest, published: &str) -> &'static str {
    if manifest.owns(published) {
        IMMUTABLE
    } else if published.to_ascii_lowercase().ends_with(".html") {
        "no-cache"
    } else {
        SHORT_LIVED
    }
}

/// A path under `static/`, its file, its bytes.
type RawFile = (String, PathBuf, Vec<u8>);

/// The files under `dir` (dot-files skipped), sorted by path.
fn local_files(dir: &Path) -> Result<Vec<RawFile>, AssetsError> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<RawFile>) -> Result<(), AssetsError> {
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
                out.push((relative.replace('\\', "/"), path, bytes));
            }
        }
        Ok(())
    }
    if !dir.is_dir() {
        return Err(AssetsError::Missing(dir.to_owned()));
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
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

/// Uploads the files of `site` the bucket does not hold yet; removes nothing.
pub async fn publish(aws: &Aws, bucket: &str, site: &Site) -> Result<SyncReport, AssetsError> {
    let remote = remote_files(aws, bucket).await?;
    let mut report = SyncReport {
        files: site.files.len(),
        ..SyncReport::default()
    };

    let changed: Vec<LocalFile> = site
        .files
        .iter()
        .filter(|f| remote.get(&f.key) != Some(&f.md5))
        .cloned()
        .collect();
    report.skipped = site.files.len() - changed.len();

    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL_UPLOADS));
    let mut uploads = tokio::task::JoinSet::new();
    for file in changed {
        let s3 = aws.s3.clone();
        let target = aws.target();
        let bucket = bucket.to_owned();
        let limit = Arc::clone(&limit);
        let cache = cache_control(&site.manifest, &file.key[STATIC_PREFIX.len()..]);
        uploads.spawn(async move {
            let _permit = limit.acquire_owned().await;
            upload(&s3, &target, &bucket, &file, cache)
                .await
                .map(|()| file.bytes.len() as u64)
        });
    }
    let mut first_error = None;
    while let Some(joined) = uploads.join_next().await {
        match joined {
            Ok(Ok(sent)) => {
                report.uploaded += 1;
                report.bytes_uploaded += sent;
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(join) => {
                first_error.get_or_insert(AssetsError::Aws(AwsError::other(
                    "s3:PutObject",
                    aws.target(),
                    join,
                )));
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    Ok(report)
}

/// Removes the objects under `static/` that neither `site` nor `replaced` (the
/// manifest the pages served until this deploy link to) nor any of `kept`
/// (the manifests of the stage's newest history records, which a rollback
/// may link to again) names. Without `replaced` (a first deploy, or an app
/// from before versioned assets) nothing is removed: what live pages link to
/// is unknown. Returns how many went.
pub async fn prune(
    aws: &Aws,
    bucket: &str,
    site: &Site,
    replaced: Option<&Manifest>,
    kept: &[Manifest],
) -> Result<usize, AssetsError> {
    let Some(replaced) = replaced else {
        return Ok(0);
    };
    let remote = remote_files(aws, bucket).await?;
    let mut named = vec![&site.manifest, replaced];
    named.extend(kept);
    let stale = stale_keys(remote.keys().map(String::as_str), &named);
    for batch in stale.chunks(1000) {
        delete_keys(aws, bucket, batch.iter().copied()).await?;
    }
    Ok(stale.len())
}

/// The keys under `static/` no manifest of `named` names.
fn stale_keys<'a>(remote: impl Iterator<Item = &'a str>, named: &[&Manifest]) -> Vec<&'a str> {
    remote
        .filter(|key| {
            let published = key.strip_prefix(STATIC_PREFIX).unwrap_or(key);
            !named.iter().any(|manifest| manifest.owns(published))
        })
        .collect()
}

/// The units of `manifest` (`css/site.css`, `vendor/leaflet`) that have no
/// published file under `static/` in `bucket`: a rollback to it would serve
/// pages with those files missing.
pub async fn missing_units(
    aws: &Aws,
    bucket: &str,
    manifest: &Manifest,
) -> Result<Vec<String>, AssetsError> {
    let remote = remote_files(aws, bucket).await?;
    let published: Vec<&str> = remote
        .keys()
        .map(|key| key.strip_prefix(STATIC_PREFIX).unwrap_or(key))
        .collect();
    let mut missing = Vec::new();
    for (unit, hash) in manifest.iter() {
        let mut alone = Manifest::default();
        if alone.insert(unit, hash).is_none() || !published.iter().any(|p| alone.owns(p)) {
            missing.push(format!("{unit} ({hash})"));
        }
    }
    Ok(missing)
}

async fn upload(
    s3: &aws_sdk_s3::Client,
    target: &str,
    bucket: &str,
    file: &LocalFile,
    cache: &str,
) -> Result<(), AssetsError> {
    s3.put_object()
        .bucket(bucket)
        .key(&file.key)
        .body(aws_sdk_s3::primitives::ByteStream::from(file.bytes.clone()))
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .content_type(content_type(&file.path))
        .cache_control(cache)
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

    fn site(files: &[(&str, &str)]) -> (tempfile::TempDir, Site) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let site = Site::read(dir.path()).unwrap();
        (dir, site)
    }

    #[test]
    fn files_are_keyed_by_their_content_hash_sorted() {
        let (_dir, site) = site(&[("css/site.css", "body{}"), ("app.js", ""), (".gitkeep", "")]);
        let keys: Vec<(&str, &str)> = site.keys().collect();
        // The first 8 hex digits of SHA-256("") and SHA-256("body{}").
        assert_eq!(
            keys,
            [
                ("app.js", "static/app.e3b0c442.js"),
                ("css/site.css", "static/css/site.7c98040a.css"),
            ]
        );
        assert_eq!(site.files[0].md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            site.manifest.to_string(),
            "app.js=e3b0c442,css/site.css=7c98040a"
        );
        // The same bytes, the same names.
        let (_again, same) = super::tests::site(&[("css/site.css", "body{}"), ("app.js", "")]);
        assert_eq!(same.manifest, site.manifest);
    }

    #[test]
    fn a_library_is_versioned_as_one_folder() {
        let files = [
            ("vendor/lib/lib.css", ".a{background:url(images/a.png)}"),
            ("vendor/lib/images/a.png", "png"),
            ("js/app.js", "1"),
        ];
        let (_dir, before) = site(&files);
        let keys: Vec<&str> = before.keys().map(|(_, k)| k).collect();
        let folder = before.manifest.url_path("vendor/lib/x").unwrap();
        let folder = folder.trim_end_matches("/x");
        assert!(folder.starts_with("vendor/lib."), "{folder}");
        assert_eq!(keys[1], format!("static/{folder}/images/a.png"));
        assert_eq!(keys[2], format!("static/{folder}/lib.css"));
        // One file of the library changes: the whole folder moves.
        let mut changed = files;
        changed[1].1 = "png2";
        let (_dir, after) = site(&changed);
        assert_ne!(
            after.manifest.url_path("vendor/lib/lib.css"),
            before.manifest.url_path("vendor/lib/lib.css")
        );
        assert_eq!(
            after.manifest.url_path("js/app.js"),
            before.manifest.url_path("js/app.js")
        );
    }

    #[test]
    fn versioned_files_are_immutable_and_others_short_lived() {
        let manifest = Manifest::parse("js/app.js=0123abcd,vendor/lib=89abcdef").unwrap();
        assert_eq!(cache_control(&manifest, "js/app.0123abcd.js"), IMMUTABLE);
        assert_eq!(
            cache_control(&manifest, "vendor/lib.89abcdef/images/a.png"),
            IMMUTABLE
        );
        assert_eq!(IMMUTABLE, "public, max-age=31536000, immutable");
        assert_eq!(cache_control(&manifest, "js/app.js"), SHORT_LIVED);
        assert_eq!(cache_control(&manifest, "js/app.00000000.js"), SHORT_LIVED);
        assert_eq!(cache_control(&manifest, "index.html"), "no-cache");
    }

    #[test]
    fn pruning_keeps_what_the_replaced_pages_link_to() {
        let current = Manifest::parse("js/app.js=22222222,vendor/lib=33333333").unwrap();
        let replaced = Manifest::parse("js/app.js=11111111,vendor/lib=33333333").unwrap();
        let remote = [
            "static/js/app.00000000.js",
            "static/js/app.11111111.js",
            "static/js/app.22222222.js",
            "static/js/app.js",
            "static/vendor/lib.33333333/lib.js",
            "static/vendor/lib.44444444/lib.js",
        ];
        assert_eq!(
            stale_keys(remote.into_iter(), &[&current, &replaced]),
            [
                "static/js/app.00000000.js",
                "static/js/app.js",
                "static/vendor/lib.44444444/lib.js"
            ]
        );
        // A manifest of the history (a rollback target) keeps its files too.
        let older = Manifest::parse("js/app.js=00000000,vendor/lib=44444444").unwrap();
        assert_eq!(
            stale_keys(remote.into_iter(), &[&current, &replaced, &older]),
            ["static/js/app.js"]
        );
    }

    #[test]
    fn a_manifest_too_large_for_the_environment_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..120 {
            std::fs::write(
                dir.path().join(format!("file-number-{i:04}.txt")),
                i.to_string(),
            )
            .unwrap();
        }
        let err = Site::read(dir.path()).unwrap_err();
        assert!(matches!(err, AssetsError::ManifestTooLarge { .. }));
        assert!(err.to_string().contains("static/vendor/"), "{err}");
    }

    #[test]
    fn a_missing_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = local_files(&dir.path().join("static")).unwrap_err();
        assert!(err.to_string().contains("no static folder"));
    }
}
