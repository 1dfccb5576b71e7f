//! The `snmp` method: SNMPv2c and SNMPv3 (USM) polling with [`palisade_snmp`].
//!
//! * Connection parameters come from the device's properties ([`Settings::from_device`]):
//!   `snmp.version` (`v2c` by default, `v3`), `snmp.community`, `snmp.port` (161),
//!   `snmp.security` (the v3 user), `snmp.auth` and `snmp.authToken`, `snmp.priv` and
//!   `snmp.privToken`, and optionally `snmp.timeout` (milliseconds) and `snmp.retries`. The
//!   agent is the device's address (`system.hostname`, else its host).
//! * Without a `table` the datasource's OIDs are scalars, read with one GET. With a table,
//!   the index column, the name and description columns and every datapoint column are
//!   walked (GetBulk), and rows are joined by their index: one instance per row of the
//!   index column, named by the name column (else the index).
//! * Values are raw (counters as read); [`crate::process`] turns counters into rates.
//!   A value that is not a number (an OCTET STRING that is not a decimal number, an
//!   address, an OID) is skipped and logged once; when nothing numeric is left the result
//!   is an error saying which datapoints had which types.
//! * Clients are kept per device and credentials and reused across polls, so a v3 engine
//!   is discovered (and passwords hashed into keys) once, not at every poll. A client
//!   serves one poll at a time: SNMP datasources polling one device at the same moment
//!   each take their own (at most [`MAX_IDLE`] are kept), so that an unreachable device
//!   costs each datasource one timeout, not the sum of all of theirs.
//!
//! Credentials are never logged and never part of a message: errors name the property to
//! check, never its value ([`Settings`]'s `Debug` redacts them).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use palisade_core::datasource::{Collector, SnmpCollector, SnmpTable};
use palisade_snmp::{AuthFailure, AuthProtocol, Client, ClientConfig, Oid, PrivProtocol, Value};

use super::{BoxFuture, Method, Task};
use crate::process::{Outcome, RawInstance};
use crate::work::Device;

/// The message of a collection that got no answer.
pub const TIMEOUT_MESSAGE: &str =
    "SNMP timeout (check snmp.community / v3 credentials, reachability)";

/// The default agent port.
pub const DEFAULT_PORT: u16 = 161;
/// Retransmissions after the first attempt, unless `snmp.retries` says otherwise.
pub const DEFAULT_RETRIES: u32 = 1;
/// A cached client unused this long is dropped (the device left the work).
const IDLE_CLIENT: Duration = Duration::from_secs(30 * 60);

/// What went wrong in an SNMP collection. The messages never carry a credential.
#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    /// A device property is missing or invalid.
    #[error("SNMP settings: {0}")]
    Settings(String),
    /// The device's address does not resolve.
    #[error("cannot resolve the device address `{0}`")]
    Resolve(String),
    /// A datasource OID does not parse.
    #[error("datasource OID `{oid}` of `{datapoint}` is invalid: {source}")]
    Oid {
        /// The datapoint (or table role).
        datapoint: String,
        /// The OID as written.
        oid: String,
        /// Why.
        source: palisade_snmp::OidError,
    },
    /// No answer: wrong community, wrong v3 privacy password, or unreachable.
    #[error("{TIMEOUT_MESSAGE}: {0}")]
    Timeout(String),
    /// An SNMPv3 User-based Security Model failure.
    #[error("SNMPv3 USM error for user `{user}` ({counter}): {failure}; check {check}")]
    Usm {
        /// The v3 user (not a secret: it travels in clear text).
        user: String,
        /// The usmStats counter the agent reported, or what the client saw.
        counter: &'static str,
        /// The failure.
        failure: AuthFailure,
        /// The properties to check.
        check: &'static str,
    },
    /// Any other client or agent error.
    #[error("SNMP: {0}")]
    Client(palisade_snmp::Error),
    /// The agent answered, but with nothing numeric for the datasource.
    #[error("{0}")]
    NoValues(String),
}

