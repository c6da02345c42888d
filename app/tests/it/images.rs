//! Hostile and unusual images through `images::process`: the cases of issue
//! 10 (a JPEG whose header claims a huge frame over little data, a 16-bit
//! PNG bomb with an EXIF rotation, an oversubscribed Huffman table), frames
//! hidden behind stray markers, every accepted format and path, and a corpus
//! of real-world files nobody here made.

use std::time::{Duration, Instant};

use cloudalbum::error::AppError;
use cloudalbum::images::{self, ImageError, Kind, Limits, jpeg::JpegError};

use crate::craft::{self, Coding};

/// A 512 MB function's limits with the default pixel limit.
pub fn limits() -> Limits {
    Limits::for_function(512, 60_000_000)
}

fn process(bytes: &[u8], kind: Kind, orientation: u8) -> Result<images::Processed, ImageError> {
    images::process(bytes, kind, orientation, &limits(), 300, 200)
}

/// `bytes` with the frame header's height and width replaced.
fn with_dimensions(mut bytes: Vec<u8>, width: u16, height: u16) -> Vec<u8> {
    let sof = bytes
        .windows(2)
        .position(|w| w[0] == 0xFF && matches!(w[1], 0xC0 | 0xC2))
        .unwrap();
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

/// The header of a small flat JPEG claiming `width` × `height`, followed by
/// `data` bytes of entropy-coded noise and no end.
pub fn lying_jpeg(width: u16, height: u16, data: usize, coding: Coding) -> Vec<u8> {
    let small = craft::flat_jpeg(16, 16, &[(2, 2), (1, 1), (1, 1)], coding);
    let sos = small.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let sos_len = usize::from(u16::from_be_bytes([small[sos + 2], small[sos + 3]]));
    let mut bytes = with_dimensions(small[..sos + 2 + sos_len].to_vec(), width, height);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    bytes.extend((0..data).map(|_| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // No 0xFF: the data never ends at a marker.
        u8::try_from(seed % 255).unwrap()
    }));
    bytes
}

/// Issue 10: a 64 KB JPEG whose frame claims 65,535 × 65,535 pixels. It is
/// refused from its header, at once, with the size a person can check.
#[test]
fn a_jpeg_claiming_a_huge_frame_is_refused_from_its_header() {
    let bytes = lying_jpeg(65_535, 65_535, 64 * 1024, Coding::Baseline);
    assert!(bytes.len() < 70 * 1024);
    let start = Instant::now();
    let err = process(&bytes, Kind::Jpeg, 1).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(
        err.to_string(),
        "this photo is 65535 × 65535 pixels; this album accepts up to 60 megapixels"
    );
    assert_eq!(AppError::from(err).status(), 413);
}

/// Within the pixel limit, 64 KB of data cannot fill 56 megapixels: the
/// decoder runs out of data and says so, instead of decoding zeros.
#[test]
fn a_jpeg_whose_data_ends_early_is_an_error() {
    for coding in [Coding::Baseline, Coding::Progressive] {
        let bytes = lying_jpeg(8_000, 7_000, 64 * 1024, coding);
        let start = Instant::now();
        let err = process(&bytes, Kind::Jpeg, 1).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(20), "{coding:?}");
        match coding {
            Coding::Baseline => assert!(
                matches!(err, ImageError::Damaged(_)) && err.to_string().contains("ends early"),
                "{err}"
            ),
            // A progressive frame of 56 MP needs more memory than 512 MB give.
            Coding::Progressive => assert!(
                err.to_string()
                    .contains("megapixels for a progressive JPEG"),
                "{err}"
            ),
        }
        assert_eq!(AppError::from(err).status().as_u16() / 100, 4);
    }
}

