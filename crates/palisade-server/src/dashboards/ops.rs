//! Operations on dashboards and widgets: privileges, validation and the audit entry of each
//! change (committed with the change). The REST handlers and the pages both call these.

use super::model::{self, DashboardDoc, WidgetDoc};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use crate::signin::gate::SessionCaller;
use crate::AppState;
use palisade_core::privilege::{allows, Level, Need, Privilege};
use palisade_store::objects::{self, ObjectQuery};
use palisade_store::{TokenType, UserRecord};
use serde_json::Value;

/// Who is looking at or changing dashboards.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// For audit entries.
    pub actor: Actor,
    /// The user (for a widget token: its owner).
    pub user: UserRecord,
    /// What the caller may do to dashboards. For a widget token exactly
    /// `dashboard:<its dashboard>:read` (the gate checked the owner still holds it).
    pub privileges: Vec<Privilege>,
    /// What widget data may show of devices and alerts: the user's `host_group` privileges
    /// (for a widget token its owner's, read only).
    pub data_privileges: Vec<Privilege>,
    /// The dashboard of a widget token.
    pub widget_dashboard: Option<i64>,
}

impl Viewer {
    /// From an API caller (LMv1, Bearer, widget token or browser session).
    pub async fn from_caller(state: &AppState, caller: &Caller) -> Result<Viewer, ApiError> {
        let widget = caller
            .token
            .as_ref()
            .filter(|t| t.kind == TokenType::Widget);
        let (data_privileges, widget_dashboard) = match widget {
            Some(t) => {
                let roles = state.portal.store.list_roles().await?;
                let data = Portal::privileges_of(&caller.user, &roles)
                    .into_iter()
                    .filter(|p| p.object_type == "host_group")
                    .map(|mut p| {
                        p.operation = Level::Read.as_str().into();
                        p
                    })
                    .collect();
                (data, t.dashboard_id)
            }
            None => (caller.privileges.clone(), None),
        };
        Ok(Viewer {
            actor: caller.actor.clone(),
            user: caller.user.clone(),
            privileges: caller.privileges.clone(),
            data_privileges,
            widget_dashboard,
        })
    }

    /// From a signed-in page.
    pub fn from_session(caller: &SessionCaller) -> Viewer {
        Viewer {
            actor: caller.actor.clone(),
            user: caller.user.clone(),
            privileges: caller.privileges.clone(),
            data_privileges: caller.privileges.clone(),
            widget_dashboard: None,
        }
    }

    /// Whether the privileges grant `need`.
    pub fn may(&self, need: Need) -> bool {
        allows(&self.privileges, &need)
    }

    fn require(&self, need: Need) -> Result<(), ApiError> {
        if self.may(need) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "user `{}` lacks the privilege {need}; grant it through a custom role",
                self.user.username
            )))
        }
    }
}

/// Whether `viewer` sees `d` at all: a privilege on it (or on every dashboard), and for a
/// private dashboard being its owner or holding `dashboard:*:manage`.
pub fn sees(viewer: &Viewer, d: &DashboardDoc) -> bool {
    if viewer.widget_dashboard.is_some_and(|w| w != d.id) {
        return false;
    }
    viewer.may(Need::Dashboard(Some(d.id), Level::Read))
        && (d.sharable
            || d.owner.eq_ignore_ascii_case(&viewer.user.username)
            || viewer.may(Need::Dashboard(None, Level::Manage)))
}

/// What `viewer` may do with `d`: `manage`, `write` or `read`.
pub fn permission(viewer: &Viewer, d: &DashboardDoc) -> &'static str {
    if viewer.widget_dashboard.is_some() {
        return "read";
    }
    [Level::Manage, Level::Write]
        .into_iter()
        .find(|l| viewer.may(Need::Dashboard(Some(d.id), *l)))
        .map(Level::as_str)
        .unwrap_or("read")
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("dashboard {id} not found"))
}

/// The dashboards `viewer` sees, by id.
pub async fn list(state: &AppState, viewer: &Viewer) -> Result<Vec<DashboardDoc>, ApiError> {
    let all: Vec<DashboardDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    Ok(all.into_iter().filter(|d| sees(viewer, d)).collect())
}

