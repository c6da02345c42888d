//! What the pipeline reports: one type per command, shown as text for people
//! and serialized as one JSON object with `--output json`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use serde::Serialize;

use crate::deploy::change_set::{Change, Import};
use crate::deploy::first_request::FirstRequest;
use crate::deploy::guard::{self, AtRisk};
use crate::deploy::stack::StackStatus;
use crate::deploy::static_sync::SyncReport;
use crate::output::Printer;
use crate::preview::Preview;

/// What `up` did.
#[derive(Debug, Serialize)]
pub struct UpReport {
    pub stage: String,
    pub stack: String,
    pub target: String,
    pub status: StackStatus,
    pub up_to_date: bool,
    /// The id of its history record (none when nothing changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    pub url: Option<String>,
    pub outputs: BTreeMap<String, String>,
    /// Changes the template makes directly.
    pub changes: Vec<Change>,
    /// Resources CloudFormation may update because an attribute they refer
    /// to may change (evaluated at run time).
    pub dependent_changes: Vec<Change>,
    /// A retained stage's survivors, imported into the new stack before the
    /// update (`deployer up` after `down`); absent when there were none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub readopted: Vec<StackResource>,
    /// A function that `up --hotswap` had left drifted from the stack was
    /// made to match it again.
    pub reconciled: bool,
    /// A preview stage's base, expiry and what it does not take from the base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
    pub artifact: ArtifactReport,
    #[serde(rename = "static")]
    pub static_files: SyncReport,
    /// `GET /health`, invoked once after a deploy that changed the stage:
    /// its status, latency and the cold start's `Init Duration`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_request: Option<FirstRequest>,
    pub timings_ms: Timings,
}

impl fmt::Display for UpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.url {
            Some(url) => write!(f, "{url}"),
            None => write!(f, "stage {} is {}", self.stage, self.status),
        }
    }
}

/// The code `up` deployed.
#[derive(Debug, Serialize, Default)]
pub struct ArtifactReport {
    pub key: String,
    pub bucket: String,
    /// The account the artifacts bucket must belong to.
    #[serde(skip)]
    pub owner: String,
    /// The zip's size.
    pub bytes: usize,
    /// The `bootstrap`'s size, unzipped (what a cold start loads).
    pub unzipped_bytes: u64,
    pub uploaded: bool,
    /// Older artifacts of the stack marked to expire (all but the newest ten).
    pub retired: Vec<String>,
}

impl ArtifactReport {
    /// `code bootstrap/….zip: 5.1 MiB zipped, 16.0 MiB unzipped`.
    pub fn sizes(&self) -> String {
        format!(
            "code {}: {} zipped, {} unzipped",
            self.key,
            human_bytes(u64::try_from(self.bytes).unwrap_or(u64::MAX)),
            human_bytes(self.unzipped_bytes)
        )
    }
}

/// `812 B`, `14.2 KiB`, `5.1 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    #[allow(clippy::cast_precision_loss)] // one decimal shown
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// How long each step of `up` took, in milliseconds.
#[derive(Debug, Serialize, Default)]
pub struct Timings {
    pub build: u64,
    pub upload: u64,
    pub change_set: u64,
    pub apply: u64,
    #[serde(rename = "static")]
    pub static_files: u64,
    pub total: u64,
}

/// What `plan` found; nothing was executed.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub stage: String,
    pub stack: String,
    pub target: String,
    /// `CREATE` for a new stack, `UPDATE` otherwise.
    pub change_set_type: &'static str,
    pub up_to_date: bool,
    /// Changes the template makes directly.
    pub changes: Vec<Change>,
    /// Resources that may be updated because an attribute they refer to may
    /// change (CloudFormation decides at run time).
    pub dependent_changes: Vec<Change>,
    /// Changes that would replace or delete a table, bucket or user pool:
    /// `up` refuses them unless `--allow-replace` names each.
    pub data_at_risk: Vec<AtRisk>,
    /// A stage without a stack whose retained table, bucket and user pool
    /// survived an earlier `down`: `up` imports them before the create.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_import: Vec<Import>,
    pub code_key: String,
}

