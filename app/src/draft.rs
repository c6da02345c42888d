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
//! Anything else (progressive, arithmetic coding, 12-bit, CMYK) returns
//! `None`, and the caller decodes it the general way.

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
    /// Quantization tables in zigzag order.
    quant: [[u16; 64]; 4],
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
    /// For AC use, indexed by the next `MULTI_BITS` bits: as many whole AC
    /// coefficients (code and extra bits) as fit, packed by [`Multi`].
    multi: Vec<Multi>,
    /// Indexed by the next `LOOKAHEAD` bits: (bits to consume = code + extra
    /// bits, the symbol, the value the extra bits encode); 0 bits = slow path.
    valued: Vec<Valued>,
    /// Per code length 1..=16: the largest code, and the offset into `values`.
    max_code: [i32; 18],
    val_offset: [i32; 18],
    values: Vec<u8>,
}

const LOOKAHEAD: u32 = 11;
const MULTI_BITS: u32 = 14;

/// Several AC coefficients skipped at once, packed in 16 bits so the table
/// stays in L1: the bits they take (low 5 bits; 0 = the first coefficient is
/// longer than `MULTI_BITS`), whether the last is end-of-block (bit 5), and
/// how far they move the position in the block (bits 8..), counting
/// end-of-block as 1, so that `k + reach <= 64` says every coefficient in the
/// entry still belongs to this block.
#[derive(Clone, Copy, Default)]
struct Multi(u16);

impl Multi {
    const END_OF_BLOCK: u16 = 1 << 5;

    fn new(bits: u32, reach: u32, end_of_block: bool) -> Self {
        let packed = bits | reach << 8 | if end_of_block { 1 << 5 } else { 0 };
        Self(u16::try_from(packed).unwrap_or(0))
    }

    #[inline]
    fn bits(self) -> u32 {
        u32::from(self.0 & 31)
    }

    #[inline]
    fn reach(self) -> usize {
        usize::from(self.0 >> 8)
    }

    #[inline]
    fn end_of_block(self) -> bool {
        self.0 & Self::END_OF_BLOCK != 0
    }
}

impl Huffman {
    /// `ac` builds the table for AC coefficients, else for DC differences.
    fn new(counts: &[u8; 16], values: &[u8], ac: bool) -> Option<Self> {
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
        let multi = if ac {
            (0..1u32 << MULTI_BITS)
                .map(|window| multi_entry(&fast, window))
                .collect()
        } else {
            Vec::new()
        };
        let with_values = (0..1u32 << LOOKAHEAD)
            .map(|window| valued_entry(&fast, window))
            .collect();
        Some(Self {
            fast,
            multi,
            valued: with_values,
            max_code,
            val_offset,
            values: values.to_vec(),
        })
    }
}

/// A symbol and the value of its extra bits (a DC difference, or an AC
/// coefficient), decoded in one lookup.
#[derive(Clone, Copy, Default)]
struct Valued {
    /// Code and extra bits; 0 = longer than `LOOKAHEAD`.
    bits: u8,
    symbol: u8,
    value: i16,
}

/// The symbol and value at the top of a `LOOKAHEAD`-bit window.
fn valued_entry(fast: &[(u8, u8)], window: u32) -> Valued {
    let (symbol, len) = fast[window as usize];
    let size = symbol & 15;
    let total = u32::from(len) + u32::from(size);
    if len == 0 || total > LOOKAHEAD {
        return Valued::default();
    }
    let extra = (window >> (LOOKAHEAD - total)) & ((1 << size) - 1);
    let value = extend(i32::try_from(extra).unwrap_or(0), u32::from(size));
    Valued {
        bits: u8::try_from(total).unwrap_or(0),
        symbol,
        value: i16::try_from(value).unwrap_or(0),
    }
}

/// JPEG's EXTEND: `size` raw bits to a signed value.
#[inline]
fn extend(v: i32, size: u32) -> i32 {
    if size == 0 {
        0
    } else if v < (1 << (size - 1)) {
        v - (1 << size) + 1
    } else {
        v
    }
}

