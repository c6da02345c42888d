//! Thumbnail of a 12-megapixel JPEG to fit 300×200: CloudAlbum vs Pillow's
//! `Image.thumbnail` (which decodes in JPEG draft mode), same file, same run.
//! Both are timed in-process (Pillow inside Python with `time.perf_counter`),
//! so interpreter start-up is not counted against Pillow.
//!
//! Run with `scripts/bench.sh` (it installs Pillow into `.tools/bench`).

#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 15;

fn main() {
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let python = project.join(".tools/bench/bin/python");
    assert!(
        python.exists(),
        "run `scripts/bench.sh`, which installs Pillow"
    );
    let work = tempfile::tempdir().unwrap();
    let photo = work.path().join("12mp.jpg");
    std::fs::write(&photo, twelve_megapixels()).unwrap();
    let bytes = std::fs::read(&photo).unwrap();

    let mut ours: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let exif = cloudalbum::images::read_exif(&bytes);
            let p = cloudalbum::images::process(
                &bytes,
                cloudalbum::images::Kind::Jpeg,
                exif.orientation,
                60_000_000,
                300,
                200,
            )
            .unwrap();
            assert!(p.thumbnail_width <= 300 && p.thumbnail_height <= 200);
            start.elapsed()
        })
        .collect();
    ours.sort();
    let ours = ours[RUNS / 2];

    // Where the time goes, for the record.
    let median = |f: &dyn Fn()| {
        let mut t: Vec<Duration> = (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect();
        t.sort();
        t[RUNS / 2].as_secs_f64() * 1000.0
    };
    let exif_ms = median(&|| {
        cloudalbum::images::read_exif(&bytes);
    });
    let draft_ms = median(&|| {
        assert!(cloudalbum::draft::decode_eighth(&bytes).is_some());
    });
    let dims_ms = median(&|| {
        image::ImageReader::with_format(std::io::Cursor::new(&bytes), image::ImageFormat::Jpeg)
            .into_dimensions()
            .unwrap();
    });
    eprintln!(
        "breakdown: exif {exif_ms:.2} ms, dimensions {dims_ms:.2} ms, DC-only decode {draft_ms:.2} ms"
    );

    let script = format!(
        r"
import io, time
from PIL import Image
data = open({photo:?}, 'rb').read()
times = []
for _ in range({RUNS}):
    t = time.perf_counter()
    im = Image.open(io.BytesIO(data))
    im.thumbnail((300, 200))
    out = io.BytesIO()
    im.convert('RGB').save(out, 'JPEG', quality=82)
    times.append(time.perf_counter() - t)
times.sort()
print(times[len(times) // 2])
",
        photo = photo.display().to_string()
    );
    let out = Command::new(&python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pillow =
        Duration::from_secs_f64(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap());
    let ratio = pillow.as_secs_f64() / ours.as_secs_f64();
    println!("| measure | CloudAlbum | Pillow `Image.thumbnail` | ratio | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| 12 MP JPEG → 300×200 thumbnail (median of {RUNS}) | {:.1} ms | {:.1} ms | {ratio:.1}× | ≥ 2× {} |",
        ours.as_secs_f64() * 1000.0,
        pillow.as_secs_f64() * 1000.0,
        if ratio >= 2.0 { "met" } else { "not met" }
    );
}

/// A 4000×3000 photo-like JPEG (gradients and noise, quality 90).
fn twelve_megapixels() -> Vec<u8> {
    let (w, h) = (4000u32, 3000u32);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let noise = u32::try_from(seed % 24).unwrap();
        image::Rgb([
            u8::try_from((x * 200 / w + noise) % 256).unwrap(),
            u8::try_from((y * 200 / h + noise) % 256).unwrap(),
            u8::try_from(((x + y) * 120 / (w + h) + noise) % 256).unwrap(),
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    out
}
