//! The scan's entropy-coded data with its byte stuffing removed, and a bit
//! reader over it. Removing the stuffing first makes a refill one unaligned
//! load, and makes a bit position a plain offset that two readers (one of
//! them started in the middle, see `parallel`) can compare.

use super::huffman::{Huffman, LOOKAHEAD, extend};

/// The entropy-coded data without `FF 00` stuffing, and where its restart
/// markers stood.
pub(super) struct Scan {
    pub(super) data: Vec<u8>,
    /// Offsets in `data` at which an `RSTn` marker stood.
    pub(super) restarts: Vec<usize>,
}

impl Scan {
    /// Reads from just after the start-of-scan header to the first marker
    /// that is not a restart (normally end-of-image) or the end of `raw`.
    pub(super) fn destuff(raw: &[u8]) -> Self {
        let mut data = Vec::with_capacity(raw.len());
        let mut restarts = Vec::new();
        let mut at = 0;
        while let Some(found) = memchr::memchr(0xFF, &raw[at..]) {
            let ff = at + found;
            data.extend_from_slice(&raw[at..ff]);
            match raw.get(ff + 1) {
                Some(0x00) => {
                    data.push(0xFF);
                    at = ff + 2;
                }
                Some(0xD0..=0xD7) => {
                    restarts.push(data.len());
                    at = ff + 2;
                }
                // Fill bytes before a marker.
                Some(0xFF) => at = ff + 1,
                _ => return Self { data, restarts },
            }
        }
        data.extend_from_slice(&raw[at..]);
        Self { data, restarts }
    }
}

/// Reads bits, most significant first. Past the end of the data a peek sees
/// zeros (a lookup may look further ahead than the last code reaches), but
/// consuming a bit that is not there is an error: see [`Bits::overrun`].
pub(super) struct Bits<'a> {
    data: &'a [u8],
    /// The next byte to load into `buffer` (may pass the end).
    pos: usize,
    /// The next bits, from the top; below the `count` valid bits may sit the
    /// bits that follow them (never anything else).
    buffer: u64,
    count: u32,
}

impl<'a> Bits<'a> {
    /// A reader starting at byte `at`.
    pub(super) fn at(data: &'a [u8], at: usize) -> Self {
        Self {
            data,
            pos: at,
            buffer: 0,
            count: 0,
        }
    }

    /// The offset of the next bit from the start of the data.
    #[inline]
    pub(super) fn position(&self) -> usize {
        self.pos * 8 - self.count as usize
    }

    /// Whether more bits were consumed than the data holds: the data ended
    /// early, and what was decoded from the zeros after it is not the file's.
    #[inline]
    pub(super) fn overrun(&self) -> bool {
        self.position() > self.data.len() * 8
    }

    #[inline]
    fn fill(&mut self) {
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            // The bytes past the whole ones taken land below `count`: they
            // are the very bits the next refill puts there.
            self.buffer |= u64::from_be_bytes(word) >> self.count;
            let bytes = (63 - self.count) / 8;
            self.pos += bytes as usize;
            self.count += bytes * 8;
            return;
        }
        // Near the end: zeros after the data, never more than the 64-bit
        // buffer holds, so `position` stays within a word of the end.
        while self.count <= 56 {
            let byte = self.data.get(self.pos).copied().unwrap_or(0);
            self.buffer |= u64::from(byte) << (56 - self.count);
            self.pos += 1;
            self.count += 8;
        }
    }

    #[inline]
    pub(super) fn peek(&mut self, n: u32) -> u32 {
        if self.count < n {
            self.fill();
        }
        u32::try_from(self.buffer >> (64 - n)).unwrap_or(0)
    }

    /// Drops `n` bits that `peek` has made available.
    #[inline]
    pub(super) fn consume(&mut self, n: u32) {
        self.buffer <<= n;
        self.count -= n;
    }

    #[inline]
    pub(super) fn skip(&mut self, n: u32) -> Option<()> {
        if self.count < n {
            self.fill();
        }
        self.buffer <<= n;
        self.count = self.count.checked_sub(n)?;
        Some(())
    }

    /// One Huffman symbol.
    #[inline]
    pub(super) fn decode(&mut self, table: &Huffman) -> Option<u8> {
        let look = self.peek(LOOKAHEAD) as usize;
        let (symbol, len) = table.fast[look];
        if len > 0 {
            self.skip(u32::from(len))?;
            return Some(symbol);
        }
        // Longer codes: canonical decoding, one length at a time.
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

    /// The value of `size` extra bits.
    #[inline]
    pub(super) fn receive_extend(&mut self, size: u8) -> Option<i32> {
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

    /// At a restart interval: skip the padding to the byte where restart
    /// marker `index` stood.
    pub(super) fn restart(&mut self, restarts: &[usize], index: usize) -> Option<()> {
        let byte = self.position().div_ceil(8);
        if restarts.get(index) != Some(&byte) {
            return None;
        }
        *self = Self::at(self.data, byte);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing_and_restart_markers_are_removed() {
        let scan = Scan::destuff(&[1, 0xFF, 0x00, 2, 0xFF, 0xD3, 3, 0xFF, 0xFF, 0xD9, 4]);
        assert_eq!(scan.data, [1, 0xFF, 2, 3]);
        assert_eq!(scan.restarts, [3]);
        assert_eq!(Scan::destuff(&[5, 6]).data, [5, 6]);
        // A lone FF at the very end ends the data.
        assert_eq!(Scan::destuff(&[5, 0xFF]).data, [5]);
    }

    #[test]
    fn reads_across_refills_and_past_the_end() {
        let data: Vec<u8> = (0..20u8).map(|i| i.wrapping_mul(37)).collect();
        let mut bits = Bits::at(&data, 0);
        let mut read = Vec::new();
        // Odd widths so reads straddle bytes and refills.
        for width in [3, 5, 7, 1, 16, 9, 11, 4, 13, 2].iter().cycle().take(40) {
            read.push((bits.peek(*width), *width));
            bits.consume(*width);
        }
        let mut position = 0usize;
        for (value, width) in read {
            let mut expected = 0u32;
            for i in position..position + width as usize {
                let byte = data.get(i / 8).copied().unwrap_or(0);
                expected = expected << 1 | u32::from(byte >> (7 - i % 8) & 1);
            }
            assert_eq!(value, expected, "at bit {position}");
            position += width as usize;
        }
        assert_eq!(bits.position(), position);
    }

    #[test]
    fn consuming_past_the_end_is_an_overrun() {
        let data = [0xAB, 0xCD];
        let mut bits = Bits::at(&data, 0);
        // Peeking past the end is allowed (lookups look ahead).
        assert_eq!(bits.peek(24), 0xAB_CD00);
        bits.consume(16);
        assert!(!bits.overrun());
        bits.skip(1).unwrap();
        assert!(bits.overrun());
    }
}
