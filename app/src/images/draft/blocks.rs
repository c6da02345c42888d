//! Entropy decoding of blocks, as far as a 1/8-scale image needs: each
//! block's DC difference, and for subsampled components the AC part of their
//! 2×2 (or 2×1) pixels. DC predictors are applied later, in scan order, so a
//! run of blocks can be decoded without knowing what came before it.

use super::bits::Bits;
use super::huffman::{Huffman, LOOKAHEAD, MULTI_BITS};

/// One block position within an MCU: its component and how to decode it.
#[derive(Clone)]
pub(super) struct Slot<'a> {
    /// Index into the frame's components (and the output planes).
    pub(super) component: usize,
    /// Block column and row within the MCU.
    pub(super) x: usize,
    pub(super) y: usize,
    pub(super) dc: &'a Huffman,
    pub(super) ac: &'a Huffman,
    /// Quantization table, zigzag order.
    pub(super) quant: &'a [u16; 64],
    /// For a subsampled component: how its coefficients give several pixels.
    pub(super) reduced: Option<Reduced>,
}

/// Entropy-decoded blocks in scan order.
#[derive(Default)]
pub(super) struct Blocks {
    /// Every block's DC difference (before prediction, not dequantized).
    pub(super) diffs: Vec<i16>,
    /// For each block of a subsampled component, in order: the AC part of
    /// its pixels.
    pub(super) ac_sums: Vec<[f32; 4]>,
}

impl Blocks {
    pub(super) fn with_capacity(blocks: usize) -> Self {
        Self {
            diffs: Vec::with_capacity(blocks),
            ac_sums: Vec::new(),
        }
    }

    /// Decodes the next block, which sits at `slot` in its MCU.
    #[inline]
    pub(super) fn decode(&mut self, bits: &mut Bits<'_>, slot: &Slot<'_>) -> Option<()> {
        let entry = slot.dc.valued[bits.peek(LOOKAHEAD) as usize];
        let diff = if entry.bits > 0 {
            bits.consume(u32::from(entry.bits));
            entry.value
        } else {
            let size = bits.decode(slot.dc)?;
            i16::try_from(bits.receive_extend(size)?).ok()?
        };
        self.diffs.push(diff);
        match &slot.reduced {
            Some(reduced) => self
                .ac_sums
                .push(reduced.ac_sums(bits, slot.ac, slot.quant)?),
            None => skip_ac(bits, slot.ac)?,
        }
        if bits.overrun() {
            // Decoded in part from zeros past the end: not the file's block.
            self.diffs.pop();
            if slot.reduced.is_some() {
                self.ac_sums.pop();
            }
            return None;
        }
        Some(())
    }
}

/// Skips the 63 AC coefficients of one block.
#[inline]
pub(super) fn skip_ac(bits: &mut Bits<'_>, table: &Huffman) -> Option<()> {
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

/// The means of the halves (or quarters) of an 8×8 block, straight from its
/// coefficients: what libjpeg's reduced IDCT gives a subsampled component at
/// 1/8 scale, so that its pixels line up with the full component's.
///
/// The mean of `cos((2x+1)uπ/16)` over one half of the block is zero for
/// even `u > 0`, so only `u ∈ {0, 1, 3, 5, 7}` (and likewise `v`) count.
#[derive(Clone)]
pub(super) struct Reduced {
    pub(super) nx: usize,
    pub(super) ny: usize,
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
    pub(super) fn new(nx: usize, ny: usize) -> Option<Self> {
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

    /// Decodes a block's AC coefficients: their part of each of its
    /// `nx` × `ny` pixels (the DC part is added by [`Reduced::pixels`] once
    /// the DC predictor is known).
    #[inline]
    pub(super) fn ac_sums(
        &self,
        bits: &mut Bits<'_>,
        ac: &Huffman,
        quant: &[u16; 64],
    ) -> Option<[f32; 4]> {
        let mut sums = [0f32; 4];
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
        Some(sums)
    }

    /// The block's pixels from its AC sums and its dequantized DC.
    #[inline]
    pub(super) fn pixels(&self, sums: &[f32; 4], dc: i32) -> [u8; 4] {
        #[allow(clippy::cast_precision_loss)]
        let dc = dc as f32;
        let mut out = [0u8; 4];
        for ((o, s), w) in out.iter_mut().zip(sums).zip(self.weights[0]) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let value = (s + w * dc + 128.5).clamp(0.0, 255.0) as u8;
            *o = value;
        }
        out
    }
}
