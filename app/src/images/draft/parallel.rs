//! Entropy decoding on two cores, although a JPEG without restart markers
//! cannot be split: its blocks' boundaries are only known by decoding every
//! code before them.
//!
//! Huffman codes resynchronise, though. A second thread starts at the middle
//! byte as if a scan's first block began there, and records where each of
//! its first blocks starts (bit position and place in the MCU). Its first
//! blocks are garbage, but once one of its block boundaries coincides with a
//! real one (same bit, same place in the MCU), everything after it is what a
//! sequential decoder would produce, since parsing depends on nothing else.
//! The first thread decodes from the start and, past the middle, looks for
//! its own block boundaries among the recorded ones. At a match it stops:
//! its blocks, then the second thread's from the match, are the scan. DC
//! predictors do not matter here; they are applied afterwards, in order.
//!
//! If nothing matches (the recorded stretch is long, so this is rare), or the
//! second thread's data ends early (a damaged file), the first thread simply
//! goes on alone: the result is always the sequential one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use super::bits::{Bits, Scan};
use super::blocks::{Blocks, Slot};

/// How many block boundaries the second thread records for the first to meet.
const WATCHED_BLOCKS: usize = 2_048;
/// How often the second thread starts over, a bit further on, after its
/// garbage start runs into an invalid code.
const RETRIES: usize = 16;

/// When to use a second thread.
#[derive(Debug, Clone, Copy)]
pub(super) struct Parallelism {
    pub(super) cores: usize,
    /// Below this much entropy-coded data a second thread is not worth starting.
    pub(super) min_bytes: usize,
}

impl Parallelism {
    /// The cores this process may use (cgroup quotas and affinity count).
    pub(super) fn of_this_machine() -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            min_bytes: 256 * 1024,
        }
    }
}

/// How the blocks were decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Split {
    OneCore,
    /// The first thread met the second's blocks at this block.
    Met(usize),
    /// The second thread's blocks were not used; the first decoded them all.
    Alone,
}

/// Why blocks could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failed {
    /// An invalid code, or data that ends before the last block.
    Damaged,
    /// The deadline passed.
    OutOfTime,
}

/// How many blocks are decoded between two looks at the clock.
const CLOCK_EVERY: usize = 4_096;

/// Decodes `total` blocks of the scan, with MCUs of `slots`, before `deadline`.
pub(super) fn decode_blocks(
    slots: &[Slot<'_>],
    scan: &Scan,
    total: usize,
    restart_interval: usize,
    parallelism: Parallelism,
    deadline: Instant,
) -> Result<(Blocks, Split), Failed> {
    let run = Run {
        slots,
        scan,
        total,
        restart_interval,
        deadline,
        out_of_time: AtomicBool::new(false),
    };
    let decoded = run.decode(parallelism);
    match decoded {
        Some(done) => Ok(done),
        None if run.out_of_time.load(Ordering::Relaxed) => Err(Failed::OutOfTime),
        None => Err(Failed::Damaged),
    }
}

impl Run<'_, '_> {
    fn decode(&self, parallelism: Parallelism) -> Option<(Blocks, Split)> {
        let (scan, total, restart_interval) = (self.scan, self.total, self.restart_interval);
        // Every block takes at least one bit, so no more blocks than bits can be
        // decoded: a header's claim is not trusted with the allocation.
        let mut blocks = Blocks::with_capacity(total.min(scan.data.len().saturating_mul(8)));
        let mut bits = Bits::at(&scan.data, 0);
        let run = self;
        // With restart markers the decoder would need to know which MCU a marker
        // starts; such files are decoded on one core.
        if parallelism.cores < 2 || restart_interval > 0 || scan.data.len() < parallelism.min_bytes
        {
            run.sequential(&mut bits, &mut blocks, 0, None)?;
            return Some((blocks, Split::OneCore));
        }
        let middle = scan.data.len() / 2;
        let abandon = AtomicBool::new(false);
        let (send, receive) = sync_channel(1);
        std::thread::scope(|scope| {
            let abandon = &abandon;
            // The sender moves into the second thread, so that the first one's
            // `recv` returns when the second ends without sending.
            let second = scope.spawn(move || run.speculative(middle, &send, abandon));
            let mut watch = Watch {
                from: middle * 8,
                receive,
                starts: None,
                cursor: 0,
                done: false,
            };
            let ended = run.sequential(&mut bits, &mut blocks, 0, Some(&mut watch));
            let Some(Ended::Met { block, start }) = ended else {
                // Finished alone (or failed): the second thread's work is not needed.
                abandon.store(true, Ordering::Relaxed);
                return ended.map(|_| (blocks, Split::Alone));
            };
            let needed = total - block;
            match second.join().ok().flatten() {
                Some(part) if part.diffs.len() >= start.block + needed => {
                    blocks
                        .diffs
                        .extend_from_slice(&part.diffs[start.block..start.block + needed]);
                    blocks
                        .ac_sums
                        .extend_from_slice(part.ac_sums.get(start.ac_sums..)?);
                    Some((blocks, Split::Met(block)))
                }
                _ => {
                    run.sequential(&mut bits, &mut blocks, block, None)?;
                    Some((blocks, Split::Alone))
                }
            }
        })
    }
}

/// Where a block of the second thread starts.
#[derive(Clone, Copy)]
struct Start {
    bit: usize,
    slot: usize,
    /// The block's index among the second thread's blocks.
    block: usize,
    /// How many AC sums the second thread had at that point.
    ac_sums: usize,
}

/// How the first thread's run ended.
enum Ended {
    Finished,
    /// Block `block` starts where the second thread's block `start` does.
    Met {
        block: usize,
        start: Start,
    },
}

/// The first thread's view of the second thread's recorded block starts.
struct Watch {
    /// Bit position from which to look.
    from: usize,
    receive: Receiver<Vec<Start>>,
    starts: Option<Vec<Start>>,
    cursor: usize,
    /// Nothing can match any more.
    done: bool,
}

impl Watch {
    /// The second thread's block that starts where ours does, if any.
    #[inline]
    fn meet(&mut self, bit: usize, slot: usize) -> Option<Start> {
        if bit < self.from || self.done {
            return None;
        }
        if self.starts.is_none() {
            // The second thread records its starts in well under the time
            // the first takes to get here, so this rarely waits.
            self.starts = self.receive.recv().ok();
        }
        let Some(starts) = &self.starts else {
            self.done = true;
            return None;
        };
        while starts.get(self.cursor).is_some_and(|s| s.bit < bit) {
            self.cursor += 1;
        }
        match starts.get(self.cursor) {
            None => {
                self.done = true;
                None
            }
            Some(s) if s.bit == bit && s.slot == slot => Some(*s),
            Some(_) => None,
        }
    }
}

/// What both threads decode with.
struct Run<'r, 'a> {
    slots: &'r [Slot<'a>],
    scan: &'r Scan,
    total: usize,
    restart_interval: usize,
    deadline: Instant,
    /// Set when a thread stopped because the deadline passed.
    out_of_time: AtomicBool,
}

