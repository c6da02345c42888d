//! Photos in the one DynamoDB table: partition `user_id` (the Cognito `sub`),
//! sort `photo_id` (a ULID, so newest first is a reverse `Query`). Never a
//! `Scan`; every call names the user, so nobody reaches another's photos.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use serde::Serialize;

use contract::prefix::{PHOTOS, THUMBNAILS};
use contract::table::{PARTITION_KEY, SORT_KEY, TAKEN_AT};

use crate::error::AppError;

/// One photo's item.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Photo {
    pub id: String,
    pub tags: Vec<String>,
    pub description: String,
    pub filename: String,
    pub ext: String,
    pub content_type: String,
    pub size: u64,
    pub width: u32,
    pub height: u32,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub taken_at: Option<String>,
    pub uploaded_at: String,
    pub make: Option<String>,
    pub model: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub address: Option<String>,
}

impl Photo {
    /// Lower-cased text that search matches: tags, description and place.
    pub fn search_text(&self) -> String {
        let mut parts: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        parts.push(&self.description);
        for place in [&self.city, &self.country, &self.address]
            .into_iter()
            .flatten()
        {
            parts.push(place);
        }
        parts.join(" ").to_lowercase()
    }

    pub fn original_key(&self, user: &str) -> String {
        original_key(user, &self.id, &self.ext)
    }

    pub fn thumbnail_key(&self, user: &str) -> String {
        thumbnail_key(user, &self.id)
    }
}

pub fn original_key(user: &str, id: &str, ext: &str) -> String {
    format!("{PHOTOS}{user}/{id}.{ext}")
}

pub fn thumbnail_key(user: &str, id: &str) -> String {
    format!("{PHOTOS}{user}/{THUMBNAILS}{id}.jpg")
}

/// A photo id: a ULID (26 Crockford base-32 characters, time-sortable).
pub fn is_photo_id(id: &str) -> bool {
    id.len() == 26
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}
fn n(v: &impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn item(user: &str, p: &Photo) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        (PARTITION_KEY.to_owned(), s(user)),
        (SORT_KEY.to_owned(), s(&p.id)),
        ("description".to_owned(), s(&p.description)),
        ("filename".to_owned(), s(&p.filename)),
        ("ext".to_owned(), s(&p.ext)),
        ("content_type".to_owned(), s(&p.content_type)),
        ("size".to_owned(), n(&p.size)),
        ("width".to_owned(), n(&p.width)),
        ("height".to_owned(), n(&p.height)),
        ("uploaded_at".to_owned(), s(&p.uploaded_at)),
        ("search".to_owned(), s(&p.search_text())),
        (
            "tags".to_owned(),
            AttributeValue::L(p.tags.iter().map(|t| s(t)).collect()),
        ),
    ]);
    let optional = [
        (TAKEN_AT, p.taken_at.as_deref()),
        ("make", p.make.as_deref()),
        ("model", p.model.as_deref()),
        ("city", p.city.as_deref()),
        ("country", p.country.as_deref()),
        ("address", p.address.as_deref()),
    ];
    for (name, value) in optional {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            item.insert(name.to_owned(), s(value));
        }
    }
    if let (Some(lat), Some(lng)) = (p.lat, p.lng) {
        item.insert("lat".to_owned(), n(&lat));
        item.insert("lng".to_owned(), n(&lng));
    }
    item
}

fn photo(item: &HashMap<String, AttributeValue>) -> Option<Photo> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let num = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let int = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(Photo {
        id: text(SORT_KEY)?,
        tags: item
            .get("tags")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|t| t.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        description: text("description").unwrap_or_default(),
        filename: text("filename").unwrap_or_default(),
        ext: text("ext")?,
        content_type: text("content_type").unwrap_or_default(),
        size: int("size").unwrap_or(0),
        width: u32::try_from(int("width").unwrap_or(0)).unwrap_or(0),
        height: u32::try_from(int("height").unwrap_or(0)).unwrap_or(0),
        lat: num("lat"),
        lng: num("lng"),
        taken_at: text(TAKEN_AT),
        uploaded_at: text("uploaded_at").unwrap_or_default(),
        make: text("make"),
        model: text("model"),
        city: text("city"),
        country: text("country"),
        address: text("address"),
    })
}

/// A page of the album.
#[derive(Debug, Clone)]
pub struct Page {
    pub photos: Vec<Photo>,
    /// Opaque: where the next page starts.
    pub next: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Store {
    pub ddb: Client,
    pub table: String,
}

fn db_error(action: &str, err: impl std::fmt::Debug) -> AppError {
    AppError::Internal(format!("dynamodb {action}: {err:?}"))
}

impl Store {
    /// Stores a new photo; never overwrites one.
    pub async fn put(&self, user: &str, photo: &Photo) -> Result<(), AppError> {
        self.write(user, photo, &format!("attribute_not_exists({SORT_KEY})"))
            .await
    }

    pub async fn get(&self, user: &str, id: &str) -> Result<Option<Photo>, AppError> {
        if !is_photo_id(id) {
            return Ok(None);
        }
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(user))
            .key(SORT_KEY, s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| db_error("GetItem", e))?;
        Ok(out.item.as_ref().and_then(photo))
    }

