//! Thumbnail of a 12-megapixel JPEG to fit 300×200: CloudAlbum vs Pillow's
//! `Image.thumbnail` (which decodes in JPEG draft mode), same files, same run:
//! the same picture encoded with full (4:4:4) and with 4:2:0 chroma.
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
    // The one-core measurement: this program again, under `taskset`.
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == ONE_CORE_CHILD) {
        let bytes = std::fs::read(&args[at + 1]).unwrap();
        println!("{}", thumbnail_time(&bytes).as_secs_f64());
        return;
    }
    let project = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let python = project.join(".tools/bench/bin/python");
    assert!(
        python.exists(),
        "run `scripts/bench.sh`, which installs Pillow"
    );
    let work = tempfile::tempdir().unwrap();
    // One picture, two encodings: 4:4:4 by the `image` crate, and 4:2:0 (what
    // cameras and phones write) by Pillow itself.
    let picture = twelve_megapixels();
    let full_chroma = work.path().join("12mp-444.jpg");
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&picture)
        .unwrap();
    std::fs::write(&full_chroma, bytes).unwrap();
    let raw = work.path().join("12mp.rgb");
    std::fs::write(&raw, picture.as_raw()).unwrap();
    let subsampled = work.path().join("12mp-420.jpg");
    pillow(
        &python,
        &format!(
            "from PIL import Image\n\
             Image.frombytes('RGB', {size:?}, open({raw:?}, 'rb').read())\
             .save({out:?}, 'JPEG', quality=90, subsampling=2)",
            size = picture.dimensions(),
            raw = raw.display().to_string(),
            out = subsampled.display().to_string(),
        ),
    );

    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "| 12 MP JPEG → 300×200 thumbnail, median of {RUNS} | CloudAlbum, {cores} cores | CloudAlbum, 1 core | Pillow `Image.thumbnail` | ratio ({cores} cores) | ratio (1 core) | goal |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, path) in [
        ("4:4:4 chroma (`image` crate, q90)", &full_chroma),
        ("4:2:0 chroma (Pillow, q90)", &subsampled),
    ] {
        let bytes = std::fs::read(path).unwrap();
        let ours = thumbnail_time(&bytes);
        // Pillow uses one core; so does a Lambda function under 1,769 MB.
        let out = Command::new("taskset")
            .args(["--cpu-list", "0"])
            .arg(std::env::current_exe().unwrap())
            .arg(ONE_CORE_CHILD)
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let one_core =
            Duration::from_secs_f64(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap());
        // Where the time goes, for the record.
        let decode = median(&|| {
            assert!(cloudalbum::images::draft::decode_eighth(&bytes).is_some());
        });
        eprintln!(
            "{label}: {} KB, 1/8-scale decode {:.2} ms of {:.2} ms",
            bytes.len() / 1000,
            ms(decode),
            ms(ours)
        );
        let theirs = pillow_thumbnail_time(&python, path);
        let ratio = theirs.as_secs_f64() / ours.as_secs_f64();
        let ratio_one = theirs.as_secs_f64() / one_core.as_secs_f64();
        println!(
            "| {label} | {:.1} ms | {:.1} ms | {:.1} ms | {ratio:.1}× | {ratio_one:.1}× | ≥ 2× {} |",
            ms(ours),
            ms(one_core),
            ms(theirs),
            match (ratio >= 2.0, ratio_one >= 2.0) {
                (true, true) => "met on both",
                (true, false) => "met on all cores only",
                _ => "not met",
            }
        );
    }
}

const ONE_CORE_CHILD: &str = "--one-core-child";

/// The median time of making a thumbnail as the app does: EXIF, checks,
/// 1/8-scale decode, orientation, fit to 300×200, JPEG encode.
fn thumbnail_time(bytes: &[u8]) -> Duration {
    median(&|| {
        let exif = cloudalbum::images::read_exif(bytes);
        let p = cloudalbum::images::process(
            bytes,
            cloudalbum::images::Kind::Jpeg,
            exif.orientation,
            &cloudalbum::images::Limits::for_function(512, 60_000_000),
            300,
            200,
        )
        .unwrap();
        assert!(p.thumbnail_width <= 300 && p.thumbnail_height <= 200);
    })
}

/// The median time of `RUNS` calls.
fn median(f: &dyn Fn()) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median time of Pillow's `Image.thumbnail` and JPEG encode, timed in
/// Python.
fn pillow_thumbnail_time(python: &Path, path: &Path) -> Duration {
    let script = format!(
        "import io, time\n\
         from PIL import Image\n\
         data = open({path:?}, 'rb').read()\n\
         times = []\n\
         for _ in range({RUNS}):\n    \
             t = time.perf_counter()\n    \
             im = Image.open(io.BytesIO(data))\n    \
             im.thumbnail((300, 200))\n    \
             out = io.BytesIO()\n    \
             im.convert('RGB').save(out, 'JPEG', quality=82)\n    \
             times.append(time.perf_counter() - t)\n\
         times.sort()\n\
         print(times[len(times) // 2])",
        path = path.display().to_string()
    );
    Duration::from_secs_f64(pillow(python, &script).trim().parse().unwrap())
}

/// Runs a script in the benchmark's Python (with Pillow); returns its output.
fn pillow(python: &Path, script: &str) -> String {
    let out = Command::new(python).args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A 4000×3000 photo-like picture (gradients and noise).
fn twelve_megapixels() -> image::RgbImage {
    let (w, h) = (4000u32, 3000u32);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    image::RgbImage::from_fn(w, h, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let noise = u32::try_from(seed % 24).unwrap();
        image::Rgb([
            u8::try_from((x * 200 / w + noise) % 256).unwrap(),
            u8::try_from((y * 200 / h + noise) % 256).unwrap(),
            u8::try_from(((x + y) * 120 / (w + h) + noise) % 256).unwrap(),
        ])
    })
}
