//! What the server does with an uploaded photo: sniff its real type, refuse
//! decompression bombs, read EXIF (orientation, GPS, date, camera), and make a
//! JPEG thumbnail that respects the orientation and fits the stage's box.
//!
//! Each image's header is read once, and that one reading decides both
//! whether the photo fits the [`Limits`] (pixels, and the memory its decoding
//! needs at its peak, from the function's configured memory) and how it is
//! decoded. Nothing large is allocated before that check.
//!
//! - Baseline JPEGs are decoded with DCT scaling ("draft mode", as Pillow
//!   does): a 12 MP photo bound for a 300×200 box is decoded at 1/8 size,
//!   never in full ([`draft`]).
//! - Other JPEGs (progressive, CMYK, small ones), PNG and WebP are decoded in
//!   full by `image`'s decoders, into a buffer sized and checked here first.
//!
//! The thumbnail is shrunk before the EXIF orientation turns it, so the turned
//! copy is thumbnail-sized. A decoder that panics all the same is caught and
//! the photo refused.
//!
//! Each image has a time budget ([`Limits::time`]): the 1/8-scale decoder
//! looks at the clock as it goes, `image`'s decoders read the file through a
//! reader that fails once the deadline passed ([`deadline`]), and a decode
//! that ends late is refused all the same.

pub mod deadline;
pub mod draft;
pub mod jpeg;
pub mod shrink;

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use image::{ColorType, DynamicImage, ImageDecoder, RgbImage};

use deadline::Timed;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("this file is not a JPEG, PNG or WebP image")]
    NotAnImage,
    #[error(
        "this photo is {width} × {height} pixels; this album accepts up to {max_megapixels} megapixels{of_this_kind}"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        max_megapixels: u64,
        /// Empty, or which kind of image the limit is for (` for a 16-bit PNG`).
        of_this_kind: String,
    },
    #[error("this JPEG could not be read: {0}")]
    Jpeg(#[from] jpeg::JpegError),
    #[error("this image could not be read ({0}); it may be damaged")]
    Damaged(String),
    #[error(
        "this image took longer to read than the album allows ({}); it may be damaged, or made to be slow to decode: save it again (as a JPEG, say) and upload the copy",
        seconds(*.0)
    )]
    OutOfTime(Duration),
    #[error("this image could not be read: the decoder failed on it; it may be damaged")]
    Crashed,
    #[error("the thumbnail could not be written: {0}")]
    Encode(String),
}

/// `10 s`, `1.5 s`, `20 ms`: a budget as a person reads it.
fn seconds(time: Duration) -> String {
    if time >= Duration::from_secs(1) {
        format!("{} s", time.as_secs_f64())
    } else {
        format!("{} ms", time.as_millis())
    }
}

/// How long one image may take to process, decoding included: well inside
/// the function's 29 s timeout (API Gateway's), with room for fetching the
/// upload and writing the objects.
pub const TIME_BUDGET: Duration = Duration::from_secs(10);

/// What processing one image may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Images with more pixels are refused (the stage's `MAX_PIXELS`).
    pub max_pixels: u64,
    /// The most memory decoding one image may take at its peak, in bytes.
    pub memory_bytes: u64,
    /// How long processing one image may take, decoding included; a
    /// slower image is refused ([`ImageError::OutOfTime`]).
    pub time: Duration,
}

impl Limits {
    /// The limits for a function with `memory_mb` MB of memory: half of it
    /// for the image being decoded. The other half holds the runtime, the
    /// upload itself (up to its size limit), the SDK's buffers and the
    /// thumbnail.
    pub fn for_function(memory_mb: u32, max_pixels: u64) -> Self {
        Self {
            max_pixels,
            memory_bytes: u64::from(memory_mb) * 1024 * 1024 / 2,
            time: TIME_BUDGET,
        }
    }

    /// Refuses an image of `width` × `height` pixels whose decoding takes
    /// `fixed + per_pixel × pixels` bytes at its peak, if that is over the
    /// memory budget or the pixels over the pixel limit.
    fn check(
        &self,
        width: u32,
        height: u32,
        per_pixel: u64,
        fixed: u64,
        of_this_kind: &str,
    ) -> Result<(), ImageError> {
        let pixels = u64::from(width) * u64::from(height);
        let by_memory = self.memory_bytes.saturating_sub(fixed) / per_pixel.max(1);
        let max = self.max_pixels.min(by_memory);
        if pixels > max {
            return Err(ImageError::TooManyPixels {
                width,
                height,
                max_megapixels: max / 1_000_000,
                of_this_kind: of_this_kind.to_owned(),
            });
        }
        Ok(())
    }
}

