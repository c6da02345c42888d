//! A JPEG's marker segments, and its header read once: the frame, the tables
//! and the first scan. That one reading is what the pixel and memory limits
//! are checked against and what the decoders use, so no two parsers can
//! disagree about which frame a file holds.

use super::draft::huffman::Huffman;

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum JpegError {
    #[error("its header is damaged ({0}); it may be truncated or not really a JPEG")]
    Damaged(&'static str),
    #[error(
        "it holds more than one frame (a second start-of-frame marker); save it again as a plain JPEG"
    )]
    SecondFrame,
    #[error(
        "it uses a kind of JPEG this album does not read ({0}); save it again as an ordinary JPEG"
    )]
    Unsupported(&'static str),
    #[error("its Huffman table {class} {id} is invalid ({why}); the file is damaged")]
    Huffman {
        class: &'static str,
        id: u8,
        why: &'static str,
    },
    #[error("its quantisation table {id} is invalid ({why}); the file is damaged")]
    Quantisation { id: u8, why: &'static str },
}

/// One marker segment: its marker byte, its body (after the length), and the
/// bytes that follow it (for start-of-scan: the entropy-coded data).
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub marker: u8,
    pub body: &'a [u8],
    pub rest: &'a [u8],
}

/// Start of scan: the last segment [`segments`] yields.
pub const SOS: u8 = 0xDA;

/// The segments of `data` up to the first start-of-scan. Stops early, without
/// error, at anything that is not a well-formed segment; callers decide
/// whether what they found is enough.
pub fn segments(data: &[u8]) -> impl Iterator<Item = Segment<'_>> {
    let start = if data.starts_with(&[0xFF, 0xD8]) {
        2
    } else {
        data.len()
    };
    walk(data, start, false)
}

/// Every segment of the file, including those after (and between) scans;
/// entropy-coded data is skipped by looking for the next marker that is not
/// stuffing or a restart.
pub fn all_segments(data: &[u8]) -> impl Iterator<Item = Segment<'_>> {
    let start = if data.starts_with(&[0xFF, 0xD8]) {
        2
    } else {
        data.len()
    };
    walk(data, start, true)
}

fn walk(data: &[u8], mut pos: usize, past_scans: bool) -> impl Iterator<Item = Segment<'_>> {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        loop {
            // Markers may be padded with extra 0xFF bytes.
            while data.get(pos..pos + 2) == Some(&[0xFF, 0xFF]) {
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
            // End of image.
            if marker == 0xD9 {
                return None;
            }
            let len = usize::from(u16::from_be_bytes([
                *data.get(pos + 2)?,
                *data.get(pos + 3)?,
            ]));
            if len < 2 {
                return None;
            }
            let body = data.get(pos + 4..pos + 2 + len)?;
            let rest = data.get(pos + 2 + len..)?;
            pos += 2 + len;
            if marker == SOS {
                if past_scans {
                    pos += next_marker(rest);
                } else {
                    done = true;
                }
            }
            return Some(Segment { marker, body, rest });
        }
    })
}

/// The offset in `scan` of the first marker that is neither stuffing nor a
/// restart (or the end).
fn next_marker(scan: &[u8]) -> usize {
    let mut at = 0;
    while let Some(found) = memchr::memchr(0xFF, &scan[at..]) {
        let ff = at + found;
        match scan.get(ff + 1) {
            Some(0x00 | 0xD0..=0xD7) => at = ff + 2,
            Some(0xFF) => at = ff + 1,
            _ => return ff,
        }
    }
    scan.len()
}

/// How the frame is coded, from its start-of-frame marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// SOF0/SOF1: sequential, Huffman.
    Sequential,
    /// SOF2: progressive, Huffman.
    Progressive,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Component {
    pub id: u8,
    pub h: usize,
    pub v: usize,
    pub quant: usize,
    pub dc_table: usize,
    pub ac_table: usize,
}

/// Everything before a JPEG's first scan, read once.
pub struct Header<'a> {
    pub coding: Coding,
    /// Bits per sample (8 or 12).
    pub precision: u8,
    pub width: usize,
    pub height: usize,
    pub components: Vec<Component>,
    /// Quantization tables in zigzag order.
    pub quant: [[u16; 64]; 4],
    pub(crate) dc_tables: [Option<Huffman>; 4],
    pub(crate) ac_tables: [Option<Huffman>; 4],
    pub restart_interval: usize,
    /// The first scan's components, in scan order (indices into `components`).
    pub scan_components: Vec<usize>,
    /// The entropy-coded data after the first start-of-scan.
    pub scan: &'a [u8],
    pub adobe_transform: Option<u8>,
}

