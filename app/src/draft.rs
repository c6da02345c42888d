//! JPEG "draft mode" at 1/8 scale for baseline JPEGs: the image made of each
//! 8×8 block's DC coefficient (its mean), which is exactly what libjpeg's 1/8
//! scaled decoding (Pillow's draft mode) produces. Only the DC coefficients
//! are decoded; the AC coefficients' Huffman codes are skipped without being
//! dequantized or transformed. Anything else (progressive, arithmetic coding,
//! 12-bit, CMYK) returns `None`, and the caller decodes it the general way.

use image::RgbImage;

/// A baseline JPEG's 1/8-scale image, or `None` if this decoder does not apply.
pub fn decode_eighth(data: &[u8]) -> Option<RgbImage> {
    let frame = Frame::parse(data)?;
    frame.decode()
}

#[derive(Clone, Copy, Default)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
    dc_table: usize,
    ac_table: usize,
}

struct Frame<'a> {
    width: usize,
    height: usize,
    components: Vec<Component>,
    quant_dc: [u16; 4],
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
    restart_interval: usize,
    scan: &'a [u8],
    adobe_transform: Option<u8>,
}

/// A Huffman table with a `LOOKAHEAD`-bit lookup. `skip` also folds in a
/// coefficient's extra bits, so skipping an AC coefficient is usually one
/// lookup and one shift.
struct Huffman {
    /// (symbol, code length) for codes of at most `LOOKAHEAD` bits; length 0 = slow path.
    fast: Vec<(u8, u8)>,
    /// For AC use: (bits to consume = code + extra bits, symbol); 0 bits = not covered.
    skip: Vec<(u8, u8)>,
    /// Per code length 1..=16: the largest code, and the offset into `values`.
    max_code: [i32; 18],
    val_offset: [i32; 18],
    values: Vec<u8>,
}

const LOOKAHEAD: u32 = 11;

impl Huffman {
    fn new(counts: &[u8; 16], values: &[u8]) -> Option<Self> {
        let mut max_code = [-1i32; 18];
        let mut val_offset = [0i32; 18];
        let mut fast = vec![(0u8, 0u8); 1 << LOOKAHEAD];
        let mut code: i32 = 0;
        let mut k: usize = 0;
        for len in 1..=16usize {
            let count = usize::from(counts[len - 1]);
            val_offset[len] = i32::try_from(k).ok()? - code;
            for _ in 0..count {
                let symbol = *values.get(k)?;
                if len <= LOOKAHEAD as usize {
                    let shift = LOOKAHEAD as usize - len;
                    let first = usize::try_from(code).ok()? << shift;
                    for slot in &mut fast[first..first + (1 << shift)] {
                        *slot = (symbol, u8::try_from(len).ok()?);
                    }
                }
                code += 1;
                k += 1;
            }
            if count > 0 {
                max_code[len] = code - 1;
            }
            if code > (1 << len) {
                return None;
            }
            code <<= 1;
        }
        max_code[17] = i32::MAX;
        let skip = fast
            .iter()
            .map(|&(symbol, len)| {
                let total = u32::from(len) + u32::from(symbol & 15);
                if len > 0 && total <= LOOKAHEAD {
                    (u8::try_from(total).unwrap_or(0), symbol)
                } else {
                    (0, symbol)
                }
            })
            .collect();
        Some(Self {
            fast,
            skip,
            max_code,
            val_offset,
            values: values.to_vec(),
        })
    }
}

fn be16(data: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *data.get(at)?,
        *data.get(at + 1)?,
    ])))
}