/// The image types the album accepts, by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Jpeg,
    Png,
    WebP,
}

impl Kind {
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::WebP)
        } else {
            None
        }
    }

    pub fn ext(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::WebP => "webp",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
        }
    }

    /// The kind a browser claims for a file, before it is uploaded.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type {
            "image/jpeg" | "image/jpg" => Some(Self::Jpeg),
            "image/png" => Some(Self::Png),
            "image/webp" => Some(Self::WebP),
            _ => None,
        }
    }
}

/// What EXIF says about a photo.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exif {
    /// 1..=8; 1 is upright.
    pub orientation: u8,
    /// `DateTimeOriginal` as `YYYY-MM-DDTHH:MM:SS`.
    pub taken_at: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
}

/// Reads EXIF; a photo without (or with broken) EXIF gets defaults.
pub fn read_exif(bytes: &[u8]) -> Exif {
    use exif::{In, Tag, Value};
    let reader = exif::Reader::new();
    // In a JPEG, the APP1 segment is found without reading the scan data
    // (the container reader scans the whole file when there is no EXIF).
    let parsed = if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg::segments(bytes)
            .find(|s| s.marker == 0xE1 && s.body.starts_with(b"Exif\0\0"))
            .ok_or(exif::Error::NotFound("JPEG"))
            .and_then(|s| reader.read_raw(s.body[6..].to_vec()))
    } else {
        reader.read_from_container(&mut Cursor::new(bytes))
    };
    let Ok(data) = parsed else {
        return Exif {
            orientation: 1,
            ..Exif::default()
        };
    };
    let text = |tag: Tag| -> Option<String> {
        let field = data.get_field(tag, In::PRIMARY)?;
        match &field.value {
            Value::Ascii(parts) => parts.first().map(|p| {
                String::from_utf8_lossy(p)
                    .trim_matches(|c: char| c == '\0' || c.is_whitespace())
                    .to_owned()
            }),
            _ => None,
        }
        .filter(|s| !s.is_empty())
    };
    let orientation = data
        .get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|v| u8::try_from(v).ok())
        .filter(|v| (1..=8).contains(v))
        .unwrap_or(1);
    let coordinate = |tag: Tag, reference: Tag, negative: &str| -> Option<f64> {
        let field = data.get_field(tag, In::PRIMARY)?;
        let Value::Rational(parts) = &field.value else {
            return None;
        };
        let [d, m, s] = parts.get(..3)? else {
            return None;
        };
        let value = d.to_f64() + m.to_f64() / 60.0 + s.to_f64() / 3600.0;
        let sign = match text(reference) {
            Some(r) if r.eq_ignore_ascii_case(negative) => -1.0,
            _ => 1.0,
        };
        Some(sign * value).filter(|v| v.is_finite())
    };
    let lat = coordinate(Tag::GPSLatitude, Tag::GPSLatitudeRef, "S").filter(|v| v.abs() <= 90.0);
    let lng = coordinate(Tag::GPSLongitude, Tag::GPSLongitudeRef, "W").filter(|v| v.abs() <= 180.0);
    Exif {
        orientation,
        taken_at: text(Tag::DateTimeOriginal).and_then(|t| exif_date(&t)),
        make: text(Tag::Make),
        model: text(Tag::Model),
        lat: lat.and(lng).and(lat),
        lng: lat.and(lng),
    }
}

/// `2024:07:01 18:30:00` → `2024-07-01T18:30:00`.
fn exif_date(text: &str) -> Option<String> {
    let (date, time) = text.split_once(' ')?;
    let date = date.replace(':', "-");
    let ok = date.len() == 10 && time.len() == 8 && !date.starts_with("0000");
    ok.then(|| format!("{date}T{time}"))
}

/// A processed photo.
#[derive(Debug, Clone)]
pub struct Processed {
    /// As the photo is displayed (after orientation).
    pub width: u32,
    pub height: u32,
    pub thumbnail: Vec<u8>,
    pub thumbnail_width: u32,
    pub thumbnail_height: u32,
}

