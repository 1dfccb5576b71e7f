//! Datasources as portal objects: the built-in set (installed on first start, updated by
//! new builds unless an administrator changed them), validation with
//! `palisade_core::datasource`, and the file format users keep under version control.

use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use palisade_core::datasource::{self, DataSource};
use palisade_core::module_lint;
use palisade_store::inventory::DatasourceDoc;
use palisade_store::objects::{self, ObjectQuery};
use palisade_store::StoreError;
use serde_json::{json, Value};

/// Fields every item carries.
pub const REQUIRED: &[&str] = &["id", "name"];

/// Parses and validates a definition (the export format, or the same JSON through the API).
pub fn parse(text: &str) -> Result<DataSource, ApiError> {
    datasource::import(text).map_err(|e| ApiError::BadRequest(format!("datasource: {e}")))
}

fn definition(ds: &DataSource) -> Result<Value, ApiError> {
    serde_json::from_str(&datasource::export(ds)).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The API shape: the definition plus id, builtin, version and timestamps.
pub fn render(d: &DatasourceDoc) -> Value {
    let mut v = d.definition.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), json!(d.id));
        o.insert("builtin".into(), json!(d.builtin));
        o.insert("version".into(), json!(d.version));
        o.insert("createdOn".into(), json!(d.created_on / 1000));
        o.insert("updatedOn".into(), json!(d.updated_on / 1000));
        if let Some(review) = script_review(&d.definition) {
            o.insert("scriptReview".into(), review);
        }
    }
    v
}

/// For a script datasource: the lint findings of the source it carries
/// ([`palisade_core::module_lint`]), or a note that it carries none to review.
pub fn script_review(definition: &Value) -> Option<Value> {
    let collector = definition.get("collector")?;
    if collector.get("method").and_then(Value::as_str) != Some("script") {
        return None;
    }
    let Some(source) = collector.get("source").and_then(Value::as_str) else {
        return Some(json!({
            "reviewed": false,
            "needsElevation": false,
            "findings": [],
            "note": "no source uploaded with the module: the script on each collector was not reviewed by the portal (run palisade-collector lint-module there)",
        }));
    };
    let findings = module_lint::lint(source);
    let needs = findings.iter().any(|f| !f.in_comment);
    Some(json!({
        "reviewed": true,
        "needsElevation": needs,
        "findings": findings.iter().map(|f| json!({
            "line": f.line,
            "rule": f.rule,
            "finding": f.finding,
            "alternative": f.alternative,
            "inComment": f.in_comment,
        })).collect::<Vec<_>>(),
    }))
}

/// The export file of a stored datasource.
pub fn export(d: &DatasourceDoc) -> Result<String, ApiError> {
    let text =
        serde_json::to_string(&d.definition).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(datasource::export(&parse(&text)?))
}

/// Creates a datasource (refused if the name exists).
pub async fn create(
    portal: &Portal,
    actor: &Actor,
    ds: DataSource,
) -> Result<DatasourceDoc, ApiError> {
    let doc = DatasourceDoc {
        name: ds.name.clone(),
        builtin: false,
        version: 1,
        definition: definition(&ds)?,
        ..Default::default()
    };
    let audit = actor.event(
        portal.now(),
        "datasource.create",
        format!("created datasource {{id}} `{}`", ds.name),
    );
    Ok(objects::create(portal.store.as_ref(), &doc, Some(audit)).await?)
}

/// Replaces a datasource's definition (the name may change).
pub async fn replace(
    portal: &Portal,
    actor: &Actor,
    id: i64,
    ds: DataSource,
) -> Result<DatasourceDoc, ApiError> {
    let def = definition(&ds)?;
    let audit = actor.event(
        portal.now(),
        "datasource.update",
        format!("changed datasource {id} `{}`", ds.name),
    );
    Ok(objects::update::<DatasourceDoc, _>(
        portal.store.as_ref(),
        id,
        move |d| {
            d.name = ds.name.clone();
            d.definition = def;
            d.builtin = false;
            d.version += 1;
            Ok(())
        },
        Some(audit),
    )
    .await?)
}

/// Creates or replaces by name (import).
pub async fn import(
    portal: &Portal,
    actor: &Actor,
    ds: DataSource,
) -> Result<DatasourceDoc, ApiError> {
    let existing: Option<DatasourceDoc> =
        objects::find(portal.store.as_ref(), &ds.name.to_lowercase()).await?;
    match existing {
        Some(d) => replace(portal, actor, d.id, ds).await,
        None => create(portal, actor, ds).await,
    }
}

/// Installs the built-in datasources that are missing, and updates built-ins nobody changed.
pub async fn install_builtins(portal: &Portal) -> Result<usize, ApiError> {
    let actor = Actor::system("datasources");
    let existing: Vec<DatasourceDoc> =
        objects::list(portal.store.as_ref(), ObjectQuery::default()).await?;
    let mut changed = 0;
    for ds in datasource::builtins() {
        let def = definition(&ds)?;
        match existing
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(&ds.name))
        {
            None => {
                let doc = DatasourceDoc {
                    name: ds.name.clone(),
                    builtin: true,
                    version: 1,
                    definition: def,
                    ..Default::default()
                };
                let audit = actor.event(
                    portal.now(),
                    "datasource.create",
                    format!("installed built-in datasource {{id}} `{}`", ds.name),
                );
                match objects::create(portal.store.as_ref(), &doc, Some(audit)).await {
                    Ok(_) => changed += 1,
                    // Another instance installed it at the same moment.
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Some(d) if d.builtin && d.definition != def => {
                let audit = actor.event(
                    portal.now(),
                    "datasource.update",
                    format!("updated built-in datasource {} `{}`", d.id, ds.name),
                );
                objects::update::<DatasourceDoc, _>(
                    portal.store.as_ref(),
                    d.id,
                    move |x| {
                        x.definition = def;
                        x.version += 1;
                        Ok(())
                    },
                    Some(audit),
                )
                .await?;
                changed += 1;
            }
            Some(_) => {}
        }
    }
    Ok(changed)
}
