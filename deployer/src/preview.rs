//! Preview stages: a stage made from another stage's file
//! (`deployer up --stage pr-42 --from dev --ttl 7d`) that lives until it
//! expires. The model only: how long it lives ([`Ttl`]), when it expires
//! ([`Timestamp`], RFC 3339 UTC), the stack tags that record both
//! ([`Preview`]), and the base stage's settings made fit for a throwaway
//! stage ([`derive`]). Finding, listing and tearing down previews on AWS is
//! `crate::deploy::previews`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::SystemTime;

use aws_sdk_cloudformation::primitives::{DateTime, DateTimeFormat};
use serde::Serialize;

use crate::stage::{Stage, StageName};

/// The stack tag naming the stage whose file a preview is made from.
pub const BASE_TAG: &str = "deployer:base";
/// The stack tag holding when a preview expires (RFC 3339, UTC).
pub const EXPIRES_TAG: &str = "deployer:expires";
/// Environment variable that stands in for the clock (RFC 3339), for tests.
pub const NOW_VAR: &str = "DEPLOYER_NOW";

const MINUTES_PER_HOUR: u32 = 60;
const MINUTES_PER_DAY: u32 = 24 * MINUTES_PER_HOUR;
/// The longest a preview may live: 90 days.
const MAX_TTL_MINUTES: u32 = 90 * MINUTES_PER_DAY;

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(
        "`{value}` is not a time to live: {reason}; use a whole number and a unit, `m` (minutes), `h` (hours) or `d` (days), from 1m to 90d, e.g. `--ttl 7d`"
    )]
    BadTtl { value: String, reason: &'static str },
    #[error(
        "`{NOW_VAR}={value}` is not an RFC 3339 time; use one like `2026-12-01T12:00:00Z`, or unset `{NOW_VAR}` to use the clock"
    )]
    BadNow { value: String },
    #[error(
        "stage `{stage}` has its own stage file `{}`; `--from` makes a preview stage from another stage's file, for a name without one: drop `--from`, or pick another name (e.g. `pr-42`)",
        path.display()
    )]
    HasOwnFile { stage: String, path: PathBuf },
    #[error(
        "`--ttl` is for preview stages (made with `--from`); stage `{stage}` has its own stage file `{}` and never expires: drop `--ttl`",
        path.display()
    )]
    TtlWithoutPreview { stage: String, path: PathBuf },
    #[error(
        "stage `{stage}` has no stage file and is not a preview stage: {reason}; stages with a file: {}. Create a preview with `deployer up --stage {stage} --from <stage>`, or pick one of those with `--stage`",
        existing.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        stage: String,
        reason: String,
        existing: Vec<String>,
    },
    #[error(
        "stage `{stage}` is a preview of `{base}` (tag `{BASE_TAG}` of stack `{stack}`), but `{base}` has no stage file any more: restore `stacks/{base}.yaml`, or make the preview from another stage with `deployer up --stage {stage} --from <stage>`"
    )]
    BaseGone {
        stage: String,
        base: String,
        stack: String,
    },
}

/// How long a preview lives: 1 minute to 90 days, written `30m`, `12h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl {
    minutes: u32,
}

impl Ttl {
    /// A preview's life when `--ttl` is not given: 7 days.
    pub const DEFAULT: Self = Self {
        minutes: 7 * MINUTES_PER_DAY,
    };

    pub fn seconds(self) -> i64 {
        i64::from(self.minutes) * 60
    }
}

impl FromStr for Ttl {
    type Err = PreviewError;

