//! How an upload becomes a photo: verify the staged object → read EXIF →
//! make the thumbnail → name the place → claim the upload → copy the
//! original to its final key → write the thumbnail → remove the staged
//! object → store the item and its search words.
//!
//! Nothing unverified stays: the browser can only write to staging, and a
//! file is copied out of it only after it was checked, pinned to the checked
//! bytes by their `ETag`. Nothing verified is overwritten: the copy is
//! conditional (`If-None-Match: *`, where S3 honours it) and, before it, the
//! request claims the upload in the table, so one request at a time writes a
//! photo's objects. A repeated or concurrent finish answers with the stored
//! photo and deletes nothing another request wrote. A failure at any step
//! removes what this request wrote, the staged object and its claim.
//!
//! [`Faults`] is the seam a test uses to fail each step in turn.

use std::time::Duration;

use super::objects::{self, Objects, ObjectsError};
use super::table::{Store, TableError};
use super::{Details, Photo};
use crate::images::{self, ImageError, Kind};

/// The steps of [`finish`], in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Is the photo stored already?
    Check,
    /// Read the staged object back.
    Fetch,
    /// Sniff, EXIF, decode within the limits, thumbnail.
    Verify,
    /// Claim the upload in the table.
    Claim,
    /// Copy the original to its final key.
    Copy,
    /// Write the thumbnail.
    Thumbnail,
    /// Delete the staged object.
    Unstage,
    /// Store the item and its search words (and release the claim).
    Store,
}

impl Step {
    pub const ALL: [Self; 8] = [
        Self::Check,
        Self::Fetch,
        Self::Verify,
        Self::Claim,
        Self::Copy,
        Self::Thumbnail,
        Self::Unstage,
        Self::Store,
    ];
}

/// Called before each step; an error fails the upload there. The app uses
/// [`NoFaults`]; tests inject failures.
pub trait Faults: Send + Sync {
    fn before(&self, step: Step) -> Result<(), IngestError>;
}

/// No injected failures.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFaults;

impl Faults for NoFaults {
    fn before(&self, _: Step) -> Result<(), IngestError> {
        Ok(())
    }
}

/// How much longer than an image's budget its decoding thread is waited
/// for: `images::process` stops itself within the budget wherever it can
/// look at the clock.
pub const BUDGET_GRACE: Duration = Duration::from_secs(1);

/// Runs `work` (an image's decoding) on a blocking thread and waits for it
/// at most `budget` and [`BUDGET_GRACE`]: past that the upload is refused as
/// out of time, so the request is answered even when a decoder that reads
/// the whole file first (zune-jpeg, lossy WebP) runs long. That thread runs
/// on until the decoder returns; it cannot be stopped, but what it may
/// allocate is bounded by the image's memory budget, and it was checked
/// before it started.
pub async fn within_budget<T: Send + 'static>(
    budget: Duration,
    work: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, IngestError> {
    let task = tokio::task::spawn_blocking(work);
    match tokio::time::timeout(budget.saturating_add(BUDGET_GRACE), task).await {
        Ok(Ok(done)) => Ok(done?),
        Ok(Err(e)) => Err(IngestError::Internal(format!("the image task ended: {e}"))),
        Err(_) => Err(ImageError::OutOfTime(budget).into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("this upload is not known")]
    Unknown,
    #[error(transparent)]
    Objects(#[from] ObjectsError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("the file's content is {found}, not {claimed}; upload it again")]
    WrongType {
        found: &'static str,
        claimed: String,
    },
    #[error("this photo is being saved by another request; open your album in a moment to see it")]
    Busy,
    #[error("processing the photo failed: {0}")]
    Internal(String),
    #[error("injected failure before step {0:?}")]
    Injected(Step),
}

/// What `finish` needs to know about the stage.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_upload_bytes: u64,
    /// Pixels, memory and time one image may take (`Settings::image_limits`).
    pub image: images::Limits,
    pub thumbnail_width: u32,
    pub thumbnail_height: u32,
}

/// One upload to finish: the id and type the upload URL was granted for.
#[derive(Debug, Clone)]
pub struct Upload<'a> {
    pub user: &'a str,
    pub id: &'a str,
    pub ext: &'a str,
    pub filename: &'a str,
    pub details: Details,
}

