//! What the server does with an uploaded photo: sniff its real type, refuse
//! decompression bombs, read EXIF (orientation, GPS, date, camera), and make a
//! JPEG thumbnail that respects the orientation and fits the stage's box.
//!
//! JPEGs are decoded with DCT scaling ("draft mode", as Pillow does): a 12 MP
//! photo bound for a 300×200 box is decoded at 1/8 size, never in full.

use std::io::Cursor;

use image::{DynamicImage, ImageReader, RgbImage};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("this file is not a JPEG, PNG or WebP image")]
    NotAnImage,
    #[error("this image is {width}×{height} pixels; the limit is {max} megapixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("this image could not be read ({0}); it may be damaged")]
    Damaged(String),
    #[error("the thumbnail could not be written: {0}")]
    Encode(String),
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

    fn format(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::WebP => image::ImageFormat::WebP,
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
        crate::jpeg::segments(bytes)
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

/// Checks the pixel count, decodes (JPEG at the smallest DCT scale that still
/// covers the box), applies the EXIF orientation and fits a JPEG thumbnail
/// into `box_w` × `box_h`.
pub fn process(
    bytes: &[u8],
    kind: Kind,
    orientation: u8,
    max_pixels: u64,
    box_w: u32,
    box_h: u32,
) -> Result<Processed, ImageError> {
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), kind.format())
        .into_dimensions()
        .map_err(|e| ImageError::Damaged(e.to_string()))?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            max: max_pixels / 1_000_000,
        });
    }
    // Orientations 5–8 turn the picture a quarter: the box applies rotated.
    let quarter_turn = (5..=8).contains(&orientation);
    let (decode_w, decode_h) = if quarter_turn {
        (box_h, box_w)
    } else {
        (box_w, box_h)
    };
    // 1/8 scale still covers the box (the usual case for photos): only the
    // DC coefficients are decoded.
    let eighth_covers = width.div_ceil(8) >= decode_w && height.div_ceil(8) >= decode_h;
    let draft = (kind == Kind::Jpeg && eighth_covers)
        .then(|| crate::draft::decode_eighth(bytes))
        .flatten();
    let decoded = match (draft, kind) {
        (Some(eighth), _) => DynamicImage::ImageRgb8(eighth),
        (None, Kind::Jpeg) => decode_jpeg_scaled(bytes, decode_w, decode_h)?,
        (None, other) => image::load_from_memory_with_format(bytes, other.format())
            .map_err(|e| ImageError::Damaged(e.to_string()))?,
    };
    let mut oriented = decoded;
    if let Some(o) = image::metadata::Orientation::from_exif(orientation) {
        oriented.apply_orientation(o);
    }
    let oriented = oriented.into_rgb8();
    let thumb = crate::shrink::fit(&oriented, box_w, box_h).unwrap_or_else(|| {
        // Smaller than the box: `image` scales it up.
        DynamicImage::ImageRgb8(oriented)
            .thumbnail(box_w, box_h)
            .into_rgb8()
    });
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

/// Decodes a JPEG at the smallest 1/1, 1/2, 1/4 or 1/8 scale that is still at
/// least `w` × `h` (or the whole image, if smaller).
fn decode_jpeg_scaled(bytes: &[u8], w: u32, h: u32) -> Result<DynamicImage, ImageError> {
    use jpeg_decoder::{Decoder, PixelFormat};
    let damaged = |e: jpeg_decoder::Error| ImageError::Damaged(e.to_string());
    let mut decoder = Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(damaged)?;
    let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    let (out_w, out_h) = decoder.scale(clamp(w), clamp(h)).map_err(damaged)?;
    let pixels = decoder.decode().map_err(damaged)?;
    let info = decoder
        .info()
        .ok_or_else(|| ImageError::Damaged("no image header".to_owned()))?;
    let (out_w, out_h) = (u32::from(out_w), u32::from(out_h));
    let rgb: Vec<u8> = match info.pixel_format {
        PixelFormat::RGB24 => pixels,
        PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        PixelFormat::L16 => pixels
            .chunks_exact(2)
            .flat_map(|c| [c[0], c[0], c[0]])
            .collect(),
        PixelFormat::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|c| {
                // Adobe CMYK JPEGs are stored inverted.
                let k = u16::from(c[3]);
                let mul = |v: u8| u8::try_from(u16::from(v) * k / 255).unwrap_or(255);
                [mul(c[0]), mul(c[1]), mul(c[2])]
            })
            .collect(),
    };
    RgbImage::from_raw(out_w, out_h, rgb)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| ImageError::Damaged("pixel data does not match its size".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let p = process(&jpeg(1200, 800), Kind::Jpeg, 1, 60_000_000, 300, 200).unwrap();
        assert_eq!((p.width, p.height), (1200, 800));
        assert_eq!((p.thumbnail_width, p.thumbnail_height), (300, 200));
        assert_eq!(Kind::sniff(&p.thumbnail), Some(Kind::Jpeg));
        let tall = process(&jpeg(400, 1600), Kind::Jpeg, 1, 60_000_000, 300, 200).unwrap();
        assert_eq!(tall.thumbnail_height, 200);
        assert_eq!(tall.thumbnail_width, 50);
    }

    #[test]
    fn orientation_turns_the_thumbnail() {
        // Stored landscape, EXIF says "rotate 90° clockwise": shown portrait.
        let p = process(&jpeg(1200, 800), Kind::Jpeg, 6, 60_000_000, 300, 200).unwrap();
        assert_eq!((p.width, p.height), (800, 1200));
        assert!(p.thumbnail_height > p.thumbnail_width);
    }

    #[test]
    fn too_many_pixels_is_refused_before_decoding() {
        let err = process(&jpeg(3000, 2000), Kind::Jpeg, 1, 5_000_000, 300, 200).unwrap_err();
        assert!(matches!(err, ImageError::TooManyPixels { .. }), "{err}");
    }

    #[test]
    fn damaged_images_are_errors_not_panics() {
        let mut bytes = jpeg(64, 64);
        bytes.truncate(40);
        assert!(process(&bytes, Kind::Jpeg, 1, 60_000_000, 300, 200).is_err());
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
        let bytes = include_bytes!("../../tests/browser/fixtures/seoul.jpg");
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
