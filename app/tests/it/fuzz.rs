//! Differential fuzzing of the 1/8-scale JPEG decoder against a reference
//! (the `image` crate's full decode by zune-jpeg, averaged over 8×8 blocks),
//! on a seed corpus of real-world JPEGs nobody here made (Pillow's test
//! images, `scripts/tools.sh corpus`), with structure-aware mutations: the
//! mutator knows where the frame, the tables, the scan header and the
//! entropy-coded data are, and changes each in ways a hostile file would.
//!
//! Every case must parse and decode without panicking, within a time limit;
//! where the entropy-coded data is intact (the seed itself, or new
//! quantisation tables) and both decoders accept the file, the two images
//! must agree. A fixed-seed run of 100,000 cases is part of the test suite;
//! a longer run with any seed:
//!
//! `CLOUDALBUM_FUZZ_CASES=5000000 CLOUDALBUM_FUZZ_SEED=7 cargo test --workspace --locked --test it -- --ignored fuzz::long_run --nocapture`

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use cloudalbum::images::draft;
use cloudalbum::images::jpeg::{Header, all_segments};
use image::RgbImage;

/// Files larger than this are not used as seeds (a case should take
/// microseconds).
const MAX_SEED_BYTES: usize = 160 * 1024;
/// No case may take longer than this.
const CASE_TIME: Duration = Duration::from_secs(2);
/// Mutants whose decoding would take more than this much memory are left to
/// the limit check (which `images::process` makes first).
const MAX_PEAK_BYTES: u64 = 64 * 1024 * 1024;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[3]
    }
}

/// Where the parts of a seed are.
struct Seed {
    name: String,
    bytes: Vec<u8>,
    /// (marker, offset of the marker, body range) of each segment.
    segments: Vec<(u8, usize, std::ops::Range<usize>)>,
    /// Offset of the first byte of entropy-coded data.
    scan: usize,
    /// The reference decode, block-averaged.
    reference: Reference,
}

fn seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (name, bytes) in crate::images::corpus() {
        if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) || bytes.len() > MAX_SEED_BYTES {
            continue;
        }
        let Ok(header) = Header::parse(&bytes) else {
            continue;
        };
        if !draft::applies(&header) {
            continue;
        }
        let Some(reference) = reference(&bytes) else {
            continue;
        };
        let base = bytes.as_ptr() as usize;
        let segments = all_segments(&bytes)
            .map(|s| {
                let start = s.body.as_ptr() as usize - base;
                (s.marker, start - 4, start..start + s.body.len())
            })
            .collect();
        let scan = header.scan.as_ptr() as usize - base;
        seeds.push(Seed {
            name,
            bytes,
            segments,
            scan,
            reference,
        });
    }
    assert!(seeds.len() >= 20, "only {} seeds", seeds.len());
    seeds
}

/// The reference decoder's image averaged over 8×8 blocks, and which
/// blocks hold a clipped pixel (0 or 255 in a channel).
struct Reference {
    means: RgbImage,
    clipped: Vec<bool>,
    full: (u32, u32),
}

fn reference(bytes: &[u8]) -> Option<Reference> {
    let full = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
        .ok()?
        .into_rgb8();
    let (w, h) = (full.width().div_ceil(8), full.height().div_ceil(8));
    let mut clipped = vec![false; usize::try_from(w * h).ok()?];
    let means = RgbImage::from_fn(w, h, |bx, by| {
        let (mut sum, mut n) = ([0u32; 3], 0u32);
        for y in by * 8..(by * 8 + 8).min(full.height()) {
            for x in bx * 8..(bx * 8 + 8).min(full.width()) {
                let p = full.get_pixel(x, y).0;
                if p.iter().any(|&v| v == 0 || v == 255) {
                    clipped[usize::try_from(by * w + bx).unwrap()] = true;
                }
                for (s, v) in sum.iter_mut().zip(p) {
                    *s += u32::from(v);
                }
                n += 1;
            }
        }
        image::Rgb(sum.map(|s| u8::try_from((s + n / 2) / n).unwrap()))
    });
    Some(Reference {
        means,
        clipped,
        full: full.dimensions(),
    })
}

/// How close the two decoders must be. An unchanged file: every channel
/// within 2.5 levels on average and 40 at worst (block edges of subsampled
/// chroma), over blocks that are whole and not at the ends of the range.
/// A file with new quantisers: the luma of blocks that the reference does
/// not clip within 3 levels on average (a clipped pixel inside a block makes
/// its mean differ from a mean taken before clipping, in any 1/8-scale
/// decoder).
#[derive(Clone, Copy)]
enum Tolerance {
    Seed,
    Mutant,
}