/// Greedily decodes whole AC coefficients from the top of a `MULTI_BITS`-bit window.
fn multi_entry(fast: &[(u8, u8)], window: u32) -> Multi {
    let (mut used, mut reach) = (0u32, 0u32);
    loop {
        let rest = (window << used) & ((1 << MULTI_BITS) - 1);
        let (symbol, len) = fast[(rest >> (MULTI_BITS - LOOKAHEAD)) as usize];
        let total = u32::from(len) + u32::from(symbol & 15);
        let (run, size) = (u32::from(symbol >> 4), symbol & 15);
        let advance = match (run, size) {
            (_, 1..) => run + 1,
            (15, 0) => 16,
            _ => 1,
        };
        if len == 0 || used + total > MULTI_BITS || reach + advance > 64 {
            return Multi::new(used, reach, false);
        }
        used += total;
        reach += advance;
        if size == 0 && run != 15 {
            return Multi::new(used, reach, true);
        }
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
        let mut frame = Frame {
            width: 0,
            height: 0,
            components: Vec::new(),
            quant: [[0; 64]; 4],
            dc_tables: [None, None, None, None],
            ac_tables: [None, None, None, None],
            restart_interval: 0,
            scan: &[],
            adobe_transform: None,
        };
        for segment in crate::jpeg::segments(data) {
            let body = segment.body;
            match segment.marker {
                // Baseline and extended sequential Huffman, 8-bit.
                0xC0 | 0xC1 => frame.read_frame_header(body)?,
                // Progressive, lossless, arithmetic: not for this decoder.
                0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
                0xC4 => frame.read_huffman_tables(body)?,
                0xDB => frame.read_quant_tables(body)?,
                0xDD => frame.restart_interval = be16(body, 0)?,
                // Adobe APP14: its transform flag tells RGB from YCbCr.
                0xEE if body.starts_with(b"Adobe") => frame.adobe_transform = body.get(11).copied(),
                crate::jpeg::SOS => {
                    frame.read_scan_header(body)?;
                    frame.scan = segment.rest;
                    return Some(frame);
                }
                _ => {}
            }
        }
        None
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
            let table = Huffman::new(&counts, values, class == 1)?;
            match (class, id) {
                (0, 0..=3) => self.dc_tables[id] = Some(table),
                (1, 0..=3) => self.ac_tables[id] = Some(table),
                _ => return None,
            }
            at += 17 + total;
        }
        Some(())
    }

    fn read_quant_tables(&mut self, body: &[u8]) -> Option<()> {
        let mut at = 0;
        while at < body.len() {
            let precision = body[at] >> 4;
            let id = usize::from(body[at] & 15);
            let table = self.quant.get_mut(id)?;
            for (k, q) in table.iter_mut().enumerate() {
                *q = if precision == 0 {
                    u16::from(*body.get(at + 1 + k)?)
                } else {
                    u16::try_from(be16(body, at + 1 + 2 * k)?).ok()?
                };
            }
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
        // Output: one pixel per 8×8 block of the fullest component.
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
        // Every plane is at output resolution: a subsampled component's
        // block gives 2 (or 2×2) pixels, as libjpeg's scaled IDCT does.
        let plane_w = if single { out_w } else { mcus_x * h_max };
        let plane_h = if single { out_h } else { mcus_y * v_max };
        let mut planes = vec![vec![0u8; plane_w * plane_h]; self.components.len()];
        let mut decoders = Vec::with_capacity(self.components.len());
        for c in &self.components {
            let (h, v) = if single { (1, 1) } else { (c.h, c.v) };
            decoders.push(BlockDecoder {
                dc: self.dc_tables[c.dc_table].as_ref()?,
                ac: self.ac_tables[c.ac_table].as_ref()?,
                quant: &self.quant[c.quant],
                blocks: (h, v),
                reduced: Reduced::new(h_max / h, v_max / v),
                predictor: 0,
            });
        }
        let mut bits = Bits::new(self.scan);
        let mut left = self.restart_interval;
        for my in 0..mcus_y {
            for mx in 0..mcus_x {
                if self.restart_interval > 0 {
                    if left == 0 {
                        bits.restart()?;
                        for d in &mut decoders {
                            d.predictor = 0;
                        }
                        left = self.restart_interval;
                    }
                    left -= 1;
                }
                for (d, plane) in decoders.iter_mut().zip(&mut planes) {
                    d.decode_mcu(&mut bits, plane, plane_w, mx, my)?;
                }
            }
        }
        let mut out = RgbImage::new(u32::try_from(out_w).ok()?, u32::try_from(out_h).ok()?);
        let rgb = self.adobe_transform == Some(0);
        for (y, row) in out.rows_mut().enumerate() {
            let start = y * plane_w;
            let lines = planes
                .iter()
                .map(|plane| plane.get(start..start + out_w))
                .collect::<Option<Vec<_>>>()?;
            for (x, p) in row.enumerate() {
                p.0 = match lines.as_slice() {
                    [l] => [l[x]; 3],
                    [a, b, c] if rgb => [a[x], b[x], c[x]],
                    [a, b, c] => ycbcr(a[x], b[x], c[x]),
                    _ => return None,
                };
            }
        }
        Some(out)
    }
}

/// Decodes one component's blocks of an MCU into its plane.
struct BlockDecoder<'a> {
    dc: &'a Huffman,
    ac: &'a Huffman,
    quant: &'a [u16; 64],
    /// Blocks per MCU across and down.
    blocks: (usize, usize),
    /// For a subsampled component: how its coefficients give several pixels.
    reduced: Option<Reduced>,
    predictor: i32,
}