/// Checks the image against `limits`, decodes it (JPEG at 1/8 scale when that
/// still covers the box), fits a JPEG thumbnail into `box_w` × `box_h` and
/// turns it as the EXIF `orientation` says.
pub fn process(
    bytes: &[u8],
    kind: Kind,
    orientation: u8,
    limits: &Limits,
    box_w: u32,
    box_h: u32,
) -> Result<Processed, ImageError> {
    // Decoders are not ours to fix: one that panics on a hostile file costs
    // this photo, not the request or the process.
    catch_unwind(AssertUnwindSafe(|| {
        process_unguarded(bytes, kind, orientation, limits, box_w, box_h)
    }))
    .unwrap_or(Err(ImageError::Crashed))
}

fn process_unguarded(
    bytes: &[u8],
    kind: Kind,
    orientation: u8,
    limits: &Limits,
    box_w: u32,
    box_h: u32,
) -> Result<Processed, ImageError> {
    let deadline = Instant::now() + limits.time;
    // Orientations 5–8 turn the picture a quarter: the box applies turned.
    let quarter_turn = (5..=8).contains(&orientation);
    let (fit_w, fit_h) = if quarter_turn {
        (box_h, box_w)
    } else {
        (box_w, box_h)
    };
    let (width, height, decoded) = decode(bytes, kind, limits, deadline, fit_w, fit_h)?;
    if Instant::now() > deadline {
        return Err(ImageError::OutOfTime(limits.time));
    }
    let small = shrink::fit(&decoded, fit_w, fit_h).unwrap_or_else(|| {
        // Smaller than the box: `image` scales it up.
        DynamicImage::ImageRgb8(decoded)
            .thumbnail(fit_w, fit_h)
            .into_rgb8()
    });
    let mut thumb = DynamicImage::ImageRgb8(small);
    if let Some(o) = image::metadata::Orientation::from_exif(orientation) {
        thumb.apply_orientation(o);
    }
    let thumb = thumb.into_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82)
        .encode_image(&thumb)
        .map_err(|e| ImageError::Encode(e.to_string()))?;
    let (width, height) = if quarter_turn {
        (height, width)
    } else {
        (width, height)
    };
    Ok(Processed {
        width,
        height,
        thumbnail_width: thumb.width(),
        thumbnail_height: thumb.height(),
        thumbnail: out,
    })
}

/// Bytes a decode holds besides its pixels: copies of the file (`image`'s
/// JPEG decoder keeps one, the draft decoder one of the scan), row buffers.
fn fixed_bytes(file: &[u8]) -> u64 {
    2 * file.len() as u64 + 4 * 1024 * 1024
}

