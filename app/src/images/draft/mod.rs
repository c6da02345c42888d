//! JPEG "draft mode" at 1/8 scale for baseline JPEGs: one pixel per 8×8 block,
//! the block's mean, which is what libjpeg's 1/8 scaled decoding (Pillow's
//! draft mode) produces.
//!
//! - A full-resolution component (luma, or every component of a 4:4:4 file)
//!   needs only each block's DC coefficient. Its AC coefficients' Huffman
//!   codes are skipped, several per table lookup, never dequantized or
//!   transformed: that walk is nearly all the time spent.
//! - A subsampled component (4:2:0, 4:2:2 chroma) gives each block 2×2 (or
//!   2×1) pixels, the means of its quarters (halves), computed from all its
//!   coefficients, as libjpeg's reduced IDCT does, so colour edges stay where
//!   they are.
//!
//! The pipeline: the header read once ([`Header`]) → stuffing removed
//! ([`bits::Scan`]) → blocks entropy-decoded, on two cores when there are two
//! ([`parallel`]) → DC predictors applied and pixels placed in one plane per
//! component → colour conversion.
//!
//! Anything else (progressive, 12-bit, CMYK) is not for this decoder
//! ([`applies`] says so), and the caller decodes it the general way. Data that
//! ends before the last block, an invalid code or a passed deadline is an
//! error ([`DraftError`]).

mod bits;
mod blocks;
pub(crate) mod huffman;
mod parallel;

use std::time::Instant;

use image::RgbImage;

use super::jpeg::{Coding, Component, Header};
use bits::Scan;
use blocks::{Reduced, Slot};
use parallel::{Parallelism, Split};

/// Why a file this decoder applies to could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DraftError {
    #[error("its image data is damaged or ends early")]
    Damaged,
    #[error("it took longer to read than the album allows for one photo")]
    OutOfTime,
}

/// Whether the 1/8-scale decoder reads this frame: baseline (or extended
/// sequential) Huffman, 8-bit, grey or YCbCr, one interleaved scan, sampling
/// factors of 1 or 2.
pub fn applies(header: &Header<'_>) -> bool {
    let count = header.components.len();
    header.coding == Coding::Sequential
        && header.precision == 8
        && (count == 1 || count == 3)
        && !(count == 3 && header.adobe_transform == Some(0))
        && header.scan_components.len() == count
        && header
            .components
            .iter()
            .all(|c| (1..=2).contains(&c.h) && (1..=2).contains(&c.v))
}

/// The bytes the 1/8-scale decode of `header` holds at its peak, besides the
/// file itself: per block its DC difference (twice, with two threads), per
/// subsampled block its AC sums, the planes, the image, and one copy of the
/// entropy-coded data.
pub fn peak_bytes(header: &Header<'_>) -> u64 {
    let out = (header.width.div_ceil(8) as u64 + 2) * (header.height.div_ceil(8) as u64 + 2);
    // Per output pixel: 4:2:0 colour has 1.5 blocks, 4:4:4 has 3 (2 bytes
    // each, 3 with a second thread), 2:1 chroma has 16 bytes of AC sums per
    // block, planes 1 byte per component, the image 3, its turned copy 3.
    out * (3 * 3 + 16 + 3 + 3 + 3) + header.scan.len() as u64
}

/// A baseline JPEG's 1/8-scale image, or `None` if this decoder does not apply.
pub fn decode_eighth(data: &[u8]) -> Option<RgbImage> {
    let header = Header::parse(data).ok()?;
    if !applies(&header) {
        return None;
    }
    decode(&header, far_future()).ok()
}

/// The 1/8-scale image of a frame [`applies`] accepts, decoded before
/// `deadline`.
pub fn decode(header: &Header<'_>, deadline: Instant) -> Result<RgbImage, DraftError> {
    let (image, _) = header.decode(Parallelism::of_this_machine(), deadline)?;
    Ok(image)
}

fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_hours(1)
}

