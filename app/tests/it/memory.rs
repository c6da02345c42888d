//! Peak memory measured, not assumed: each image is processed in a child
//! process (this test binary again, running [`memory_child`]) whose address
//! space `prlimit` limits to the function's memory, as Lambda's kill would.
//! The child must end normally with a result or a refusal, never abort; it
//! reports its peak resident memory (`VmHWM`) and how long processing took
//! (against the time budget, which is measured here but not enforced).

use std::process::Command;

use cloudalbum::images::{self, Kind, Limits};

use crate::craft::{self, Coding};

/// The stage's function memory (the default `function.memory_mb`).
const MEMORY_MB: u32 = 512;
const CHILD_FILE: &str = "CLOUDALBUM_MEMORY_CHILD_FILE";

/// Run by [`processing_fits_in_the_function_memory`] in a limited child
/// process; on its own it has nothing to process.
#[test]
#[ignore = "run by processing_fits_in_the_function_memory in a child process"]
fn memory_child() {
    let path = std::env::var(CHILD_FILE).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let kind = Kind::sniff(&bytes).unwrap();
    let orientation = images::read_exif(&bytes).orientation;
    // Memory is measured here; the time limit is tested elsewhere (and a
    // debug build on a busy machine is slow).
    let limits = Limits {
        time: std::time::Duration::from_mins(5),
        ..Limits::for_function(MEMORY_MB, 60_000_000)
    };
    let before = peak_kb();
    let started = std::time::Instant::now();
    let outcome = match images::process(&bytes, kind, orientation, &limits, 300, 200) {
        Ok(p) => format!("ok {}x{}", p.width, p.height),
        Err(e) => format!("refused: {e}"),
    };
    let took = started.elapsed();
    println!("outcome={outcome}");
    println!("ms={}", took.as_millis());
    println!("start_kb={before}");
    println!("peak_kb={}", peak_kb());
}

/// This process's peak resident memory in kB.
fn peak_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

struct Case {
    label: &'static str,
    bytes: Vec<u8>,
    /// Accepted (`true`) or refused.
    accepted: bool,
}

/// The largest accepted image of each format and path for a 512 MB
/// function (a flat picture: decoders allocate for every pixel whatever it
/// shows), and bombs just over the limits.
fn cases() -> Vec<Case> {
    let w420 = [(2, 2), (1, 1), (1, 1)];
    let rgb = craft::RGB;
    let rgba = craft::RGBA;
    vec![
        Case {
            label: "baseline JPEG 4:2:0, 9000 × 6666 (60 MP, the pixel limit)",
            bytes: craft::flat_jpeg(9_000, 6_666, &w420, Coding::Baseline),
            accepted: true,
        },
        Case {
            label: "baseline JPEG 4:4:4, 9000 × 6666, EXIF-rotated",
            bytes: rotated_jpeg(&craft::flat_jpeg(
                9_000,
                6_666,
                &[(1, 1); 3],
                Coding::Baseline,
            )),
            accepted: true,
        },
        Case {
            label: "progressive JPEG 4:2:0, 6400 × 4500 (28.8 MP)",
            bytes: craft::flat_jpeg(6_400, 4_500, &w420, Coding::Progressive),
            accepted: true,
        },
        Case {
            label: "CMYK JPEG, 7000 × 5200 (36.4 MP)",
            bytes: craft::flat_jpeg(7_000, 5_200, &[(1, 1); 4], Coding::Baseline),
            accepted: true,
        },
        Case {
            label: "PNG 8-bit RGB, 7745 × 7745 (60 MP), EXIF-rotated",
            bytes: craft::zero_png(7_745, 7_745, 8, rgb, Some(6), true),
            accepted: true,
        },
        Case {
            label: "PNG 16-bit RGBA, 5700 × 5700 (32.5 MP), EXIF-rotated",
            bytes: craft::zero_png(5_700, 5_700, 16, rgba, Some(6), true),
            accepted: true,
        },
        Case {
            label: "WebP lossless, 5600 × 5600 (31.4 MP)",
            bytes: crate::images::webp(5_600, 5_600),
            accepted: true,
        },
        Case {
            label: "bomb: JPEG header of 65535 × 65535 over 64 KB",
            bytes: crate::images::lying_jpeg(65_535, 65_535, 64 * 1024, Coding::Baseline),
            accepted: false,
        },
        Case {
            label: "bomb: JPEG header of 8000 × 7000 over 64 KB",
            bytes: crate::images::lying_jpeg(8_000, 7_000, 64 * 1024, Coding::Baseline),
            accepted: false,
        },
        Case {
            label: "bomb: progressive JPEG 8000 × 7000",
            bytes: craft::flat_jpeg(8_000, 7_000, &w420, Coding::Progressive),
            accepted: false,
        },
        Case {
            label: "bomb: PNG 16-bit RGBA 7745 × 7745, EXIF-rotated",
            bytes: craft::zero_png(7_745, 7_745, 16, rgba, Some(6), true),
            accepted: false,
        },
    ]
}

/// `jpeg` with an APP1 segment saying "rotate 90°".
fn rotated_jpeg(jpeg: &[u8]) -> Vec<u8> {
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&craft::exif_orientation(6));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn processing_fits_in_the_function_memory() {
    let work = tempfile::tempdir().unwrap();
    let limit = u64::from(MEMORY_MB) * 1024 * 1024;
    let mut table = vec![
        format!(
            "| image ({MEMORY_MB} MB function) | file | result | peak RSS | of which before processing | time (this build) |"
        ),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    for case in cases() {
        let path = work.path().join("image");
        std::fs::write(&path, &case.bytes).unwrap();
        let out = Command::new("prlimit")
            .arg(format!("--as={limit}"))
            .arg("--")
            .arg(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "memory::memory_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_FILE, &path)
            // One malloc arena per thread reserves 64 MB of address space;
            // two threads decode at most.
            .env("MALLOC_ARENA_MAX", "2")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: the child ended with {}:\n{stdout}\n{}",
            case.label,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.split_once(name).map(|(_, value)| value))
                .unwrap_or_else(|| panic!("{}: no {name} in\n{stdout}", case.label))
                .to_owned()
        };
        let outcome = field("outcome=");
        assert_eq!(
            outcome.starts_with("ok"),
            case.accepted,
            "{}: {outcome}",
            case.label
        );
        let peak: u64 = field("peak_kb=").parse().unwrap();
        let start: u64 = field("start_kb=").parse().unwrap();
        assert!(peak * 1024 < limit, "{}: peak {peak} kB", case.label);
        let ms: u64 = field("ms=").parse().unwrap();
        table.push(format!(
            "| {} | {:.1} MB | {} | {} MB | {} MB | {:.2} s |",
            case.label,
            f64::from(u32::try_from(case.bytes.len()).unwrap()) / 1e6,
            if case.accepted {
                "processed"
            } else {
                "refused"
            },
            peak / 1024,
            start / 1024,
            std::time::Duration::from_millis(ms).as_secs_f64()
        ));
    }
    eprintln!("{}", table.join("\n"));
}
