//! The async UDP client.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{timeout_at, Instant};

use crate::error::{AuthFailure, DecodeError, Error, ErrorStatus};
use crate::message::{
    CommunityMessage, Message, MsgFlags, ScopedPdu, ScopedPduData, UsmSecurityParameters,
    V3Message, MAX_USER_NAME_LEN,
};
use crate::oid::Oid;
use crate::pdu::{Pdu, PduType, VarBind};
use crate::usm::{self, AuthProtocol, LocalizedKeys, OpenError, PrivProtocol};
use crate::value::Value;

/// The largest UDP payload over IPv4, and the default maximum message size.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 65_507;
/// The smallest msgMaxSize SNMPv3 allows.
pub const MIN_MAX_MESSAGE_SIZE: usize = 484;

/// Client settings. Build with `ClientConfig::default()` and change fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// How long to wait for a response to each transmission (default 1 s).
    pub timeout: Duration,
    /// Retransmissions after the first attempt (default 2).
    pub retries: u32,
    /// The largest message sent or accepted, advertised as msgMaxSize in v3
    /// (default 65507; clamped to 484..=65507).
    pub max_message_size: usize,
    /// max-repetitions used by [`Client::bulk_walk`] (default 25).
    pub max_repetitions: u32,
    /// A walk stops with an error after this many varbinds (default 1,000,000).
    pub max_walk_varbinds: usize,
    /// The SNMPv3 contextName (default empty).
    pub context_name: Vec<u8>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(1),
            retries: 2,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_repetitions: 25,
            max_walk_varbinds: 1_000_000,
            context_name: Vec::new(),
        }
    }
}

/// What the authoritative engine's clock looked like when last heard from.
struct Engine {
    id: Vec<u8>,
    boots: u32,
    time: u32,
    latest_time: u32,
    synced_at: Instant,
    authenticated_sync: bool,
    keys: Option<LocalizedKeys>,
}

impl Engine {
    fn estimated_time(&self) -> u32 {
        let elapsed = u32::try_from(self.synced_at.elapsed().as_secs()).unwrap_or(u32::MAX);
        self.time.saturating_add(elapsed).min(i32::MAX as u32)
    }

    /// RFC 3414 section 3.2 step 7b: take a newer notion of the clock.
    fn update_clock(&mut self, boots: u32, time: u32, authenticated: bool) {
        if boots > self.boots || (boots == self.boots && time > self.latest_time) {
            self.boots = boots;
            self.time = time;
            self.latest_time = time;
            self.synced_at = Instant::now();
        }
        self.authenticated_sync |= authenticated;
    }
}

struct V3State {
    user: Vec<u8>,
    auth: Option<(AuthProtocol, Vec<u8>)>,
    privacy: Option<(PrivProtocol, Vec<u8>)>,
    engine: Option<Engine>,
    next_msg_id: i32,
    salt: u64,
}

enum Security {
    V2c { community: Vec<u8> },
    V3(Box<V3State>),
}

/// An SNMP v2c or v3 client for one agent. Requests are sequential
/// (`&mut self`); use one client per concurrent poll.
///
/// `Debug` shows the address, version and user name, never the community,
/// passwords or keys.
pub struct Client {
    socket: UdpSocket,
    addr: SocketAddr,
    config: ClientConfig,
    security: Security,
    next_request_id: i32,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Client");
        d.field("addr", &self.addr);
        match &self.security {
            Security::V2c { .. } => {
                d.field("version", &"v2c").field("community", &"<redacted>");
            }
            Security::V3(s) => {
                d.field("version", &"v3")
                    .field("user", &String::from_utf8_lossy(&s.user))
                    .field("auth", &s.auth.as_ref().map(|(p, _)| p))
                    .field("privacy", &s.privacy.as_ref().map(|(p, _)| p));
            }
        }
        d.field("config", &self.config).finish_non_exhaustive()
    }
}

fn random_u64() -> u64 {
    // RandomState is seeded from the OS's randomness; good enough for
    // request-ids, msgIDs and the starting salt (which need only be unique).
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}

fn next_id(counter: &mut i32) -> i32 {
    let id = *counter;
    *counter = if id >= i32::MAX - 1 { 1 } else { id + 1 };
    id
}

