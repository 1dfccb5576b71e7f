//! The monitoring half of the store interface: device groups, devices, collectors,
//! datasources, SDTs, alert chains and rules, alerts, plus the small tables collection
//! needs (datasource instances, result-batch deduplication, alert evaluation state).
//!
//! Monitoring objects are documents: each kind has its own table with the same shape (an
//! id, an optional unique `lookup` key, an optional reference `ref_id`, an integer `flag`
//! for the one indexed state of that kind, the JSON document and two timestamps). The typed
//! layer over it is [`Document`] with [`get`], [`list`], [`create`], [`update`] and
//! [`delete`]. Like every other mutation, a change commits together with its audit entry.

use crate::{AuditEvent, StoreError, StoreResult};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The kinds of monitoring objects, one table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// `/device/groups`
    DeviceGroup,
    /// `/device/devices`
    Device,
    /// `/setting/collector/groups`
    CollectorGroup,
    /// `/setting/collector/collectors`
    Collector,
    /// `/setting/datasources`
    Datasource,
    /// `/sdt/sdts`
    Sdt,
    /// `/setting/alert/chains`
    AlertChain,
    /// `/setting/alert/rules`
    AlertRule,
    /// `/alert/alerts`
    Alert,
    /// `/dashboard/dashboards`
    Dashboard,
    /// `/dashboard/widgets`
    DashboardWidget,
    /// Daily and on-demand snapshots of the compliance scores (`/api/compliance/history`).
    ComplianceSnapshot,
}

impl ObjectKind {
    /// The table holding this kind.
    pub fn table(self) -> &'static str {
        match self {
            ObjectKind::DeviceGroup => "device_groups",
            ObjectKind::Device => "devices",
            ObjectKind::CollectorGroup => "collector_groups",
            ObjectKind::Collector => "collectors",
            ObjectKind::Datasource => "datasources",
            ObjectKind::Sdt => "sdts",
            ObjectKind::AlertChain => "alert_chains",
            ObjectKind::AlertRule => "alert_rules",
            ObjectKind::Alert => "alerts",
            ObjectKind::Dashboard => "dashboards",
            ObjectKind::DashboardWidget => "dashboard_widgets",
            ObjectKind::ComplianceSnapshot => "compliance_snapshots",
        }
    }

    /// What an operator calls it, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::DeviceGroup => "device group",
            ObjectKind::Device => "device",
            ObjectKind::CollectorGroup => "collector group",
            ObjectKind::Collector => "collector",
            ObjectKind::Datasource => "datasource",
            ObjectKind::Sdt => "SDT",
            ObjectKind::AlertChain => "escalation chain",
            ObjectKind::AlertRule => "alert rule",
            ObjectKind::Alert => "alert",
            ObjectKind::Dashboard => "dashboard",
            ObjectKind::DashboardWidget => "widget",
            ObjectKind::ComplianceSnapshot => "compliance snapshot",
        }
    }
}

/// One stored object, untyped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Id, unique per kind.
    pub id: i64,
    /// Unique key (names, credential hashes), if the kind has one.
    pub lookup: Option<String>,
    /// The object this one belongs to or points at (kind-specific).
    pub ref_id: Option<i64>,
    /// Kind-specific indexed state (e.g. 1 for a cleared alert).
    pub flag: i64,
    /// The JSON document.
    pub data: String,
    /// Created, epoch ms.
    pub created_on: i64,
    /// Last changed, epoch ms.
    pub updated_on: i64,
}

/// The columns of a new or changed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFields {
    /// Unique key.
    pub lookup: Option<String>,
    /// Reference.
    pub ref_id: Option<i64>,
    /// Indexed state.
    pub flag: i64,
    /// The JSON document.
    pub data: String,
}

/// Which objects a list returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectQuery {
    /// Only objects with this reference.
    pub ref_id: Option<i64>,
    /// Only objects with this flag.
    pub flag: Option<i64>,
}

/// A change computed from the current object under the store's write lock.
pub type ObjectChangeFn = Box<dyn FnOnce(&StoredObject) -> StoreResult<ObjectFields> + Send>;

/// A datasource applied to a device (LogicMonitor's "device datasource", `hdsId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDatasourceRecord {
    /// `hdsId`.
    pub id: i64,
    /// The device.
    pub device_id: i64,
    /// The datasource's name.
    pub datasource: String,
    /// Created, epoch ms.
    pub created_on: i64,
}

/// One instance of a datasource on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    /// Id.
    pub id: i64,
    /// The device datasource.
    pub hds_id: i64,
    /// Name (unique within the device datasource).
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Properties (JSON object).
    pub properties: String,
    /// First seen, epoch ms.
    pub created_on: i64,
    /// Last seen, epoch ms.
    pub last_seen: i64,
}

/// An instance reported by ingest or a collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// Name.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Properties (JSON object).
    pub properties: String,
}