/// The image's size as stored, and its pixels: at 1/8 scale if that covers
/// `fit_w` × `fit_h`, else in full.
fn decode(
    bytes: &[u8],
    kind: Kind,
    limits: &Limits,
    deadline: Instant,
    fit_w: u32,
    fit_h: u32,
) -> Result<(u32, u32, RgbImage), ImageError> {
    let damaged = |e: image::ImageError| failed(&e, limits, deadline);
    match kind {
        Kind::Jpeg => {
            let header = jpeg::Header::parse(bytes)?;
            let size = |v: usize| u32::try_from(v).map_err(|_| ImageError::NotAnImage);
            let (width, height) = (size(header.width)?, size(header.height)?);
            let eighth_covers = width.div_ceil(8) >= fit_w && height.div_ceil(8) >= fit_h;
            if draft::applies(&header) && eighth_covers {
                // The draft decoder's peak is a few bytes per 8×8 block.
                let pixels = u64::from(width) * u64::from(height);
                let peak = draft::peak_bytes(&header);
                limits.check(
                    width,
                    height,
                    peak.div_ceil(pixels.max(1)),
                    fixed_bytes(bytes),
                    "",
                )?;
                let image = draft::decode(&header, deadline).map_err(|e| match e {
                    draft::DraftError::OutOfTime => ImageError::OutOfTime(limits.time),
                    draft::DraftError::Damaged => ImageError::Damaged(e.to_string()),
                })?;
                return Ok((width, height, image));
            }
            let decoder = image::codecs::jpeg::JpegDecoder::new(Timed::new(bytes, deadline))
                .map_err(damaged)?;
            // `image`'s decoder reads the header too: it must see the frame
            // that was checked, or the check would be for another image.
            if decoder.dimensions() != (width, height) {
                return Err(ImageError::Jpeg(jpeg::JpegError::Damaged(
                    "its frame is read differently by different decoders",
                )));
            }
            // Progressive files keep every coefficient (2 bytes a sample)
            // until the last scan; sequential ones decode row by row.
            let samples = header.samples_per_pixel_eighths() as u64;
            let coefficients = match header.coding {
                jpeg::Coding::Progressive => 2 * samples.div_ceil(8),
                jpeg::Coding::Sequential => 0,
            };
            let what = match (header.coding, header.components.len()) {
                (jpeg::Coding::Progressive, _) => " for a progressive JPEG",
                (_, 4) => " for a CMYK JPEG",
                _ => " for a JPEG of this size",
            };
            let pixels = full_decode(
                decoder,
                limits,
                deadline,
                coefficients + samples.div_ceil(8),
                bytes,
                what,
            )?;
            Ok((width, height, pixels))
        }
        Kind::Png => {
            let budget = image::Limits::default();
            let mut png_limits = budget;
            png_limits.max_alloc = Some(limits.memory_bytes);
            let decoder = image::codecs::png::PngDecoder::with_limits(
                Timed::new(bytes, deadline),
                png_limits,
            )
            .map_err(damaged)?;
            let (width, height) = decoder.dimensions();
            let what = match decoder.color_type() {
                ColorType::L16 | ColorType::La16 | ColorType::Rgb16 | ColorType::Rgba16 => {
                    " for a 16-bit PNG"
                }
                ColorType::Rgb8 => "",
                _ => " for a PNG with transparency or in grey",
            };
            Ok((
                width,
                height,
                full_decode(decoder, limits, deadline, 0, bytes, what)?,
            ))
        }
        Kind::WebP => {
            let decoder = image::codecs::webp::WebPDecoder::new(Timed::new(bytes, deadline))
                .map_err(damaged)?;
            let (width, height) = decoder.dimensions();
            // The VP8 decoder's planes (1.5 bytes a pixel), or the lossless
            // decoder's 4-byte pixels, besides the output.
            Ok((
                width,
                height,
                full_decode(decoder, limits, deadline, 5, bytes, " for a WebP")?,
            ))
        }
    }
}

/// Why `image`'s decoder failed: the time budget if it is spent (the
/// [`Timed`] reader fails every read after the deadline), else the file.
fn failed(e: &image::ImageError, limits: &Limits, deadline: Instant) -> ImageError {
    if Instant::now() > deadline {
        ImageError::OutOfTime(limits.time)
    } else {
        ImageError::Damaged(e.to_string())
    }
}

/// Decodes a whole image into a buffer checked against `limits` first:
/// the decoder's output, plus `extra_per_pixel` bytes it holds besides.
fn full_decode(
    mut decoder: impl ImageDecoder,
    limits: &Limits,
    deadline: Instant,
    extra_per_pixel: u64,
    file: &[u8],
    of_this_kind: &str,
) -> Result<RgbImage, ImageError> {
    let (width, height) = decoder.dimensions();
    let color = decoder.color_type();
    let bytes_per_pixel = u64::from(color.bytes_per_pixel());
    // Grey is widened to RGB into a second buffer; wider pixels are narrowed
    // in place.
    let widened = if bytes_per_pixel < 3 { 3 } else { 0 };
    let per_pixel = bytes_per_pixel + widened + extra_per_pixel;
    limits.check(width, height, per_pixel, fixed_bytes(file), of_this_kind)?;
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.memory_bytes);
    decoder
        .set_limits(image_limits)
        .map_err(|e| ImageError::Damaged(e.to_string()))?;
    let total = usize::try_from(decoder.total_bytes())
        .map_err(|_| ImageError::Damaged("it is too large to address".to_owned()))?;
    // Reading the header may have used the budget up: then nothing large
    // is allocated.
    if Instant::now() > deadline {
        return Err(ImageError::OutOfTime(limits.time));
    }
    let mut buffer = Vec::new();
    // An allocation that fails anyway (a limited address space) is a refusal,
    // not an abort.
    buffer
        .try_reserve_exact(total)
        .map_err(|_| ImageError::TooManyPixels {
            width,
            height,
            max_megapixels: limits.max_pixels.min(limits.memory_bytes / per_pixel) / 1_000_000,
            of_this_kind: of_this_kind.to_owned(),
        })?;
    buffer.resize(total, 0);
    decoder
        .read_image(&mut buffer)
        .map_err(|e| failed(&e, limits, deadline))?;
    to_rgb8(color, buffer, width, height).ok_or_else(|| {
        ImageError::Damaged(format!("its pixels ({color:?}) could not be converted"))
    })
}