/// The security part of the settings: what identifies a client.
#[derive(Clone, PartialEq, Eq)]
pub enum Security {
    /// SNMPv2c.
    V2c {
        /// `snmp.community`.
        community: String,
    },
    /// SNMPv3 (USM).
    V3 {
        /// `snmp.security`.
        user: String,
        /// `snmp.auth` and `snmp.authToken`.
        auth: Option<(AuthProtocol, String)>,
        /// `snmp.priv` and `snmp.privToken`.
        privacy: Option<(PrivProtocol, String)>,
    },
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Security::V2c { .. } => f
                .debug_struct("V2c")
                .field("community", &"<redacted>")
                .finish(),
            Security::V3 {
                user,
                auth,
                privacy,
            } => f
                .debug_struct("V3")
                .field("user", user)
                .field("auth", &auth.as_ref().map(|(p, _)| p))
                .field("privacy", &privacy.as_ref().map(|(p, _)| p))
                .finish(),
        }
    }
}

/// How to reach a device's agent, from its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The device's address.
    pub host: String,
    /// `snmp.port`.
    pub port: u16,
    /// Version and credentials.
    pub security: Security,
    /// Timeout of one request, retransmissions included.
    pub timeout: Duration,
    /// Retransmissions after the first attempt.
    pub retries: u32,
}

fn prop<'a>(device: &'a Device, name: &str) -> Option<&'a str> {
    device.prop(name).map(str::trim).filter(|v| !v.is_empty())
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .collect::<String>()
        .to_ascii_uppercase()
}

/// `snmp.auth`: MD5, SHA (SHA-1), SHA224, SHA256, SHA384, SHA512 (case and dashes ignored).
pub fn auth_protocol(s: &str) -> Option<AuthProtocol> {
    Some(match norm(s).as_str() {
        "MD5" => AuthProtocol::Md5,
        "SHA" | "SHA1" => AuthProtocol::Sha1,
        "SHA224" => AuthProtocol::Sha224,
        "SHA256" => AuthProtocol::Sha256,
        "SHA384" => AuthProtocol::Sha384,
        "SHA512" => AuthProtocol::Sha512,
        _ => return None,
    })
}

/// `snmp.priv`: DES, AES (AES-128), AES128, AES192, AES256 (case and dashes ignored).
pub fn priv_protocol(s: &str) -> Option<PrivProtocol> {
    Some(match norm(s).as_str() {
        "DES" => PrivProtocol::Des,
        "AES" | "AES128" => PrivProtocol::Aes128,
        "AES192" => PrivProtocol::Aes192,
        "AES256" => PrivProtocol::Aes256,
        _ => return None,
    })
}

impl Settings {
    /// The settings of `device`; `timeout_ms` is the datasource's `timeoutMs`.
    pub fn from_device(device: &Device, timeout_ms: u32) -> Result<Settings, SnmpError> {
        let bad = |m: String| Err(SnmpError::Settings(m));
        let port = match prop(device, "snmp.port") {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return bad(format!("snmp.port `{p}` is not a port number (1 to 65535)")),
            },
        };
        let timeout_ms = match prop(device, "snmp.timeout") {
            None => u64::from(timeout_ms),
            Some(t) => match t.parse::<u64>() {
                Ok(n) if (100..=120_000).contains(&n) => n,
                _ => {
                    return bad(format!(
                        "snmp.timeout `{t}` must be milliseconds from 100 to 120000"
                    ))
                }
            },
        };
        let retries = match prop(device, "snmp.retries") {
            None => DEFAULT_RETRIES,
            Some(r) => match r.parse::<u32>() {
                Ok(n) if n <= 5 => n,
                _ => return bad(format!("snmp.retries `{r}` must be 0 to 5")),
            },
        };
        let community = prop(device, "snmp.community");
        let user = prop(device, "snmp.security");
        let version = match prop(device, "snmp.version") {
            Some(v) => norm(v).trim_start_matches('V').to_string(),
            // Only a v3 user and no community: v3, whatever the default.
            None if community.is_none() && user.is_some() => "3".into(),
            None => "2C".into(),
        };
        let security = match version.as_str() {
            "2C" | "2" => match community {
                Some(c) => Security::V2c {
                    community: c.to_string(),
                },
                None => return bad("snmp.community is not set (SNMP v2c)".into()),
            },
            "3" => {
                let Some(user) = user else {
                    return bad("snmp.security (the SNMPv3 user name) is not set".into());
                };
                let auth = match (prop(device, "snmp.auth"), prop(device, "snmp.authToken")) {
                    (_, None) => None,
                    (None, Some(t)) => Some((AuthProtocol::Sha1, t.to_string())),
                    (Some(a), Some(t)) => match auth_protocol(a) {
                        Some(p) => Some((p, t.to_string())),
                        None => {
                            return bad(format!(
                                "snmp.auth `{a}` is not one of MD5, SHA, SHA224, SHA256, SHA384, SHA512"
                            ))
                        }
                    },
                };
                let privacy = match (prop(device, "snmp.priv"), prop(device, "snmp.privToken")) {
                    (_, None) => None,
                    (None, Some(t)) => Some((PrivProtocol::Aes128, t.to_string())),
                    (Some(p), Some(t)) => match priv_protocol(p) {
                        Some(p) => Some((p, t.to_string())),
                        None => {
                            return bad(format!(
                                "snmp.priv `{p}` is not one of DES, AES, AES128, AES192, AES256"
                            ))
                        }
                    },
                };
                if privacy.is_some() && auth.is_none() {
                    return bad(
                        "snmp.privToken needs snmp.authToken (no privacy without authentication)"
                            .into(),
                    );
                }
                Security::V3 {
                    user: user.to_string(),
                    auth,
                    privacy,
                }
            }
            "1" => {
                return bad(
                    "SNMPv1 is not supported: set snmp.version to v2c (most v1 agents answer \
                     v2c too) or v3"
                        .into(),
                )
            }
            _ => {
                return bad(format!(
                    "snmp.version `{}` is not v2c or v3",
                    prop(device, "snmp.version").unwrap_or_default()
                ))
            }
        };
        Ok(Settings {
            host: device.address().to_string(),
            port,
            security,
            timeout: Duration::from_millis(timeout_ms.max(100)),
            retries,
        })
    }

    /// The client configuration: the request timeout split over the transmissions.
    pub fn client_config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::default();
        let attempts = self.retries.saturating_add(1);
        cfg.timeout = (self.timeout / attempts).max(Duration::from_millis(50));
        cfg.retries = self.retries;
        cfg
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, SnmpError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|_| SnmpError::Resolve(host.to_string()))?
        .collect();
    // IPv4 first: agents listen on IPv4 far more often than on IPv6.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| SnmpError::Resolve(host.to_string()))
}

