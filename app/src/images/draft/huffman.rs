//! Huffman tables built for speed: a code and its extra bits decode in one
//! lookup, and AC coefficients that are only skipped go several at a time.

/// A Huffman table with lookups that decode a code together with its extra
/// bits: one symbol and its value, or several AC coefficients to skip.
pub(crate) struct Huffman {
    /// (symbol, code length) for codes of at most `LOOKAHEAD` bits; length 0 = slow path.
    pub(super) fast: Vec<(u8, u8)>,
    /// For AC use, indexed by the next `MULTI_BITS` bits: as many whole AC
    /// coefficients (code and extra bits) as fit, packed by [`Multi`].
    pub(super) multi: Vec<Multi>,
    /// Indexed by the next `LOOKAHEAD` bits: (bits to consume = code + extra
    /// bits, the symbol, the value the extra bits encode); 0 bits = slow path.
    pub(super) valued: Vec<Valued>,
    /// Per code length 1..=16: the largest code, and the offset into `values`.
    pub(super) max_code: [i32; 18],
    pub(super) val_offset: [i32; 18],
    pub(super) values: Vec<u8>,
}

pub(super) const LOOKAHEAD: u32 = 11;
pub(super) const MULTI_BITS: u32 = 13;

/// Several AC coefficients skipped at once, packed in 16 bits so the table
/// stays in L1: the bits they take (low 5 bits; 0 = the first coefficient is
/// longer than `MULTI_BITS`), whether the last is end-of-block (bit 5), and
/// how far they move the position in the block (bits 8..), counting
/// end-of-block as 1, so that `k + reach <= 64` says every coefficient in the
/// entry still belongs to this block.
#[derive(Clone, Copy, Default)]
pub(super) struct Multi(u16);

impl Multi {
    const END_OF_BLOCK: u16 = 1 << 5;

    fn new(bits: u32, reach: u32, end_of_block: bool) -> Self {
        let packed = bits | reach << 8 | if end_of_block { 1 << 5 } else { 0 };
        Self(u16::try_from(packed).unwrap_or(0))
    }

    #[inline]
    pub(super) fn bits(self) -> u32 {
        u32::from(self.0 & 31)
    }

    #[inline]
    pub(super) fn reach(self) -> usize {
        usize::from(self.0 >> 8)
    }

    #[inline]
    pub(super) fn end_of_block(self) -> bool {
        self.0 & Self::END_OF_BLOCK != 0
    }
}

impl Huffman {
    /// `ac` builds the table for AC coefficients, else for DC differences.
    /// A table whose counts ask for more codes of a length than the codes
    /// left over from shorter lengths allow (an oversubscribed table) is
    /// refused, as is a DC table whose symbols are not bit counts.
    pub(crate) fn new(counts: &[u8; 16], values: &[u8], ac: bool) -> Result<Self, &'static str> {
        let mut max_code = [-1i32; 18];
        let mut val_offset = [0i32; 18];
        let mut fast = vec![(0u8, 0u8); 1 << LOOKAHEAD];
        let mut code: i32 = 0;
        let mut k: usize = 0;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if values.len() < total {
            return Err("it has fewer symbols than codes");
        }
        if !ac && values[..total].iter().any(|&v| v > 15) {
            return Err("a DC symbol above 15");
        }
        for len in 1..=16usize {
            let count = i32::from(counts[len - 1]);
            // Codes of this length are `code..code + count`; all must fit in
            // `len` bits.
            if code + count > (1 << len) {
                return Err("more codes than its lengths allow (oversubscribed)");
            }
            val_offset[len] = i32::try_from(k).map_err(|_| "too many codes")? - code;
            for _ in 0..count {
                let symbol = values[k];
                if len <= LOOKAHEAD as usize {
                    let shift = LOOKAHEAD as usize - len;
                    let first = usize::try_from(code).map_err(|_| "a negative code")? << shift;
                    let len = u8::try_from(len).map_err(|_| "a code longer than 16 bits")?;
                    for slot in fast
                        .get_mut(first..first + (1 << shift))
                        .ok_or("more codes than its lengths allow (oversubscribed)")?
                    {
                        *slot = (symbol, len);
                    }
                }
                code += 1;
                k += 1;
            }
            if count > 0 {
                max_code[len] = code - 1;
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
        Ok(Self {
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
pub(super) struct Valued {
    /// Code and extra bits; 0 = longer than `LOOKAHEAD`.
    pub(super) bits: u8,
    pub(super) symbol: u8,
    pub(super) value: i16,
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
pub(super) fn extend(v: i32, size: u32) -> i32 {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(usize, u8)]) -> [u8; 16] {
        let mut counts = [0u8; 16];
        for &(len, n) in pairs {
            counts[len - 1] = n;
        }
        counts
    }

    #[test]
    fn complete_and_incomplete_tables_are_accepted() {
        // Two 1-bit codes: complete.
        assert!(Huffman::new(&counts(&[(1, 2)]), &[0, 1], false).is_ok());
        // One 1-bit and two 2-bit codes: complete.
        assert!(Huffman::new(&counts(&[(1, 1), (2, 2)]), &[0, 1, 2], false).is_ok());
        // A lone code (what a flat picture's encoder may write).
        assert!(Huffman::new(&counts(&[(1, 1)]), &[0], true).is_ok());
        // 16-bit codes past the lookup table.
        assert!(Huffman::new(&counts(&[(1, 1), (16, 3)]), &[0, 1, 2, 3], true).is_ok());
    }

    #[test]
    fn oversubscribed_tables_are_refused() {
        for (table, values) in [
            (counts(&[(1, 3)]), vec![0, 1, 2]),
            (counts(&[(1, 1), (2, 3)]), vec![0, 1, 2, 3]),
            (counts(&[(2, 4), (3, 1)]), vec![0, 1, 2, 3, 4]),
            // Past the 11-bit lookup: a full 1-bit level leaves no 16-bit code.
            (counts(&[(1, 2), (16, 1)]), vec![0, 1, 2]),
        ] {
            assert_eq!(
                Huffman::new(&table, &values, true).err(),
                Some("more codes than its lengths allow (oversubscribed)"),
                "{table:?}"
            );
        }
        assert!(Huffman::new(&counts(&[(1, 2)]), &[0], false).is_err());
        assert_eq!(
            Huffman::new(&counts(&[(1, 2)]), &[0, 16], false).err(),
            Some("a DC symbol above 15")
        );
    }
}
