//! The layout of the gazetteer table, shared by the build script that writes
//! it (`app/build.rs`, which includes this file) and the code that reads it
//! (`geo.rs`). Everything is little-endian.
//!
//! ```text
//! MAGIC                          4 bytes
//! town count                     u32
//! region count                   u32
//! towns per cell                 CELLS varints, cells in `cell` order
//! latitude                       one varint per town: offset in 1e-5° from the
//!                                previous town of its cell, or from the cell's
//!                                south edge for the first one (towns of a cell
//!                                are sorted by latitude)
//! longitude                      one varint per town: offset in 1e-5° from the
//!                                cell's west edge
//! region                         u16 per town: index into the regions
//! names                          one line per town, each ended by `\n`
//! regions                        one line per region: the two-letter country
//!                                code, then the first-level division, ended by `\n`
//! ```
//!
//! Coordinates are whole multiples of 1e-5°, exactly as the source gives them,
//! so every town's position is the same `f64` as in the source.

/// Identifies the table and its version.
pub const MAGIC: &[u8; 4] = b"GAZ1";

/// The grid: one cell per degree of latitude and of longitude.
pub const ROWS: usize = 180;
pub const COLUMNS: usize = 360;
pub const CELLS: usize = ROWS * COLUMNS;

/// Coordinates are stored in these units (1e-5°, about 1 m).
pub const UNITS_PER_DEGREE: i32 = 100_000;

/// The grid row (0 = 90° S) of a latitude in 1e-5°; 90° N joins the last row.
pub fn row(lat_e5: i32) -> usize {
    let row = (lat_e5 + 90 * UNITS_PER_DEGREE).div_euclid(UNITS_PER_DEGREE);
    usize::try_from(row).map_or(0, |r| r.min(ROWS - 1))
}

/// The grid column (0 = 180° W) of a longitude in 1e-5°; 180° E joins the last column.
pub fn column(lon_e5: i32) -> usize {
    let column = (lon_e5 + 180 * UNITS_PER_DEGREE).div_euclid(UNITS_PER_DEGREE);
    usize::try_from(column).map_or(0, |c| c.min(COLUMNS - 1))
}

/// The cell of a position in 1e-5°.
#[cfg_attr(not(test), allow(dead_code))] // The build script's; the reader walks rows and columns.
pub fn cell(lat_e5: i32, lon_e5: i32) -> usize {
    row(lat_e5) * COLUMNS + column(lon_e5)
}

/// The south-west corner of a cell, in 1e-5°.
pub fn cell_origin(cell: usize) -> (i32, i32) {
    let row = i32::try_from(cell / COLUMNS).unwrap_or(0);
    let column = i32::try_from(cell % COLUMNS).unwrap_or(0);
    (
        (row - 90) * UNITS_PER_DEGREE,
        (column - 180) * UNITS_PER_DEGREE,
    )
}