/// A client error as a collection error, naming what to check and never a secret.
pub fn classify(e: palisade_snmp::Error, security: &Security) -> SnmpError {
    match e {
        palisade_snmp::Error::Timeout { .. } => SnmpError::Timeout(e.to_string()),
        palisade_snmp::Error::Auth(failure) => {
            let user = match security {
                Security::V3 { user, .. } => user.clone(),
                Security::V2c { .. } => String::new(),
            };
            let (counter, check) = match failure {
                AuthFailure::WrongDigest => {
                    ("usmStatsWrongDigests", "snmp.authToken and snmp.auth")
                }
                AuthFailure::UnknownUserName => ("usmStatsUnknownUserNames", "snmp.security"),
                AuthFailure::UnsupportedSecurityLevel => (
                    "usmStatsUnsupportedSecLevels",
                    "that snmp.authToken and snmp.privToken match the user's security level",
                ),
                AuthFailure::DecryptionError => {
                    ("usmStatsDecryptionErrors", "snmp.privToken and snmp.priv")
                }
                AuthFailure::NotInTimeWindow => (
                    "usmStatsNotInTimeWindows",
                    "the agent's engine boots and time",
                ),
                AuthFailure::UnknownEngineId => {
                    ("usmStatsUnknownEngineIDs", "the agent's engine ID")
                }
                AuthFailure::BadResponseDigest => {
                    ("bad response digest", "snmp.authToken and snmp.auth")
                }
                AuthFailure::BadResponseDecryption => {
                    ("bad response encryption", "snmp.privToken and snmp.priv")
                }
                _ => ("USM", "the v3 credentials"),
            };
            SnmpError::Usm {
                user,
                counter,
                failure,
                check,
            }
        }
        palisade_snmp::Error::Usm(u) => {
            SnmpError::Settings(format!("snmp.authToken / snmp.privToken: {u}"))
        }
        other => SnmpError::Client(other),
    }
}

/// A numeric value, or the name of the type that is not one. Exceptions (no such
/// object, instance, end of view) are `Ok(None)`.
pub fn numeric(v: &Value) -> Result<Option<f64>, &'static str> {
    Ok(Some(match v {
        Value::Integer(i) => f64::from(*i),
        Value::Counter32(n) | Value::Gauge32(n) | Value::TimeTicks(n) => f64::from(*n),
        Value::Counter64(n) => *n as f64,
        Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => return Ok(None),
        Value::OctetString(b) => {
            // Some agents (UCD laLoad) give numbers as text.
            return std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.trim().trim_end_matches('\0').parse::<f64>().ok())
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or("OCTET STRING");
        }
        Value::Null => return Err("NULL"),
        Value::ObjectIdentifier(_) => return Err("OBJECT IDENTIFIER"),
        Value::IpAddress(_) => return Err("IpAddress"),
        Value::Opaque(_) => return Err("Opaque"),
    }))
}