impl std::fmt::Debug for Header<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("coding", &self.coding)
            .field("precision", &self.precision)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("components", &self.components)
            .finish_non_exhaustive()
    }
}

fn be16(data: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *data.get(at)?,
        *data.get(at + 1)?,
    ])))
}

impl<'a> Header<'a> {
    /// Reads the header. Every table and every frame marker of the whole file
    /// is checked, including those between the scans of a progressive file.
    pub fn parse(data: &'a [u8]) -> Result<Self, JpegError> {
        let mut header = Header {
            coding: Coding::Sequential,
            precision: 0,
            width: 0,
            height: 0,
            components: Vec::new(),
            quant: [[0; 64]; 4],
            dc_tables: [None, None, None, None],
            ac_tables: [None, None, None, None],
            restart_interval: 0,
            scan_components: Vec::new(),
            scan: &[],
            adobe_transform: None,
        };
        let mut defined_quant = [false; 4];
        let mut frame_seen = false;
        let mut scan_seen = false;
        for segment in all_segments(data) {
            let body = segment.body;
            match segment.marker {
                0xC0..=0xC2 if frame_seen => return Err(JpegError::SecondFrame),
                0xC0 | 0xC1 => {
                    header.read_frame_header(body)?;
                    frame_seen = true;
                }
                0xC2 => {
                    header.read_frame_header(body)?;
                    header.coding = Coding::Progressive;
                    frame_seen = true;
                }
                0xC3 | 0xC5..=0xC7 => {
                    return Err(JpegError::Unsupported("lossless or hierarchical"));
                }
                0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(JpegError::Unsupported("arithmetic coding"));
                }
                0xC4 => header.read_huffman_tables(body, !scan_seen)?,
                0xDB => {
                    let ids = header.read_quant_tables(body, !scan_seen)?;
                    for id in ids.into_iter().flatten() {
                        defined_quant[id] = true;
                    }
                }
                0xDD if !scan_seen => {
                    header.restart_interval =
                        be16(body, 0).ok_or(JpegError::Damaged("a short restart interval"))?;
                }
                // Adobe APP14: its transform flag tells RGB from YCbCr.
                0xEE if !scan_seen && body.starts_with(b"Adobe") => {
                    header.adobe_transform = body.get(11).copied();
                }
                SOS if !scan_seen => {
                    if !frame_seen {
                        return Err(JpegError::Damaged("a scan before any frame"));
                    }
                    header.read_scan_header(body)?;
                    header.scan = segment.rest;
                    scan_seen = true;
                    for c in &header.components {
                        if !defined_quant[c.quant] {
                            return Err(JpegError::Quantisation {
                                id: u8::try_from(c.quant).unwrap_or(u8::MAX),
                                why: "used by a component but never defined",
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        if !scan_seen {
            return Err(JpegError::Damaged("no image data (no start of scan)"));
        }
        Ok(header)
    }

    fn read_frame_header(&mut self, body: &[u8]) -> Result<(), JpegError> {
        let short = JpegError::Damaged("a short frame header");
        let precision = *body.first().ok_or(short)?;
        if precision != 8 && precision != 12 {
            return Err(JpegError::Damaged(
                "a sample precision other than 8 or 12 bits",
            ));
        }
        self.precision = precision;
        self.height = be16(body, 1).ok_or(short)?;
        self.width = be16(body, 3).ok_or(short)?;
        if self.width == 0 || self.height == 0 {
            return Err(JpegError::Unsupported(
                "a height given after the scan (DNL)",
            ));
        }
        let count = usize::from(*body.get(5).ok_or(short)?);
        if !(1..=4).contains(&count) {
            return Err(JpegError::Damaged("a component count other than 1 to 4"));
        }
        for i in 0..count {
            let c = body.get(6 + 3 * i..9 + 3 * i).ok_or(short)?;
            let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
                return Err(JpegError::Damaged("a sampling factor outside 1 to 4"));
            }
            if c[2] > 3 {
                return Err(JpegError::Damaged("a quantisation table number above 3"));
            }
            if self.components.iter().any(|other| other.id == c[0]) {
                return Err(JpegError::Damaged("two components with one id"));
            }
            self.components.push(Component {
                id: c[0],
                h,
                v,
                quant: usize::from(c[2]),
                ..Component::default()
            });
        }
        Ok(())
    }

    /// Checks every table in the segment; keeps those before the first scan.
    fn read_huffman_tables(&mut self, body: &[u8], keep: bool) -> Result<(), JpegError> {
        let mut at = 0;
        while at < body.len() {
            let class = body[at] >> 4;
            let id = body[at] & 15;
            let name = if class == 0 { "DC" } else { "AC" };
            let invalid = |why| JpegError::Huffman {
                class: name,
                id,
                why,
            };
            if class > 1 || id > 3 {
                return Err(JpegError::Damaged(
                    "a Huffman table class above 1 or number above 3",
                ));
            }
            let counts: [u8; 16] = body
                .get(at + 1..at + 17)
                .and_then(|c| c.try_into().ok())
                .ok_or(invalid("it is cut short"))?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            if total > 256 {
                return Err(invalid("more than 256 codes"));
            }
            let values = body
                .get(at + 17..at + 17 + total)
                .ok_or(invalid("it is cut short"))?;
            let table = Huffman::new(&counts, values, class == 1).map_err(invalid)?;
            if keep {
                let slot = if class == 0 {
                    &mut self.dc_tables
                } else {
                    &mut self.ac_tables
                };
                slot[usize::from(id)] = Some(table);
            }
            at += 17 + total;
        }
        Ok(())
    }

    /// Checks every table in the segment; keeps those before the first scan.
    /// Returns the ids defined.
    fn read_quant_tables(
        &mut self,
        body: &[u8],
        keep: bool,
    ) -> Result<[Option<usize>; 4], JpegError> {
        let mut defined = [None; 4];
        let mut at = 0;
        let mut n = 0;
        while at < body.len() {
            let precision = body[at] >> 4;
            let id = body[at] & 15;
            let invalid = |why| JpegError::Quantisation { id, why };
            if precision > 1 {
                return Err(invalid("a precision other than 8 or 16 bits"));
            }
            let index = usize::from(id);
            if index > 3 {
                return Err(invalid("a number above 3"));
            }
            let mut table = [0u16; 64];
            for (k, q) in table.iter_mut().enumerate() {
                let value = if precision == 0 {
                    body.get(at + 1 + k).map(|&b| usize::from(b))
                } else {
                    be16(body, at + 1 + 2 * k)
                };
                *q = value
                    .and_then(|v| u16::try_from(v).ok())
                    .ok_or(invalid("it is cut short"))?;
                if *q == 0 {
                    return Err(invalid("a zero divisor"));
                }
            }
            if keep {
                self.quant[index] = table;
            }
            if let Some(slot) = defined.get_mut(n) {
                *slot = Some(index);
            }
            n += 1;
            at += 1 + if precision == 0 { 64 } else { 128 };
        }
        Ok(defined)
    }

    fn read_scan_header(&mut self, body: &[u8]) -> Result<(), JpegError> {
        let short = JpegError::Damaged("a short scan header");
        let count = usize::from(*body.first().ok_or(short)?);
        if count == 0 || count > self.components.len() {
            return Err(JpegError::Damaged("a scan of no or too many components"));
        }
        for i in 0..count {
            let id = *body.get(1 + 2 * i).ok_or(short)?;
            let tables = *body.get(2 + 2 * i).ok_or(short)?;
            let index =
                self.components
                    .iter()
                    .position(|c| c.id == id)
                    .ok_or(JpegError::Damaged(
                        "a scan of a component the frame does not have",
                    ))?;
            if self.scan_components.contains(&index) {
                return Err(JpegError::Damaged("a component twice in one scan"));
            }
            let c = &mut self.components[index];
            c.dc_table = usize::from(tables >> 4);
            c.ac_table = usize::from(tables & 15);
            if c.dc_table > 3 || c.ac_table > 3 {
                return Err(JpegError::Damaged("a Huffman table number above 3"));
            }
            self.scan_components.push(index);
        }
        Ok(())
    }

    /// Samples per pixel over all components (4:2:0 colour is 1.5), in
    /// eighths.
    pub fn samples_per_pixel_eighths(&self) -> usize {
        let h_max = self.components.iter().map(|c| c.h).max().unwrap_or(1);
        let v_max = self.components.iter().map(|c| c.v).max().unwrap_or(1);
        self.components
            .iter()
            .map(|c| 8 * c.h * c.v / (h_max * v_max))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal baseline header: DQT, SOF0 (`w`×`h`, grey), DHT, SOS.
    fn header_bytes(sof: &[u8], dqt: &[u8], dht: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        for (marker, body) in [(0xDB, dqt), (0xC0, sof), (0xC4, dht)] {
            out.extend_from_slice(&[0xFF, marker]);
            out.extend_from_slice(&u16::try_from(body.len() + 2).unwrap().to_be_bytes());
            out.extend_from_slice(body);
        }
        out.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0]);
        out.extend_from_slice(&[0x00, 0xFF, 0xD9]);
        out
    }

    fn sof(w: u16, h: u16) -> Vec<u8> {
        let mut body = vec![8];
        body.extend_from_slice(&h.to_be_bytes());
        body.extend_from_slice(&w.to_be_bytes());
        body.extend_from_slice(&[1, 1, 0x11, 0]);
        body
    }

    fn dqt(value: u8) -> Vec<u8> {
        let mut body = vec![0];
        body.extend_from_slice(&[value; 64]);
        body
    }

    /// DC and AC tables 0, one 1-bit code each.
    fn dht(dc_counts_1: u8) -> Vec<u8> {
        let mut body = vec![0x00, dc_counts_1];
        body.extend_from_slice(&[0; 15]);
        body.extend(0..dc_counts_1);
        body.extend_from_slice(&[0x10, 1]);
        body.extend_from_slice(&[0; 15]);
        body.push(0);
        body
    }

    #[test]
    fn reads_a_header_once_and_checks_its_tables() {
        let good = header_bytes(&sof(40, 30), &dqt(1), &dht(1));
        let header = Header::parse(&good).unwrap();
        assert_eq!((header.width, header.height, header.precision), (40, 30, 8));
        assert_eq!(header.coding, Coding::Sequential);
        assert_eq!(header.scan_components, [0]);
        assert_eq!(header.samples_per_pixel_eighths(), 8);

        let oversubscribed = header_bytes(&sof(40, 30), &dqt(1), &dht(3));
        assert!(matches!(
            Header::parse(&oversubscribed),
            Err(JpegError::Huffman {
                class: "DC",
                id: 0,
                ..
            })
        ));
        let zero = header_bytes(&sof(40, 30), &dqt(0), &dht(1));
        assert!(matches!(
            Header::parse(&zero),
            Err(JpegError::Quantisation { id: 0, .. })
        ));
        let no_height = header_bytes(&sof(40, 0), &dqt(1), &dht(1));
        assert!(matches!(
            Header::parse(&no_height),
            Err(JpegError::Unsupported(_))
        ));
        assert!(matches!(
            Header::parse(&good[..good.len() - 13]),
            Err(JpegError::Damaged(_))
        ));
        assert!(Header::parse(b"not a jpeg").is_err());
    }

    #[test]
    fn walks_every_segment_past_the_scans() {
        let data = [
            0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 1, 0xFF, 0x00, 2, 0xFF, 0xD0, 3, // scan
            0xFF, 0xC4, 0x00, 0x03, 9, // a table between scans
            0xFF, 0xDA, 0x00, 0x02, 4, // the next scan
            0xFF, 0xD9, 0xFF, 0xC0, 0x00, 0x02, // after the end: not read
        ];
        let markers: Vec<u8> = all_segments(&data).map(|s| s.marker).collect();
        assert_eq!(markers, [SOS, 0xC4, SOS]);
    }

    #[test]
    fn walks_segments_up_to_the_scan() {
        let data = [
            0xFF, 0xD8, // SOI
            0xFF, 0xE1, 0x00, 0x04, b'a', b'b', // APP1
            0xFF, 0xFF, 0xDB, 0x00, 0x03, 7, // DQT after fill bytes
            0xFF, 0xDA, 0x00, 0x02, 1, 2, 3, // SOS then scan data
            0xFF, 0xD9,
        ];
        let found: Vec<_> = segments(&data).collect();
        assert_eq!(
            found.iter().map(|s| s.marker).collect::<Vec<_>>(),
            [0xE1, 0xDB, SOS]
        );
        assert_eq!(found[0].body, b"ab");
        assert_eq!(found[1].body, [7]);
        assert_eq!(found[2].rest, [1, 2, 3, 0xFF, 0xD9]);
    }

    #[test]
    fn stops_at_junk_and_truncation() {
        assert_eq!(segments(b"not a jpeg").count(), 0);
        assert_eq!(
            segments(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x09, 1]).count(),
            0
        );
        assert_eq!(segments(&[0xFF, 0xD8, 0x12]).count(), 0);
        // A length below 2 cannot hold itself.
        assert_eq!(segments(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01]).count(), 0);
    }
}
