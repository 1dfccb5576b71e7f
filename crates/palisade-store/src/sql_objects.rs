//! The SQL implementation of [`ObjectStore`].

use crate::objects::*;
use crate::sql::{is_unique_violation, now_ms, SqlStore};
use crate::{AuditEvent, Backend, Store, StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

const OBJECT_COLUMNS: &str = "id, lookup, ref_id, flag, data, created_on, updated_on";

fn object_from_row(r: &AnyRow) -> StoreResult<StoredObject> {
    Ok(StoredObject {
        id: r.try_get("id")?,
        lookup: r.try_get("lookup")?,
        ref_id: r.try_get("ref_id")?,
        flag: r.try_get("flag")?,
        data: r.try_get("data")?,
        created_on: r.try_get("created_on")?,
        updated_on: r.try_get("updated_on")?,
    })
}

fn hds_from_row(r: &AnyRow) -> StoreResult<DeviceDatasourceRecord> {
    Ok(DeviceDatasourceRecord {
        id: r.try_get("id")?,
        device_id: r.try_get("device_id")?,
        datasource: r.try_get("datasource")?,
        created_on: r.try_get("created_on")?,
    })
}

fn instance_from_row(r: &AnyRow) -> StoreResult<InstanceRecord> {
    Ok(InstanceRecord {
        id: r.try_get("id")?,
        hds_id: r.try_get("hds_id")?,
        name: r.try_get("name")?,
        display_name: r.try_get("display_name")?,
        description: r.try_get("description")?,
        properties: r.try_get("properties")?,
        created_on: r.try_get("created_on")?,
        last_seen: r.try_get("last_seen")?,
    })
}

fn conflict(kind: ObjectKind, fields: &ObjectFields, e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(format!(
            "a {} with this name ({})",
            kind.noun(),
            fields.lookup.as_deref().unwrap_or("")
        ))
    } else {
        StoreError::Database(e)
    }
}

impl SqlStore {
    async fn object_in(
        &self,
        conn: &mut AnyConnection,
        kind: ObjectKind,
        id: i64,
    ) -> StoreResult<Option<StoredObject>> {
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM {} WHERE id = $1",
            kind.table()
        );
        sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| object_from_row(&r))
            .transpose()
    }
}

#[async_trait]
impl ObjectStore for SqlStore {
    async fn list_objects(
        &self,
        kind: ObjectKind,
        query: ObjectQuery,
    ) -> StoreResult<Vec<StoredObject>> {
        let mut sql = format!("SELECT {OBJECT_COLUMNS} FROM {} WHERE 1 = 1", kind.table());
        if query.ref_id.is_some() {
            sql.push_str(" AND ref_id = $1");
        }
        if query.flag.is_some() {
            sql.push_str(if query.ref_id.is_some() {
                " AND flag = $2"
            } else {
                " AND flag = $1"
            });
        }
        sql.push_str(" ORDER BY id");
        let mut q = sqlx::query(&sql);
        if let Some(r) = query.ref_id {
            q = q.bind(r);
        }
        if let Some(f) = query.flag {
            q = q.bind(f);
        }
        q.fetch_all(self.pool())
            .await?
            .iter()
            .map(object_from_row)
            .collect()
    }

    async fn get_object(&self, kind: ObjectKind, id: i64) -> StoreResult<Option<StoredObject>> {
        let mut conn = self.pool().acquire().await?;
        self.object_in(&mut conn, kind, id).await
    }