/// A value as text (instance names and descriptions).
pub fn text(v: &Value) -> Option<String> {
    let s = match v {
        Value::OctetString(b) => String::from_utf8_lossy(b)
            .trim_end_matches('\0')
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .collect(),
        v if v.is_exception() || *v == Value::Null => return None,
        v => match v.as_i128() {
            Some(n) => n.to_string(),
            None => v.to_string(),
        },
    };
    (!s.is_empty()).then_some(s)
}

fn parse_oid(datapoint: &str, oid: &str) -> Result<Oid, SnmpError> {
    oid.trim()
        .trim_start_matches('.')
        .parse()
        .map_err(|source| SnmpError::Oid {
            datapoint: datapoint.to_string(),
            oid: oid.to_string(),
            source,
        })
}

/// What one collection read, before it becomes an outcome.
#[derive(Debug, Default)]
struct Read {
    instances: Vec<RawInstance>,
    /// Datapoint → type of a value that is not a number.
    non_numeric: BTreeMap<String, &'static str>,
    /// Datapoints the agent does not have, with the OID and exception (scalars only).
    missing: Vec<(String, String)>,
}

/// Builds instances from walked columns: `rows` is the index column's suffixes in walk
/// order; `columns` maps each walked column OID to (suffix → value).
pub fn join_rows(
    table: &SnmpTable,
    oids: &BTreeMap<String, Oid>,
    index: &Oid,
    name: Option<&Oid>,
    description: Option<&Oid>,
    columns: &HashMap<Oid, HashMap<Vec<u32>, Value>>,
) -> (Vec<RawInstance>, BTreeMap<String, &'static str>) {
    let mut non_numeric = BTreeMap::new();
    let mut seen_names = HashSet::new();
    let mut instances = Vec::new();
    let empty = HashMap::new();
    let column = |o: &Oid| columns.get(o).unwrap_or(&empty);
    let mut rows: Vec<&Vec<u32>> = column(index).keys().collect();
    rows.sort();
    for row in rows {
        let idx = row.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
        let named = name.and_then(|o| column(o).get(row)).and_then(text);
        let desc = description.and_then(|o| column(o).get(row)).and_then(text);
        let mut inst_name = named.clone().unwrap_or_else(|| idx.clone());
        if !seen_names.insert(inst_name.clone()) {
            // Two rows with one name (ifName is not unique on every agent): the index
            // keeps them apart.
            inst_name = format!("{inst_name} ({idx})");
            seen_names.insert(inst_name.clone());
        }
        let display = match (&named, &desc) {
            (Some(_), _) => inst_name.clone(),
            (None, Some(d)) if table.name_oid.is_none() => format!("{d} ({idx})"),
            _ => inst_name.clone(),
        };
        let mut properties = BTreeMap::new();
        properties.insert("snmp.index".to_string(), idx.clone());
        if let Some(d) = desc {
            properties.insert("description".to_string(), d);
        }
        let mut values = BTreeMap::new();
        for (dp, col) in oids {
            match column(col).get(row).map(numeric) {
                Some(Ok(Some(v))) => {
                    values.insert(dp.clone(), v);
                }
                Some(Err(kind)) => {
                    non_numeric.insert(dp.clone(), kind);
                }
                Some(Ok(None)) | None => {}
            }
        }
        instances.push(RawInstance {
            name: Some(inst_name),
            display_name: Some(display),
            properties,
            values,
        });
    }
    (instances, non_numeric)
}

/// The idle clients of one device, for one address and one set of credentials.
struct Pool {
    addr: SocketAddr,
    security: Security,
    idle: Vec<Client>,
    used: Instant,
}

/// Idle clients kept per device (one per SNMP datasource polling it at the same moment).
pub const MAX_IDLE: usize = 4;

/// The SNMP method, with its clients per device and credentials.
pub struct Snmp {
    clients: std::sync::Mutex<HashMap<i64, Pool>>,
    warned: std::sync::Mutex<HashSet<(i64, String, String)>>,
}

