//! Photo pages. Uploads go from the browser straight to S3 through a
//! short-lived presigned PUT scoped to one key under the user's prefix; the
//! app then verifies the object (real image type, size, pixel count), reads
//! EXIF, writes the thumbnail and stores the item. A failed step removes what
//! was written, so nothing is left that the user cannot see or remove.
//! Every lookup is in the user's own partition: another user's id is a 404.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::page;
use crate::AppState;
use crate::auth::session::{Session, SignedIn, User};
use crate::error::AppError;
use crate::images::{self, Kind};
use crate::store::{self, Photo};

const PAGE_SIZE: i32 = 24;
const MAX_TAGS: usize = 20;
const MAX_TAG: usize = 40;
const MAX_DESCRIPTION: usize = 2000;
const MAX_QUERY: usize = 100;
const UPLOAD_URL_LIFETIME: Duration = Duration::from_mins(5);
const VIEW_URL_LIFETIME: Duration = Duration::from_hours(1);

/// A photo as pages show it: the item plus presigned URLs.
#[derive(Debug, Serialize)]
struct PhotoView {
    #[serde(flatten)]
    photo: Photo,
    thumbnail_url: String,
    original_url: String,
    tags_text: String,
}

async fn presign_get(state: &AppState, key: &str) -> Result<String, AppError> {
    let config = PresigningConfig::expires_in(VIEW_URL_LIFETIME).map_err(AppError::internal)?;
    let request = state
        .s3
        .get_object()
        .bucket(&state.settings.bucket)
        .key(key)
        .presigned(config)
        .await
        .map_err(AppError::internal)?;
    Ok(request.uri().to_owned())
}

async fn view(state: &AppState, user: &User, photo: Photo) -> Result<PhotoView, AppError> {
    Ok(PhotoView {
        thumbnail_url: presign_get(state, &photo.thumbnail_key(&user.sub)).await?,
        original_url: presign_get(state, &photo.original_key(&user.sub)).await?,
        tags_text: photo.tags.join(", "),
        photo,
    })
}

async fn views(
    state: &AppState,
    user: &User,
    photos: Vec<Photo>,
) -> Result<Vec<PhotoView>, AppError> {
    let mut out = Vec::with_capacity(photos.len());
    for photo in photos {
        out.push(view(state, user, photo).await?);
    }
    Ok(out)
}

async fn own_photo(state: &AppState, user: &User, id: &str) -> Result<Photo, AppError> {
    state
        .store
        .get(&user.sub, id)
        .await?
        .ok_or(AppError::NotFound)
}

#[derive(Debug, Deserialize, Default)]
pub struct AlbumQuery {
    cursor: Option<String>,
}

/// The album: thumbnails, newest first, a page at a time.
pub async fn album(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Query(q): Query<AlbumQuery>,
) -> Result<Response, AppError> {
    let cursor = q.cursor.filter(|c| c.len() <= 64);
    let result = state
        .store
        .page(&user.sub, cursor.as_deref(), PAGE_SIZE)
        .await?;
    let photos = views(&state, &user, result.photos).await?;
    Ok(page(
        &state,
        &session,
        "album",
        "Your album",
        json!({ "photos": photos, "next": result.next, "first_page": cursor.is_none() }),
    )?
    .into_response())
}

pub async fn upload_page(
    State(state): State<AppState>,
    SignedIn(_, session): SignedIn,
) -> Result<Response, AppError> {
    Ok(page(
        &state,
        &session,
        "upload",
        "Upload a photo",
        json!({ "max_mb": state.settings.max_upload_bytes / (1024 * 1024) }),
    )?
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct UploadRequest {
    content_type: String,
    size: u64,
}

#[derive(Debug, Serialize)]
pub struct UploadGrant {
    id: String,
    ext: &'static str,
    url: String,
    content_type: &'static str,
}

/// A presigned PUT for one new photo, scoped to its key, type and size.
pub async fn upload_url(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    headers: HeaderMap,
    Json(request): Json<UploadRequest>,
) -> Result<Json<UploadGrant>, AppError> {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    session.check_csrf(sent)?;
    let kind = Kind::from_content_type(&request.content_type).ok_or_else(|| {
        AppError::BadRequest("only JPEG, PNG and WebP photos can be uploaded".to_owned())
    })?;
    check_size(&state, request.size)?;
    let id = ulid::Ulid::new().to_string();
    let key = store::original_key(&user.sub, &id, kind.ext());
    let config = PresigningConfig::expires_in(UPLOAD_URL_LIFETIME).map_err(AppError::internal)?;
    let presigned = state
        .s3
        .put_object()
        .bucket(&state.settings.bucket)
        .key(&key)
        .content_type(kind.content_type())
        .content_length(i64::try_from(request.size).map_err(AppError::internal)?)
        .presigned(config)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(UploadGrant {
        id,
        ext: kind.ext(),
        url: presigned.uri().to_owned(),
        content_type: kind.content_type(),
    }))
}

fn check_size(state: &AppState, size: u64) -> Result<(), AppError> {
    let max = state.settings.max_upload_bytes;
    if size == 0 {
        Err(AppError::BadRequest("the file is empty".to_owned()))
    } else if size > max {
        Err(AppError::TooLarge(format!(
            "this photo is {} KB; the limit is {} MB",
            size.div_ceil(1024),
            max / 1_048_576
        )))
    } else {
        Ok(())
    }
}

/// The editable details of a photo, from a form.
#[derive(Debug, Deserialize)]
pub struct DetailsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    lat: String,
    #[serde(default)]
    lng: String,
}

