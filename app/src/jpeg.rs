//! The marker segments at the head of a JPEG file, up to and including the
//! first start-of-scan. Both the DC-only decoder and the EXIF reader walk
//! them, so neither scans the entropy-coded data for markers.

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
    let mut pos = if data.starts_with(&[0xFF, 0xD8]) {
        2
    } else {
        data.len()
    };
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
            done = marker == SOS;
            return Some(Segment { marker, body, rest });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
