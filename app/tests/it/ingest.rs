//! The upload pipeline and the search index without the router, against the
//! local cloud: each step failed in turn, repeated and concurrent finishes,
//! a replayed upload URL, a staged file swapped after it was checked, and the
//! index kept in step with upload, edit and delete. Every check goes through
//! the bucket's and the table's own APIs.

use cloudalbum::images::Kind;
use cloudalbum::photos::ingest::{
    Faults, Finished, Ingest, IngestError, Limits, NoFaults, Step, Upload,
};
use cloudalbum::photos::objects::{self, ObjectsError};
use cloudalbum::photos::table::SearchQuery;
use cloudalbum::photos::{Details, Objects, Store};

use crate::support::{jpeg_with_exif, world};

struct FailAt(Step);

impl Faults for FailAt {
    fn before(&self, step: Step) -> Result<(), IngestError> {
        if step == self.0 {
            Err(IngestError::Injected(step))
        } else {
            Ok(())
        }
    }
}

/// Runs `f` before `step`, inside the pipeline (a blocking call on the test's
/// multi-threaded runtime).
struct Before<F>(Step, F);

impl<F: Fn() + Send + Sync> Faults for Before<F> {
    fn before(&self, step: Step) -> Result<(), IngestError> {
        if step == self.0 {
            tokio::task::block_in_place(&self.1);
        }
        Ok(())
    }
}

struct Parts {
    objects: Objects,
    store: Store,
    limits: Limits,
}

async fn parts() -> Parts {
    let state = world().state().await;
    let s = &world().settings;
    Parts {
        objects: state.objects.clone(),
        store: state.store.clone(),
        limits: Limits {
            max_upload_bytes: s.max_upload_bytes,
            image: s.image_limits(),
            thumbnail_width: s.thumbnail_width,
            thumbnail_height: s.thumbnail_height,
        },
    }
}

impl Parts {
    fn ingest<'a>(&'a self, faults: &'a dyn Faults) -> Ingest<'a> {
        Ingest {
            objects: &self.objects,
            store: &self.store,
            limits: self.limits,
            faults,
        }
    }

    /// Stages `bytes` as the browser would, through a presigned URL.
    async fn stage(&self, user: &str, id: &str, bytes: &[u8]) {
        let url = self
            .objects
            .presign_upload(user, id, Kind::Jpeg, bytes.len() as u64)
            .await
            .unwrap();
        put_url(&url, bytes).await;
    }