    fn from_str(value: &str) -> Result<Self, PreviewError> {
        let bad = |reason| PreviewError::BadTtl {
            value: value.to_owned(),
            reason,
        };
        let unit = value.chars().last().unwrap_or(' ');
        let per_unit = match unit {
            'm' => 1,
            'h' => MINUTES_PER_HOUR,
            'd' => MINUTES_PER_DAY,
            _ => return Err(bad("it does not end in a unit")),
        };
        let number = &value[..value.len() - unit.len_utf8()];
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("it does not start with a whole number"));
        }
        let minutes = number
            .parse::<u32>()
            .ok()
            .and_then(|n| n.checked_mul(per_unit))
            .ok_or_else(|| bad("it is longer than 90 days"))?;
        match minutes {
            0 => Err(bad("it is shorter than a minute")),
            m if m > MAX_TTL_MINUTES => Err(bad("it is longer than 90 days")),
            minutes => Ok(Self { minutes }),
        }
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.minutes.is_multiple_of(MINUTES_PER_DAY) {
            write!(f, "{}d", self.minutes / MINUTES_PER_DAY)
        } else if self.minutes.is_multiple_of(MINUTES_PER_HOUR) {
            write!(f, "{}h", self.minutes / MINUTES_PER_HOUR)
        } else {
            write!(f, "{}m", self.minutes)
        }
    }
}

/// A moment, to the second, shown and tagged as RFC 3339 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    /// `ttl` after `now`.
    pub fn after(now: Self, ttl: Ttl) -> Self {
        Self(now.0.saturating_add(ttl.seconds()))
    }

    /// Reads an RFC 3339 time (`2026-12-01T12:00:00Z`, or with an offset).
    pub fn parse(text: &str) -> Option<Self> {
        DateTime::from_str(text, DateTimeFormat::DateTimeWithOffset)
            .ok()
            .map(Self::from)
    }

    /// Whether this moment has passed at `now`.
    pub fn is_past(self, now: Self) -> bool {
        self <= now
    }

    /// Seconds from `earlier` to this moment (0 if it is later).
    pub fn seconds_since(self, earlier: Self) -> u64 {
        u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0)
    }
}

impl From<DateTime> for Timestamp {
    fn from(time: DateTime) -> Self {
        Self(time.secs())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::from_secs(self.0).fmt(DateTimeFormat::DateTime) {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "{} seconds after 1970", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Now: `DEPLOYER_NOW` (RFC 3339) when set, else the clock.
pub fn now() -> Result<Timestamp, PreviewError> {
    now_from(std::env::var(NOW_VAR).ok().as_deref())
}

/// Now, from the value of `DEPLOYER_NOW` (`None` or empty: the clock).
pub fn now_from(value: Option<&str>) -> Result<Timestamp, PreviewError> {
    match value.filter(|v| !v.is_empty()) {
        Some(text) => Timestamp::parse(text).ok_or_else(|| PreviewError::BadNow {
            value: text.to_owned(),
        }),
        None => Ok(DateTime::from(SystemTime::now()).into()),
    }
}

/// Age as people read it: `45s`, `12m`, `5h 3m`, `3d 4h`.
pub fn human_age(seconds: u64) -> String {
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {}m", m % 60),
        (d, h, _) => format!("{d}d {}h", h % 24),
    }
}

/// What makes a stage a preview: the stage it is made from and when it
/// expires (its stack's tags), and what was changed from the base's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub base: StageName,
    /// `None` only for a stack whose expiry tag is missing or unreadable.
    pub expires: Option<Timestamp>,
    /// Settings of the base that a preview does not take, said once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Preview {
    /// The stack tags that record the preview.
    pub fn tags(&self) -> Vec<(String, String)> {
        let mut tags = vec![(BASE_TAG.to_owned(), self.base.to_string())];
        if let Some(expires) = self.expires {
            tags.push((EXPIRES_TAG.to_owned(), expires.to_string()));
        }
        tags
    }

    /// The preview a stack's tags describe; `None` without a readable
    /// `deployer:base` tag (a stage with a file of its own).
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Self> {
        let base = StageName::parse(tags.get(BASE_TAG)?).ok()?;
        Some(Self {
            base,
            expires: tags
                .get(EXPIRES_TAG)
                .map(String::as_str)
                .and_then(Timestamp::parse),
            notes: Vec::new(),
        })
    }

    /// Whether it has expired at `now` (never, without a readable expiry).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|e| e.is_past(now))
    }
}