enum Verdict<T> {
    Done(Result<T, Error>),
    Ignore(Option<Error>),
}

/// Sends `request` and waits for a datagram `judge` accepts, retransmitting
/// on timeout. Datagrams `judge` ignores (stray, late, spoofed) do not end
/// the wait.
async fn exchange<T>(
    socket: &UdpSocket,
    addr: SocketAddr,
    config: &ClientConfig,
    request: &[u8],
    mut judge: impl FnMut(&[u8]) -> Verdict<T>,
) -> Result<T, Error> {
    let attempts = config.retries.saturating_add(1);
    let mut noted: Option<Error> = None;
    // The receive buffer lives only as long as the request: a collector keeps an idle
    // client per device, and 64 KiB each would add up to tens of megabytes.
    let mut buf = vec![0u8; DEFAULT_MAX_MESSAGE_SIZE + 1];
    for _ in 0..attempts {
        match socket.send(request).await {
            Ok(_) => {}
            // An earlier ICMP port-unreachable; treat like a lost packet.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(Error::Io(e)),
        }
        let deadline = Instant::now() + config.timeout;
        loop {
            let n = match timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Ok(Err(e)) => return Err(Error::Io(e)),
                Ok(Ok(n)) => n,
            };
            if n > config.max_message_size || n >= buf.len() {
                noted = Some(Error::Decode(DecodeError::TooLarge(n)));
                continue;
            }
            match judge(buf.get(..n).unwrap_or_default()) {
                Verdict::Done(r) => return r,
                Verdict::Ignore(Some(e)) => noted = Some(e),
                Verdict::Ignore(None) => {}
            }
        }
    }
    Err(noted.unwrap_or(Error::Timeout { addr, attempts }))
}

/// usmStats counters (1.3.6.1.6.3.15.1.1.N.0) mapped to failures.
pub(crate) fn report_failure(pdu: &Pdu) -> Error {
    let Some(vb) = pdu.varbinds.first() else {
        return Error::Protocol("empty Report PDU");
    };
    match vb.oid.as_slice() {
        [1, 3, 6, 1, 6, 3, 15, 1, 1, n, 0] => match n {
            1 => Error::Auth(AuthFailure::UnsupportedSecurityLevel),
            2 => Error::Auth(AuthFailure::NotInTimeWindow),
            3 => Error::Auth(AuthFailure::UnknownUserName),
            4 => Error::Auth(AuthFailure::UnknownEngineId),
            5 => Error::Auth(AuthFailure::WrongDigest),
            6 => Error::Auth(AuthFailure::DecryptionError),
            _ => Error::Report(vb.oid.clone()),
        },
        _ => Error::Report(vb.oid.clone()),
    }
}

impl Client {
    async fn bind(addr: SocketAddr, security: Security) -> Result<Client, Error> {
        let local: SocketAddr = if addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(addr).await?;
        let seed = random_u64();
        Ok(Client {
            socket,
            addr,
            config: ClientConfig::default(),
            security,
            next_request_id: ((seed >> 33) as i32).max(1),
        })
    }

    /// An SNMPv2c client for `addr` with `community`.
    pub async fn v2c(addr: SocketAddr, community: &str) -> Result<Client, Error> {
        Self::bind(
            addr,
            Security::V2c {
                community: community.as_bytes().to_vec(),
            },
        )
        .await
    }

    /// An SNMPv3 (USM) client. The security level follows from the
    /// arguments: no auth is noAuthNoPriv, auth alone authNoPriv, both
    /// authPriv. Passwords must be at least 8 bytes. The agent's engine is
    /// discovered on the first request.
    pub async fn v3(
        addr: SocketAddr,
        user: &str,
        auth: Option<(AuthProtocol, &str)>,
        privacy: Option<(PrivProtocol, &str)>,
    ) -> Result<Client, Error> {
        if user.is_empty() || user.len() > MAX_USER_NAME_LEN {
            return Err(Error::Config("user name must be 1 to 32 bytes"));
        }
        let (auth, privacy) = match (auth, privacy) {
            (None, Some(_)) => return Err(Error::Config("privacy requires authentication")),
            (None, None) => (None, None),
            (Some((a, apw)), p) => {
                let auth_master = a.password_to_key(apw.as_bytes())?;
                let priv_master = match p {
                    Some((p, ppw)) => Some((p, a.password_to_key(ppw.as_bytes())?)),
                    None => None,
                };
                (Some((a, auth_master)), priv_master)
            }
        };
        let seed = random_u64();
        Self::bind(
            addr,
            Security::V3(Box::new(V3State {
                user: user.as_bytes().to_vec(),
                auth,
                privacy,
                engine: None,
                next_msg_id: ((seed & 0x3fff_ffff) as i32).max(1),
                salt: seed.rotate_left(17),
            })),
        )
        .await
    }

