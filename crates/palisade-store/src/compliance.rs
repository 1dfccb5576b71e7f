//! Snapshots of the compliance scores, kept over time (`/api/compliance/history`,
//! `palisade compliance history`). One document per snapshot in `compliance_snapshots`;
//! automatic snapshots carry the UTC day as their unique key, so that several portal
//! instances take at most one per day.

use crate::objects::{Document, ObjectKind};
use serde::{Deserialize, Serialize};

/// One score in a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SnapshotScore {
    /// The section id (`two-factor`, ...).
    pub id: String,
    /// Its mandate (1 to 4).
    pub mandate: i64,
    /// Compliant (or excepted) objects.
    pub compliant: i64,
    /// Objects in scope.
    pub total: i64,
    /// Percent, one decimal.
    pub score: f64,
    /// Findings.
    pub findings: i64,
}

/// A snapshot of the scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ComplianceSnapshotDoc {
    /// Id.
    #[serde(skip)]
    pub id: i64,
    /// When it was taken, epoch ms.
    pub taken_on: i64,
    /// What took it: `daily` (serve), `report` (a report computed after more than a day),
    /// `on-demand`.
    pub trigger: String,
    /// For automatic snapshots, the UTC day (`YYYY-MM-DD`): at most one per day.
    pub day: Option<String>,
    /// Every section together.
    pub overall: SnapshotScore,
    /// Per section.
    pub sections: Vec<SnapshotScore>,
}

impl Document for ComplianceSnapshotDoc {
    const KIND: ObjectKind = ObjectKind::ComplianceSnapshot;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn lookup(&self) -> Option<String> {
        self.day.as_ref().map(|d| format!("daily:{d}"))
    }
}