    async fn find_object(
        &self,
        kind: ObjectKind,
        lookup: &str,
    ) -> StoreResult<Option<StoredObject>> {
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM {} WHERE lookup = $1",
            kind.table()
        );
        sqlx::query(&sql)
            .bind(lookup)
            .fetch_optional(self.pool())
            .await?
            .map(|r| object_from_row(&r))
            .transpose()
    }

    async fn create_object(
        &self,
        kind: ObjectKind,
        fields: ObjectFields,
        audit: Option<AuditEvent>,
    ) -> StoreResult<StoredObject> {
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "INSERT INTO {} (lookup, ref_id, flag, data, created_on, updated_on) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            kind.table()
        );
        let row = sqlx::query(&sql)
            .bind(fields.lookup.clone())
            .bind(fields.ref_id)
            .bind(fields.flag)
            .bind(&fields.data)
            .bind(now)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict(kind, &fields, e))?;
        let id: i64 = row.try_get("id")?;
        if let Some(mut audit) = audit {
            audit.description = audit.description.replace("{id}", &id.to_string());
            self.append_in(&mut tx, &[audit]).await?;
        }
        tx.commit().await?;
        Ok(StoredObject {
            id,
            lookup: fields.lookup,
            ref_id: fields.ref_id,
            flag: fields.flag,
            data: fields.data,
            created_on: now,
            updated_on: now,
        })
    }

    async fn update_object(
        &self,
        kind: ObjectKind,
        id: i64,
        change: ObjectChangeFn,
        audit: Option<AuditEvent>,
    ) -> StoreResult<StoredObject> {
        let mut tx = self.write_tx().await?;
        let current = self
            .object_in(&mut tx, kind, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("{} {id}", kind.noun())))?;
        let fields = change(&current)?;
        let now = now_ms().max(current.updated_on);
        let sql = format!(
            "UPDATE {} SET lookup = $1, ref_id = $2, flag = $3, data = $4, updated_on = $5 WHERE id = $6",
            kind.table()
        );
        sqlx::query(&sql)
            .bind(fields.lookup.clone())
            .bind(fields.ref_id)
            .bind(fields.flag)
            .bind(&fields.data)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(kind, &fields, e))?;
        if let Some(audit) = audit {
            self.append_in(&mut tx, &[audit]).await?;
        }
        tx.commit().await?;
        Ok(StoredObject {
            id,
            lookup: fields.lookup,
            ref_id: fields.ref_id,
            flag: fields.flag,
            data: fields.data,
            created_on: current.created_on,
            updated_on: now,
        })
    }

    async fn delete_object(
        &self,
        kind: ObjectKind,
        id: i64,
        audit: Option<AuditEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let sql = format!("DELETE FROM {} WHERE id = $1", kind.table());
        let done = sqlx::query(&sql).bind(id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("{} {id}", kind.noun())));
        }
        if let Some(audit) = audit {
            self.append_in(&mut tx, &[audit]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_batch(
        &self,
        collector_id: i64,
        batch_id: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let sql = match self.backend() {
            Backend::Sqlite => "INSERT OR IGNORE INTO collector_batches (collector_id, batch_id, received_on) VALUES ($1, $2, $3)",
            Backend::Postgres => "INSERT INTO collector_batches (collector_id, batch_id, received_on) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        };
        let done = sqlx::query(sql)
            .bind(collector_id)
            .bind(batch_id)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn batch_seen(&self, collector_id: i64, batch_id: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM collector_batches WHERE collector_id = $1 AND batch_id = $2",
        )
        .bind(collector_id)
        .bind(batch_id)
        .fetch_one(self.pool())
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok(n > 0)
    }

    async fn prune_batches(&self, before_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM collector_batches WHERE received_on < $1")
            .bind(before_ms)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    async fn ensure_instances(
        &self,
        device_id: i64,
        datasource: &str,
        instances: &[InstanceSpec],
        now_ms: i64,
    ) -> StoreResult<(DeviceDatasourceRecord, Vec<InstanceRecord>)> {
        let ignore = match self.backend() {
            Backend::Sqlite => ("INSERT OR IGNORE INTO", ""),
            Backend::Postgres => ("INSERT INTO", " ON CONFLICT DO NOTHING"),
        };
        let mut tx = self.pool().begin().await?;
        sqlx::query(&format!(
            "{} device_datasources (device_id, datasource, created_on) VALUES ($1, $2, $3){}",
            ignore.0, ignore.1
        ))
        .bind(device_id)
        .bind(datasource)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let hds = sqlx::query(
            "SELECT id, device_id, datasource, created_on FROM device_datasources WHERE device_id = $1 AND datasource = $2",
        )
        .bind(device_id)
        .bind(datasource)
        .fetch_one(&mut *tx)
        .await?;
        let hds = hds_from_row(&hds)?;
        let mut out = Vec::with_capacity(instances.len());
        for i in instances {
            sqlx::query(&format!(
                "{} instances (hds_id, name, display_name, description, properties, created_on, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $6){}",
                ignore.0, ignore.1
            ))
            .bind(hds.id)
            .bind(&i.name)
            .bind(&i.display_name)
            .bind(&i.description)
            .bind(&i.properties)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE instances SET last_seen = $1, display_name = $2, description = $3, properties = $4 WHERE hds_id = $5 AND name = $6",
            )
            .bind(now_ms)
            .bind(&i.display_name)
            .bind(&i.description)
            .bind(&i.properties)
            .bind(hds.id)
            .bind(&i.name)
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query(
                "SELECT id, hds_id, name, display_name, description, properties, created_on, last_seen FROM instances WHERE hds_id = $1 AND name = $2",
            )
            .bind(hds.id)
            .bind(&i.name)
            .fetch_one(&mut *tx)
            .await?;
            out.push(instance_from_row(&row)?);
        }
        tx.commit().await?;
        Ok((hds, out))
    }

    async fn list_device_datasources(
        &self,
        device_id: i64,
    ) -> StoreResult<Vec<DeviceDatasourceRecord>> {
        sqlx::query(
            "SELECT id, device_id, datasource, created_on FROM device_datasources WHERE device_id = $1 ORDER BY id",
        )
        .bind(device_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(hds_from_row)
        .collect()
    }

    async fn get_device_datasource(&self, id: i64) -> StoreResult<Option<DeviceDatasourceRecord>> {
        sqlx::query(
            "SELECT id, device_id, datasource, created_on FROM device_datasources WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .map(|r| hds_from_row(&r))
        .transpose()
    }

    async fn list_instances(&self, hds_id: i64) -> StoreResult<Vec<InstanceRecord>> {
        sqlx::query(
            "SELECT id, hds_id, name, display_name, description, properties, created_on, last_seen FROM instances WHERE hds_id = $1 ORDER BY id",
        )
        .bind(hds_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(instance_from_row)
        .collect()
    }

    async fn delete_device_datasources(&self, device_id: i64) -> StoreResult<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM instances WHERE hds_id IN (SELECT id FROM device_datasources WHERE device_id = $1)")
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM device_datasources WHERE device_id = $1")
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn load_alert_states(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT series, data FROM alert_states ORDER BY series")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("series")?, r.try_get("data")?)))
            .collect()
    }

    async fn save_alert_states(
        &self,
        states: Vec<(String, Option<String>)>,
        now_ms: i64,
    ) -> StoreResult<()> {
        if states.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool().begin().await?;
        for (series, data) in states {
            sqlx::query("DELETE FROM alert_states WHERE series = $1")
                .bind(&series)
                .execute(&mut *tx)
                .await?;
            if let Some(data) = data {
                sqlx::query(
                    "INSERT INTO alert_states (series, data, updated_on) VALUES ($1, $2, $3)",
                )
                .bind(&series)
                .bind(&data)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