/// Checked details: tags, description, position.
struct Details {
    tags: Vec<String>,
    description: String,
    position: Option<(f64, f64)>,
}

fn check_details(form: &DetailsForm) -> Result<Details, AppError> {
    let mut tags: Vec<String> = Vec::new();
    for tag in form
        .tags
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if tag.chars().count() > MAX_TAG {
            return Err(AppError::BadRequest(format!(
                "a tag may have at most {MAX_TAG} characters"
            )));
        }
        if !tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            tags.push(tag.to_owned());
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(AppError::BadRequest(format!("at most {MAX_TAGS} tags")));
    }
    let description = form.description.trim().to_owned();
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(AppError::BadRequest(format!(
            "the description may have at most {MAX_DESCRIPTION} characters"
        )));
    }
    let position = match (form.lat.trim(), form.lng.trim()) {
        ("", "") => None,
        (lat, lng) => {
            let lat: f64 = lat.parse().map_err(|_| bad_position())?;
            let lng: f64 = lng.parse().map_err(|_| bad_position())?;
            if !(lat.is_finite() && lng.is_finite() && lat.abs() <= 90.0 && lng.abs() <= 180.0) {
                return Err(bad_position());
            }
            Some((lat, lng))
        }
    };
    Ok(Details {
        tags,
        description,
        position,
    })
}

fn bad_position() -> AppError {
    AppError::BadRequest(
        "the location must be a latitude (-90..90) and a longitude (-180..180)".to_owned(),
    )
}

#[derive(Debug, Deserialize)]
pub struct FinishForm {
    id: String,
    ext: String,
    #[serde(default)]
    filename: String,
    #[serde(flatten)]
    details: DetailsForm,
}

/// After the browser's PUT: verify the object, read EXIF, write the
/// thumbnail, store the item. On any failure, remove what was written.
pub async fn finish_upload(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Form(form): Form<FinishForm>,
) -> Result<Response, AppError> {
    session.check_csrf(&form.details.csrf)?;
    if !store::is_photo_id(&form.id) || !["jpg", "png", "webp"].contains(&form.ext.as_str()) {
        return Err(AppError::BadRequest("this upload is not known".to_owned()));
    }
    let details = check_details(&form.details)?;
    let original = store::original_key(&user.sub, &form.id, &form.ext);
    let thumbnail = store::thumbnail_key(&user.sub, &form.id);
    match store_photo(&state, &user, &form, details, &original, &thumbnail).await {
        Ok(id) => Ok(Redirect::to(&session.link(&format!("/photos/{id}"))).into_response()),
        Err(err) => {
            // Leave nothing behind that the album does not show.
            for key in [&original, &thumbnail] {
                if let Err(e) = state
                    .s3
                    .delete_object()
                    .bucket(&state.settings.bucket)
                    .key(key)
                    .send()
                    .await
                {
                    eprintln!("cleanup of {key} failed: {e:?}");
                }
            }
            Err(err)
        }
    }
}