impl<'a> Frame<'a> {
    fn parse(data: &'a [u8]) -> Option<Self> {
        if data.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        let mut frame = Frame {
            width: 0,
            height: 0,
            components: Vec::new(),
            quant_dc: [0; 4],
            dc_tables: [None, None, None, None],
            ac_tables: [None, None, None, None],
            restart_interval: 0,
            scan: &[],
            adobe_transform: None,
        };
        let mut pos = 2;
        loop {
            // Markers may be padded with extra 0xFF bytes.
            while *data.get(pos)? == 0xFF && *data.get(pos + 1)? == 0xFF {
                pos += 1;
            }
            if *data.get(pos)? != 0xFF {
                return None;
            }
            let marker = *data.get(pos + 1)?;
            // SOI/TEM/RSTn have no length.
            if matches!(marker, 0xD8 | 0x01 | 0xD0..=0xD7) {
                pos += 2;
                continue;
            }
            let len = be16(data, pos + 2)?;
            let body = data.get(pos + 4..pos + 2 + len)?;
            match marker {
                // Baseline and extended sequential Huffman, 8-bit.
                0xC0 | 0xC1 => frame.read_frame_header(body)?,
                // Progressive, lossless, arithmetic: not for this decoder.
                0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
                0xC4 => frame.read_huffman_tables(body)?,
                0xDB => frame.read_quant_tables(body)?,
                0xDD => frame.restart_interval = be16(body, 0)?,
                // Adobe APP14: its transform flag tells RGB from YCbCr.
                0xEE if body.starts_with(b"Adobe") => frame.adobe_transform = body.get(11).copied(),
                0xDA => {
                    frame.read_scan_header(body)?;
                    frame.scan = data.get(pos + 2 + len..)?;
                    return Some(frame);
                }
                _ => {}
            }
            pos += 2 + len;
        }
    }

    fn read_frame_header(&mut self, body: &[u8]) -> Option<()> {
        if *body.first()? != 8 {
            return None;
        }
        self.height = be16(body, 1)?;
        self.width = be16(body, 3)?;
        let count = usize::from(*body.get(5)?);
        if !(count == 1 || count == 3) || self.width == 0 || self.height == 0 {
            return None;
        }
        for i in 0..count {
            let c = body.get(6 + 3 * i..9 + 3 * i)?;
            let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
            if !(1..=2).contains(&h) || !(1..=2).contains(&v) || c[2] > 3 {
                return None;
            }
            self.components.push(Component {
                id: c[0],
                h,
                v,
                quant: usize::from(c[2]),
                ..Component::default()
            });
        }
        Some(())
    }

    fn read_huffman_tables(&mut self, body: &[u8]) -> Option<()> {
        let mut at = 0;
        while at < body.len() {
            let class = body[at] >> 4;
            let id = usize::from(body[at] & 15);
            let counts: [u8; 16] = body.get(at + 1..at + 17)?.try_into().ok()?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let values = body.get(at + 17..at + 17 + total)?;
            let table = Huffman::new(&counts, values)?;
            match (class, id) {
                (0, 0..=3) => self.dc_tables[id] = Some(table),
                (1, 0..=3) => self.ac_tables[id] = Some(table),
                _ => return None,
            }
            at += 17 + total;
        }
        Some(())
    }

    /// Keeps the DC entry of each quantization table: all a DC image needs.
    fn read_quant_tables(&mut self, body: &[u8]) -> Option<()> {
        let mut at = 0;
        while at < body.len() {
            let precision = body[at] >> 4;
            let id = usize::from(body[at] & 15);
            if id > 3 {
                return None;
            }
            self.quant_dc[id] = if precision == 0 {
                u16::from(*body.get(at + 1)?)
            } else {
                u16::try_from(be16(body, at + 1)?).ok()?
            };
            at += 1 + if precision == 0 { 64 } else { 128 };
        }
        Some(())
    }

    fn read_scan_header(&mut self, body: &[u8]) -> Option<()> {
        let count = usize::from(*body.first()?);
        if count != self.components.len() {
            // Non-interleaved multi-scan files: not for this decoder.
            return None;
        }
        for i in 0..count {
            let id = *body.get(1 + 2 * i)?;
            let tables = *body.get(2 + 2 * i)?;
            let c = self.components.iter_mut().find(|c| c.id == id)?;
            c.dc_table = usize::from(tables >> 4);
            c.ac_table = usize::from(tables & 15);
            if c.dc_table > 3 || c.ac_table > 3 {
                return None;
            }
        }
        Some(())
    }