/// Whether the images agree; the mean difference, or `None` if nothing
/// could be compared.
fn agree(ours: &RgbImage, reference: &Reference, tolerance: Tolerance, label: &str) -> Option<f64> {
    if ours.dimensions() != reference.means.dimensions() {
        return None;
    }
    let luma =
        |p: [u8; 3]| (299 * i32::from(p[0]) + 587 * i32::from(p[1]) + 114 * i32::from(p[2])) / 1000;
    let (mut total, mut count, mut worst) = (0i64, 0i64, 0i32);
    for (x, y, p) in ours.enumerate_pixels() {
        if (x + 1) * 8 > reference.full.0 || (y + 1) * 8 > reference.full.1 {
            continue;
        }
        let q = reference.means.get_pixel(x, y);
        let differences: Vec<i32> = match tolerance {
            Tolerance::Seed => {
                if p.0.iter().chain(&q.0).any(|&v| !(8..=247).contains(&v)) {
                    continue;
                }
                p.0.iter()
                    .zip(q.0)
                    .map(|(a, b)| i32::from(a.abs_diff(b)))
                    .collect()
            }
            Tolerance::Mutant => {
                let at = usize::try_from(y * ours.width() + x).unwrap();
                if reference.clipped[at] {
                    continue;
                }
                vec![(luma(p.0) - luma(q.0)).abs()]
            }
        };
        for d in differences {
            worst = worst.max(d);
            total += i64::from(d);
            count += 1;
        }
    }
    if count == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let mean = total as f64 / count as f64;
    let close = match tolerance {
        Tolerance::Seed => mean <= 2.5 && worst <= 40,
        Tolerance::Mutant => mean <= 3.0,
    };
    assert!(close, "{label}: mean difference {mean:.2}, worst {worst}");
    Some(mean)
}

/// What a mutation changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutation {
    EntropyBytes,
    EntropyBits,
    Truncate,
    Huffman,
    Quantisation,
    Frame,
    ScanHeader,
    Markers,
    Duplicate,
    Splice,
}

const MUTATIONS: [Mutation; 10] = [
    Mutation::EntropyBytes,
    Mutation::EntropyBits,
    Mutation::Truncate,
    Mutation::Huffman,
    Mutation::Quantisation,
    Mutation::Frame,
    Mutation::ScanHeader,
    Mutation::Markers,
    Mutation::Duplicate,
    Mutation::Splice,
];

fn body_of(seed: &Seed, marker: u8, rng: &mut Rng) -> Option<std::ops::Range<usize>> {
    let found: Vec<_> = seed.segments.iter().filter(|s| s.0 == marker).collect();
    (!found.is_empty()).then(|| found[rng.below(found.len())].2.clone())
}

fn mutate(seed: &Seed, other: &Seed, rng: &mut Rng) -> (Mutation, Vec<u8>) {
    let mut bytes = seed.bytes.clone();
    let mutation = MUTATIONS[rng.below(MUTATIONS.len())];
    let scan = seed.scan..bytes.len();
    let poke = |bytes: &mut Vec<u8>, range: std::ops::Range<usize>, rng: &mut Rng| {
        if !range.is_empty() {
            let at = range.start + rng.below(range.len());
            bytes[at] = rng.byte();
        }
    };
    match mutation {
        Mutation::EntropyBytes => {
            for _ in 0..=rng.below(4) {
                poke(&mut bytes, scan.clone(), rng);
            }
        }
        Mutation::EntropyBits => {
            for _ in 0..=rng.below(4) {
                let at = scan.start + rng.below(scan.len());
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= 1 << rng.below(8);
                }
            }
        }
        Mutation::Truncate => {
            let keep = if rng.below(2) == 0 {
                scan.start + rng.below(scan.len())
            } else {
                rng.below(bytes.len())
            };
            bytes.truncate(keep);
        }
        Mutation::Huffman => {
            if let Some(body) = body_of(seed, 0xC4, rng) {
                // Mostly the 16 counts, where oversubscription lives.
                let counts = body.start + 1..(body.start + 17).min(body.end);
                let range = if rng.below(3) == 0 { body } else { counts };
                poke(&mut bytes, range, rng);
            }
        }
        Mutation::Quantisation => {
            if let Some(body) = body_of(seed, 0xDB, rng) {
                // 8-bit tables: some quantisers doubled or tripled (a
                // valid table, as a lower-quality encoder writes).
                if bytes[body.start] >> 4 == 0 {
                    for _ in 0..=rng.below(16) {
                        let at = body.start + 1 + rng.below(body.len().saturating_sub(1));
                        if at < body.end {
                            let factor = 2 + rng.byte() % 2;
                            bytes[at] = bytes[at].saturating_mul(factor).max(1);
                        }
                    }
                }
            }
        }
        Mutation::Frame => {
            if let Some(body) = body_of(seed, 0xC0, rng).or_else(|| body_of(seed, 0xC1, rng)) {
                poke(&mut bytes, body, rng);
            }
        }
        Mutation::ScanHeader => {
            if let Some(body) = body_of(seed, 0xDA, rng) {
                poke(&mut bytes, body, rng);
            }
        }
        Mutation::Markers => {
            let at = scan.start + rng.below(scan.len());
            let marker = match rng.below(4) {
                0 => 0xD0 + rng.byte() % 8,
                1 => 0xC0 + rng.byte() % 16,
                2 => 0xD9,
                _ => rng.byte(),
            };
            let at = if rng.below(4) == 0 {
                2 + rng.below(seed.scan.saturating_sub(2))
            } else {
                at
            };
            bytes.splice(at..at, [0xFF, marker]);
        }
        Mutation::Duplicate => {
            let (_, start, body) = &seed.segments[rng.below(seed.segments.len())];
            let segment = bytes[*start..body.end].to_vec();
            let at = seed.segments[rng.below(seed.segments.len())].1;
            bytes.splice(at..at, segment);
        }
        Mutation::Splice => {
            bytes.truncate(seed.scan);
            bytes.extend_from_slice(&other.bytes[other.scan..]);
        }
    }
    (mutation, bytes)
}

