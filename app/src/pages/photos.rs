//! Photo pages: they translate between HTTP and the photo domain
//! (`crate::photos`), which does the work. Every lookup is in the user's own
//! partition: another user's id is a 404.

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
use crate::images::Kind;
use crate::photos::ingest::{Ingest, Limits, NoFaults, Upload};
use crate::photos::table::SearchQuery;
use crate::photos::{Details, Photo, objects};

const PAGE_SIZE: i32 = 24;
const MAX_TAGS: usize = 20;
const MAX_TAG: usize = 40;
const MAX_DESCRIPTION: usize = 2000;
const MAX_QUERY: usize = 100;

/// A photo as pages show it: the item plus presigned URLs (the original's
/// only on the photo's own pages: lists show thumbnails).
#[derive(Debug, Serialize)]
struct PhotoView {
    #[serde(flatten)]
    photo: Photo,
    thumbnail_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_url: Option<String>,
    tags_text: String,
}

async fn presign_get(state: &AppState, key: &str) -> Result<String, AppError> {
    Ok(state.objects.presign_get(key).await?)
}

async fn view(
    state: &AppState,
    user: &User,
    photo: Photo,
    with_original: bool,
) -> Result<PhotoView, AppError> {
    let original_url = if with_original {
        Some(presign_get(state, &photo.original_key(&user.sub)).await?)
    } else {
        None
    };
    Ok(PhotoView {
        thumbnail_url: presign_get(state, &photo.thumbnail_key(&user.sub)).await?,
        original_url,
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
        out.push(view(state, user, photo, false).await?);
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
    objects::check_size(request.size, state.settings.max_upload_bytes)?;
    let id = ulid::Ulid::new().to_string();
    let url = state
        .objects
        .presign_upload(&user.sub, &id, kind, request.size)
        .await?;
    Ok(Json(UploadGrant {
        id,
        ext: kind.ext(),
        url,
        content_type: kind.content_type(),
    }))
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

/// After the browser's PUT: the photo domain verifies the staged object
/// and stores the photo (or finds it stored by an earlier finish).
pub async fn finish_upload(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Form(form): Form<FinishForm>,
) -> Result<Response, AppError> {
    session.check_csrf(&form.details.csrf)?;
    let details = check_details(&form.details)?;
    let finished = ingest(&state)
        .finish(Upload {
            user: &user.sub,
            id: &form.id,
            ext: &form.ext,
            filename: &form.filename,
            details,
        })
        .await?;
    let id = &finished.photo().id;
    Ok(Redirect::to(&session.link(&format!("/photos/{id}"))).into_response())
}

/// The upload pipeline with the stage's limits.
pub fn ingest(state: &AppState) -> Ingest<'_> {
    let s = &state.settings;
    Ingest {
        objects: &state.objects,
        store: &state.store,
        limits: Limits {
            max_upload_bytes: s.max_upload_bytes,
            image: s.image_limits(),
            thumbnail_width: s.thumbnail_width,
            thumbnail_height: s.thumbnail_height,
        },
        faults: &NoFaults,
    }
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
    let view = view(state, user, photo, true).await?;
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
    let old = own_photo(&state, &user, &id).await?;
    let mut photo = old.clone();
    photo.apply(check_details(&form)?);
    state.store.update(&user.sub, &old, &photo).await?;
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
        state.objects.delete(&key).await?;
    }
    state.store.delete(&user.sub, &photo).await?;
    Ok(Redirect::to(&session.link("/")).into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct SearchForm {
    q: Option<String>,
    cursor: Option<String>,
}

/// Case-insensitive search over the words of tags, description and place:
/// each word of the query begins a word of the photo. A page at a time.
pub async fn search(
    State(state): State<AppState>,
    SignedIn(user, session): SignedIn,
    Query(form): Query<SearchForm>,
) -> Result<Response, AppError> {
    let text = form.q.unwrap_or_default().trim().to_owned();
    if text.chars().count() > MAX_QUERY {
        return Err(AppError::BadRequest(format!(
            "a search may have at most {MAX_QUERY} characters"
        )));
    }
    let query = SearchQuery::parse(&text)?;
    let cursor = form.cursor.filter(|c| c.len() <= 200);
    let found = state
        .store
        .search(&user.sub, &query, cursor.as_deref(), PAGE_SIZE)
        .await?;
    let photos = views(&state, &user, found.photos).await?;
    let next = found
        .next
        .map(|c| format!("q={}&cursor={c}", crate::html::url_encode(&text)));
    Ok(page(
        &state,
        &session,
        "album",
        "Search",
        json!({ "count": photos.len(), "photos": photos, "query": text, "searched": true, "next_search": next }),
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
}