    fn decode(&self) -> Option<RgbImage> {
        if self.components.is_empty()
            || self.adobe_transform == Some(0) && self.components.len() == 3
        {
            return None;
        }
        let h_max = self.components.iter().map(|c| c.h).max()?;
        let v_max = self.components.iter().map(|c| c.v).max()?;
        let single = self.components.len() == 1;
        // Block grid of the output (one pixel per luma block).
        let out_w = self.width.div_ceil(8);
        let out_h = self.height.div_ceil(8);
        let (mcus_x, mcus_y) = if single {
            (out_w, out_h)
        } else {
            (
                self.width.div_ceil(8 * h_max),
                self.height.div_ceil(8 * v_max),
            )
        };
        let mut planes: Vec<Vec<u8>> = Vec::with_capacity(self.components.len());
        let mut plane_w = Vec::with_capacity(self.components.len());
        for c in &self.components {
            let (bw, bh) = if single {
                (out_w, out_h)
            } else {
                (mcus_x * c.h, mcus_y * c.v)
            };
            planes.push(vec![0u8; bw * bh]);
            plane_w.push(bw);
        }
        let mut tables = Vec::with_capacity(self.components.len());
        for c in &self.components {
            tables.push((
                self.dc_tables[c.dc_table].as_ref()?,
                self.ac_tables[c.ac_table].as_ref()?,
                i32::from(self.quant_dc[c.quant]),
            ));
        }
        let mut bits = Bits::new(self.scan);
        let mut predictors = vec![0i32; self.components.len()];
        let mut left = self.restart_interval;
        for my in 0..mcus_y {
            for mx in 0..mcus_x {
                if self.restart_interval > 0 {
                    if left == 0 {
                        bits.restart()?;
                        predictors.fill(0);
                        left = self.restart_interval;
                    }
                    left -= 1;
                }
                for (ci, c) in self.components.iter().enumerate() {
                    let (dc, ac, q) = tables[ci];
                    let (bh, bv) = if single { (1, 1) } else { (c.h, c.v) };
                    for by in 0..bv {
                        for bx in 0..bh {
                            let size = bits.decode(dc)?;
                            let diff = bits.receive_extend(size)?;
                            predictors[ci] += diff;
                            skip_ac(&mut bits, ac)?;
                            // IDCT of a lone DC: every pixel is DC / 8 + 128.
                            let value = (predictors[ci] * q + 1024) >> 3;
                            let x = mx * bh + bx;
                            let y = my * bv + by;
                            planes[ci][y * plane_w[ci] + x] =
                                u8::try_from(value.clamp(0, 255)).ok()?;
                        }
                    }
                }
            }
        }
        let mut out = RgbImage::new(u32::try_from(out_w).ok()?, u32::try_from(out_h).ok()?);
        if single {
            for (i, p) in out.pixels_mut().enumerate() {
                let l = planes[0][(i / out_w) * plane_w[0] + i % out_w];
                p.0 = [l, l, l];
            }
            return Some(out);
        }
        // Chroma planes have fewer blocks when subsampled: nearest block.
        let rgb = self.adobe_transform == Some(0);
        for (i, p) in out.pixels_mut().enumerate() {
            let (x, y) = (i % out_w, i / out_w);
            let sample = |ci: usize| {
                let c = &self.components[ci];
                planes[ci][(y * c.v / v_max) * plane_w[ci] + x * c.h / h_max]
            };
            let (a, b, cc) = (sample(0), sample(1), sample(2));
            p.0 = if rgb { [a, b, cc] } else { ycbcr(a, b, cc) };
        }
        Some(out)
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

/// Skips the 63 AC coefficients of one block.
#[inline]
fn skip_ac(bits: &mut Bits<'_>, table: &Huffman) -> Option<()> {
    let mut k = 1;
    while k < 64 {
        let (total, rs) = table.skip[bits.peek(LOOKAHEAD) as usize];
        if total > 0 {
            bits.consume(u32::from(total));
            let (run, size) = (rs >> 4, rs & 15);
            if size == 0 {
                if run != 15 {
                    return Some(());
                }
                k += 16;
            } else {
                k += usize::from(run) + 1;
            }
            continue;
        }
        let rs = bits.decode(table)?;
        let (run, size) = (rs >> 4, rs & 15);
        if size == 0 {
            if run != 15 {
                return Some(()); // end of block
            }
            k += 16;
        } else {
            bits.skip(u32::from(size))?;
            k += usize::from(run) + 1;
        }
    }
    Some(())
}

/// The entropy-coded data, with 0xFF00 stuffing removed on the fly.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    buffer: u64,
    count: u32,
    /// A marker was reached: only zero bits follow.
    marker: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            buffer: 0,
            count: 0,
            marker: false,
        }
    }

    #[inline]
    fn fill(&mut self) {
        // Fast path: the next 8 bytes hold no 0xFF, so no stuffing or marker.
        if !self.marker
            && self.count <= 56
            && let Some(chunk) = self.data.get(self.pos..self.pos + 8)
        {
            let word = u64::from_be_bytes(chunk.try_into().unwrap_or([0xFF; 8]));
            let inverted = !word;
            let has_ff =
                inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080
                    != 0;
            if !has_ff {
                let take = (64 - self.count) / 8;
                let bits = take * 8;
                let top = if bits == 64 {
                    word
                } else {
                    word >> (64 - bits)
                };
                self.buffer |= if bits == 64 {
                    top
                } else {
                    top << (64 - self.count - bits)
                };
                self.pos += take as usize;
                self.count += bits;
                return;
            }
        }
        while self.count <= 56 {
            let mut byte = 0u8;
            if !self.marker {
                match self.data.get(self.pos) {
                    Some(0xFF) => match self.data.get(self.pos + 1) {
                        Some(0x00) => {
                            byte = 0xFF;
                            self.pos += 2;
                        }
                        _ => self.marker = true,
                    },
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                    None => self.marker = true,
                }
            }
            self.buffer |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    #[inline]
    fn peek(&mut self, n: u32) -> u32 {
        if self.count < n {
            self.fill();
        }
        u32::try_from(self.buffer >> (64 - n)).unwrap_or(0)
    }

    /// Drops `n` bits that `peek` has made available.
    #[inline]
    fn consume(&mut self, n: u32) {
        self.buffer <<= n;
        self.count -= n;
    }

    #[inline]
    fn skip(&mut self, n: u32) -> Option<()> {
        if self.count < n {
            self.fill();
        }
        self.buffer <<= n;
        self.count = self.count.checked_sub(n)?;
        Some(())
    }

    #[inline]
    fn decode(&mut self, table: &Huffman) -> Option<u8> {
        let look = self.peek(LOOKAHEAD) as usize;
        let (symbol, len) = table.fast[look];
        if len > 0 {
            self.skip(u32::from(len))?;
            return Some(symbol);
        }
        // Longer codes: canonical decoding, one bit at a time past 9.
        let code = i32::try_from(self.peek(16)).ok()?;
        for len in (LOOKAHEAD as usize + 1)..=16 {
            let c = code >> (16 - len);
            if c <= table.max_code[len] {
                self.skip(u32::try_from(len).ok()?)?;
                let index = usize::try_from(table.val_offset[len] + c).ok()?;
                return table.values.get(index).copied();
            }
        }
        None
    }

    /// The value of a DC difference of `size` bits.
    #[inline]
    fn receive_extend(&mut self, size: u8) -> Option<i32> {
        if size == 0 {
            return Some(0);
        }
        if size > 16 {
            return None;
        }
        let n = u32::from(size);
        let v = i32::try_from(self.peek(n)).ok()?;
        self.skip(n)?;
        Some(if v < (1 << (n - 1)) {
            v - (1 << n) + 1
        } else {
            v
        })
    }

    /// At a restart interval: drop the partial byte and the `RSTn` marker.
    fn restart(&mut self) -> Option<()> {
        self.buffer = 0;
        self.count = 0;
        self.marker = false;
        while self.data.get(self.pos) == Some(&0xFF) {
            self.pos += 1;
        }
        match self.data.get(self.pos) {
            Some(0xD0..=0xD7) => {
                self.pos += 1;
                Some(())
            }
            _ => None,
        }
    }
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

    /// The 1/8 image agrees with a full decode averaged over 8×8 blocks.
    #[test]
    fn matches_block_means_of_a_full_decode() {
        let (_, bytes) = jpeg(203, 131, encode_q90);
        let eighth = decode_eighth(&bytes).unwrap();
        assert_eq!(eighth.dimensions(), (26, 17));
        let full = image::load_from_memory(&bytes).unwrap().into_rgb8();
        let mut worst = 0i32;
        for (bx, by, p) in eighth.enumerate_pixels() {
            let (mut sum, mut n) = ([0i32; 3], 0);
            for y in by * 8..(by * 8 + 8).min(full.height()) {
                for x in bx * 8..(bx * 8 + 8).min(full.width()) {
                    let q = full.get_pixel(x, y);
                    for (total, value) in sum.iter_mut().zip(q.0) {
                        *total += i32::from(value);
                    }
                    n += 1;
                }
            }
            // Edge blocks are padded by the encoder; compare inner ones.
            if (bx + 1) * 8 <= full.width() && (by + 1) * 8 <= full.height() {
                for (total, value) in sum.iter().zip(p.0) {
                    worst = worst.max((total / n - i32::from(value)).abs());
                }
            }
        }
        assert!(worst <= 12, "worst channel difference {worst}");
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