impl fmt::Display for PlanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.up_to_date {
            return write!(f, "stage {} is up to date", self.stage);
        }
        write!(
            f,
            "{} of stack `{}`: {} change(s)",
            self.change_set_type,
            self.stack,
            self.changes.len()
        )?;
        for change in &self.changes {
            write!(f, "\n  {change}")?;
        }
        for risk in &self.data_at_risk {
            write!(
                f,
                "\nDATA AT RISK: {risk}; `up` refuses this unless `--allow-replace {}`",
                risk.logical_id
            )?;
        }
        for import in &self.would_import {
            write!(
                f,
                "\nWOULD IMPORT {} ({}) `{}`: retained by an earlier `down`; `up` re-adopts it (asking first, or with `--yes`)",
                import.logical_id, import.resource_type, import.physical_id
            )?;
        }
        if !self.dependent_changes.is_empty() {
            write!(
                f,
                "\n{} resource(s) may be updated through references, decided at run time:",
                self.dependent_changes.len()
            )?;
            for change in &self.dependent_changes {
                write!(f, "\n  {change}")?;
            }
        }
        Ok(())
    }
}

/// One resource of a deployed stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StackResource {
    pub logical_id: String,
    pub resource_type: String,
    pub physical_id: String,
}

/// What `down` did.
#[derive(Debug, Serialize)]
pub struct DownReport {
    pub stage: String,
    pub stack: String,
    pub target: String,
    /// `NOT_DEPLOYED` when there was nothing to delete.
    pub status: String,
    pub deleted: Vec<StackResource>,
    pub retained: Vec<StackResource>,
    pub objects_deleted: usize,
    pub millis: u64,
}

/// The status `down` reports for a stage that is not deployed.
pub const NOT_DEPLOYED: &str = "NOT_DEPLOYED";

impl fmt::Display for DownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.status == NOT_DEPLOYED {
            return write!(f, "stage {} is not deployed; nothing to delete", self.stage);
        }
        write!(
            f,
            "stage {} deleted ({} resources, {} objects)",
            self.stage,
            self.deleted.len(),
            self.objects_deleted
        )?;
        for kept in &self.retained {
            write!(
                f,
                "\nkept (retain_data): {} `{}`",
                kept.resource_type, kept.physical_id
            )?;
        }
        Ok(())
    }
}

/// Prints direct changes, then the ones that may follow through references;
/// a change that would replace or delete data is marked (in red at a terminal).
pub fn show_changes(printer: &Printer, direct: &[Change], dependent: &[Change]) {
    let line = |change: &Change| {
        let risk = guard::at_risk(std::slice::from_ref(change));
        match risk.first() {
            None => format!("  {change}"),
            Some(risk) => {
                printer.alert(&format!("  {change}  <- DATA {}", risk.why.to_uppercase()))
            }
        }
    };
    printer.info(format_args!("{} change(s):", direct.len()));
    for change in direct {
        printer.info(line(change));
    }
    if !dependent.is_empty() {
        printer.info(format_args!(
            "{} resource(s) may be updated through references, decided at run time:",
            dependent.len()
        ));
        for change in dependent {
            printer.info(line(change));
        }
    }
}

/// Measures a step.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Self(Instant::now())
    }

    pub fn millis(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_in_bytes_and_binary_units() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 + 100 * 1024), "5.1 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        let report = ArtifactReport {
            key: "bootstrap/a.zip".into(),
            bytes: 2048,
            unzipped_bytes: 16 * 1024 * 1024,
            ..ArtifactReport::default()
        };
        assert_eq!(
            report.sizes(),
            "code bootstrap/a.zip: 2.0 KiB zipped, 16.0 MiB unzipped"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["bytes"], 2048);
        assert_eq!(json["unzipped_bytes"], 16 * 1024 * 1024);
    }
}