async fn store_photo(
    state: &AppState,
    user: &User,
    form: &FinishForm,
    details: Details,
    original: &str,
    thumbnail: &str,
) -> Result<String, AppError> {
    let s = &state.settings;
    if state.store.get(&user.sub, &form.id).await?.is_some() {
        return Err(AppError::BadRequest(
            "this photo is already in the album".to_owned(),
        ));
    }
    let (bytes, size, kind) = fetch_checked(state, original, &form.ext).await?;
    let exif = images::read_exif(&bytes);
    let (orientation, box_w, box_h, limits) = (
        exif.orientation,
        s.thumbnail_width,
        s.thumbnail_height,
        s.image_limits(),
    );
    let processed = tokio::task::spawn_blocking(move || {
        images::process(&bytes, kind, orientation, &limits, box_w, box_h)
    })
    .await
    .map_err(AppError::internal)??;
    state
        .s3
        .put_object()
        .bucket(&s.bucket)
        .key(thumbnail)
        .content_type("image/jpeg")
        .body(processed.thumbnail.into())
        .send()
        .await
        .map_err(AppError::internal)?;

    // The camera's position wins over one picked on the map.
    let position = match (exif.lat, exif.lng) {
        (Some(lat), Some(lng)) => Some((lat, lng)),
        _ => details.position,
    };
    let place = position.and_then(|(lat, lng)| crate::geo::place(lat, lng));
    let filename: String = form
        .filename
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let photo = Photo {
        id: form.id.clone(),
        tags: details.tags,
        description: details.description,
        filename,
        ext: kind.ext().to_owned(),
        content_type: kind.content_type().to_owned(),
        size,
        width: processed.width,
        height: processed.height,
        lat: position.map(|p| p.0),
        lng: position.map(|p| p.1),
        taken_at: exif.taken_at,
        uploaded_at: now_iso(),
        make: exif.make,
        model: exif.model,
        city: place.as_ref().map(|p| p.city.clone()),
        country: place.as_ref().map(|p| p.country.clone()),
        address: place.map(|p| p.address),
    };
    state.store.put(&user.sub, &photo).await?;
    Ok(photo.id)
}

/// The uploaded object, if it is within the size limit and really an image
/// of the type it was uploaded as.
async fn fetch_checked(
    state: &AppState,
    key: &str,
    ext: &str,
) -> Result<(hyper::body::Bytes, u64, Kind), AppError> {
    let s = &state.settings;
    let head = state
        .s3
        .head_object()
        .bucket(&s.bucket)
        .key(key)
        .send()
        .await
        .map_err(|_| AppError::BadRequest("the upload did not arrive; try again".to_owned()))?;
    let size = u64::try_from(head.content_length.unwrap_or(0)).unwrap_or(0);
    check_size(state, size)?;
    let object = state
        .s3
        .get_object()
        .bucket(&s.bucket)
        .key(key)
        .send()
        .await
        .map_err(AppError::internal)?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(AppError::internal)?
        .into_bytes();
    if bytes.len() as u64 > s.max_upload_bytes {
        return Err(AppError::TooLarge("this photo is too large".to_owned()));
    }
    let kind = Kind::sniff(&bytes).ok_or_else(|| {
        AppError::BadRequest("this file is not a JPEG, PNG or WebP image".to_owned())
    })?;
    if kind.ext() != ext {
        return Err(AppError::BadRequest(
            "the file's content does not match its type".to_owned(),
        ));
    }
    Ok((bytes, size, kind))
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let whole = aws_sdk_s3::primitives::DateTime::from_secs(i64::try_from(secs).unwrap_or(0));
    whole
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default()
}

/// A page about one of the user's photos.
async fn photo_page(
    state: &AppState,
    user: &User,
    session: &Session,
    id: &str,
    template: &str,
    title: &str,
) -> Result<Response, AppError> {
    let photo = own_photo(state, user, id).await?;
    let view = view(state, user, photo).await?;
    Ok(page(state, session, template, title, json!({ "photo": view }))?.into_response())
}

pub async fn detail(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    photo_page(&state, &user, &session, &id, "photo", "Photo").await
}

pub async fn edit_page(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    photo_page(&state, &user, &session, &id, "edit", "Edit photo").await
}

pub async fn edit(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Path(id): Path<String>,
    Form(form): Form<DetailsForm>,
) -> Result<Response, AppError> {
    session.check_csrf(&form.csrf)?;
    let mut photo = own_photo(&state, &user, &id).await?;
    let details = check_details(&form)?;
    photo.tags = details.tags;
    photo.description = details.description;
    if details.position != photo.lat.zip(photo.lng) {
        let place = details
            .position
            .and_then(|(lat, lng)| crate::geo::place(lat, lng));
        photo.lat = details.position.map(|p| p.0);
        photo.lng = details.position.map(|p| p.1);
        photo.city = place.as_ref().map(|p| p.city.clone());
        photo.country = place.as_ref().map(|p| p.country.clone());
        photo.address = place.map(|p| p.address);
    }
    state.store.update(&user.sub, &photo).await?;
    Ok(Redirect::to(&session.link(&format!("/photos/{id}"))).into_response())
}