    /// The agent's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Replaces the settings.
    pub fn set_config(&mut self, config: ClientConfig) {
        self.config = config;
    }

    /// The discovered SNMPv3 engine ID, once known.
    pub fn engine_id(&self) -> Option<&[u8]> {
        match &self.security {
            Security::V3(s) => s.engine.as_ref().map(|e| e.id.as_slice()),
            Security::V2c { .. } => None,
        }
    }

    fn max_size(&self) -> usize {
        self.config
            .max_message_size
            .clamp(MIN_MAX_MESSAGE_SIZE, DEFAULT_MAX_MESSAGE_SIZE)
    }

    /// GetRequest for `oids`. Missing objects come back as
    /// [`Value::NoSuchObject`]/[`Value::NoSuchInstance`].
    pub async fn get(&mut self, oids: &[Oid]) -> Result<Vec<VarBind>, Error> {
        self.simple(PduType::GetRequest, oids).await
    }

    /// GetNextRequest for `oids`.
    pub async fn get_next(&mut self, oids: &[Oid]) -> Result<Vec<VarBind>, Error> {
        self.simple(PduType::GetNextRequest, oids).await
    }

    async fn simple(&mut self, t: PduType, oids: &[Oid]) -> Result<Vec<VarBind>, Error> {
        let resp = self.request(Pdu::request(t, 0, oids)).await?;
        if resp.varbinds.len() != oids.len() {
            return Err(Error::Protocol(
                "response varbind count differs from the request",
            ));
        }
        Ok(resp.varbinds)
    }

    /// GetBulkRequest.
    pub async fn get_bulk(
        &mut self,
        non_repeaters: u32,
        max_repetitions: u32,
        oids: &[Oid],
    ) -> Result<Vec<VarBind>, Error> {
        let nr = i32::try_from(non_repeaters).unwrap_or(i32::MAX);
        let mr = i32::try_from(max_repetitions).unwrap_or(i32::MAX);
        Ok(self.request(Pdu::get_bulk(0, nr, mr, oids)).await?.varbinds)
    }

    /// Walks the subtree under `root` with GetBulk (max-repetitions from the
    /// config). Stops at the first OID outside the subtree or at
    /// endOfMibView; fails on an OID that does not increase. A tooBig error
    /// halves max-repetitions and retries.
    pub async fn bulk_walk(&mut self, root: &Oid) -> Result<Vec<(Oid, Value)>, Error> {
        let mut reps = self.config.max_repetitions.max(1);
        let mut out: Vec<(Oid, Value)> = Vec::new();
        let mut cursor = root.clone();
        loop {
            let vbs = match self.get_bulk(0, reps, std::slice::from_ref(&cursor)).await {
                Err(Error::Agent {
                    status: ErrorStatus::TooBig,
                    ..
                }) if reps > 1 => {
                    reps /= 2;
                    continue;
                }
                other => other?,
            };
            if vbs.is_empty() {
                return Ok(out);
            }
            for vb in vbs {
                if vb.value == Value::EndOfMibView || !vb.oid.is_descendant_of(root) {
                    return Ok(out);
                }
                let previous = out.last().map_or(&cursor, |(o, _)| o);
                if vb.oid <= *previous {
                    return Err(Error::NonIncreasing {
                        previous: previous.clone(),
                        oid: vb.oid,
                    });
                }
                if out.len() >= self.config.max_walk_varbinds {
                    return Err(Error::Protocol("walk exceeded max_walk_varbinds"));
                }
                out.push((vb.oid, vb.value));
            }
            if let Some((last, _)) = out.last() {
                cursor = last.clone();
            }
        }
    }

