//! Collection methods. Each implements [`Method`]: given a [`Task`] (a device and a
//! datasource) it returns an [`Outcome`] with raw values by datapoint name; rates and
//! expressions are computed afterwards ([`crate::process`]).
//!
//! | method | here |
//! |---|---|
//! | `ssh` on the collector's own host | [`local`]: `/proc/stat`, `/proc/meminfo`, `statvfs` per filesystem, `/proc/net/dev`; no command ever runs |
//! | `ssh` to another device | [`ssh`]: the datasource's command over SSH (russh), its output read by the same parsers |
//! | `http` | [`http`] |
//! | `prometheus` | [`prometheus`] |
//! | `script` | [`script`]: only a name from the scripts directory |
//! | `ping` | [`ping`]: unprivileged ICMP datagram sockets, raw sockets with `cap_net_raw` |
//! | `snmp` | [`snmp`]: SNMPv2c and SNMPv3 GET of scalars and GetBulk walks of tables |

pub mod http;
pub mod local;
pub mod ping;
pub mod prometheus;
pub mod script;
pub mod snmp;
pub mod ssh;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use palisade_core::datasource::{Collector, DataSource, SshTarget};

use crate::error::Result;
use crate::process::Outcome;
use crate::work::Device;

/// A boxed future, for [`Method`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One collection to make.
#[derive(Debug, Clone)]
pub struct Task {
    /// The device.
    pub device: Arc<Device>,
    /// The datasource.
    pub datasource: Arc<DataSource>,
    /// Whether the device is the collector's own host.
    pub own_host: bool,
}

/// A collection method.
pub trait Method: Send + Sync {
    /// Collects once.
    fn collect<'a>(&'a self, task: &'a Task) -> BoxFuture<'a, Outcome>;
}

/// A method not written yet: every collection reports an error saying so.
#[derive(Debug, Clone)]
pub struct NotBuilt(pub &'static str);

impl Method for NotBuilt {
    fn collect<'a>(&'a self, _task: &'a Task) -> BoxFuture<'a, Outcome> {
        let what = self.0;
        Box::pin(async move { Outcome::error(format!("{what}: not built yet")) })
    }
}

/// Every method, chosen per task.
pub struct Methods {
    local: local::Local,
    http: http::Http,
    prometheus: prometheus::Prometheus,
    script: script::Script,
    ping: ping::Ping,
    ssh: ssh::Ssh,
    snmp: snmp::Snmp,
    not_local: NotLocal,
}

impl std::fmt::Debug for Methods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Methods").finish_non_exhaustive()
    }
}

/// `target: local` on a device that is not the collector's host: no data, said so.
#[derive(Debug, Clone)]
struct NotLocal;

impl Method for NotLocal {
    fn collect<'a>(&'a self, _task: &'a Task) -> BoxFuture<'a, Outcome> {
        Box::pin(async {
            Outcome::error(
                "target `local` reads only the collector's own host, and this device is not it",
            )
        })
    }
}

impl Methods {
    /// All methods; `scripts_dir` is where the `script` method finds scripts.
    pub fn new(scripts_dir: Option<PathBuf>) -> Result<Methods> {
        Ok(Methods {
            local: local::Local,
            http: http::Http::new()?,
            prometheus: prometheus::Prometheus::new()?,
            script: script::Script::new(scripts_dir),
            ping: ping::Ping,
            ssh: ssh::Ssh::new(),
            snmp: snmp::Snmp::new(),
            not_local: NotLocal,
        })
    }

    /// The method for a task.
    pub fn for_task(&self, task: &Task) -> &dyn Method {
        match &task.datasource.collector {
            Collector::Ssh(c) => {
                let local_ok = c.parser.has_local_source();
                match c.target {
                    SshTarget::Auto if task.own_host && local_ok => &self.local,
                    SshTarget::Local if task.own_host && local_ok => &self.local,
                    SshTarget::Local => &self.not_local,
                    SshTarget::Auto | SshTarget::Ssh => &self.ssh,
                }
            }
            Collector::Http(_) => &self.http,
            Collector::Prometheus(_) => &self.prometheus,
            Collector::Script(_) => &self.script,
            Collector::Ping(_) => &self.ping,
            Collector::Snmp(_) => &self.snmp,
        }
    }

    /// Collects once with the right method.
    pub async fn collect(&self, task: &Task) -> Outcome {
        self.for_task(task).collect(task).await
    }
}

/// Maps fields (parser field → value) to datapoints through a `fields`/`keys` map
/// (datapoint → field).
pub fn map_fields(
    mapping: &std::collections::BTreeMap<String, String>,
    fields: &crate::parse::Fields,
) -> std::collections::BTreeMap<String, f64> {
    mapping
        .iter()
        .filter_map(|(dp, field)| fields.get(field).map(|v| (dp.clone(), *v)))
        .collect()
}