#[derive(Debug, Default)]
struct Summary {
    cases: usize,
    decoded: usize,
    refused_header: usize,
    refused_data: usize,
    over_budget: usize,
    compared: usize,
    worst_mean: f64,
    slowest: Duration,
}

/// One case: parse and decode, never panicking, within the time limit; if
/// `compare` and both decoders accept it, the images agree.
fn check(
    bytes: &[u8],
    compare: Option<(&Reference, Tolerance)>,
    label: &str,
    summary: &mut Summary,
) {
    summary.cases += 1;
    let start = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let Ok(header) = Header::parse(bytes) else {
            return None;
        };
        if !draft::applies(&header) {
            return None;
        }
        if draft::peak_bytes(&header) > MAX_PEAK_BYTES {
            return Some(Err(None));
        }
        Some(draft::decode(&header, start + CASE_TIME).map_err(Some))
    }));
    let elapsed = start.elapsed();
    summary.slowest = summary.slowest.max(elapsed);
    assert!(elapsed < CASE_TIME, "{label}: took {elapsed:?}");
    let outcome = outcome.unwrap_or_else(|_| panic!("{label}: the decoder panicked"));
    match outcome {
        None => summary.refused_header += 1,
        Some(Err(None)) => summary.over_budget += 1,
        Some(Err(Some(e))) => {
            assert_ne!(e, draft::DraftError::OutOfTime, "{label}");
            summary.refused_data += 1;
        }
        Some(Ok(ours)) => {
            summary.decoded += 1;
            if let Some((reference, tolerance)) = compare
                && let Some(mean) = agree(&ours, reference, tolerance, label)
            {
                summary.compared += 1;
                summary.worst_mean = summary.worst_mean.max(mean);
            }
        }
    }
}

fn run(cases: usize, seed: u64) -> Summary {
    let seeds = seeds();
    let mut summary = Summary::default();
    // Each seed as it is: the two decoders agree on real-world files.
    for s in &seeds {
        check(
            &s.bytes,
            Some((&s.reference, Tolerance::Seed)),
            &s.name,
            &mut summary,
        );
    }
    let mut rng = Rng(seed | 1);
    for case in 0..cases {
        let s = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        let (mutation, bytes) = mutate(s, other, &mut rng);
        let label = format!("case {case} (seed {seed}): {mutation:?} of {}", s.name);
        // New quantisers leave the coded data as it was: the reference's
        // decode of the same mutant must agree.
        let reference = (mutation == Mutation::Quantisation && case % 4 == 0)
            .then(|| reference(&bytes))
            .flatten();
        let compare = reference.as_ref().map(|r| (r, Tolerance::Mutant));
        check(&bytes, compare, &label, &mut summary);
    }
    eprintln!("fuzz: {summary:?}");
    summary
}

#[test]
fn a_hundred_thousand_fixed_seed_cases() {
    let start = Instant::now();
    let summary = run(100_000, 0x00C0_FFEE);
    assert!(summary.cases > 100_000);
    // The mutator reaches every outcome.
    assert!(summary.decoded > 10_000, "{summary:?}");
    assert!(
        summary.refused_header > 1_000 && summary.refused_data > 1_000,
        "{summary:?}"
    );
    assert!(summary.compared > 500, "{summary:?}");
    eprintln!("fuzz: 100,000 cases in {:?}", start.elapsed());
}

/// The README's longer run: `CLOUDALBUM_FUZZ_CASES` cases from
/// `CLOUDALBUM_FUZZ_SEED`.
#[test]
#[ignore = "long; run on demand with CLOUDALBUM_FUZZ_CASES and CLOUDALBUM_FUZZ_SEED"]
fn long_run() {
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .map_or(default, |v| v.parse().expect(name))
    };
    let cases = usize::try_from(number("CLOUDALBUM_FUZZ_CASES", 5_000_000)).unwrap();
    let summary = run(cases, number("CLOUDALBUM_FUZZ_SEED", 1));
    assert!(summary.cases > cases);
}
