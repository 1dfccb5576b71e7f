//! Dashboards, widgets and widget tokens (`docs/dashboards.md`).
//!
//! - `model`: the stored documents ([`model::DashboardDoc`], [`model::WidgetDoc`]) and their
//!   LogicMonitor wire shapes;
//! - `ops`: the operations with their privileges (`dashboard:<id>|*:read|write|manage`) and
//!   audit entries, shared by the REST API and the pages;
//! - `tokens`: widget tokens, the third kind of API token (read-only, one dashboard), and the
//!   API gate's decision on each request made with one ([`tokens::admit`]);
//! - `data`: what a widget shows, limited by the viewer's `host_group` privileges;
//! - `render`: server-side HTML and SVG of widgets;
//! - `routes`: `/santaba/rest/dashboard/...`;
//! - `pages`: `/ui/dashboards/...` and the wall screen `/wall#<widget token>`.

pub mod data;
pub mod model;
pub mod ops;
pub mod pages;
pub mod render;
pub mod routes;
pub mod tokens;