    /// Sends `pdu` (its request-id is replaced) and returns the Response
    /// PDU. An error-status in the response becomes [`Error::Agent`].
    pub async fn request(&mut self, mut pdu: Pdu) -> Result<Pdu, Error> {
        pdu.request_id = next_id(&mut self.next_request_id);
        let resp = if matches!(self.security, Security::V2c { .. }) {
            self.request_v2c(&pdu).await?
        } else {
            self.request_v3(&pdu).await?
        };
        if resp.error_status != 0 {
            let oid = usize::try_from(resp.error_index)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| resp.varbinds.get(i))
                .map(|vb| vb.oid.clone());
            return Err(Error::Agent {
                status: resp.status(),
                index: resp.error_index,
                oid,
            });
        }
        Ok(resp)
    }

    async fn request_v2c(&mut self, pdu: &Pdu) -> Result<Pdu, Error> {
        let max = self.max_size();
        let Client {
            socket,
            addr,
            config,
            security,
            ..
        } = self;
        let Security::V2c { community } = security else {
            return Err(Error::Config("not a v2c client"));
        };
        let bytes = Message::V2c(CommunityMessage {
            community: community.clone(),
            pdu: pdu.clone(),
        })
        .encode();
        if bytes.len() > max {
            return Err(Error::RequestTooLarge {
                size: bytes.len(),
                max,
            });
        }
        let want = pdu.request_id;
        exchange(
            socket,
            *addr,
            config,
            &bytes,
            |data| match Message::decode(data) {
                Err(e) => Verdict::Ignore(Some(Error::Decode(e))),
                Ok(Message::V2c(m))
                    if m.pdu.request_id == want
                        && m.pdu.pdu_type == PduType::Response
                        && m.community == *community =>
                {
                    Verdict::Done(Ok(m.pdu))
                }
                Ok(_) => Verdict::Ignore(None),
            },
        )
        .await
    }

    async fn request_v3(&mut self, pdu: &Pdu) -> Result<Pdu, Error> {
        let mut resynced = false;
        let mut rediscovered = false;
        loop {
            self.discover().await?;
            match self.v3_once(pdu).await {
                Err(Error::Auth(AuthFailure::NotInTimeWindow)) if !resynced => resynced = true,
                Err(Error::Auth(AuthFailure::UnknownEngineId)) if !rediscovered => {
                    rediscovered = true;
                    if let Security::V3(s) = &mut self.security {
                        s.engine = None;
                    }
                }
                other => return other,
            }
        }
    }

    /// Performs SNMPv3 engine discovery (RFC 3414 section 4) if it has not
    /// happened yet, and localizes the keys to the engine. Called
    /// automatically by requests; a no-op for v2c.
    pub async fn discover(&mut self) -> Result<(), Error> {
        let max = self.max_size();
        let Client {
            socket,
            addr,
            config,
            security,
            next_request_id,
        } = self;
        let Security::V3(state) = security else {
            return Ok(());
        };
        if state.engine.is_some() {
            return Ok(());
        }
        let msg_id = next_id(&mut state.next_msg_id);
        let msg = V3Message {
            msg_id,
            max_size: i32::try_from(max).unwrap_or(i32::MAX),
            flags: MsgFlags {
                auth: false,
                privacy: false,
                reportable: true,
            },
            usm: UsmSecurityParameters::default(),
            data: ScopedPduData::Plaintext(ScopedPdu {
                context_engine_id: Vec::new(),
                context_name: Vec::new(),
                pdu: Pdu::request(PduType::GetRequest, next_id(next_request_id), &[]),
            }),
        };
        let bytes = Message::V3(msg).encode();
        let (id, boots, time) = exchange(socket, *addr, config, &bytes, |data| {
            match usm::open(data, None) {
                Err(OpenError::Decode(e)) => Verdict::Ignore(Some(Error::Decode(e))),
                Err(_) => Verdict::Ignore(None),
                Ok(o) if o.message.msg_id != msg_id => Verdict::Ignore(None),
                Ok(o) if o.message.usm.engine_id.is_empty() => Verdict::Ignore(Some(
                    Error::Protocol("discovery response without engine ID"),
                )),
                Ok(o) => Verdict::Done(Ok((
                    o.message.usm.engine_id,
                    o.message.usm.engine_boots,
                    o.message.usm.engine_time,
                ))),
            }
        })
        .await?;
        let keys = state.auth.as_ref().map(|(a, k)| {
            LocalizedKeys::from_master_keys(
                *a,
                k,
                state.privacy.as_ref().map(|(p, pk)| (*p, pk.as_slice())),
                &id,
            )
        });
        state.engine = Some(Engine {
            id,
            boots,
            time,
            latest_time: time,
            synced_at: Instant::now(),
            authenticated_sync: false,
            keys,
        });
        Ok(())
    }

    async fn v3_once(&mut self, pdu: &Pdu) -> Result<Pdu, Error> {
        let max = self.max_size();
        let Client {
            socket,
            addr,
            config,
            security,
            ..
        } = self;
        let Security::V3(state) = security else {
            return Err(Error::Config("not a v3 client"));
        };
        let state = &mut **state;
        let Some(engine) = state.engine.as_mut() else {
            return Err(Error::Protocol("engine not discovered"));
        };
        let auth = state.auth.is_some();
        let privacy = state.privacy.is_some();
        let msg_id = next_id(&mut state.next_msg_id);
        state.salt = state.salt.wrapping_add(1);
        let msg = V3Message {
            msg_id,
            max_size: i32::try_from(max).unwrap_or(i32::MAX),
            flags: MsgFlags {
                auth,
                privacy,
                reportable: true,
            },
            usm: UsmSecurityParameters {
                engine_id: engine.id.clone(),
                engine_boots: engine.boots,
                engine_time: engine.estimated_time(),
                user_name: state.user.clone(),
                auth_params: Vec::new(),
                priv_params: Vec::new(),
            },
            data: ScopedPduData::Plaintext(ScopedPdu {
                context_engine_id: engine.id.clone(),
                context_name: config.context_name.clone(),
                pdu: pdu.clone(),
            }),
        };
        let bytes = usm::seal(&msg, engine.keys.as_ref(), state.salt)?;
        if bytes.len() > max {
            return Err(Error::RequestTooLarge {
                size: bytes.len(),
                max,
            });
        }
        let want = pdu.request_id;
        exchange(socket, *addr, config, &bytes, |data| {
            let opened = match usm::open(data, engine.keys.as_ref()) {
                Ok(o) => o,
                Err(OpenError::Decode(e)) => return Verdict::Ignore(Some(Error::Decode(e))),
                Err(OpenError::WrongDigest) => {
                    return Verdict::Ignore(Some(Error::Auth(AuthFailure::BadResponseDigest)))
                }
                Err(OpenError::Decryption) => {
                    return Verdict::Ignore(Some(Error::Auth(AuthFailure::BadResponseDecryption)))
                }
                Err(_) => return Verdict::Ignore(None),
            };
            let m = opened.message;
            if m.msg_id != msg_id {
                return Verdict::Ignore(None);
            }
            let ScopedPduData::Plaintext(scoped) = m.data else {
                return Verdict::Ignore(None);
            };
            let (boots, time) = (m.usm.engine_boots, m.usm.engine_time);
            match scoped.pdu.pdu_type {
                PduType::Report => {
                    // Unauthenticated Reports (wrong digest, unknown user)
                    // can only end this request; their clock is used only
                    // before any authenticated one was seen (like net-snmp).
                    if opened.authenticated || !engine.authenticated_sync {
                        engine.update_clock(boots, time, opened.authenticated);
                    }
                    Verdict::Done(Err(report_failure(&scoped.pdu)))
                }
                PduType::Response => {
                    if auth && !opened.authenticated {
                        return Verdict::Ignore(Some(Error::Auth(AuthFailure::BadResponseDigest)));
                    }
                    if privacy && !m.flags.privacy {
                        return Verdict::Ignore(None);
                    }
                    if scoped.pdu.request_id != want {
                        return Verdict::Ignore(None);
                    }
                    if opened.authenticated {
                        if !usm::in_time_window(boots, time, engine.boots, engine.latest_time) {
                            return Verdict::Ignore(Some(Error::Auth(
                                AuthFailure::NotInTimeWindow,
                            )));
                        }
                        engine.update_clock(boots, time, true);
                    }
                    Verdict::Done(Ok(scoped.pdu))
                }
                _ => Verdict::Ignore(None),
            }
        })
        .await
    }
}