impl std::fmt::Debug for Snmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snmp").finish_non_exhaustive()
    }
}

impl Default for Snmp {
    fn default() -> Self {
        Snmp::new()
    }
}

impl Snmp {
    /// No client yet.
    pub fn new() -> Snmp {
        Snmp {
            clients: std::sync::Mutex::new(HashMap::new()),
            warned: std::sync::Mutex::new(HashSet::new()),
        }
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Pool>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many idle clients are kept for `device`.
    pub fn idle_clients(&self, device: i64) -> usize {
        self.pools().get(&device).map_or(0, |p| p.idle.len())
    }

    /// A client for `device` with these settings: an idle one kept from an earlier poll
    /// when address and credentials are unchanged (its v3 engine already discovered),
    /// else a new one. Give it back with [`Snmp::release`].
    async fn acquire(
        &self,
        device: i64,
        addr: SocketAddr,
        settings: &Settings,
    ) -> Result<Client, SnmpError> {
        {
            let mut pools = self.pools();
            let now = Instant::now();
            pools.retain(|_, p| now.duration_since(p.used) < IDLE_CLIENT);
            if let Some(p) = pools.get_mut(&device) {
                if p.addr == addr && p.security == settings.security {
                    p.used = now;
                    if let Some(c) = p.idle.pop() {
                        return Ok(c);
                    }
                }
            }
        }
        match &settings.security {
            Security::V2c { community } => Client::v2c(addr, community).await,
            Security::V3 {
                user,
                auth,
                privacy,
            } => {
                Client::v3(
                    addr,
                    user,
                    auth.as_ref().map(|(p, t)| (*p, t.as_str())),
                    privacy.as_ref().map(|(p, t)| (*p, t.as_str())),
                )
                .await
            }
        }
        .map_err(|e| classify(e, &settings.security))
    }

    /// Keeps `client` for the next poll of `device`. Clients of other credentials or
    /// another address kept for the device are dropped.
    fn release(&self, device: i64, addr: SocketAddr, security: &Security, client: Client) {
        let mut pools = self.pools();
        let now = Instant::now();
        let pool = pools.entry(device).or_insert_with(|| Pool {
            addr,
            security: security.clone(),
            idle: Vec::new(),
            used: now,
        });
        if pool.addr != addr || pool.security != *security {
            pool.addr = addr;
            pool.security = security.clone();
            pool.idle.clear();
        }
        pool.used = now;
        if pool.idle.len() < MAX_IDLE {
            pool.idle.push(client);
        }
    }

    fn warn_once(&self, device: i64, datasource: &str, datapoint: &str, what: &str) {
        let mut w = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if w.insert((device, datasource.to_string(), datapoint.to_string())) {
            tracing::warn!(
                device,
                datasource,
                datapoint,
                "SNMP datapoint skipped: {what}"
            );
        }
    }

    async fn read(
        &self,
        client: &mut Client,
        c: &SnmpCollector,
        security: &Security,
    ) -> Result<Read, SnmpError> {
        let oids: BTreeMap<String, Oid> = c
            .oids
            .iter()
            .map(|(dp, o)| Ok((dp.clone(), parse_oid(dp, o)?)))
            .collect::<Result<_, SnmpError>>()?;
        let err = |e| classify(e, security);
        let Some(table) = &c.table else {
            let list: Vec<Oid> = oids.values().cloned().collect();
            let vbs = client.get(&list).await.map_err(err)?;
            let mut read = Read::default();
            let mut values = BTreeMap::new();
            for ((dp, _), vb) in oids.iter().zip(vbs) {
                match numeric(&vb.value) {
                    Ok(Some(v)) => {
                        values.insert(dp.clone(), v);
                    }
                    Ok(None) => read
                        .missing
                        .push((dp.clone(), format!("{} is {}", vb.oid, vb.value))),
                    Err(kind) => {
                        read.non_numeric.insert(dp.clone(), kind);
                    }
                }
            }
            read.instances.push(RawInstance {
                values,
                ..RawInstance::default()
            });
            return Ok(read);
        };
        let index = parse_oid("indexOid", &table.index_oid)?;
        let name = table
            .name_oid
            .as_deref()
            .map(|o| parse_oid("nameOid", o))
            .transpose()?;
        let description = table
            .description_oid
            .as_deref()
            .map(|o| parse_oid("descriptionOid", o))
            .transpose()?;
        let mut wanted: Vec<&Oid> = vec![&index];
        wanted.extend(name.iter());
        wanted.extend(description.iter());
        wanted.extend(oids.values());
        let mut columns: HashMap<Oid, HashMap<Vec<u32>, Value>> = HashMap::new();
        for col in wanted {
            if columns.contains_key(col) {
                continue;
            }
            let rows = client.bulk_walk(col).await.map_err(err)?;
            let cells = rows
                .into_iter()
                .filter_map(|(o, v)| Some((o.as_slice().get(col.len()..)?.to_vec(), v)))
                .filter(|(suffix, _)| !suffix.is_empty())
                .collect();
            columns.insert(col.clone(), cells);
        }
        let (instances, non_numeric) = join_rows(
            table,
            &oids,
            &index,
            name.as_ref(),
            description.as_ref(),
            &columns,
        );
        Ok(Read {
            instances,
            non_numeric,
            missing: Vec::new(),
        })
    }

    async fn collect_snmp(&self, task: &Task, c: &SnmpCollector) -> Result<Outcome, SnmpError> {
        let settings = Settings::from_device(&task.device, c.timeout_ms)?;
        let addr = resolve(&settings.host, settings.port).await?;
        let mut client = self.acquire(task.device.id, addr, &settings).await?;
        client.set_config(settings.client_config());
        let read = self.read(&mut client, c, &settings.security).await;
        // Kept whatever the outcome: a timeout or an error Report leaves the client sound.
        self.release(task.device.id, addr, &settings.security, client);
        let read = read?;
        let ds = &task.datasource.name;
        let any_value = read.instances.iter().any(|i| !i.values.is_empty());
        let skipped = || {
            read.non_numeric
                .iter()
                .map(|(dp, kind)| format!("{dp} is {kind}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !any_value && !read.instances.is_empty() {
            let mut why = Vec::new();
            if !read.non_numeric.is_empty() {
                why.push(format!("not a number: {}", skipped()));
            }
            if !read.missing.is_empty() {
                let m: Vec<String> = read
                    .missing
                    .iter()
                    .map(|(dp, what)| format!("{dp} ({what})"))
                    .collect();
                why.push(format!("not on the agent: {}", m.join(", ")));
            }
            if !why.is_empty() {
                return Err(SnmpError::NoValues(format!(
                    "the agent gave no numeric value ({})",
                    why.join("; ")
                )));
            }
        }
        for (dp, kind) in &read.non_numeric {
            self.warn_once(
                task.device.id,
                ds,
                dp,
                &format!("the agent's value is {kind}, not a number"),
            );
        }
        for (dp, what) in &read.missing {
            self.warn_once(task.device.id, ds, dp, &format!("not on the agent: {what}"));
        }
        Ok(Outcome::Instances(read.instances))
    }
}

impl Method for Snmp {
    fn collect<'a>(&'a self, task: &'a Task) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Collector::Snmp(c) = &task.datasource.collector else {
                return Outcome::error("not an snmp datasource");
            };
            match self.collect_snmp(task, c).await {
                Ok(o) => o,
                Err(e) => Outcome::error(e.to_string()),
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret-community";

    fn dev(props: &[(&str, &str)]) -> Device {
        Device::new(1, "192.0.2.7", props)
    }

    #[test]
    fn v2c_settings_and_defaults() {
        let s = Settings::from_device(&dev(&[("snmp.community", SECRET)]), 5000).unwrap();
        assert_eq!(s.port, 161);
        assert_eq!(s.host, "192.0.2.7");
        assert_eq!(
            s.security,
            Security::V2c {
                community: SECRET.into()
            }
        );
        assert_eq!(s.timeout, Duration::from_millis(5000));
        let cfg = s.client_config();
        assert_eq!(cfg.retries, 1);
        assert_eq!(cfg.timeout, Duration::from_millis(2500));
        assert!(!format!("{s:?}").contains(SECRET));
        let s = Settings::from_device(
            &dev(&[
                ("snmp.community", SECRET),
                ("snmp.port", "1161"),
                ("snmp.version", "V2C"),
                ("snmp.timeout", "900"),
                ("snmp.retries", "2"),
                ("system.hostname", "10.1.1.1"),
            ]),
            5000,
        )
        .unwrap();
        assert_eq!((s.port, s.host.as_str()), (1161, "10.1.1.1"));
        assert_eq!(s.client_config().timeout, Duration::from_millis(300));
    }

    #[test]
    fn v3_settings() {
        let s = Settings::from_device(
            &dev(&[
                ("snmp.version", "v3"),
                ("snmp.security", "mon"),
                ("snmp.auth", "sha-256"),
                ("snmp.authToken", "authpass123"),
                ("snmp.priv", "AES256"),
                ("snmp.privToken", "privpass123"),
            ]),
            5000,
        )
        .unwrap();
        let Security::V3 {
            user,
            auth,
            privacy,
        } = &s.security
        else {
            panic!()
        };
        assert_eq!(user, "mon");
        assert_eq!(auth.as_ref().unwrap().0, AuthProtocol::Sha256);
        assert_eq!(privacy.as_ref().unwrap().0, PrivProtocol::Aes256);
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("authpass123") && !dbg.contains("privpass123"),
            "{dbg}"
        );
        // A user without a community means v3; protocols default to SHA and AES.
        let s = Settings::from_device(
            &dev(&[
                ("snmp.security", "u"),
                ("snmp.authToken", "x"),
                ("snmp.privToken", "y"),
            ]),
            5000,
        )
        .unwrap();
        assert!(matches!(
            s.security,
            Security::V3 {
                auth: Some((AuthProtocol::Sha1, _)),
                privacy: Some((PrivProtocol::Aes128, _)),
                ..
            }
        ));
        for p in ["MD5", "SHA", "SHA1", "SHA224", "SHA256", "SHA384", "SHA512"] {
            assert!(auth_protocol(p).is_some(), "{p}");
        }
        for p in ["DES", "AES", "AES128", "AES-192", "aes256"] {
            assert!(priv_protocol(p).is_some(), "{p}");
        }
    }

    #[test]
    fn bad_settings_name_the_property_never_the_secret() {
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("snmp.community", SECRET), ("snmp.port", "0")],
            &[("snmp.community", SECRET), ("snmp.version", "v1")],
            &[("snmp.community", SECRET), ("snmp.version", "v9")],
            &[("snmp.version", "v3"), ("snmp.community", SECRET)],
            &[
                ("snmp.security", "u"),
                ("snmp.auth", "SHA3"),
                ("snmp.authToken", SECRET),
            ],
            &[("snmp.security", "u"), ("snmp.privToken", SECRET)],
            &[("snmp.community", SECRET), ("snmp.timeout", "5")],
        ];
        for props in cases {
            let e = Settings::from_device(&dev(props), 5000).unwrap_err();
            let m = e.to_string();
            assert!(m.contains("snmp."), "{m}");
            assert!(!m.contains(SECRET), "{m}");
        }
    }