pub async fn delete_page(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    photo_page(&state, &user, &session, &id, "delete", "Delete photo").await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Deletes the objects first, then the item: if a step fails the photo is
/// still in the album, and deleting it again finishes the job.
pub async fn delete(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    session.check_csrf(&form.csrf)?;
    let photo = own_photo(&state, &user, &id).await?;
    for key in [
        photo.original_key(&user.sub),
        photo.thumbnail_key(&user.sub),
    ] {
        state
            .s3
            .delete_object()
            .bucket(&state.settings.bucket)
            .key(&key)
            .send()
            .await
            .map_err(AppError::internal)?;
    }
    state.store.delete(&user.sub, &photo.id).await?;
    Ok(Redirect::to(&session.link("/")).into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct SearchQuery {
    q: Option<String>,
}

/// Case-insensitive search over tags, description and place.
pub async fn search(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Query(q): Query<SearchQuery>,
) -> Result<Response, AppError> {
    let query = q.q.unwrap_or_default().trim().to_owned();
    if query.chars().count() > MAX_QUERY {
        return Err(AppError::BadRequest(format!(
            "a search may have at most {MAX_QUERY} characters"
        )));
    }
    let photos = if query.is_empty() {
        Vec::new()
    } else {
        views(
            &state,
            &user,
            state.store.search(&user.sub, &query, 100).await?,
        )
        .await?
    };
    Ok(page(
        &state,
        &session,
        "album",
        "Search",
        json!({ "count": photos.len(), "photos": photos, "query": query, "searched": true }),
    )?
    .into_response())
}

/// A marker on the map. Numbers only, so the JSON can't carry script.
#[derive(Debug, Serialize)]
struct Marker {
    id: String,
    lat: f64,
    lng: f64,
    title: String,
    thumbnail_url: String,
    url: String,
}

async fn markers(
    state: &AppState,
    user: &User,
    session: &Session,
    photos: Vec<Photo>,
) -> Result<String, AppError> {
    let mut out = Vec::new();
    for p in photos {
        let (Some(lat), Some(lng)) = (p.lat, p.lng) else {
            continue;
        };
        out.push(Marker {
            lat,
            lng,
            title: if p.description.is_empty() {
                p.tags.join(", ")
            } else {
                p.description.clone()
            },
            thumbnail_url: presign_get(state, &p.thumbnail_key(&user.sub)).await?,
            url: session.link(&format!("/photos/{}", p.id)),
            id: p.id,
        });
    }
    // Embedded in <script type="application/json">: escape what could end it.
    Ok(serde_json::to_string(&out)
        .map_err(AppError::internal)?
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026"))
}

pub async fn map_all(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
) -> Result<Response, AppError> {
    let photos = state.store.located(&user.sub, 1000).await?;
    let count = photos.len();
    let data = markers(&state, &user, &session, photos).await?;
    Ok(page(
        &state,
        &session,
        "map",
        "Map",
        json!({ "markers": data, "count": count }),
    )?
    .into_response())
}

pub async fn map_one(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let photo = own_photo(&state, &user, &id).await?;
    let count = usize::from(photo.lat.is_some());
    let data = markers(&state, &user, &session, vec![photo]).await?;
    Ok(page(
        &state,
        &session,
        "map",
        "Map",
        json!({ "markers": data, "count": count, "single": id }),
    )?
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(tags: &str, lat: &str, lng: &str) -> DetailsForm {
        DetailsForm {
            csrf: String::new(),
            tags: tags.to_owned(),
            description: "d".to_owned(),
            lat: lat.to_owned(),
            lng: lng.to_owned(),
        }
    }

    #[test]
    fn tags_are_trimmed_and_deduplicated_case_insensitively() {
        let d = check_details(&form(" beach, Beach ,, summer ", "", "")).unwrap();
        assert_eq!(d.tags, ["beach", "summer"]);
        assert_eq!(d.position, None);
    }

    #[test]
    fn positions_must_be_numbers_in_range() {
        assert_eq!(
            check_details(&form("", "37.5", "126.9")).unwrap().position,
            Some((37.5, 126.9))
        );
        for (lat, lng) in [
            ("91", "0"),
            ("0", "181"),
            ("1;alert(1)", "0"),
            ("NaN", "0"),
            ("1", ""),
        ] {
            assert!(check_details(&form("", lat, lng)).is_err(), "{lat},{lng}");
        }
    }

    #[test]
    fn too_many_or_too_long_tags_are_refused() {
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(check_details(&form(&many.join(","), "", "")).is_err());
        assert!(check_details(&form(&"x".repeat(41), "", "")).is_err());
    }

    #[test]
    fn now_is_iso_utc() {
        let t = now_iso();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
