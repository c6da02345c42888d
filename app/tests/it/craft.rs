//! Files made byte by byte for the image tests: flat JPEGs of any size
//! (baseline, progressive, CMYK) and PNGs of zeros with a hand-made deflate
//! stream, so that a 60-megapixel file costs milliseconds to write, and
//! bombs whose headers lie about their data.

/// Writes bits MSB first with JPEG byte stuffing.
struct JpegBits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl JpegBits {
    fn new() -> Self {
        Self {
            out: Vec::new(),
            acc: 0,
            n: 0,
        }
    }

    fn put(&mut self, value: u32, bits: u32) {
        for i in (0..bits).rev() {
            self.acc = self.acc << 1 | (value >> i & 1);
            self.n += 1;
            if self.n == 8 {
                let byte = u8::try_from(self.acc).unwrap();
                self.out.push(byte);
                if byte == 0xFF {
                    self.out.push(0);
                }
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    /// Pads the last byte with ones.
    fn finish(mut self) -> Vec<u8> {
        while self.n != 0 {
            self.put(1, 1);
        }
        self.out
    }
}

fn segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&u16::try_from(body.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(body);
}

/// How a flat test JPEG is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Baseline,
    Progressive,
}

/// A mid-grey `width` × `height` JPEG with the given sampling factors (one
/// pair per component; four components make an Adobe CMYK file). Every
/// block is a zero DC difference and an immediate end of block, so the file
/// is small and quick to write at any size, and decoders still allocate for
/// every pixel.
pub fn flat_jpeg(width: u16, height: u16, sampling: &[(u8, u8)], coding: Coding) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    if sampling.len() == 4 {
        // Adobe APP14, transform 0: CMYK stored as is.
        segment(
            &mut out,
            0xEE,
            &[b'A', b'd', b'o', b'b', b'e', 0, 100, 0, 0, 0, 0, 0],
        );
    }
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[1u8; 64]);
    segment(&mut out, 0xDB, &dqt);
    let mut sof = vec![8];
    sof.extend_from_slice(&height.to_be_bytes());
    sof.extend_from_slice(&width.to_be_bytes());
    sof.push(u8::try_from(sampling.len()).unwrap());
    for (i, (h, v)) in sampling.iter().enumerate() {
        sof.extend_from_slice(&[u8::try_from(i + 1).unwrap(), h << 4 | v, 0]);
    }
    let marker = if coding == Coding::Progressive {
        0xC2
    } else {
        0xC0
    };
    segment(&mut out, marker, &sof);
    // DC table 0: one symbol (size 0), code `0`.
    let mut dht = vec![0x00, 1];
    dht.extend_from_slice(&[0; 15]);
    dht.push(0);
    // AC table 0: end of block (0x00) and EOBRUN symbols 0x10..=0xE0, four bits each.
    dht.push(0x10);
    dht.extend_from_slice(&[0, 0, 0, 15]);
    dht.extend_from_slice(&[0; 12]);
    dht.extend((0..15u8).map(|n| n << 4));
    segment(&mut out, 0xC4, &dht);