impl BlockDecoder<'_> {
    #[inline]
    fn decode_mcu(
        &mut self,
        bits: &mut Bits<'_>,
        plane: &mut [u8],
        plane_w: usize,
        mx: usize,
        my: usize,
    ) -> Option<()> {
        let (bh, bv) = self.blocks;
        for by in 0..bv {
            for bx in 0..bh {
                let entry = self.dc.valued[bits.peek(LOOKAHEAD) as usize];
                self.predictor += if entry.bits > 0 {
                    bits.consume(u32::from(entry.bits));
                    i32::from(entry.value)
                } else {
                    let size = bits.decode(self.dc)?;
                    bits.receive_extend(size)?
                };
                let dc = self.predictor * i32::from(self.quant[0]);
                if let Some(reduced) = &self.reduced {
                    let (nx, ny) = (reduced.nx, reduced.ny);
                    let samples = reduced.block(bits, self.ac, self.quant, dc)?;
                    let (x0, y0) = ((mx * bh + bx) * nx, (my * bv + by) * ny);
                    for (s, value) in samples.iter().take(nx * ny).enumerate() {
                        *plane.get_mut((y0 + s / nx) * plane_w + x0 + s % nx)? = *value;
                    }
                } else {
                    skip_ac(bits, self.ac)?;
                    // IDCT of a lone DC: every pixel is DC / 8 + 128.
                    let value = (dc + 1024) >> 3;
                    let at = (my * bv + by) * plane_w + mx * bh + bx;
                    *plane.get_mut(at)? = u8::try_from(value.clamp(0, 255)).ok()?;
                }
            }
        }
        Some(())
    }
}

/// The means of the halves (or quarters) of an 8×8 block, straight from its
/// coefficients: what libjpeg's reduced IDCT gives a subsampled component at
/// 1/8 scale, so that its pixels line up with the full component's.
///
/// The mean of `cos((2x+1)uπ/16)` over one half of the block is zero for
/// even `u > 0`, so only `u ∈ {0, 1, 3, 5, 7}` (and likewise `v`) count.
struct Reduced {
    nx: usize,
    ny: usize,
    /// Per zigzag position: the weight of the dequantized coefficient in each
    /// output pixel (row-major, `nx` × `ny`).
    weights: [[f32; 4]; 64],
}

/// Zigzag position → natural (row-major) position in the 8×8 block.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

impl Reduced {
    /// `None` for a component at full resolution (`nx == ny == 1`).
    fn new(nx: usize, ny: usize) -> Option<Self> {
        if nx * ny == 1 {
            return None;
        }
        // Mean over the pixels of part `part` (of `parts` equal parts) of the
        // 1-D basis function `u`, with the IDCT's C(u) factor.
        let mean = |u: u8, part: usize, parts: usize| -> f32 {
            let width = 8 / u8::try_from(parts).unwrap_or(1);
            let first = u8::try_from(part).unwrap_or(0) * width;
            let sum: f64 = (first..first + width)
                .map(|x| (f64::from(2 * x + 1) * f64::from(u) * std::f64::consts::PI / 16.0).cos())
                .sum();
            let c = if u == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            };
            #[allow(clippy::cast_possible_truncation)]
            let weight = (c * sum / f64::from(width)) as f32;
            weight
        };
        let mut weights = [[0f32; 4]; 64];
        for (k, &natural) in ZIGZAG.iter().enumerate() {
            let (v, u) = (natural / 8, natural % 8);
            for sy in 0..ny {
                for sx in 0..nx {
                    weights[k][sy * nx + sx] = mean(u, sx, nx) * mean(v, sy, ny) / 4.0;
                }
            }
        }
        Some(Self { nx, ny, weights })
    }

    /// Decodes a block's AC coefficients and returns its `nx` × `ny` pixels.
    #[inline]
    fn block(
        &self,
        bits: &mut Bits<'_>,
        ac: &Huffman,
        quant: &[u16; 64],
        dc: i32,
    ) -> Option<[u8; 4]> {
        #[allow(clippy::cast_precision_loss)]
        let dc = dc as f32;
        let mut sums = self.weights[0].map(|w| w * dc);
        let mut k = 1;
        while k < 64 {
            let entry = ac.valued[bits.peek(LOOKAHEAD) as usize];
            let (symbol, value) = if entry.bits > 0 {
                bits.consume(u32::from(entry.bits));
                (entry.symbol, i32::from(entry.value))
            } else {
                let symbol = bits.decode(ac)?;
                (symbol, bits.receive_extend(symbol & 15)?)
            };
            let (run, size) = (usize::from(symbol >> 4), symbol & 15);
            if size == 0 {
                if run != 15 {
                    break; // end of block
                }
                k += 16;
                continue;
            }
            k += run;
            let weights = self.weights.get(k)?;
            #[allow(clippy::cast_precision_loss)]
            let coefficient = (value * i32::from(quant[k])) as f32;
            for (sum, w) in sums.iter_mut().zip(weights) {
                *sum += coefficient * w;
            }
            k += 1;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(sums.map(|s| (s + 128.5).clamp(0.0, 255.0) as u8))
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
        let entry = table.multi[bits.peek(MULTI_BITS) as usize];
        if entry.bits() > 0 && k + entry.reach() <= 64 {
            bits.consume(entry.bits());
            if entry.end_of_block() {
                return Some(());
            }
            k += entry.reach();
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
        Some(extend(v, n))
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
        let bytes = include_bytes!("../../tests/browser/fixtures/seoul.jpg");
        let (worst, mean) = block_mean_differences(bytes);
        assert!(
            worst <= 12 && mean <= 1.0,
            "mean channel difference {mean:.2}, worst {worst}"
        );
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