impl Header<'_> {
    fn decode(
        &self,
        parallelism: Parallelism,
        deadline: Instant,
    ) -> Result<(RgbImage, Split), DraftError> {
        self.decode_inner(parallelism, deadline)
            .ok_or(DraftError::Damaged)?
    }

    fn decode_inner(
        &self,
        parallelism: Parallelism,
        deadline: Instant,
    ) -> Option<Result<(RgbImage, Split), DraftError>> {
        if !applies(self) {
            return None;
        }
        // An MCU is `mcu_w` × `mcu_h` blocks of the fullest component; the
        // output has one pixel per such block.
        let mcu_w = self.components.iter().map(|c| self.sampling(c).0).max()?;
        let mcu_h = self.components.iter().map(|c| self.sampling(c).1).max()?;
        let out_w = self.width.div_ceil(8);
        let out_h = self.height.div_ceil(8);
        let mcus_x = self.width.div_ceil(8 * mcu_w);
        let mcus_y = self.height.div_ceil(8 * mcu_h);
        let slots = self.slots(mcu_w, mcu_h)?;
        let total = mcus_x.checked_mul(mcus_y)?.checked_mul(slots.len())?;
        let scan = Scan::destuff(self.scan);
        let (blocks, split) = match parallel::decode_blocks(
            &slots,
            &scan,
            total,
            self.restart_interval,
            parallelism,
            deadline,
        ) {
            Ok(decoded) => decoded,
            Err(parallel::Failed::Damaged) => return None,
            Err(parallel::Failed::OutOfTime) => return Some(Err(DraftError::OutOfTime)),
        };

        // Every plane is at output resolution: a subsampled component's
        // block gives 2 (or 2×2) pixels, as libjpeg's scaled IDCT does.
        let plane_w = mcus_x * mcu_w;
        let plane_h = mcus_y * mcu_h;
        let mut planes = vec![vec![0u8; plane_w * plane_h]; self.components.len()];
        // Where each slot's first pixel sits relative to its MCU's first.
        let offsets: Vec<usize> = slots
            .iter()
            .map(|slot| {
                let (nx, ny) = slot.reduced.as_ref().map_or((1, 1), |r| (r.nx, r.ny));
                slot.y * ny * plane_w + slot.x * nx
            })
            .collect();
        let mut predictors = [0i32; 3];
        let mut ac_sums = blocks.ac_sums.iter();
        let mut diffs = blocks.diffs.iter();
        for mcu in 0..mcus_x * mcus_y {
            if self.restart_interval > 0 && mcu % self.restart_interval == 0 {
                predictors = [0; 3];
            }
            let origin = (mcu / mcus_x) * mcu_h * plane_w + (mcu % mcus_x) * mcu_w;
            for (slot, offset) in slots.iter().zip(&offsets) {
                let predictor = predictors.get_mut(slot.component)?;
                *predictor += i32::from(*diffs.next()?);
                let dc = *predictor * i32::from(slot.quant[0]);
                let plane = planes.get_mut(slot.component)?;
                let at = origin + offset;
                if let Some(reduced) = &slot.reduced {
                    let pixels = reduced.pixels(ac_sums.next()?, dc);
                    for (s, value) in pixels.iter().take(reduced.nx * reduced.ny).enumerate() {
                        *plane.get_mut(at + s / reduced.nx * plane_w + s % reduced.nx)? = *value;
                    }
                } else {
                    // IDCT of a lone DC: every pixel is DC / 8 + 128.
                    let value = ((dc + 1024) >> 3).clamp(0, 255);
                    *plane.get_mut(at)? = u8::try_from(value).ok()?;
                }
            }
        }

        let mut out = RgbImage::new(u32::try_from(out_w).ok()?, u32::try_from(out_h).ok()?);
        let rgb = self.adobe_transform == Some(0);
        for (y, row) in out.rows_mut().enumerate() {
            let start = y * plane_w;
            let columns = start..start + out_w;
            match planes.as_slice() {
                [l] => {
                    for (p, &l) in row.zip(l.get(columns)?) {
                        p.0 = [l; 3];
                    }
                }
                [a, b, c] => {
                    let (a, b, c) = (
                        a.get(columns.clone())?,
                        b.get(columns.clone())?,
                        c.get(columns)?,
                    );
                    for (p, ((&a, &b), &c)) in row.zip(a.iter().zip(b).zip(c)) {
                        p.0 = if rgb { [a, b, c] } else { ycbcr(a, b, c) };
                    }
                }
                _ => return None,
            }
        }
        Some(Ok((out, split)))
    }

    /// A component's blocks per MCU across and down. A single component's
    /// scan is not interleaved: one block per MCU, whatever its factors say.
    fn sampling(&self, c: &Component) -> (usize, usize) {
        if self.components.len() == 1 {
            (1, 1)
        } else {
            (c.h, c.v)
        }
    }

    /// The blocks of one MCU, in scan order, with what decodes each.
    fn slots(&self, mcu_w: usize, mcu_h: usize) -> Option<Vec<Slot<'_>>> {
        let mut slots = Vec::new();
        for (component, c) in self.components.iter().enumerate() {
            let (h, v) = self.sampling(c);
            let reduced = Reduced::new(mcu_w / h, mcu_h / v);
            for y in 0..v {
                for x in 0..h {
                    slots.push(Slot {
                        component,
                        x,
                        y,
                        dc: self.dc_tables.get(c.dc_table)?.as_ref()?,
                        ac: self.ac_tables.get(c.ac_table)?.as_ref()?,
                        quant: self.quant.get(c.quant)?,
                        reduced: reduced.clone(),
                    });
                }
            }
        }
        Some(slots)
    }
}

