//! The time budget of one image, for the decoders whose loops are not ours.
//!
//! The 1/8-scale JPEG decoder ([`super::draft`]) looks at the clock itself,
//! every 4,096 blocks. The `image` crate's PNG and WebP lossless decoders
//! cannot be instrumented, but they read their input as they decode: they
//! are given a [`Timed`] reader, which hands the file out in pieces of at
//! most [`PIECE`] bytes and looks at the clock every few reads. Once the
//! deadline has passed every read fails, so such a decoder stops at its next
//! read with an error instead of running on.
//!
//! zune-jpeg (progressive and CMYK JPEGs) and the lossy WebP decoder read the
//! whole file before they decode, so no read happens during their work: for
//! them the caller waits for the decoding thread at most as long as the
//! budget (`photos::ingest`), and `process` refuses a decode that ended late.

use std::io::{self, BufRead, Cursor, Read, Seek, SeekFrom};
use std::time::Instant;

/// The most bytes one read hands out. A PNG's deflate stream expands at most
/// about 1,032 times, so a decoder does at most ~16 MB of work between two
/// reads.
pub const PIECE: usize = 16 * 1024;

/// Reads between two looks at the clock when the reads are small (a
/// lossless WebP refills 8 bytes at a time); after [`PIECE`] bytes the clock
/// is looked at whatever the count.
const CLOCK_EVERY: u32 = 32;

/// An in-memory file that stops being readable when `deadline` passes.
#[derive(Debug)]
pub struct Timed<'a> {
    cursor: Cursor<&'a [u8]>,
    deadline: Instant,
    /// Reads since the clock was last looked at.
    reads: u32,
    /// Where the cursor was when the clock was last looked at.
    checked_at: u64,
    late: bool,
}

impl<'a> Timed<'a> {
    pub fn new(bytes: &'a [u8], deadline: Instant) -> Self {
        Self {
            cursor: Cursor::new(bytes),
            deadline,
            // The first read looks at the clock.
            reads: CLOCK_EVERY,
            checked_at: 0,
            late: false,
        }
    }

    /// Fails once the deadline has passed (and from then on).
    fn check(&mut self) -> io::Result<()> {
        self.reads = self.reads.saturating_add(1);
        let moved = self.cursor.position().abs_diff(self.checked_at);
        if !self.late && (self.reads >= CLOCK_EVERY || moved >= PIECE as u64) {
            self.reads = 0;
            self.checked_at = self.cursor.position();
            self.late = Instant::now() > self.deadline;
        }
        if self.late {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the image's time budget is spent",
            ));
        }
        Ok(())
    }
}

impl Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        let n = buf.len().min(PIECE);
        self.cursor.read(&mut buf[..n])
    }
}

impl BufRead for Timed<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.check()?;
        let buf = self.cursor.fill_buf()?;
        Ok(&buf[..buf.len().min(PIECE)])
    }

    fn consume(&mut self, amount: usize) {
        self.cursor.consume(amount);
    }
}

impl Seek for Timed<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.cursor.seek(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hands_out_the_whole_file_in_pieces_before_the_deadline() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut timed = Timed::new(&bytes, Instant::now() + Duration::from_mins(1));
        assert_eq!(timed.fill_buf().unwrap().len(), PIECE);
        let mut all = Vec::new();
        timed.read_to_end(&mut all).unwrap();
        assert_eq!(all, bytes);
        timed.seek(SeekFrom::Start(10)).unwrap();
        let mut four = [0; 4];
        timed.read_exact(&mut four).unwrap();
        assert_eq!(four, [10, 11, 12, 13]);
    }

    #[test]
    fn every_read_fails_once_the_deadline_passed() {
        let bytes = vec![7u8; 1_000];
        let mut timed = Timed::new(&bytes, Instant::now());
        std::thread::sleep(Duration::from_millis(2));
        let err = timed.fill_buf().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("time budget"), "{err}");
        let mut one = [0; 1];
        assert_eq!(
            timed.read(&mut one).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    }

    /// A deadline that passes between two small reads is seen within
    /// `CLOCK_EVERY` reads, however little each one takes.
    #[test]
    fn small_reads_look_at_the_clock_too() {
        let bytes = vec![1u8; 1_000];
        let mut timed = Timed::new(&bytes, Instant::now() + Duration::from_millis(200));
        let mut eight = [0; 8];
        timed.read_exact(&mut eight).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        let failed_at = (0..=CLOCK_EVERY).find(|_| timed.read_exact(&mut eight).is_err());
        assert!(failed_at.is_some(), "never failed");
    }
}