/// One dashboard `viewer` sees (404 otherwise), refused (403) unless it may act at `level`.
pub async fn get(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    level: Level,
) -> Result<DashboardDoc, ApiError> {
    let d: DashboardDoc = objects::get(state.portal.store.as_ref(), id)
        .await?
        .filter(|d| sees(viewer, d))
        .ok_or_else(|| not_found(id))?;
    if level != Level::Read {
        if viewer.widget_dashboard.is_some() {
            return Err(ApiError::Forbidden("widget tokens are read-only".into()));
        }
        viewer.require(Need::Dashboard(Some(id), level))?;
    }
    Ok(d)
}

/// Creates a dashboard (`dashboard:*:manage`); the caller becomes its owner.
pub async fn create(
    state: &AppState,
    viewer: &Viewer,
    body: &Value,
) -> Result<DashboardDoc, ApiError> {
    viewer.require(Need::Dashboard(None, Level::Manage))?;
    let mut d = DashboardDoc {
        owner: viewer.user.username.clone(),
        last_updated_by: viewer.user.username.clone(),
        ..Default::default()
    };
    model::apply_dashboard(&mut d, body, true)?;
    let audit = viewer.actor.event(
        state.portal.now(),
        "dashboard.create",
        format!("Created dashboard {{id}} `{}`", d.name),
    );
    Ok(objects::create(state.portal.store.as_ref(), &d, Some(audit)).await?)
}

/// Changes a dashboard (`dashboard:<id>:write`): the fields present in `body`. Making a
/// dashboard private or changing its owner needs `manage`.
pub async fn update(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    body: &Value,
) -> Result<DashboardDoc, ApiError> {
    let current = get(state, viewer, id, Level::Write).await?;
    let mut next = current.clone();
    model::apply_dashboard(&mut next, body, false)?;
    if next.sharable != current.sharable {
        viewer.require(Need::Dashboard(Some(id), Level::Manage))?;
    }
    next.last_updated_by = viewer.user.username.clone();
    let changed = describe_dashboard_change(&current, &next);
    let audit = viewer.actor.event(
        state.portal.now(),
        "dashboard.update",
        format!("Updated dashboard {id} `{}`: {changed}", next.name),
    );
    Ok(objects::update(
        state.portal.store.as_ref(),
        id,
        move |d: &mut DashboardDoc| {
            d.name = next.name;
            d.description = next.description;
            d.group_id = next.group_id;
            d.sharable = next.sharable;
            d.widgets_config = next.widgets_config;
            d.last_updated_by = next.last_updated_by;
            Ok(())
        },
        Some(audit),
    )
    .await?)
}

fn describe_dashboard_change(a: &DashboardDoc, b: &DashboardDoc) -> String {
    let mut parts = Vec::new();
    if a.name != b.name {
        parts.push(format!("name `{}` -> `{}`", a.name, b.name));
    }
    if a.description != b.description {
        parts.push("description".to_string());
    }
    if a.group_id != b.group_id {
        parts.push(format!("groupId {} -> {}", a.group_id, b.group_id));
    }
    if a.sharable != b.sharable {
        parts.push(format!("sharable {} -> {}", a.sharable, b.sharable));
    }
    if a.widgets_config != b.widgets_config {
        parts.push("widgetsConfig".to_string());
    }
    if parts.is_empty() {
        "no change".into()
    } else {
        parts.join(", ")
    }
}