/// What finishing did.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// This request stored the photo.
    Stored(Photo),
    /// The photo was already stored (a repeated or concurrent finish).
    AlreadyStored(Photo),
}

impl Finished {
    pub fn photo(&self) -> &Photo {
        match self {
            Self::Stored(p) | Self::AlreadyStored(p) => p,
        }
    }
}

/// The photo pipeline over the bucket and the table.
pub struct Ingest<'a> {
    pub objects: &'a Objects,
    pub store: &'a Store,
    pub limits: Limits,
    pub faults: &'a dyn Faults,
}

impl std::fmt::Debug for Ingest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// How long a finish that lost the claim waits for the winner's photo.
const WAIT_FOR_WINNER: Duration = Duration::from_secs(5);

/// What a request wrote, so its cleanup removes that and nothing else.
#[derive(Debug, Default)]
struct Wrote {
    original: bool,
    thumbnail: bool,
}

/// Keys of one upload.
struct Keys {
    staged: String,
    original: String,
    thumbnail: String,
}

impl Ingest<'_> {
    /// Verifies upload `u`'s staged object and stores it as a photo.
    pub async fn finish(&self, u: Upload<'_>) -> Result<Finished, IngestError> {
        let kind = kind_of(u.ext).ok_or(IngestError::Unknown)?;
        if !super::is_photo_id(u.id) {
            return Err(IngestError::Unknown);
        }
        let keys = Keys {
            staged: objects::staged_key(u.user, u.id, kind.ext()),
            original: objects::original_key(u.user, u.id, kind.ext()),
            thumbnail: objects::thumbnail_key(u.user, u.id),
        };

        let stored = match self.faults.before(Step::Check) {
            Ok(()) => self
                .store
                .get(u.user, u.id)
                .await
                .map_err(IngestError::from),
            Err(err) => Err(err),
        };
        match stored {
            Ok(None) => {}
            // A replayed upload URL may have staged something again: it is
            // never copied; remove it.
            Ok(Some(stored)) => {
                self.discard(&keys.staged).await;
                return Ok(Finished::AlreadyStored(stored));
            }
            Err(err) => {
                self.discard(&keys.staged).await;
                return Err(err);
            }
        }

        let result = self.verify(&u, kind, &keys).await;
        let (photo, fetched, thumbnail) = match result {
            Ok(done) => done,
            Err(IngestError::Objects(ObjectsError::Missing)) => {
                // Nothing staged: never uploaded, or a concurrent finish
                // moved it (it holds the claim until the item is stored, in
                // one transaction).
                if let Some(stored) = self.store.get(u.user, u.id).await? {
                    return Ok(Finished::AlreadyStored(stored));
                }
                if !self.store.claim_exists(u.user, u.id).await? {
                    return Err(ObjectsError::Missing.into());
                }
                return self
                    .wait_for_winner(u.user, u.id)
                    .await?
                    .map(Finished::AlreadyStored)
                    .ok_or(IngestError::Busy);
            }
            Err(err) => {
                self.discard(&keys.staged).await;
                return Err(err);
            }
        };

        let token = ulid::Ulid::new().to_string();
        let claimed = match self.faults.before(Step::Claim) {
            Ok(()) => self.store.claim(u.user, u.id, &token).await,
            Err(err) => {
                self.discard(&keys.staged).await;
                return Err(err);
            }
        };
        match claimed {
            Ok(()) => {}
            Err(TableError::Claimed(_)) => {
                return self
                    .wait_for_winner(u.user, u.id)
                    .await?
                    .map(Finished::AlreadyStored)
                    .ok_or(IngestError::Busy);
            }
            Err(err) => {
                self.discard(&keys.staged).await;
                return Err(err.into());
            }
        }

        self.claimed(&u, &keys, photo, &fetched.etag, thumbnail, &token)
            .await
    }

    /// The part under the claim: from here this request owns the photo's
    /// keys until it stores the item or gives the claim back.
    async fn claimed(
        &self,
        u: &Upload<'_>,
        keys: &Keys,
        photo: Photo,
        etag: &str,
        thumbnail: Vec<u8>,
        token: &str,
    ) -> Result<Finished, IngestError> {
        // A request that claimed, stored and released while this one was
        // verifying left the item: look first.
        let mut wrote = Wrote::default();
        let placed = match self.store.get(u.user, u.id).await {
            Ok(Some(stored)) => Ok(Some(stored)),
            Ok(None) => self
                .place(u, keys, &photo, etag, thumbnail, token, &mut wrote)
                .await
                .map(|()| None),
            Err(err) => Err(err.into()),
        };
        let result = match placed {
            Ok(None) => return Ok(Finished::Stored(photo)),
            Ok(Some(stored)) => Ok(Finished::AlreadyStored(stored)),
            Err(err) => Err(err),
        };
        // A store that failed on the wire may still have committed: then
        // the objects are the photo's, not leftovers.
        if wrote.original
            && result.is_err()
            && let Ok(Some(stored)) = self.store.get(u.user, u.id).await
        {
            return Ok(Finished::Stored(stored));
        }
        // Remove only what this request wrote, then the staged object, then
        // give the claim back.
        if wrote.original {
            self.discard(&keys.original).await;
        }
        if wrote.thumbnail {
            self.discard(&keys.thumbnail).await;
        }
        self.discard(&keys.staged).await;
        if let Err(e) = self.store.release(u.user, u.id, token).await {
            crate::auth::session::tracing_log(&format!(
                "upload cleanup: releasing the claim of {}: {e}",
                u.id
            ));
        }
        result
    }

    /// Fetches and checks the staged object; the photo it makes, the fetch
    /// (its `ETag` pins the copy) and the thumbnail.
    async fn verify(
        &self,
        u: &Upload<'_>,
        kind: Kind,
        keys: &Keys,
    ) -> Result<(Photo, objects::Fetched, Vec<u8>), IngestError> {
        self.faults.before(Step::Fetch)?;
        let fetched = self
            .objects
            .fetch(&keys.staged, self.limits.max_upload_bytes)
            .await?;
        self.faults.before(Step::Verify)?;
        let found = Kind::sniff(&fetched.bytes).ok_or(ImageError::NotAnImage)?;
        if found != kind {
            return Err(IngestError::WrongType {
                found: found.content_type(),
                claimed: kind.content_type().to_owned(),
            });
        }
        let exif = images::read_exif(&fetched.bytes);
        let limits = self.limits;
        let bytes = fetched.bytes.clone();
        let orientation = exif.orientation;
        let processed = within_budget(limits.image.time, move || {
            images::process(
                &bytes,
                kind,
                orientation,
                &limits.image,
                limits.thumbnail_width,
                limits.thumbnail_height,
            )
        })
        .await?;

        // The camera's position wins over one picked on the map.
        let position = match (exif.lat, exif.lng) {
            (Some(lat), Some(lng)) => Some((lat, lng)),
            _ => u.details.position,
        };
        let filename: String = u
            .filename
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let mut photo = Photo {
            id: u.id.to_owned(),
            tags: u.details.tags.clone(),
            description: u.details.description.clone(),
            filename,
            ext: kind.ext().to_owned(),
            content_type: kind.content_type().to_owned(),
            size: fetched.bytes.len() as u64,
            width: processed.width,
            height: processed.height,
            lat: None,
            lng: None,
            taken_at: exif.taken_at,
            uploaded_at: now_iso(),
            make: exif.make,
            model: exif.model,
            city: None,
            country: None,
            address: None,
            rev: 0,
        };
        photo.set_position(position);
        Ok((photo, fetched, processed.thumbnail))
    }

    /// The claimed part: copy, thumbnail, unstage, store; `wrote` records
    /// what is this request's to remove if a later step fails.
    #[allow(clippy::too_many_arguments)]
    async fn place(
        &self,
        u: &Upload<'_>,
        keys: &Keys,
        photo: &Photo,
        etag: &str,
        thumbnail: Vec<u8>,
        token: &str,
        wrote: &mut Wrote,
    ) -> Result<(), IngestError> {
        self.faults.before(Step::Copy)?;
        self.objects
            .copy_verified(&keys.staged, etag, &keys.original, &photo.content_type)
            .await?;
        wrote.original = true;
        self.faults.before(Step::Thumbnail)?;
        // Marked first: a write that failed may still have landed.
        wrote.thumbnail = true;
        self.objects
            .put_thumbnail(&keys.thumbnail, thumbnail)
            .await?;
        self.faults.before(Step::Unstage)?;
        self.objects.delete(&keys.staged).await?;
        self.faults.before(Step::Store)?;
        self.store.put(u.user, photo, Some(token)).await?;
        Ok(())
    }

    /// Waits a little for another request's photo to be stored.
    async fn wait_for_winner(&self, user: &str, id: &str) -> Result<Option<Photo>, IngestError> {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(photo) = self.store.get(user, id).await? {
                return Ok(Some(photo));
            }
            if started.elapsed() >= WAIT_FOR_WINNER {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Deletes what this request no longer needs; a failure is logged (the
    /// lifecycle rule still expires staged objects).
    async fn discard(&self, key: &str) {
        if let Err(e) = self.objects.delete(key).await {
            crate::auth::session::tracing_log(&format!("upload cleanup: {e}"));
        }
    }
}

/// The kind an upload was granted for, by its extension.
fn kind_of(ext: &str) -> Option<Kind> {
    [Kind::Jpeg, Kind::Png, Kind::WebP]
        .into_iter()
        .find(|k| k.ext() == ext)
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let whole = aws_sdk_s3::primitives::DateTime::from_secs(i64::try_from(secs).unwrap_or(0));
    whole
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_iso_utc() {
        let t = now_iso();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }

    /// A decoder that runs past its budget (one that cannot look at the
    /// clock) does not hold the answer: it comes after the budget and the
    /// grace, not when the decoder returns.
    #[tokio::test]
    async fn a_decode_past_its_budget_is_answered_on_time() {
        let started = std::time::Instant::now();
        let slow = within_budget(Duration::ZERO, || {
            std::thread::sleep(BUDGET_GRACE + Duration::from_millis(700));
            Ok(())
        })
        .await;
        let answered = started.elapsed();
        assert!(
            matches!(slow, Err(IngestError::Image(ImageError::OutOfTime(_)))),
            "{slow:?}"
        );
        assert!(
            answered < BUDGET_GRACE + Duration::from_millis(500),
            "answered after {answered:?}"
        );
        // Within the budget, the work's own answer comes through.
        let fast = within_budget(Duration::from_secs(5), || Ok(7)).await;
        assert_eq!(fast.ok(), Some(7));
        let refused =
            within_budget::<()>(Duration::from_secs(5), || Err(ImageError::NotAnImage)).await;
        assert!(
            matches!(refused, Err(IngestError::Image(ImageError::NotAnImage))),
            "{refused:?}"
        );
    }

    #[test]
    fn steps_are_listed_in_order_once() {
        for (i, a) in Step::ALL.iter().enumerate() {
            assert!(!Step::ALL[i + 1..].contains(a), "{a:?} twice");
        }
        assert_eq!(Step::ALL.first(), Some(&Step::Check));
        assert_eq!(Step::ALL.last(), Some(&Step::Store));
    }
}