/// The stage `name` made from `base`'s file, with what only makes sense for
/// a kept stage turned off: `retain_data`, a fixed bucket name (the
/// preview's bucket is named by CloudFormation after its own stack),
/// point-in-time recovery and access logs set in the file (they follow
/// `retain_data` again). The notes say what was changed.
pub fn derive(base: &Stage, name: StageName) -> (Stage, Vec<String>) {
    let mut config = base.config.clone();
    let mut notes = Vec::new();
    let from = &base.name;
    if config.retain_data {
        config.retain_data = false;
        notes.push(format!(
            "`{from}` has `retain_data: true`; the preview does not: its table, bucket and user pool are deleted with it"
        ));
    }
    if let Some(bucket) = config.bucket.name.take() {
        notes.push(format!(
            "`bucket.name: {bucket}` belongs to `{from}`; the preview's bucket is named after its own stack"
        ));
    }
    if config.table.point_in_time_recovery.take() == Some(true) {
        notes.push(format!(
            "`{from}`'s `table.point_in_time_recovery` is off for the preview"
        ));
    }
    if config.api.access_logs.take() == Some(true) {
        notes.push(format!(
            "`{from}`'s `api.access_logs` is off for the preview (its logging role would outlive it)"
        ));
    }
    let stage = Stage {
        name,
        path: base.path.clone(),
        config,
    };
    (stage, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttl(text: &str) -> Result<Ttl, String> {
        text.parse::<Ttl>().map_err(|e| e.to_string())
    }

    #[test]
    fn ttls_take_minutes_hours_and_days_from_a_minute_to_ninety_days() {
        assert_eq!(ttl("1m").unwrap().seconds(), 60);
        assert_eq!(ttl("12h").unwrap().seconds(), 12 * 3600);
        assert_eq!(ttl("7d").unwrap(), Ttl::DEFAULT);
        assert_eq!(ttl("90d").unwrap().seconds(), 90 * 86_400);
        assert_eq!(ttl("2160h").unwrap(), ttl("90d").unwrap());
        assert_eq!(ttl("90m").unwrap().to_string(), "90m");
        assert_eq!(ttl("120m").unwrap().to_string(), "2h");
        assert_eq!(ttl("48h").unwrap().to_string(), "2d");
    }

    #[test]
    fn bad_ttls_say_why_and_what_is_allowed() {
        for (text, why) in [
            ("0m", "shorter than a minute"),
            ("91d", "longer than 90 days"),
            ("129601m", "longer than 90 days"),
            ("99999999999d", "longer than 90 days"),
            ("7", "does not end in a unit"),
            ("7w", "does not end in a unit"),
            ("7é", "does not end in a unit"),
            ("éd", "does not start with a whole number"),
            ("", "does not end in a unit"),
            ("d", "does not start with a whole number"),
            ("-1d", "does not start with a whole number"),
            ("1.5h", "does not start with a whole number"),
            (" 7d", "does not start with a whole number"),
        ] {
            let err = ttl(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains("from 1m to 90d"), "{err}");
        }
    }

    #[test]
    fn expiry_is_now_plus_ttl_in_rfc_3339_utc() {
        let now = now_from(Some("2026-12-01T23:30:00Z")).unwrap();
        let expires = Timestamp::after(now, ttl("7d").unwrap());
        assert_eq!(expires.to_string(), "2026-12-08T23:30:00Z");
        // Over a month's and a year's end, and from an offset.
        let now = now_from(Some("2026-12-31T23:00:00+02:00")).unwrap();
        assert_eq!(now.to_string(), "2026-12-31T21:00:00Z");
        assert_eq!(
            Timestamp::after(now, ttl("3h").unwrap()).to_string(),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            serde_json::to_value(expires).unwrap(),
            serde_json::json!("2026-12-08T23:30:00Z")
        );
    }

    #[test]
    fn a_preview_has_expired_once_its_expiry_is_reached() {
        let expires = Timestamp::parse("2026-12-08T00:00:00Z").unwrap();
        let preview = Preview {
            base: StageName::parse("dev").unwrap(),
            expires: Some(expires),
            notes: Vec::new(),
        };
        let at = |t| now_from(Some(t)).unwrap();
        assert!(!preview.is_expired(at("2026-12-07T23:59:59Z")));
        assert!(preview.is_expired(at("2026-12-08T00:00:00Z")));
        assert!(preview.is_expired(at("2027-01-01T00:00:00Z")));
        let unknown = Preview {
            expires: None,
            ..preview
        };
        assert!(!unknown.is_expired(at("2100-01-01T00:00:00Z")));
    }

    #[test]
    fn now_comes_from_deployer_now_or_the_clock() {
        assert!(
            now_from(Some("yesterday"))
                .unwrap_err()
                .to_string()
                .contains("`DEPLOYER_NOW=yesterday` is not an RFC 3339 time")
        );
        let clock = now_from(None).unwrap();
        let after_2026 = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        assert!(after_2026.is_past(clock));
        assert!(now_from(Some("")).unwrap() >= clock);
    }

    #[test]
    fn tags_round_trip_and_a_stage_without_a_base_tag_is_no_preview() {
        let preview = Preview {
            base: StageName::parse("dev").unwrap(),
            expires: Timestamp::parse("2026-12-08T00:00:00Z"),
            notes: vec!["not a tag".to_owned()],
        };
        let tags: BTreeMap<String, String> = preview.tags().into_iter().collect();
        assert_eq!(tags[BASE_TAG], "dev");
        assert_eq!(tags[EXPIRES_TAG], "2026-12-08T00:00:00Z");
        let read = Preview::from_tags(&tags).unwrap();
        assert_eq!((read.base, read.expires), (preview.base, preview.expires));
        assert!(Preview::from_tags(&BTreeMap::new()).is_none());
        let mut broken = tags;
        broken.insert(EXPIRES_TAG.to_owned(), "soon".to_owned());
        assert_eq!(Preview::from_tags(&broken).unwrap().expires, None);
    }

    #[test]
    fn ages_read_in_the_largest_units() {
        assert_eq!(human_age(42), "42s");
        assert_eq!(human_age(12 * 60 + 5), "12m");
        assert_eq!(human_age(5 * 3600 + 3 * 60), "5h 3m");
        assert_eq!(human_age(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }

    #[test]
    fn a_preview_of_a_retained_stage_keeps_nothing_and_names_no_bucket() {
        let text = "app: cloudalbum\nregion: ap-southeast-1\nretain_data: true\nbucket:\n  name: album-photos\ntable:\n  point_in_time_recovery: true\napi:\n  access_logs: true\n";
        let base = Stage {
            name: StageName::parse("prod").unwrap(),
            path: PathBuf::from("stacks/prod.yaml"),
            config: crate::stage::StageConfig::parse(text, &PathBuf::from("prod.yaml")).unwrap(),
        };
        let (preview, notes) = derive(&base, StageName::parse("pr-42").unwrap());
        assert_eq!(preview.stack_name(), "cloudalbum-pr-42");
        assert!(!preview.config.retain_data);
        assert_eq!(preview.config.bucket.name, None);
        assert!(!preview.config.api_access_logs());
        assert_eq!(preview.config.table.point_in_time_recovery, None);
        assert_eq!(notes.len(), 4, "{notes:?}");
        assert!(notes[0].contains("`prod` has `retain_data: true`"));
        // Everything else is the base's.
        assert_eq!(preview.config.region, base.config.region);
        assert_eq!(preview.config.tags, base.config.tags);
        let (plain, notes) = derive(&preview, StageName::parse("pr-43").unwrap());
        assert!(notes.is_empty());
        assert_eq!(plain.config, preview.config);
    }
}
