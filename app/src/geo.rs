//! Place names for GPS positions from an offline gazetteer (`GeoNames` cities
//! with more than 1000 people, shipped inside the `reverse_geocoder` crate):
//! no network and no API key at run time. Loaded on first use.

use std::sync::OnceLock;

use reverse_geocoder::ReverseGeocoder;

static GAZETTEER: OnceLock<ReverseGeocoder> = OnceLock::new();

/// Farther than this from the nearest known town, no city is named.
const MAX_DISTANCE_KM: f64 = 50.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub city: String,
    pub country: String,
    pub address: String,
}

/// The nearest town to a position, or `None` for an invalid position or the
/// middle of nowhere.
pub fn place(lat: f64, lng: f64) -> Option<Place> {
    if !(lat.is_finite() && lng.is_finite() && lat.abs() <= 90.0 && lng.abs() <= 180.0) {
        return None;
    }
    let gazetteer = GAZETTEER.get_or_init(ReverseGeocoder::new);
    let found = gazetteer.search((lat, lng));
    // `distance` is the squared chord on the unit sphere.
    let km = 2.0 * 6371.0 * (found.distance.sqrt() / 2.0).asin();
    if km > MAX_DISTANCE_KM {
        return None;
    }
    let record = found.record;
    let country = isocountry::CountryCode::for_alpha2(&record.cc)
        .map_or_else(|_| record.cc.clone(), |c| c.name().to_owned());
    // "Seoul, Seoul, …" says the city twice: a region named like its city is left out.
    let mut parts: Vec<&str> = vec![record.name.as_str()];
    if record.admin1 != record.name {
        parts.push(&record.admin1);
    }
    parts.push(&country);
    let address = parts
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    Some(Place {
        city: record.name.clone(),
        country,
        address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deoksugung_is_in_seoul() {
        let p = place(37.565_467, 126.975_431).unwrap();
        assert_eq!(p.city, "Seoul");
        assert!(p.country.contains("Korea"), "{p:?}");
        assert!(p.address.starts_with("Seoul, Korea"), "{p:?}");
    }

    #[test]
    fn invalid_positions_have_no_place() {
        assert_eq!(place(91.0, 0.0), None);
        assert_eq!(place(f64::NAN, 0.0), None);
        // The middle of the Pacific.
        assert_eq!(place(-30.0, -140.0), None);
    }
}