/// The decoder's pixels as 8-bit RGB (alpha dropped, 16-bit samples rounded
/// to their high byte), narrowed in place where pixels are at least 3 bytes.
fn to_rgb8(color: ColorType, mut buffer: Vec<u8>, width: u32, height: u32) -> Option<RgbImage> {
    let pixels = usize::try_from(u64::from(width) * u64::from(height)).ok()?;
    let size = usize::from(color.bytes_per_pixel());
    if buffer.len() != pixels.checked_mul(size)? {
        return None;
    }
    // The high byte of a native-endian 16-bit sample.
    let high = |two: &[u8]| (u16::from_ne_bytes([two[0], two[1]]) >> 8).to_le_bytes()[0];
    let rgb = match color {
        ColorType::Rgb8 => buffer,
        ColorType::L8 | ColorType::La8 | ColorType::L16 | ColorType::La16 => {
            let mut rgb = Vec::new();
            rgb.try_reserve_exact(pixels.checked_mul(3)?).ok()?;
            for pixel in buffer.chunks_exact(size) {
                let l = if matches!(color, ColorType::L8 | ColorType::La8) {
                    pixel[0]
                } else {
                    high(&pixel[..2])
                };
                rgb.extend_from_slice(&[l, l, l]);
            }
            rgb
        }
        ColorType::Rgba8 | ColorType::Rgb16 | ColorType::Rgba16 => {
            // Output pixel `i` is written at `3i`, never past input pixel
            // `i`'s start (`size × i`), so the narrowing can be in place.
            for i in 0..pixels {
                let at = i * size;
                let value = if color == ColorType::Rgba8 {
                    [buffer[at], buffer[at + 1], buffer[at + 2]]
                } else {
                    [
                        high(&buffer[at..at + 2]),
                        high(&buffer[at + 2..at + 4]),
                        high(&buffer[at + 4..at + 6]),
                    ]
                };
                buffer[3 * i..3 * i + 3].copy_from_slice(&value);
            }
            buffer.truncate(pixels * 3);
            buffer.shrink_to_fit();
            buffer
        }
        _ => return None,
    };
    RgbImage::from_raw(width, height, rgb)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 512 MB function's limits.
    pub const LIMITS: Limits = Limits {
        max_pixels: 60_000_000,
        memory_bytes: 256 * 1024 * 1024,
        time: Duration::from_secs(10),
    };

    /// A `w`×`h` JPEG with a gradient, made here.
    pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                u8::try_from(x * 255 / w).unwrap(),
                u8::try_from(y * 255 / h).unwrap(),
                128,
            ])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn sniffing_uses_content_not_names() {
        assert_eq!(Kind::sniff(&jpeg(8, 8)), Some(Kind::Jpeg));
        assert_eq!(Kind::sniff(b"\x89PNG\r\n\x1a\n...."), Some(Kind::Png));
        assert_eq!(Kind::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Kind::WebP));
        assert_eq!(Kind::sniff(b"<html>not an image"), None);
        assert_eq!(Kind::sniff(b""), None);
    }

    #[test]
    fn thumbnails_fit_the_box_and_keep_the_aspect() {
        let p = process(&jpeg(1200, 800), Kind::Jpeg, 1, &LIMITS, 300, 200).unwrap();
        assert_eq!((p.width, p.height), (1200, 800));
        assert_eq!((p.thumbnail_width, p.thumbnail_height), (300, 200));
        assert_eq!(Kind::sniff(&p.thumbnail), Some(Kind::Jpeg));
        let tall = process(&jpeg(400, 1600), Kind::Jpeg, 1, &LIMITS, 300, 200).unwrap();
        assert_eq!(tall.thumbnail_height, 200);
        assert_eq!(tall.thumbnail_width, 50);
    }

    #[test]
    fn orientation_turns_the_thumbnail() {
        // Stored landscape, EXIF says "rotate 90° clockwise": shown portrait.
        let p = process(&jpeg(1200, 800), Kind::Jpeg, 6, &LIMITS, 300, 200).unwrap();
        assert_eq!((p.width, p.height), (800, 1200));
        assert!(p.thumbnail_height > p.thumbnail_width);
    }

    #[test]
    fn too_many_pixels_is_refused_before_decoding() {
        let few = Limits {
            max_pixels: 5_000_000,
            ..LIMITS
        };
        let err = process(&jpeg(3000, 2000), Kind::Jpeg, 1, &few, 300, 200).unwrap_err();
        assert!(matches!(err, ImageError::TooManyPixels { .. }), "{err}");
    }

    #[test]
    fn limits_come_from_the_function_memory() {
        let limits = Limits::for_function(512, 60_000_000);
        assert_eq!(limits.memory_bytes, 256 * 1024 * 1024);
        // 8 bytes a pixel: 16-bit RGBA.
        let err = limits
            .check(7_745, 7_745, 8, 0, " for a 16-bit PNG")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "this photo is 7745 × 7745 pixels; this album accepts up to 33 megapixels for a 16-bit PNG"
        );
        assert!(limits.check(5_000, 5_000, 8, 0, "").is_ok());
        // Cheap pixels are capped by the pixel limit.
        let err = limits.check(8_000, 8_000, 1, 0, "").unwrap_err();
        assert!(err.to_string().ends_with("up to 60 megapixels"), "{err}");
        // A small function accepts less.
        assert!(
            Limits::for_function(128, 60_000_000)
                .check(5_000, 5_000, 8, 0, "")
                .is_err()
        );
    }

    #[test]
    fn pixels_are_narrowed_to_rgb() {
        let rgba16: Vec<u8> = [0x1234u16, 0xABCD, 0xFF00, 0x0001]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let rgb = to_rgb8(ColorType::Rgba16, rgba16, 1, 1).unwrap();
        assert_eq!(rgb.as_raw(), &[0x12, 0xAB, 0xFF]);
        let rgba = to_rgb8(ColorType::Rgba8, vec![1, 2, 3, 4, 5, 6, 7, 8], 2, 1).unwrap();
        assert_eq!(rgba.as_raw(), &[1, 2, 3, 5, 6, 7]);
        let grey = to_rgb8(ColorType::La8, vec![9, 255], 1, 1).unwrap();
        assert_eq!(grey.as_raw(), &[9, 9, 9]);
        assert!(to_rgb8(ColorType::Rgb8, vec![0; 5], 1, 2).is_none());
    }

    #[test]
    fn damaged_images_are_errors_not_panics() {
        let mut bytes = jpeg(64, 64);
        bytes.truncate(40);
        assert!(process(&bytes, Kind::Jpeg, 1, &LIMITS, 300, 200).is_err());
    }

    #[test]
    fn exif_dates_are_iso() {
        assert_eq!(
            exif_date("2024:07:01 18:30:00").as_deref(),
            Some("2024-07-01T18:30:00")
        );
        assert_eq!(exif_date("0000:00:00 00:00:00"), None);
        assert_eq!(exif_date("garbage"), None);
    }

    /// The browser journey's fixture: camera and GPS EXIF in APP1.
    #[test]
    fn exif_of_a_camera_jpeg() {
        let bytes = include_bytes!("../../../tests/browser/fixtures/seoul.jpg");
        let e = read_exif(bytes);
        assert_eq!(e.make.as_deref(), Some("Canon"));
        assert_eq!(e.model.as_deref(), Some("EOS 5D"));
        assert_eq!(e.taken_at.as_deref(), Some("2024-07-01T18:30:00"));
        assert!((e.lat.unwrap() - 37.565_467).abs() < 1e-3);
        assert!((e.lng.unwrap() - 126.975_431).abs() < 1e-3);
    }

    #[test]
    fn no_exif_means_upright_and_unknown() {
        let e = read_exif(&jpeg(8, 8));
        assert_eq!(e.orientation, 1);
        assert_eq!(e.lat, None);
    }
}
