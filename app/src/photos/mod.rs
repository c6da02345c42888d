//! The photo domain, apart from HTTP: where objects live in the bucket
//! ([`objects`]), how an upload becomes a photo ([`ingest`]), and the photos'
//! items and their search index in the table ([`table`]). Handlers in
//! `pages/` only translate between requests and these functions.

pub mod ingest;
pub mod objects;
pub mod table;

use serde::Serialize;

pub use objects::Objects;
pub use table::Store;

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
    /// Counts edits: a write names the revision it read, so two edits (or an
    /// edit and a delete) at once cannot leave the search index behind.
    pub rev: u64,
}

impl Photo {
    pub fn original_key(&self, user: &str) -> String {
        objects::original_key(user, &self.id, &self.ext)
    }

    pub fn thumbnail_key(&self, user: &str) -> String {
        objects::thumbnail_key(user, &self.id)
    }

    /// Applies edited details; the place is looked up again only when the
    /// position changed.
    pub fn apply(&mut self, details: Details) {
        self.tags = details.tags;
        self.description = details.description;
        if details.position != self.lat.zip(self.lng) {
            self.set_position(details.position);
        }
    }

    fn set_position(&mut self, position: Option<(f64, f64)>) {
        let place = position.and_then(|(lat, lng)| crate::geo::place(lat, lng));
        self.lat = position.map(|p| p.0);
        self.lng = position.map(|p| p.1);
        self.city = place.as_ref().map(|p| p.city.clone());
        self.country = place.as_ref().map(|p| p.country.clone());
        self.address = place.map(|p| p.address);
    }
}

/// What a person says about a photo (checked by the page that took it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    pub tags: Vec<String>,
    pub description: String,
    /// Latitude and longitude, when picked on the map.
    pub position: Option<(f64, f64)>,
}

/// A photo id: a ULID (26 Crockford base-32 characters, time-sortable).
pub fn is_photo_id(id: &str) -> bool {
    id.len() == 26
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Photo {
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
            rev: 0,
        }
    }

    #[test]
    fn ids_are_ulids() {
        assert!(is_photo_id("01JDX5Y3Q7V8W9X0Y1Z2A3B4C5"));
        assert!(!is_photo_id("01jdx5y3q7v8w9x0y1z2a3b4c5"));
        assert!(!is_photo_id("../../etc"));
    }

    #[test]
    fn editing_keeps_the_place_unless_the_position_moves() {
        let mut p = sample();
        p.apply(Details {
            tags: vec!["x".to_owned()],
            description: "d".to_owned(),
            position: Some((37.5665, 126.978)),
        });
        assert_eq!(p.city.as_deref(), Some("Seoul"));
        assert_eq!(p.tags, ["x"]);
        p.apply(Details::default());
        assert_eq!((p.lat, p.city), (None, None));
    }
}