    /// Replaces a photo's details (it must exist and be the user's).
    pub async fn update(&self, user: &str, photo: &Photo) -> Result<(), AppError> {
        self.write(user, photo, &format!("attribute_exists({SORT_KEY})"))
            .await
    }

    async fn write(&self, user: &str, photo: &Photo, condition: &str) -> Result<(), AppError> {
        self.ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(user, photo)))
            .condition_expression(condition)
            .send()
            .await
            .map_err(|e| db_error("PutItem", e))?;
        Ok(())
    }

    pub async fn delete(&self, user: &str, id: &str) -> Result<(), AppError> {
        self.ddb
            .delete_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(user))
            .key(SORT_KEY, s(id))
            .send()
            .await
            .map_err(|e| db_error("DeleteItem", e))?;
        Ok(())
    }

    /// A `Query` of the user's own partition, newest first.
    fn newest_first(
        &self,
        user: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!("{PARTITION_KEY} = :u"))
            .expression_attribute_values(":u", s(user))
            .scan_index_forward(false)
    }

    /// The album, newest first, `limit` at a time from `cursor`.
    pub async fn page(
        &self,
        user: &str,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<Page, AppError> {
        let mut query = self.newest_first(user).limit(limit);
        if let Some(start) = cursor.and_then(decode_cursor) {
            query = query
                .exclusive_start_key(PARTITION_KEY, s(user))
                .exclusive_start_key(SORT_KEY, s(&start));
        }
        let out = query.send().await.map_err(|e| db_error("Query", e))?;
        let photos: Vec<Photo> = out.items().iter().filter_map(photo).collect();
        let next = out
            .last_evaluated_key()
            .and_then(|k| k.get(SORT_KEY))
            .and_then(|v| v.as_s().ok())
            .map(|id| encode_cursor(id));
        Ok(Page { photos, next })
    }

    /// Photos whose tags, description or place contain `query`, any case;
    /// a `Query` of the user's own partition with a filter, newest first.
    pub async fn search(
        &self,
        user: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Photo>, AppError> {
        self.collect(
            user,
            Some(("contains(#s, :q)", query.to_lowercase())),
            limit,
        )
        .await
    }

    /// Every photo of the user that has a location.
    pub async fn located(&self, user: &str, limit: usize) -> Result<Vec<Photo>, AppError> {
        self.collect(user, None, limit).await.map(|all| {
            all.into_iter()
                .filter(|p| p.lat.is_some() && p.lng.is_some())
                .collect()
        })
    }

    async fn collect(
        &self,
        user: &str,
        filter: Option<(&str, String)>,
        limit: usize,
    ) -> Result<Vec<Photo>, AppError> {
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut query = self
                .newest_first(user)
                .set_exclusive_start_key(start.take());
            if let Some((expression, value)) = &filter {
                query = query
                    .filter_expression(*expression)
                    .expression_attribute_names("#s", "search")
                    .expression_attribute_values(":q", s(value));
            }
            let out = query.send().await.map_err(|e| db_error("Query", e))?;
            found.extend(out.items().iter().filter_map(photo));
            start = out.last_evaluated_key;
            if start.is_none() || found.len() >= limit {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}

fn encode_cursor(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let id = String::from_utf8(bytes).ok()?;
    is_photo_id(&id).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Photo {
        Photo {
            id: "01JDX5Y3Q7V8W9X0Y1Z2A3B4C5".to_owned(),
            tags: vec!["Beach".to_owned(), "summer".to_owned()],
            description: "Sunset at <the> bay".to_owned(),
            filename: "IMG_1.jpg".to_owned(),
            ext: "jpg".to_owned(),
            content_type: "image/jpeg".to_owned(),
            size: 1234,
            width: 4000,
            height: 3000,
            lat: Some(37.5665),
            lng: Some(126.978),
            taken_at: Some("2024-07-01T18:30:00".to_owned()),
            uploaded_at: "2026-11-29T01:00:00Z".to_owned(),
            make: Some("Canon".to_owned()),
            model: None,
            city: Some("Seoul".to_owned()),
            country: Some("KR".to_owned()),
            address: Some("Seoul, KR".to_owned()),
        }
    }

    #[test]
    fn items_round_trip() {
        let p = sample();
        assert_eq!(photo(&item("sub-1", &p)), Some(p));
    }

    #[test]
    fn search_text_is_lowercase_tags_description_and_place() {
        let text = sample().search_text();
        assert!(text.contains("beach"));
        assert!(text.contains("sunset at <the> bay"));
        assert!(text.contains("seoul"));
    }

    #[test]
    fn cursors_are_opaque_and_checked() {
        let id = "01JDX5Y3Q7V8W9X0Y1Z2A3B4C5";
        assert_eq!(decode_cursor(&encode_cursor(id)).as_deref(), Some(id));
        assert_eq!(decode_cursor("not base64!"), None);
        assert_eq!(decode_cursor(&encode_cursor("../../etc")), None);
    }

    #[test]
    fn keys_follow_the_layout() {
        assert_eq!(original_key("u", "ID", "jpg"), "photos/u/ID.jpg");
        assert_eq!(thumbnail_key("u", "ID"), "photos/u/thumbnails/ID.jpg");
        assert!(is_photo_id("01JDX5Y3Q7V8W9X0Y1Z2A3B4C5"));
        assert!(!is_photo_id("01jdx5y3q7v8w9x0y1z2a3b4c5"));
    }
}