    #[test]
    fn values_and_text() {
        assert_eq!(
            numeric(&Value::Counter64(1 << 40)),
            Ok(Some((1u64 << 40) as f64))
        );
        assert_eq!(numeric(&Value::TimeTicks(12)), Ok(Some(12.0)));
        assert_eq!(numeric(&Value::Integer(-3)), Ok(Some(-3.0)));
        assert_eq!(
            numeric(&Value::OctetString(b" 0.25 ".to_vec())),
            Ok(Some(0.25))
        );
        assert_eq!(
            numeric(&Value::OctetString(b"eth0".to_vec())),
            Err("OCTET STRING")
        );
        assert_eq!(numeric(&Value::NoSuchObject), Ok(None));
        assert_eq!(
            numeric(&Value::IpAddress("10.0.0.1".parse().unwrap())),
            Err("IpAddress")
        );
        assert_eq!(
            text(&Value::OctetString(b"lo\0".to_vec())).as_deref(),
            Some("lo")
        );
        assert_eq!(text(&Value::OctetString(Vec::new())), None);
        assert_eq!(text(&Value::Integer(7)).as_deref(), Some("7"));
        assert_eq!(text(&Value::NoSuchInstance), None);
    }

    #[test]
    fn rows_join_by_index() {
        let o = |s: &str| s.parse::<Oid>().unwrap();
        let table = SnmpTable {
            index_oid: "1.1.1".into(),
            name_oid: Some("1.1.2".into()),
            description_oid: Some("1.1.3".into()),
        };
        let oids: BTreeMap<String, Oid> = [
            ("In".to_string(), o("1.1.4")),
            ("Descr".to_string(), o("1.1.3")),
        ]
        .into_iter()
        .collect();
        let mut cols: HashMap<Oid, HashMap<Vec<u32>, Value>> = HashMap::new();
        cols.insert(
            o("1.1.1"),
            [
                (vec![1], Value::Integer(1)),
                (vec![2], Value::Integer(2)),
                (vec![3], Value::Integer(3)),
            ]
            .into_iter()
            .collect(),
        );
        cols.insert(
            o("1.1.2"),
            [
                (vec![1], Value::OctetString(b"lo".to_vec())),
                (vec![2], Value::OctetString(b"eth0".to_vec())),
                (vec![3], Value::OctetString(b"eth0".to_vec())),
            ]
            .into_iter()
            .collect(),
        );
        cols.insert(
            o("1.1.3"),
            [(vec![2], Value::OctetString(b"uplink".to_vec()))]
                .into_iter()
                .collect(),
        );
        cols.insert(
            o("1.1.4"),
            [
                (vec![1], Value::Counter64(10)),
                (vec![2], Value::Counter64(20)),
                (vec![9], Value::Counter64(90)),
            ]
            .into_iter()
            .collect(),
        );
        let (inst, non_numeric) = join_rows(
            &table,
            &oids,
            &o("1.1.1"),
            Some(&o("1.1.2")),
            Some(&o("1.1.3")),
            &cols,
        );
        assert_eq!(inst.len(), 3, "only the index column's rows");
        assert_eq!(inst[0].name.as_deref(), Some("lo"));
        assert_eq!(inst[0].values["In"], 10.0);
        assert_eq!(inst[1].name.as_deref(), Some("eth0"));
        assert_eq!(inst[1].properties["description"], "uplink");
        assert_eq!(inst[1].properties["snmp.index"], "2");
        assert_eq!(inst[2].name.as_deref(), Some("eth0 (3)"), "duplicate names");
        assert!(inst[2].values.is_empty());
        assert_eq!(non_numeric.get("Descr"), Some(&"OCTET STRING"));
        // Without a name column the index names the instance.
        let t2 = SnmpTable {
            name_oid: None,
            ..table
        };
        let (inst, _) = join_rows(&t2, &oids, &o("1.1.1"), None, Some(&o("1.1.3")), &cols);
        assert_eq!(inst[1].name.as_deref(), Some("2"));
        assert_eq!(inst[1].display_name.as_deref(), Some("uplink (2)"));
    }