impl Run<'_, '_> {
    /// Whether the deadline has passed (and so says for the caller).
    fn late(&self) -> bool {
        let late = Instant::now() > self.deadline;
        if late {
            self.out_of_time.store(true, Ordering::Relaxed);
        }
        late
    }

    /// Decodes blocks `from..total`, stopping early where `watch` finds that
    /// the second thread has decoded the rest.
    fn sequential(
        &self,
        bits: &mut Bits<'_>,
        blocks: &mut Blocks,
        from: usize,
        mut watch: Option<&mut Watch>,
    ) -> Option<Ended> {
        let per_mcu = self.slots.len();
        let mut slot = from % per_mcu;
        let mut restarts = 0;
        for block in from..self.total {
            if slot == 0 && self.restart_interval > 0 && block > 0 {
                let mcu = block / per_mcu;
                if mcu.is_multiple_of(self.restart_interval) {
                    bits.restart(&self.scan.restarts, restarts)?;
                    restarts += 1;
                }
            }
            if let Some(watch) = watch.as_deref_mut()
                && let Some(start) = watch.meet(bits.position(), slot)
            {
                return Some(Ended::Met { block, start });
            }
            if block.is_multiple_of(CLOCK_EVERY) && self.late() {
                return None;
            }
            blocks.decode(bits, &self.slots[slot])?;
            slot += 1;
            if slot == per_mcu {
                slot = 0;
            }
        }
        Some(Ended::Finished)
    }

    /// The second thread: decodes from byte `middle` to the end of the data
    /// as if a block started there, and sends the first block starts.
    fn speculative(
        &self,
        middle: usize,
        send: &SyncSender<Vec<Start>>,
        abandon: &AtomicBool,
    ) -> Option<Blocks> {
        let end = self.scan.data.len() * 8;
        let per_mcu = self.slots.len();
        let mut begin = middle * 8;
        for _ in 0..RETRIES {
            let mut bits = Bits::at(&self.scan.data, begin / 8);
            bits.skip(u32::try_from(begin % 8).ok()?)?;
            let mut blocks = Blocks::with_capacity(self.total / 2);
            let mut starts = Vec::with_capacity(WATCHED_BLOCKS);
            let mut slot = 0;
            let (mut failed, mut handed_over) = (false, false);
            while bits.position() < end && blocks.diffs.len() < self.total {
                if !handed_over {
                    starts.push(Start {
                        bit: bits.position(),
                        slot,
                        block: blocks.diffs.len(),
                        ac_sums: blocks.ac_sums.len(),
                    });
                    if starts.len() == WATCHED_BLOCKS {
                        send.send(std::mem::take(&mut starts)).ok()?;
                        handed_over = true;
                    }
                }
                if abandon.load(Ordering::Relaxed)
                    || blocks.diffs.len().is_multiple_of(CLOCK_EVERY) && self.late()
                {
                    return None;
                }
                if blocks.decode(&mut bits, &self.slots[slot]).is_none() {
                    // Running out of data is the end of this thread's part
                    // (its last blocks may be the padding); an invalid code
                    // is a failure.
                    failed = !bits.overrun();
                    break;
                }
                slot += 1;
                if slot == per_mcu {
                    slot = 0;
                }
            }
            if !failed || handed_over {
                // Finished, or failed after the starts were sent: the first
                // thread either meets these blocks or goes on alone.
                if !handed_over {
                    send.send(starts).ok()?;
                }
                return Some(blocks);
            }
            // An invalid code while still in the garbage: start over after it.
            begin = bits.position() + 1;
        }
        None
    }
}