    async fn keys_under(&self, prefix: &str) -> Vec<String> {
        self.objects
            .s3
            .list_objects_v2()
            .bucket(&self.objects.bucket)
            .prefix(prefix)
            .send()
            .await
            .unwrap()
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    async fn object(&self, key: &str) -> Vec<u8> {
        self.objects
            .s3
            .get_object()
            .bucket(&self.objects.bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .to_vec()
    }

    /// Nothing of upload `id` anywhere: no staged or final object, no item,
    /// no claim, no index word.
    async fn assert_nothing_left(&self, user: &str, id: &str, when: &str) {
        let staged = self.keys_under(&format!("staging/{user}/")).await;
        assert!(staged.is_empty(), "{when}: staged {staged:?}");
        let photos = self.keys_under(&format!("photos/{user}/")).await;
        assert!(photos.is_empty(), "{when}: objects {photos:?}");
        assert_eq!(
            self.store.get(user, id).await.unwrap(),
            None,
            "{when}: item"
        );
        assert!(
            !self.store.claim_exists(user, id).await.unwrap(),
            "{when}: claim"
        );
        assert_eq!(
            self.store.indexed(user, id).await.unwrap(),
            0,
            "{when}: index"
        );
    }
}

/// A PUT to a presigned URL, as the browser sends it.
async fn put_url(url: &str, bytes: &[u8]) -> u16 {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<hyper::body::Bytes>>();
    let request = hyper::Request::put(url)
        .header("content-type", "image/jpeg")
        .header("content-length", bytes.len())
        .body(http_body_util::Full::new(hyper::body::Bytes::from(
            bytes.to_vec(),
        )))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    assert!(
        (200..300).contains(&status),
        "presigned PUT answered {status}"
    );
    status
}

fn upload<'a>(user: &'a str, id: &'a str) -> Upload<'a> {
    Upload {
        user,
        id,
        ext: "jpg",
        filename: "IMG_0001.jpg",
        details: Details {
            tags: vec!["Harbour".to_owned(), "New York".to_owned()],
            description: "Ferries at dawn".to_owned(),
            position: None,
        },
    }
}

fn new_id() -> String {
    ulid::Ulid::new().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_at_each_step_leaves_nothing_behind() {
    let p = parts().await;
    let user = "ingest-faults";
    let jpeg = jpeg_with_exif(640, 480);
    for step in Step::ALL {
        let id = new_id();
        p.stage(user, &id, &jpeg).await;
        let fault = FailAt(step);
        let err = p
            .ingest(&fault)
            .finish(upload(user, &id))
            .await
            .unwrap_err();
        assert!(
            matches!(err, IngestError::Injected(s) if s == step),
            "{step:?}: {err}"
        );
        p.assert_nothing_left(user, &id, &format!("failed before {step:?}"))
            .await;
    }
    // And without a failure, the same upload is stored whole.
    let id = new_id();
    p.stage(user, &id, &jpeg).await;
    let done = p.ingest(&NoFaults).finish(upload(user, &id)).await.unwrap();
    assert!(matches!(done, Finished::Stored(_)));
    let mut keys = p.keys_under(&format!("photos/{user}/")).await;
    keys.sort();
    assert_eq!(
        keys,
        [
            objects::original_key(user, &id, "jpg"),
            objects::thumbnail_key(user, &id)
        ]
    );
    assert!(p.keys_under(&format!("staging/{user}/")).await.is_empty());
    assert!(!p.store.claim_exists(user, &id).await.unwrap());
    assert!(p.store.indexed(user, &id).await.unwrap() >= 5);
}

/// A photo over its time budget is refused with a 422, and its staged
/// object is removed as for any other refusal.
#[tokio::test(flavor = "multi_thread")]
async fn a_photo_over_its_time_budget_leaves_nothing_behind() {
    let mut p = parts().await;
    p.limits.image.time = std::time::Duration::from_millis(1);
    let user = "ingest-slow";
    let id = new_id();
    // 38.9 megapixels (under the local stage's 40), 0.5 MB: a valid photo
    // that takes longer than 1 ms.
    let jpeg = crate::craft::flat_jpeg(
        7_200,
        5_400,
        &[(2, 2), (1, 1), (1, 1)],
        crate::craft::Coding::Baseline,
    );
    p.stage(user, &id, &jpeg).await;
    let err = p
        .ingest(&NoFaults)
        .finish(upload(user, &id))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IngestError::Image(cloudalbum::images::ImageError::OutOfTime(_))
        ),
        "{err}"
    );
    assert_eq!(cloudalbum::error::AppError::from(err).status(), 422);
    p.assert_nothing_left(user, &id, "refused as too slow")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_finish_or_a_replayed_url_never_changes_the_stored_photo() {
    let p = parts().await;
    let user = "ingest-replay";
    let id = new_id();
    let jpeg = jpeg_with_exif(320, 240);
    let url = p
        .objects
        .presign_upload(user, &id, Kind::Jpeg, jpeg.len() as u64)
        .await
        .unwrap();
    put_url(&url, &jpeg).await;
    let first = p.ingest(&NoFaults).finish(upload(user, &id)).await.unwrap();
    let Finished::Stored(stored) = first else {
        panic!("first finish: {first:?}")
    };
    let original = objects::original_key(user, &id, "jpg");
    assert_eq!(p.object(&original).await, jpeg);

    // The same URL again, with other bytes of the same length: it can only
    // reach staging, and finishing again answers with the stored photo.
    let mut other = jpeg.clone();
    let last = other.len() - 3;
    other[last] ^= 0xFF;
    put_url(&url, &other).await;
    let again = p.ingest(&NoFaults).finish(upload(user, &id)).await.unwrap();
    assert_eq!(again, Finished::AlreadyStored(stored.clone()));
    assert_eq!(p.object(&original).await, jpeg, "the original changed");
    assert!(
        p.keys_under(&format!("staging/{user}/")).await.is_empty(),
        "the replayed upload was left in staging"
    );
    // A third time, with nothing staged: still the stored photo.
    let third = p.ingest(&NoFaults).finish(upload(user, &id)).await.unwrap();
    assert_eq!(third, Finished::AlreadyStored(stored));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_finishes_store_one_photo_and_both_answer_with_it() {
    let p = parts().await;
    let user = "ingest-race";
    for _ in 0..3 {
        let id = new_id();
        p.stage(user, &id, &jpeg_with_exif(800, 600)).await;
        let (one, two) = (p.ingest(&NoFaults), p.ingest(&NoFaults));
        let (a, b) = tokio::join!(one.finish(upload(user, &id)), two.finish(upload(user, &id)),);
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.photo(), b.photo());
        assert_eq!(
            [&a, &b]
                .iter()
                .filter(|f| matches!(f, Finished::Stored(_)))
                .count(),
            1,
            "{a:?} {b:?}"
        );
        for key in [
            objects::original_key(user, &id, "jpg"),
            objects::thumbnail_key(user, &id),
        ] {
            assert!(p.objects.exists(&key).await.unwrap(), "{key} is gone");
        }
        assert!(p.keys_under(&format!("staging/{user}/")).await.is_empty());
        assert!(!p.store.claim_exists(user, &id).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_staged_file_swapped_after_it_was_checked_is_not_copied() {
    let p = parts().await;
    let user = "ingest-swap";
    let id = new_id();
    let jpeg = jpeg_with_exif(320, 240);
    p.stage(user, &id, &jpeg).await;
    let staged = objects::staged_key(user, &id, "jpg");
    let s3 = p.objects.s3.clone();
    let bucket = p.objects.bucket.clone();
    let handle = tokio::runtime::Handle::current();
    // Between the check and the copy, the browser's URL writes something else.
    let swap = Before(Step::Copy, move || {
        handle.block_on(async {
            s3.put_object()
                .bucket(&bucket)
                .key(&staged)
                .body(b"<html>not a photo</html>".to_vec().into())
                .send()
                .await
                .unwrap();
        });
    });
    let err = p.ingest(&swap).finish(upload(user, &id)).await.unwrap_err();
    assert!(
        matches!(err, IngestError::Objects(ObjectsError::SourceChanged)),
        "{err}"
    );
    p.assert_nothing_left(user, &id, "after the swap").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_files_and_missing_uploads_leave_nothing() {
    let p = parts().await;
    let user = "ingest-refused";
    let id = new_id();
    p.stage(user, &id, b"GIF89a not what it claims").await;
    let err = p
        .ingest(&NoFaults)
        .finish(upload(user, &id))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a JPEG, PNG or WebP"), "{err}");
    p.assert_nothing_left(user, &id, "refused").await;
    let never = new_id();
    let err = p
        .ingest(&NoFaults)
        .finish(upload(user, &never))
        .await
        .unwrap_err();
    assert!(
        matches!(err, IngestError::Objects(ObjectsError::Missing)),
        "{err}"
    );
    let err = p
        .ingest(&NoFaults)
        .finish(Upload {
            id: "../../etc/passwd",
            ..upload(user, &never)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, IngestError::Unknown), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_search_index_follows_upload_edit_and_delete() {
    let p = parts().await;
    let user = "index-user";
    let id = new_id();
    p.stage(user, &id, &jpeg_with_exif(320, 240)).await;
    let photo = p
        .ingest(&NoFaults)
        .finish(upload(user, &id))
        .await
        .unwrap()
        .photo()
        .clone();
    let found = |q: &'static str| {
        let store = p.store.clone();
        async move {
            let query = SearchQuery::parse(q).unwrap();
            store
                .search(user, &query, None, 24)
                .await
                .unwrap()
                .photos
                .iter()
                .map(|p| p.id.clone())
                .collect::<Vec<_>>()
        }
    };
    for q in [
        "harbour", "HARB", "new york", "york new", "ferries", "dawn", "seoul",
    ] {
        assert_eq!(found(q).await, std::slice::from_ref(&id), "{q}");
    }
    for q in ["mountain", "arbour", "new mountain"] {
        assert!(found(q).await.is_empty(), "{q}");
    }

    // Edit: the words that went are gone, the new ones found.
    let mut edited = photo.clone();
    edited.apply(Details {
        tags: vec!["Mountain".to_owned()],
        description: "Snow".to_owned(),
        position: None,
    });
    p.store.update(user, &photo, &edited).await.unwrap();
    assert!(found("harbour").await.is_empty());
    assert!(found("seoul").await.is_empty());
    assert_eq!(found("mountain snow").await, std::slice::from_ref(&id));
    // An edit from a stale read is refused, and changes nothing.
    let err = p.store.update(user, &photo, &photo).await.unwrap_err();
    assert!(err.to_string().contains("changed"), "{err}");
    assert_eq!(found("mountain").await, std::slice::from_ref(&id));

    // Delete: the item and every index word.
    let current = p.store.get(user, &id).await.unwrap().unwrap();
    assert_eq!(current.rev, 1);
    assert!(p.store.delete(user, &photo).await.is_err(), "stale delete");
    p.store.delete(user, &current).await.unwrap();
    assert_eq!(p.store.get(user, &id).await.unwrap(), None);
    assert_eq!(p.store.indexed(user, &id).await.unwrap(), 0);
    assert!(found("mountain").await.is_empty());
}