fn ycbcr(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let y = i32::from(y) << 16;
    let cb = i32::from(cb) - 128;
    let cr = i32::from(cr) - 128;
    let clamp = |v: i32| u8::try_from(((v + 32_768) >> 16).clamp(0, 255)).unwrap_or(0);
    [
        clamp(y + 91_881 * cr),
        clamp(y - 22_554 * cb - 46_802 * cr),
        clamp(y + 116_130 * cb),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(
        w: u32,
        h: u32,
        encode: impl Fn(&image::RgbImage) -> Vec<u8>,
    ) -> (image::RgbImage, Vec<u8>) {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                u8::try_from(x * 255 / w).unwrap(),
                u8::try_from(y * 255 / h).unwrap(),
                u8::try_from((x + y) % 256).unwrap(),
            ])
        });
        let bytes = encode(&img);
        (img, bytes)
    }

    fn encode_q90(img: &image::RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(img)
            .unwrap();
        out
    }

    /// The largest and the mean channel difference between the 1/8 image and
    /// a full decode averaged over 8×8 blocks (inner blocks: the encoder pads
    /// edges).
    fn block_mean_differences(bytes: &[u8]) -> (i32, f64) {
        let eighth = decode_eighth(bytes).unwrap();
        let full = image::load_from_memory(bytes).unwrap().into_rgb8();
        assert_eq!(
            eighth.dimensions(),
            (full.width().div_ceil(8), full.height().div_ceil(8))
        );
        let (mut worst, mut total_difference, mut count) = (0i32, 0i32, 0i32);
        for (bx, by, p) in eighth.enumerate_pixels() {
            if (bx + 1) * 8 > full.width() || (by + 1) * 8 > full.height() {
                continue;
            }
            let mut sum = [0i32; 3];
            for y in by * 8..by * 8 + 8 {
                for x in bx * 8..bx * 8 + 8 {
                    for (total, value) in sum.iter_mut().zip(full.get_pixel(x, y).0) {
                        *total += i32::from(value);
                    }
                }
            }
            for (total, value) in sum.iter().zip(p.0) {
                let difference = (total / 64 - i32::from(value)).abs();
                worst = worst.max(difference);
                total_difference += difference;
                count += 1;
            }
        }
        (worst, f64::from(total_difference) / f64::from(count))
    }

    #[test]
    fn matches_block_means_of_a_full_decode() {
        let (_, bytes) = jpeg(203, 131, encode_q90);
        assert_eq!(decode_eighth(&bytes).unwrap().dimensions(), (26, 17));
        let (worst, _) = block_mean_differences(&bytes);
        assert!(worst <= 12, "worst channel difference {worst}");
    }

    /// Noise at quality 100 fills blocks to their 63rd AC coefficient with no
    /// end-of-block code, so coefficients skipped several at a time must stop
    /// exactly at the block's end.
    #[test]
    fn blocks_full_to_the_last_coefficient() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let noisy = image::RgbImage::from_fn(96, 64, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let [r, g, b, ..] = seed.to_le_bytes();
            image::Rgb([r, g, b])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 100)
            .encode_image(&noisy)
            .unwrap();
        let (worst, _) = block_mean_differences(&bytes);
        assert!(worst <= 12, "worst channel difference {worst}");
    }

    /// Pillow writes 4:2:0 chroma (one chroma block per four luma blocks):
    /// each chroma block gives 2×2 pixels, so colour edges stay sharp.
    #[test]
    fn subsampled_chroma_from_pillow() {
        let bytes = include_bytes!("../../../../tests/browser/fixtures/seoul.jpg");
        let (worst, mean) = block_mean_differences(bytes);
        assert!(
            worst <= 12 && mean <= 1.0,
            "mean channel difference {mean:.2}, worst {worst}"
        );
    }

    /// 4:2:2: chroma at half width only, so each chroma block gives 2×1
    /// pixels. (Pillow's draft decode of this file is further from the full
    /// decode's block means, mean 13 levels in blue: libjpeg scales 4:2:2
    /// chroma to one pixel a block and then upsamples.)
    #[test]
    fn horizontally_subsampled_chroma_from_pillow() {
        let bytes = include_bytes!("../../../tests/fixtures/subsampled-422.jpg");
        let frame = Header::parse(bytes).unwrap();
        let factors: Vec<_> = frame.components.iter().map(|c| (c.h, c.v)).collect();
        assert_eq!(factors, [(2, 1), (1, 1), (1, 1)]);
        let (one, _) = frame.decode(ONE_CORE, far_future()).unwrap();
        let (two, split) = frame.decode(TWO_CORES, far_future()).unwrap();
        assert!(one == two && matches!(split, Split::Met(_)), "{split:?}");
        // A 12×8 image, mostly edges: the mean is looser than for larger ones.
        let (worst, mean) = block_mean_differences(bytes);
        assert!(
            worst <= 12 && mean <= 2.0,
            "mean channel difference {mean:.2}, worst {worst}"
        );
    }

    /// A noisy picture (every block full of AC codes).
    fn noisy(w: u32, h: u32, quality: u8) -> Vec<u8> {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let noise = u32::try_from(seed % 24).unwrap();
            let ramp = |v: u32, n: u32| u8::try_from((v * 200 / n + noise) % 256).unwrap();
            image::Rgb([ramp(x, w), ramp(y, h), ramp(x + y, w + h)])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode_image(&img)
            .unwrap();
        bytes
    }

    const TWO_CORES: Parallelism = Parallelism {
        cores: 2,
        min_bytes: 0,
    };
    const ONE_CORE: Parallelism = Parallelism {
        cores: 1,
        min_bytes: 0,
    };

    /// Two threads give exactly the one-thread image, the second thread's
    /// blocks are really used, and the first meets them near the middle.
    #[test]
    fn two_cores_decode_what_one_does() {
        let subsampled = include_bytes!("../../../../tests/browser/fixtures/seoul.jpg");
        for bytes in [noisy(1024, 768, 90), subsampled.to_vec()] {
            let frame = Header::parse(&bytes).unwrap();
            let (one, split) = frame.decode(ONE_CORE, far_future()).unwrap();
            assert_eq!(split, Split::OneCore);
            let (two, split) = frame.decode(TWO_CORES, far_future()).unwrap();
            assert!(one == two, "the two-thread image differs");
            let Split::Met(block) = split else {
                panic!("the threads never met: {split:?}");
            };
            let total = frame.width.div_ceil(8) * frame.height.div_ceil(8);
            assert!(block > total / 4, "met at block {block} of about {total}");
        }
    }

    /// Damage in the second half: two threads give what one gives (here,
    /// the decoder reads on through garbage, as libjpeg does).
    #[test]
    fn two_cores_on_damaged_data_match_one() {
        let mut bytes = noisy(512, 512, 90);
        let len = bytes.len();
        for at in (len * 5 / 8..len * 3 / 4).step_by(97) {
            bytes[at] = bytes[at].wrapping_add(1) | 1;
        }
        bytes.truncate(len * 7 / 8);
        let frame = Header::parse(&bytes).unwrap();
        let one = frame.decode(ONE_CORE, far_future()).map(|(image, _)| image);
        let two = frame
            .decode(TWO_CORES, far_future())
            .map(|(image, _)| image);
        assert!(one == two, "one and two threads disagree on damaged data");
    }

    /// A restart marker after every MCU (Pillow's `restart_marker_blocks=1`).
    #[test]
    fn restart_markers() {
        let bytes = include_bytes!("../../../tests/fixtures/restarts.jpg");
        let frame = Header::parse(bytes).unwrap();
        assert_eq!(frame.restart_interval, 1);
        // Such files are decoded on one core.
        assert_eq!(
            frame.decode(TWO_CORES, far_future()).unwrap().1,
            Split::OneCore
        );
        // A 12×8 image, mostly edges: the mean is looser than for larger ones.
        let (worst, mean) = block_mean_differences(bytes);
        assert!(
            worst <= 12 && mean <= 2.0,
            "mean channel difference {mean:.2}, worst {worst}"
        );
        // A file that claims an interval its markers do not follow is refused.
        let bytes = noisy(64, 64, 90);
        let mut frame = Header::parse(&bytes).unwrap();
        frame.restart_interval = 2;
        assert!(frame.decode(ONE_CORE, far_future()).is_err());
    }

    /// Uploads are untrusted: damaged files decode to something or to
    /// `None`, on one thread or two, and never panic.
    #[test]
    fn mutated_files_never_panic() {
        let originals = [
            noisy(160, 120, 90),
            include_bytes!("../../../../tests/browser/fixtures/seoul.jpg").to_vec(),
            include_bytes!("../../../tests/fixtures/restarts.jpg").to_vec(),
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed >> 33).unwrap()
        };
        for original in &originals {
            for round in 0..150 {
                let mut bytes = original.clone();
                for _ in 0..=(round % 8) {
                    let at = next() % bytes.len();
                    bytes[at] = u8::try_from(next() % 256).unwrap();
                }
                if round % 5 == 0 {
                    bytes.truncate(next() % bytes.len());
                }
                if let Ok(frame) = Header::parse(&bytes) {
                    let _ = frame.decode(ONE_CORE, far_future());
                    let _ = frame.decode(TWO_CORES, far_future());
                }
            }
        }
    }

    #[test]
    fn grayscale_and_junk_input() {
        let gray =
            image::GrayImage::from_fn(64, 48, |x, _| image::Luma([u8::try_from(x * 4).unwrap()]));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&gray)
            .unwrap();
        let eighth = decode_eighth(&bytes).unwrap();
        assert_eq!(eighth.dimensions(), (8, 6));
        assert!(eighth.get_pixel(0, 0).0[0] < eighth.get_pixel(7, 0).0[0]);
        assert!(decode_eighth(b"not a jpeg").is_none());
        let (_, mut truncated) = jpeg(64, 64, encode_q90);
        truncated.truncate(truncated.len() / 2);
        // Truncated data decodes what it has (zeros after) or refuses; no panic.
        let _ = decode_eighth(&truncated);
    }
}