    #[test]
    fn errors_name_the_usm_problem_not_the_secret() {
        let sec = Security::V3 {
            user: "mon".into(),
            auth: Some((AuthProtocol::Sha1, "authpass123".into())),
            privacy: None,
        };
        let m = classify(palisade_snmp::Error::Auth(AuthFailure::WrongDigest), &sec).to_string();
        assert!(
            m.contains("usmStatsWrongDigests") && m.contains("snmp.authToken"),
            "{m}"
        );
        assert!(m.contains("`mon`") && !m.contains("authpass123"), "{m}");
        let t = classify(
            palisade_snmp::Error::Timeout {
                addr: "127.0.0.1:161".parse().unwrap(),
                attempts: 2,
            },
            &sec,
        )
        .to_string();
        assert!(t.starts_with(TIMEOUT_MESSAGE), "{t}");
    }

    #[tokio::test]
    async fn clients_are_reused_per_device_and_credentials() {
        let snmp = Snmp::new();
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let s = Settings::from_device(&dev(&[("snmp.community", "a")]), 1000).unwrap();
        let c1 = snmp.acquire(1, addr, &s).await.unwrap();
        snmp.release(1, addr, &s.security, c1);
        assert_eq!(snmp.idle_clients(1), 1);
        // The next poll gets the same client back.
        let c1 = snmp.acquire(1, addr, &s).await.unwrap();
        assert_eq!(snmp.idle_clients(1), 0);
        // A concurrent poll of the same device gets its own.
        let c2 = snmp.acquire(1, addr, &s).await.unwrap();
        snmp.release(1, addr, &s.security, c1);
        snmp.release(1, addr, &s.security, c2);
        assert_eq!(snmp.idle_clients(1), 2);
        // New credentials: the old clients go.
        let other = Settings::from_device(&dev(&[("snmp.community", "b")]), 1000).unwrap();
        let c3 = snmp.acquire(1, addr, &other).await.unwrap();
        assert_eq!(snmp.idle_clients(1), 2, "not handed out: other credentials");
        snmp.release(1, addr, &other.security, c3);
        assert_eq!(snmp.idle_clients(1), 1);
        assert_eq!(snmp.idle_clients(2), 0);
    }
}