    let h_max = usize::from(sampling.iter().map(|s| s.0).max().unwrap());
    let v_max = usize::from(sampling.iter().map(|s| s.1).max().unwrap());
    let (w, h) = (usize::from(width), usize::from(height));
    let mcus = if sampling.len() == 1 {
        w.div_ceil(8) * h.div_ceil(8)
    } else {
        w.div_ceil(8 * h_max) * h.div_ceil(8 * v_max)
    };
    let per_mcu: usize = if sampling.len() == 1 {
        1
    } else {
        sampling
            .iter()
            .map(|(h, v)| usize::from(*h) * usize::from(*v))
            .sum()
    };
    let scan_header = |components: &[usize], ss: u8, se: u8| {
        let mut sos = vec![u8::try_from(components.len()).unwrap()];
        for &c in components {
            sos.extend_from_slice(&[u8::try_from(c + 1).unwrap(), 0x00]);
        }
        sos.extend_from_slice(&[ss, se, 0]);
        sos
    };
    let all: Vec<usize> = (0..sampling.len()).collect();
    match coding {
        Coding::Baseline => {
            segment(&mut out, 0xDA, &scan_header(&all, 0, 63));
            let mut bits = JpegBits::new();
            for _ in 0..mcus * per_mcu {
                bits.put(0, 1); // DC: size 0
                bits.put(0, 4); // AC: end of block
            }
            out.extend(bits.finish());
        }
        Coding::Progressive => {
            segment(&mut out, 0xDA, &scan_header(&all, 0, 0));
            let mut bits = JpegBits::new();
            for _ in 0..mcus * per_mcu {
                bits.put(0, 1);
            }
            out.extend(bits.finish());
            // One AC scan per component over its own blocks: runs of
            // end-of-band (EOBRUN) of up to 32,767 blocks each.
            for (c, (ch, cv)) in sampling.iter().enumerate() {
                let cw = (w * usize::from(*ch)).div_ceil(h_max);
                let chh = (h * usize::from(*cv)).div_ceil(v_max);
                let mut left = cw.div_ceil(8) * chh.div_ceil(8);
                segment(&mut out, 0xDA, &scan_header(&[c], 1, 63));
                let mut bits = JpegBits::new();
                while left > 0 {
                    let run = left.min(32_767);
                    let n = usize::BITS - 1 - run.leading_zeros();
                    bits.put(n, 4);
                    bits.put(u32::try_from(run - (1 << n)).unwrap(), n);
                    left -= run;
                }
                out.extend(bits.finish());
            }
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// CRC-32 as PNG chunks use it.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for part in parts {
        for &byte in *part {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    crc >> 1 ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: [u8; 4], body: &[u8]) {
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&kind);
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32(&[&kind, body]).to_be_bytes());
}

/// Writes bits LSB first, as deflate does.
struct DeflateBits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl DeflateBits {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(u8::try_from(self.acc & 0xFF).unwrap());
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A fixed-Huffman code, which deflate sends most significant bit first.
    fn code(&mut self, code: u32, bits: u32) {
        let reversed = code.reverse_bits() >> (32 - bits);
        self.put(reversed, bits);
    }
}

/// A zlib stream of `n` zero bytes: one fixed-Huffman block of a literal
/// zero and then copies of 258 bytes at distance 1 (13 bits each).
fn zlib_zeros(n: u64) -> Vec<u8> {
    let mut bits = DeflateBits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // last block
    bits.put(1, 2); // fixed Huffman
    let literal_zero = |bits: &mut DeflateBits| bits.code(0x30, 8);
    let mut left = n;
    if left > 0 {
        literal_zero(&mut bits);
        left -= 1;
    }
    while left >= 258 {
        bits.code(0xC5, 8); // length code 285: 258 bytes
        bits.code(0, 5); // distance code 0: 1
        left -= 258;
    }
    for _ in 0..left {
        literal_zero(&mut bits);
    }
    bits.code(0, 7); // end of block
    if bits.n > 0 {
        bits.put(0, 8 - bits.n);
    }
    let mut out = bits.out;
    let adler = (n % 65_521) << 16 | 1;
    out.extend_from_slice(&u32::try_from(adler).unwrap().to_be_bytes());
    out
}

/// PNG colour types.
pub const RGB: u8 = 2;
pub const RGBA: u8 = 6;

/// A black (all-zero) `width` × `height` PNG, with an EXIF orientation if
/// given. `data: false` leaves the image data out: a bomb's header alone.
pub fn zero_png(
    width: u32,
    height: u32,
    bit_depth: u8,
    color: u8,
    orientation: Option<u16>,
    data: bool,
) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth, color, 0, 0, 0]);
    chunk(&mut out, *b"IHDR", &ihdr);
    if let Some(orientation) = orientation {
        chunk(&mut out, *b"eXIf", &exif_orientation(orientation));
    }
    if data {
        let channels = if color == RGBA { 4 } else { 3 };
        let row = 1 + u64::from(width) * channels * u64::from(bit_depth / 8);
        let stream = zlib_zeros(row * u64::from(height));
        for part in stream.chunks(1 << 20) {
            chunk(&mut out, *b"IDAT", part);
        }
    } else {
        chunk(&mut out, *b"IDAT", &zlib_zeros(1 << 16)[..64]);
    }
    chunk(&mut out, *b"IEND", &[]);
    out
}

/// A little-endian TIFF holding one tag: Orientation.
pub fn exif_orientation(orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff
}