/// Issue 10: a 16-bit RGBA PNG of 7,745 × 7,745 pixels (under the 60 MP
/// pixel limit, 480 MB decoded) with an EXIF rotation, a few MB on disk.
#[test]
fn a_sixteen_bit_png_bomb_with_a_rotation_is_refused() {
    let bytes = craft::zero_png(7_745, 7_745, 16, craft::RGBA, Some(6), true);
    assert!(bytes.len() < 4 * 1024 * 1024, "{} bytes", bytes.len());
    assert_eq!(images::read_exif(&bytes).orientation, 6);
    let start = Instant::now();
    let err = process(&bytes, Kind::Png, 6).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    let message = err.to_string();
    assert!(
        message.starts_with("this photo is 7745 × 7745 pixels; this album accepts up to ")
            && message.ends_with(" megapixels for a 16-bit PNG"),
        "{message}"
    );
    assert_eq!(AppError::from(err).status(), 413);
}

/// `bytes` with its first Huffman table segment replaced by `body`.
fn with_huffman_segment(bytes: &[u8], body: &[u8]) -> Vec<u8> {
    let at = bytes.windows(2).position(|w| w == [0xFF, 0xC4]).unwrap();
    let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
    let mut out = bytes[..at + 2].to_vec();
    out.extend_from_slice(&u16::try_from(body.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&bytes[at + 2 + len..]);
    out
}

/// Issue 10: a JPEG with an oversubscribed Huffman table (three one-bit
/// codes) made the decoder panic. It is a clear error, in baseline and
/// progressive files, wherever the table stands.
#[test]
fn an_oversubscribed_huffman_table_is_an_error() {
    let mut oversubscribed = vec![0x00, 3];
    oversubscribed.extend_from_slice(&[0; 15]);
    oversubscribed.extend_from_slice(&[0, 1, 2]);
    for coding in [Coding::Baseline, Coding::Progressive] {
        let good = craft::flat_jpeg(640, 480, &[(2, 2), (1, 1), (1, 1)], coding);
        assert!(process(&good, Kind::Jpeg, 1).is_ok(), "{coding:?}");
        let bad = with_huffman_segment(&good, &oversubscribed);
        let err = process(&bad, Kind::Jpeg, 1).unwrap_err();
        assert!(
            matches!(err, ImageError::Jpeg(JpegError::Huffman { .. }))
                && err.to_string().contains("oversubscribed"),
            "{coding:?}: {err}"
        );
        assert_eq!(AppError::from(err).status(), 422);
        // The same table after the first scan (where progressive files put
        // their AC tables) is checked too.
        let eoi = good.len() - 2;
        let mut late = good[..eoi].to_vec();
        late.extend_from_slice(&[0xFF, 0xC4, 0, 2 + 20]);
        late.extend_from_slice(&oversubscribed);
        late.extend_from_slice(&[0xFF, 0xD9]);
        let err = process(&late, Kind::Jpeg, 1).unwrap_err();
        assert!(err.to_string().contains("oversubscribed"), "{err}");
    }
}

/// One header reading decides: a restart marker before the frame does not
/// hide it, and a second frame (which another parser might read instead) is
/// refused.
#[test]
fn stray_markers_and_second_frames() {
    let good = craft::flat_jpeg(2_400, 1_600, &[(2, 2), (1, 1), (1, 1)], Coding::Baseline);
    let sof = good.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    let mut stray = good[..sof].to_vec();
    stray.extend_from_slice(&[0xFF, 0xD3]);
    stray.extend_from_slice(&good[sof..]);
    let header = images::jpeg::Header::parse(&stray).unwrap();
    assert_eq!((header.width, header.height), (2_400, 1_600));
    let processed = process(&stray, Kind::Jpeg, 1).unwrap();
    assert_eq!((processed.width, processed.height), (2_400, 1_600));

    let frame_len = usize::from(u16::from_be_bytes([good[sof + 2], good[sof + 3]]));
    let mut second = good[..sof + 2 + frame_len].to_vec();
    let huge = with_dimensions(good[sof..sof + 2 + frame_len].to_vec(), 65_535, 65_535);
    second.extend_from_slice(&huge);
    second.extend_from_slice(&good[sof + 2 + frame_len..]);
    let err = process(&second, Kind::Jpeg, 1).unwrap_err();
    assert!(
        matches!(err, ImageError::Jpeg(JpegError::SecondFrame)),
        "{err}"
    );
}

/// Each image has a time budget: a large valid photo given 1 ms is refused
/// with a 422 a person understands, on the 1/8-scale path (whose loops look
/// at the clock) and on the PNG path (whose decoder reads through a reader
/// that fails after the deadline), long before a full decode would end.
#[test]
fn a_photo_over_its_time_budget_is_refused() {
    let tiny = Limits {
        time: Duration::from_millis(1),
        ..limits()
    };
    let cases = [
        (
            "baseline 4:2:0, 9000 × 6666, 1/8 scale",
            craft::flat_jpeg(9_000, 6_666, &[(2, 2), (1, 1), (1, 1)], Coding::Baseline),
            Kind::Jpeg,
        ),
        (
            "PNG 8-bit RGB, 7745 × 7745",
            craft::zero_png(7_745, 7_745, 8, craft::RGB, None, true),
            Kind::Png,
        ),
    ];
    for (label, bytes, kind) in cases {
        let start = Instant::now();
        let err = images::process(&bytes, kind, 1, &tiny, 300, 200).unwrap_err();
        let took = start.elapsed();
        println!("{label}: refused after {took:?}");
        assert!(matches!(err, ImageError::OutOfTime(_)), "{label}: {err}");
        assert!(
            err.to_string()
                .starts_with("this image took longer to read than the album allows (1 ms)"),
            "{label}: {err}"
        );
        assert_eq!(AppError::from(err).status(), 422, "{label}");
        // Stopped at once, not after decoding (seconds in a debug build).
        assert!(took < Duration::from_secs(2), "{label}: {took:?}");
    }
}

/// The 1/8-scale decoder's own loop stops at a passed deadline (the only
/// place it says `OutOfTime`), instead of decoding on.
#[test]
fn the_draft_decoder_looks_at_the_clock() {
    let bytes = craft::flat_jpeg(4_000, 3_000, &[(2, 2), (1, 1), (1, 1)], Coding::Baseline);
    let header = images::jpeg::Header::parse(&bytes).unwrap();
    assert!(images::draft::applies(&header));
    let passed = Instant::now();
    std::thread::sleep(Duration::from_millis(2));
    assert_eq!(
        images::draft::decode(&header, passed).unwrap_err(),
        images::draft::DraftError::OutOfTime
    );
    let later = Instant::now() + Duration::from_mins(1);
    assert_eq!(
        images::draft::decode(&header, later).unwrap().dimensions(),
        (500, 375)
    );
}

/// `image`'s PNG and WebP decoders, reading through `Timed`, stop at their
/// next read once the deadline has passed: here it passes between reading
/// the header and decoding the pixels.
#[test]
fn image_decoders_stop_at_their_next_read_after_the_deadline() {
    use image::ImageDecoder;
    use images::deadline::Timed;

    fn after_deadline(decoder: impl ImageDecoder, deadline: Instant) -> image::ImageResult<()> {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        std::thread::sleep(Duration::from_millis(5));
        let mut pixels = vec![0; usize::try_from(decoder.total_bytes()).unwrap()];
        decoder.read_image(&mut pixels)
    }
    let png = craft::zero_png(2_000, 2_000, 8, craft::RGB, None, true);
    let lossless = webp(600, 400);
    let timed_out = |r: image::ImageResult<()>| matches!(r, Err(image::ImageError::IoError(e)) if e.kind() == std::io::ErrorKind::TimedOut);
    let deadline = Instant::now() + Duration::from_millis(300);
    let decoder = image::codecs::png::PngDecoder::new(Timed::new(&png, deadline)).unwrap();
    assert!(timed_out(after_deadline(decoder, deadline)), "PNG");
    let deadline = Instant::now() + Duration::from_millis(300);
    let decoder = image::codecs::webp::WebPDecoder::new(Timed::new(&lossless, deadline)).unwrap();
    assert!(timed_out(after_deadline(decoder, deadline)), "WebP");
    // With time left, the same decoders read the same files whole.
    let later = Instant::now() + Duration::from_mins(1);
    let decoder = image::codecs::png::PngDecoder::new(Timed::new(&png, later)).unwrap();
    assert!(
        after_deadline(decoder, Instant::now()).is_ok(),
        "PNG in time"
    );
    let decoder = image::codecs::webp::WebPDecoder::new(Timed::new(&lossless, later)).unwrap();
    assert!(
        after_deadline(decoder, Instant::now()).is_ok(),
        "WebP in time"
    );
}

/// Every accepted format and decoding path gives a thumbnail in the box,
/// turned as EXIF says.
#[test]
fn every_format_and_path() {
    let w420 = [(2, 2), (1, 1), (1, 1)];
    // Only the 1/8-scale path needs a large picture; the others decode in
    // full, which is slower, so they are small.
    let cases: Vec<(&str, Vec<u8>, Kind)> = vec![
        (
            "baseline 4:2:0, 1/8 scale",
            craft::flat_jpeg(2_400, 1_600, &w420, Coding::Baseline),
            Kind::Jpeg,
        ),
        (
            "grey baseline, 1/8 scale",
            craft::flat_jpeg(2_400, 1_600, &[(1, 1)], Coding::Baseline),
            Kind::Jpeg,
        ),
        (
            "small baseline, decoded in full",
            craft::flat_jpeg(600, 400, &w420, Coding::Baseline),
            Kind::Jpeg,
        ),
        (
            "progressive 4:2:0",
            craft::flat_jpeg(600, 400, &w420, Coding::Progressive),
            Kind::Jpeg,
        ),
        (
            "CMYK",
            craft::flat_jpeg(600, 400, &[(1, 1); 4], Coding::Baseline),
            Kind::Jpeg,
        ),
        (
            "PNG 8-bit RGB",
            craft::zero_png(600, 400, 8, craft::RGB, None, true),
            Kind::Png,
        ),
        (
            "PNG 16-bit RGBA",
            craft::zero_png(600, 400, 16, craft::RGBA, None, true),
            Kind::Png,
        ),
        ("WebP lossless", webp(600, 400), Kind::WebP),
    ];
    for (label, bytes, kind) in cases {
        let stored = if label.contains("1/8") {
            (2_400, 1_600)
        } else {
            (600, 400)
        };
        for orientation in [1, 6] {
            let p = process(&bytes, kind, orientation)
                .unwrap_or_else(|e| panic!("{label}, orientation {orientation}: {e}"));
            let shown = if orientation == 6 {
                (stored.1, stored.0)
            } else {
                stored
            };
            assert_eq!((p.width, p.height), shown, "{label}");
            assert!(
                p.thumbnail_width <= 300 && p.thumbnail_height <= 200,
                "{label}"
            );
            assert_eq!(
                p.thumbnail_height > p.thumbnail_width,
                orientation == 6,
                "{label}"
            );
        }
    }
}

/// A lossless WebP (`image` writes only lossless) of a gradient.
pub fn webp(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            u8::try_from(x % 256).unwrap(),
            u8::try_from(y % 256).unwrap(),
            90,
        ])
    });
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .encode(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// The real-world corpus (`scripts/tools.sh corpus`): the test images of
/// Pillow's source distribution.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/corpus");
    assert!(
        dir.join(".installed").exists(),
        "the image corpus is missing: run `scripts/tools.sh corpus`"
    );
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "installed"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Real-world JPEG, PNG and WebP files nobody here made: each is processed
/// or refused with a 4xx, never a crash or a 5xx.
#[test]
fn real_world_files_never_crash() {
    let (mut ok, mut refused) = (0, Vec::new());
    for (name, bytes) in corpus() {
        let Some(kind) = Kind::sniff(&bytes) else {
            continue;
        };
        let exif = images::read_exif(&bytes);
        match process(&bytes, kind, exif.orientation) {
            Ok(p) => {
                assert!(p.thumbnail_width <= 300 && p.thumbnail_height <= 200);
                ok += 1;
            }
            Err(err) => {
                assert!(!matches!(err, ImageError::Crashed), "{name}: {err}");
                let status = AppError::from(err).status();
                assert!(status.is_client_error(), "{name}: {status}");
                refused.push(name);
            }
        }
    }
    eprintln!(
        "corpus: {ok} processed, {} refused: {refused:?}",
        refused.len()
    );
    assert!(ok > 300, "only {ok} corpus files were processed");
}