/// Storage for monitoring objects.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Objects of a kind, by id.
    async fn list_objects(
        &self,
        kind: ObjectKind,
        query: ObjectQuery,
    ) -> StoreResult<Vec<StoredObject>>;
    /// One object.
    async fn get_object(&self, kind: ObjectKind, id: i64) -> StoreResult<Option<StoredObject>>;
    /// The object with this unique key.
    async fn find_object(
        &self,
        kind: ObjectKind,
        lookup: &str,
    ) -> StoreResult<Option<StoredObject>>;
    /// Creates an object; `{id}` in the audit description is replaced by the new id.
    async fn create_object(
        &self,
        kind: ObjectKind,
        fields: ObjectFields,
        audit: Option<AuditEvent>,
    ) -> StoreResult<StoredObject>;
    /// Changes an object: `change` sees the current version under the write lock.
    async fn update_object(
        &self,
        kind: ObjectKind,
        id: i64,
        change: ObjectChangeFn,
        audit: Option<AuditEvent>,
    ) -> StoreResult<StoredObject>;
    /// Deletes an object.
    async fn delete_object(
        &self,
        kind: ObjectKind,
        id: i64,
        audit: Option<AuditEvent>,
    ) -> StoreResult<()>;

    /// Records a collector's result batch; false when it was seen before (a retry).
    async fn claim_batch(
        &self,
        collector_id: i64,
        batch_id: &str,
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// Whether a collector's result batch was recorded before.
    async fn batch_seen(&self, collector_id: i64, batch_id: &str) -> StoreResult<bool>;
    /// Forgets batch ids received before `before_ms`; returns how many.
    async fn prune_batches(&self, before_ms: i64) -> StoreResult<u64>;

    /// Finds or creates the device datasource and its instances; updates `last_seen`.
    async fn ensure_instances(
        &self,
        device_id: i64,
        datasource: &str,
        instances: &[InstanceSpec],
        now_ms: i64,
    ) -> StoreResult<(DeviceDatasourceRecord, Vec<InstanceRecord>)>;
    /// The datasources applied to a device.
    async fn list_device_datasources(
        &self,
        device_id: i64,
    ) -> StoreResult<Vec<DeviceDatasourceRecord>>;
    /// One device datasource.
    async fn get_device_datasource(&self, id: i64) -> StoreResult<Option<DeviceDatasourceRecord>>;
    /// The instances of a device datasource.
    async fn list_instances(&self, hds_id: i64) -> StoreResult<Vec<InstanceRecord>>;
    /// Removes a device's datasources and instances (when the device is deleted).
    async fn delete_device_datasources(&self, device_id: i64) -> StoreResult<()>;

    /// Saved alert evaluation states (series key, JSON).
    async fn load_alert_states(&self) -> StoreResult<Vec<(String, String)>>;
    /// Saves alert evaluation states (`None` removes one).
    async fn save_alert_states(
        &self,
        states: Vec<(String, Option<String>)>,
        now_ms: i64,
    ) -> StoreResult<()>;
}

/// A typed monitoring object stored as a document.
pub trait Document: Serialize + DeserializeOwned + Send + Sync + Sized {
    /// Its kind.
    const KIND: ObjectKind;
    /// The id (set from the row when read).
    fn id(&self) -> i64;
    /// Sets the id.
    fn set_id(&mut self, id: i64);
    /// The unique key, if any (names compared case-insensitively: lower-case them).
    fn lookup(&self) -> Option<String> {
        None
    }
    /// The indexed reference, if any.
    fn ref_id(&self) -> Option<i64> {
        None
    }
    /// The indexed state.
    fn flag(&self) -> i64 {
        0
    }
    /// Sets the timestamps from the row (most documents keep them in the row only).
    fn set_times(&mut self, _created_on: i64, _updated_on: i64) {}

    /// The columns for this document.
    fn fields(&self) -> StoreResult<ObjectFields> {
        Ok(ObjectFields {
            lookup: self.lookup(),
            ref_id: self.ref_id(),
            flag: self.flag(),
            data: serde_json::to_string(self)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", Self::KIND.noun())))?,
        })
    }

    /// Decodes a stored object.
    fn decode(o: &StoredObject) -> StoreResult<Self> {
        let mut d: Self = serde_json::from_str(&o.data)
            .map_err(|e| StoreError::Corrupt(format!("{} {}: {e}", Self::KIND.noun(), o.id)))?;
        d.set_id(o.id);
        d.set_times(o.created_on, o.updated_on);
        Ok(d)
    }
}

/// One typed object.
pub async fn get<D: Document>(store: &dyn ObjectStore, id: i64) -> StoreResult<Option<D>> {
    store
        .get_object(D::KIND, id)
        .await?
        .map(|o| D::decode(&o))
        .transpose()
}

/// The typed object with this unique key.
pub async fn find<D: Document>(store: &dyn ObjectStore, lookup: &str) -> StoreResult<Option<D>> {
    store
        .find_object(D::KIND, lookup)
        .await?
        .map(|o| D::decode(&o))
        .transpose()
}

/// Typed objects.
pub async fn list<D: Document>(store: &dyn ObjectStore, query: ObjectQuery) -> StoreResult<Vec<D>> {
    store
        .list_objects(D::KIND, query)
        .await?
        .iter()
        .map(D::decode)
        .collect()
}

/// Creates a typed object and returns it with its id.
pub async fn create<D: Document>(
    store: &dyn ObjectStore,
    doc: &D,
    audit: Option<AuditEvent>,
) -> StoreResult<D> {
    let o = store.create_object(D::KIND, doc.fields()?, audit).await?;
    D::decode(&o)
}

/// Changes a typed object atomically: `change` edits the current version (or refuses).
pub async fn update<D, F>(
    store: &dyn ObjectStore,
    id: i64,
    change: F,
    audit: Option<AuditEvent>,
) -> StoreResult<D>
where
    D: Document + 'static,
    F: FnOnce(&mut D) -> StoreResult<()> + Send + 'static,
{
    let f: ObjectChangeFn = Box::new(move |o: &StoredObject| {
        let mut d = D::decode(o)?;
        change(&mut d)?;
        d.fields()
    });
    let o = store.update_object(D::KIND, id, f, audit).await?;
    D::decode(&o)
}

/// Deletes a typed object.
pub async fn delete<D: Document>(
    store: &dyn ObjectStore,
    id: i64,
    audit: Option<AuditEvent>,
) -> StoreResult<()> {
    store.delete_object(D::KIND, id, audit).await
}