/// Deletes a dashboard (`dashboard:<id>:manage`), its widgets and its widget tokens.
pub async fn delete(state: &AppState, viewer: &Viewer, id: i64) -> Result<(), ApiError> {
    let d = get(state, viewer, id, Level::Manage).await?;
    let store = state.portal.store.as_ref();
    let now = state.portal.now();
    // The tokens first: a token whose dashboard is gone must not linger (it would open
    // nothing, but it would still be listed as if it did).
    for t in state.portal.store.list_tokens(None).await? {
        if t.kind == TokenType::Widget && t.dashboard_id == Some(id) {
            let audit = viewer.actor.event(
                now,
                "token.delete",
                format!(
                    "Deleted widget token {} (access id {}) of user {}: its dashboard {id} was deleted",
                    t.id, t.access_id, t.user_id
                ),
            );
            match state.portal.store.delete_token(t.id, audit).await {
                Ok(()) | Err(palisade_store::StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let widgets: Vec<WidgetDoc> = objects::list(
        store,
        ObjectQuery {
            ref_id: Some(id),
            flag: None,
        },
    )
    .await?;
    let audit = viewer.actor.event(
        now,
        "dashboard.delete",
        format!(
            "Deleted dashboard {id} `{}` and its {} widget(s)",
            d.name,
            widgets.len()
        ),
    );
    for w in &widgets {
        match objects::delete::<WidgetDoc>(store, w.id, None).await {
            Ok(()) | Err(palisade_store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(objects::delete::<DashboardDoc>(store, id, Some(audit)).await?)
}

/// The widgets of a dashboard `viewer` sees, by id.
pub async fn widgets_of(
    state: &AppState,
    viewer: &Viewer,
    dashboard: i64,
) -> Result<(DashboardDoc, Vec<WidgetDoc>), ApiError> {
    let d = get(state, viewer, dashboard, Level::Read).await?;
    let widgets = objects::list(
        state.portal.store.as_ref(),
        ObjectQuery {
            ref_id: Some(dashboard),
            flag: None,
        },
    )
    .await?;
    Ok((d, widgets))
}

/// Every widget of every dashboard `viewer` sees.
pub async fn all_widgets(
    state: &AppState,
    viewer: &Viewer,
) -> Result<Vec<(DashboardDoc, WidgetDoc)>, ApiError> {
    let dashboards = list(state, viewer).await?;
    let widgets: Vec<WidgetDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    Ok(widgets
        .into_iter()
        .filter_map(|w| {
            dashboards
                .iter()
                .find(|d| d.id == w.dashboard_id)
                .map(|d| (d.clone(), w))
        })
        .collect())
}

/// One widget whose dashboard `viewer` sees, refused unless it may act at `level` on it.
pub async fn widget(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    level: Level,
) -> Result<(DashboardDoc, WidgetDoc), ApiError> {
    let w: WidgetDoc = objects::get(state.portal.store.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("widget {id} not found")))?;
    let d = match get(state, viewer, w.dashboard_id, level).await {
        Err(ApiError::NotFound(_)) => {
            return Err(ApiError::NotFound(format!("widget {id} not found")))
        }
        other => other?,
    };
    Ok((d, w))
}

async fn parse(state: &AppState, body: &Value) -> Result<WidgetDoc, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    // A graph may name its instance by id (`dsiId`) instead of by name.
    let by_id = body
        .get("dsiId")
        .and_then(Value::as_i64)
        .filter(|i| *i > 0)
        .filter(|_| body.get("dsiName").is_none_or(Value::is_null));
    let resolved = match by_id {
        Some(inst) => Some(resolve_instance(state, body, inst).await?),
        None => None,
    };
    model::parse_widget(body, &estate, resolved)
}

async fn resolve_instance(
    state: &AppState,
    body: &Value,
    inst: i64,
) -> Result<(i64, String, String), ApiError> {
    let device = body
        .get("hId")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::BadRequest("`dsiId` needs `hId` (the device id)".into()))?;
    for h in state.portal.store.list_device_datasources(device).await? {
        if let Some(i) = state
            .portal
            .store
            .list_instances(h.id)
            .await?
            .into_iter()
            .find(|i| i.id == inst)
        {
            return Ok((device, h.datasource, i.name));
        }
    }
    Err(ApiError::BadRequest(format!(
        "`dsiId`: device {device} has no instance {inst}"
    )))
}

/// Adds a widget to a dashboard (`dashboard:<id>:write`).
pub async fn create_widget(
    state: &AppState,
    viewer: &Viewer,
    body: &Value,
) -> Result<WidgetDoc, ApiError> {
    let mut w = parse(state, body).await?;
    let d = get(state, viewer, w.dashboard_id, Level::Write).await?;
    w.last_updated_by = viewer.user.username.clone();
    let audit = viewer.actor.event(
        state.portal.now(),
        "dashboard.widget.create",
        format!(
            "Added {} widget {{id}} `{}` to dashboard {} `{}`",
            w.spec.lm_type(),
            w.name,
            d.id,
            d.name
        ),
    );
    Ok(objects::create(state.portal.store.as_ref(), &w, Some(audit)).await?)
}

/// Changes a widget (`dashboard:<id>:write` on its dashboard, and on the target dashboard
/// when it moves). `replace`: the body is the whole widget (PUT); else only the fields
/// present change (PATCH).
pub async fn update_widget(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    body: &Value,
    replace: bool,
) -> Result<WidgetDoc, ApiError> {
    let (d, current) = widget(state, viewer, id, Level::Write).await?;
    let estate = state.estate.get(&state.portal).await?;
    let mut merged = if replace {
        serde_json::json!({ "dashboardId": current.dashboard_id })
    } else {
        model::render_widget(&current, &estate, "write")
    };
    if let (Some(m), Some(b)) = (merged.as_object_mut(), body.as_object()) {
        if b.contains_key("dsiId") && !b.contains_key("dsiName") {
            m.remove("dsiName");
        }
        if b.contains_key("items") && !b.contains_key("deviceGroupId") {
            m.remove("deviceGroupId");
        }
        for (k, v) in b {
            m.insert(k.clone(), v.clone());
        }
    } else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    let mut next = parse(state, &merged).await?;
    if next.dashboard_id != current.dashboard_id {
        get(state, viewer, next.dashboard_id, Level::Write).await?;
    }
    next.last_updated_by = viewer.user.username.clone();
    let audit = viewer.actor.event(
        state.portal.now(),
        "dashboard.widget.update",
        format!(
            "Updated widget {id} `{}` of dashboard {} `{}`",
            next.name, d.id, d.name
        ),
    );
    Ok(objects::update(
        state.portal.store.as_ref(),
        id,
        move |w: &mut WidgetDoc| {
            next.id = w.id;
            *w = next;
            Ok(())
        },
        Some(audit),
    )
    .await?)
}

/// Removes a widget (`dashboard:<id>:write` on its dashboard).
pub async fn delete_widget(state: &AppState, viewer: &Viewer, id: i64) -> Result<(), ApiError> {
    let (d, w) = widget(state, viewer, id, Level::Write).await?;
    let audit = viewer.actor.event(
        state.portal.now(),
        "dashboard.widget.delete",
        format!(
            "Removed widget {id} `{}` from dashboard {} `{}`",
            w.name, d.id, d.name
        ),
    );
    Ok(objects::delete::<WidgetDoc>(state.portal.store.as_ref(), id, Some(audit)).await?)
}

/// Widgets in display order: those placed in `widgetsConfig` by (row, col), then the others
/// by id.
pub fn ordered(d: &DashboardDoc, mut widgets: Vec<WidgetDoc>) -> Vec<WidgetDoc> {
    let place = |w: &WidgetDoc| {
        d.widgets_config
            .get(&w.id.to_string())
            .map(|p| {
                (
                    0,
                    p.get("row").and_then(Value::as_i64).unwrap_or(0),
                    p.get("col").and_then(Value::as_i64).unwrap_or(0),
                )
            })
            .unwrap_or((1, 0, 0))
    };
    widgets.sort_by_key(|w| (place(w), w.id));
    widgets
}

/// The width of a widget on a 12-column grid (`sizex` of `widgetsConfig`, default 6).
pub fn width(d: &DashboardDoc, w: &WidgetDoc) -> i64 {
    d.widgets_config
        .get(&w.id.to_string())
        .and_then(|p| p.get("sizex"))
        .and_then(Value::as_i64)
        .map(|x| match x {
            ..=3 => 3,
            4 => 4,
            5..=6 => 6,
            7..=8 => 8,
            _ => 12,
        })
        .unwrap_or(6)
}
