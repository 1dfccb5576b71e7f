//! SNMPv2c (community) and SNMPv3 (USM) message framing.

use std::fmt;
use std::ops::Range;

use crate::ber::{self, header_len, tag, write_signed, write_tlv, Reader};
use crate::error::DecodeError;
use crate::pdu::Pdu;

/// msgVersion of SNMPv2c.
pub const VERSION_2C: i32 = 1;
/// msgVersion of SNMPv3.
pub const VERSION_3: i32 = 3;
/// msgSecurityModel of USM.
pub const SECURITY_MODEL_USM: i32 = 3;
/// The longest engine ID (RFC 3411).
pub const MAX_ENGINE_ID_LEN: usize = 32;
/// The longest user name (RFC 3414).
pub const MAX_USER_NAME_LEN: usize = 32;

/// A decoded SNMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// SNMPv2c.
    V2c(CommunityMessage),
    /// SNMPv3 with USM.
    V3(V3Message),
}

/// An SNMPv2c message. `Debug` does not show the community.
#[derive(Clone, PartialEq, Eq)]
pub struct CommunityMessage {
    /// The community string (a credential).
    pub community: Vec<u8>,
    /// The PDU.
    pub pdu: Pdu,
}

impl fmt::Debug for CommunityMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommunityMessage")
            .field("community", &"<redacted>")
            .field("pdu", &self.pdu)
            .finish()
    }
}

/// msgFlags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct MsgFlags {
    /// authFlag.
    pub auth: bool,
    /// privFlag.
    pub privacy: bool,
    /// reportableFlag.
    pub reportable: bool,
}

impl MsgFlags {
    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        u8::from(self.auth) | (u8::from(self.privacy) << 1) | (u8::from(self.reportable) << 2)
    }

    /// From the wire byte (other bits are ignored, RFC 3412).
    pub fn from_byte(b: u8) -> Self {
        MsgFlags {
            auth: b & 1 != 0,
            privacy: b & 2 != 0,
            reportable: b & 4 != 0,
        }
    }
}

/// UsmSecurityParameters (RFC 3414 section 2.4).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct UsmSecurityParameters {
    /// msgAuthoritativeEngineID.
    pub engine_id: Vec<u8>,
    /// msgAuthoritativeEngineBoots (0..=2^31-1).
    pub engine_boots: u32,
    /// msgAuthoritativeEngineTime (0..=2^31-1).
    pub engine_time: u32,
    /// msgUserName.
    pub user_name: Vec<u8>,
    /// msgAuthenticationParameters (the truncated HMAC).
    pub auth_params: Vec<u8>,
    /// msgPrivacyParameters (the salt).
    pub priv_params: Vec<u8>,
}

impl fmt::Debug for UsmSecurityParameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsmSecurityParameters")
            .field("engine_id", &Hex(&self.engine_id))
            .field("engine_boots", &self.engine_boots)
            .field("engine_time", &self.engine_time)
            .field("user_name", &String::from_utf8_lossy(&self.user_name))
            .field("auth_params", &Hex(&self.auth_params))
            .field("priv_params", &Hex(&self.priv_params))
            .finish()
    }
}

pub(crate) struct Hex<'a>(pub &'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A ScopedPDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPdu {
    /// contextEngineID.
    pub context_engine_id: Vec<u8>,
    /// contextName.
    pub context_name: Vec<u8>,
    /// The PDU.
    pub pdu: Pdu,
}

impl ScopedPdu {
    /// The BER encoding (what is encrypted under authPriv).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        write_tlv(&mut out, tag::OCTET_STRING, &self.context_engine_id);
        write_tlv(&mut out, tag::OCTET_STRING, &self.context_name);
        self.pdu.encode(&mut out);
        ber::wrap(&mut out, 0, tag::SEQUENCE);
        out
    }

    /// Decodes a ScopedPDU from decrypted data: bytes after the SEQUENCE
    /// (cipher padding) are ignored.
    pub fn decode_padded(buf: &[u8]) -> Result<ScopedPdu, DecodeError> {
        let mut r = Reader::new(buf);
        Self::decode_from(&mut r)
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<ScopedPdu, DecodeError> {
        let mut s = r.sequence(tag::SEQUENCE, "ScopedPDU")?;
        let context_engine_id = s.read_octets("contextEngineID")?;
        if context_engine_id.len() > MAX_ENGINE_ID_LEN {
            return Err(DecodeError::Invalid("contextEngineID (too long)"));
        }
        let context_name = s.read_octets("contextName")?.to_vec();
        let pdu = Pdu::decode(&mut s)?;
        s.finish("ScopedPDU")?;
        Ok(ScopedPdu {
            context_engine_id: context_engine_id.to_vec(),
            context_name,
            pdu,
        })
    }
}

/// ScopedPduData: plaintext, or encrypted (under authPriv).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopedPduData {
    /// A plaintext ScopedPDU.
    Plaintext(ScopedPdu),
    /// The ciphertext of an encrypted ScopedPDU.
    Encrypted(Vec<u8>),
}

/// An SNMPv3 message with USM security parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Message {
    /// msgID.
    pub msg_id: i32,
    /// msgMaxSize.
    pub max_size: i32,
    /// msgFlags.
    pub flags: MsgFlags,
    /// The USM security parameters.
    pub usm: UsmSecurityParameters,
    /// msgData.
    pub data: ScopedPduData,
}

impl V3Message {
    /// Encodes the message and returns the byte range of the
    /// msgAuthenticationParameters content (where the HMAC goes).
    pub fn encode_locating_auth(&self) -> (Vec<u8>, Range<usize>) {
        // UsmSecurityParameters, noting where the auth params content starts.
        let u = &self.usm;
        let mut usm = Vec::with_capacity(64 + u.engine_id.len() + u.user_name.len());
        write_tlv(&mut usm, tag::OCTET_STRING, &u.engine_id);
        write_signed(&mut usm, tag::INTEGER, i64::from(u.engine_boots));
        write_signed(&mut usm, tag::INTEGER, i64::from(u.engine_time));
        write_tlv(&mut usm, tag::OCTET_STRING, &u.user_name);
        let mut auth_at = usm.len() + header_len(u.auth_params.len());
        write_tlv(&mut usm, tag::OCTET_STRING, &u.auth_params);
        write_tlv(&mut usm, tag::OCTET_STRING, &u.priv_params);
        auth_at += header_len(usm.len());
        ber::wrap(&mut usm, 0, tag::SEQUENCE);
        auth_at += header_len(usm.len());

        let mut body = Vec::with_capacity(usm.len() + 128);
        write_signed(&mut body, tag::INTEGER, i64::from(VERSION_3));
        let header = body.len();
        write_signed(&mut body, tag::INTEGER, i64::from(self.msg_id));
        write_signed(&mut body, tag::INTEGER, i64::from(self.max_size));
        write_tlv(&mut body, tag::OCTET_STRING, &[self.flags.to_byte()]);
        write_signed(&mut body, tag::INTEGER, i64::from(SECURITY_MODEL_USM));
        ber::wrap(&mut body, header, tag::SEQUENCE);
        auth_at += body.len();
        write_tlv(&mut body, tag::OCTET_STRING, &usm);
        match &self.data {
            ScopedPduData::Plaintext(s) => body.extend_from_slice(&s.encode()),
            ScopedPduData::Encrypted(c) => write_tlv(&mut body, tag::OCTET_STRING, c),
        }
        auth_at += header_len(body.len());
        ber::wrap(&mut body, 0, tag::SEQUENCE);
        (body, auth_at..auth_at + u.auth_params.len())
    }
}

impl Message {
    /// Encodes the message. For v3 the authentication parameters are
    /// written as given (see [`crate::usm`] for signing).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::V2c(m) => {
                let mut out = Vec::with_capacity(64 + m.community.len());
                write_signed(&mut out, tag::INTEGER, i64::from(VERSION_2C));
                write_tlv(&mut out, tag::OCTET_STRING, &m.community);
                m.pdu.encode(&mut out);
                ber::wrap(&mut out, 0, tag::SEQUENCE);
                out
            }
            Message::V3(m) => m.encode_locating_auth().0,
        }
    }

    /// Decodes a complete message (no trailing bytes allowed).
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        decode_located(buf).map(|(m, _)| m)
    }
}

/// Decodes a message and, for v3, returns the absolute byte range of the
/// msgAuthenticationParameters content.
pub(crate) fn decode_located(buf: &[u8]) -> Result<(Message, Range<usize>), DecodeError> {
    let mut top = Reader::new(buf);
    let mut r = top.sequence(tag::SEQUENCE, "Message")?;
    top.finish("Message")?;
    let version = r.read_i32("msgVersion")?;
    match version {
        VERSION_2C => {
            let community = r.read_octets("community")?.to_vec();
            let pdu = Pdu::decode(&mut r)?;
            r.finish("Message")?;
            Ok((Message::V2c(CommunityMessage { community, pdu }), 0..0))
        }
        VERSION_3 => {
            let mut h = r.sequence(tag::SEQUENCE, "HeaderData")?;
            let msg_id = i32::try_from(h.read_non_negative("msgID")?)
                .map_err(|_| DecodeError::IntegerOutOfRange("msgID"))?;
            let max_size = h.read_i32("msgMaxSize")?;
            if max_size < 484 {
                return Err(DecodeError::IntegerOutOfRange("msgMaxSize"));
            }
            let flags = h.read_octets("msgFlags")?;
            let [flag_byte] = flags else {
                return Err(DecodeError::Invalid("msgFlags (must be one octet)"));
            };
            let flags = MsgFlags::from_byte(*flag_byte);
            if flags.privacy && !flags.auth {
                return Err(DecodeError::Invalid(
                    "msgFlags (privacy without authentication)",
                ));
            }
            let model = h.read_i32("msgSecurityModel")?;
            h.finish("HeaderData")?;
            if model != SECURITY_MODEL_USM {
                return Err(DecodeError::UnsupportedSecurityModel(model));
            }

            let sp = r.expect(tag::OCTET_STRING, "msgSecurityParameters")?;
            let mut spr = Reader::nested(sp);
            let mut u = spr.sequence(tag::SEQUENCE, "UsmSecurityParameters")?;
            spr.finish("msgSecurityParameters")?;
            let engine_id = u.read_octets("msgAuthoritativeEngineID")?;
            if engine_id.len() > MAX_ENGINE_ID_LEN {
                return Err(DecodeError::Invalid("msgAuthoritativeEngineID (too long)"));
            }
            let engine_boots = u.read_non_negative("msgAuthoritativeEngineBoots")?;
            let engine_time = u.read_non_negative("msgAuthoritativeEngineTime")?;
            let user_name = u.read_octets("msgUserName")?;
            if user_name.len() > MAX_USER_NAME_LEN {
                return Err(DecodeError::Invalid("msgUserName (too long)"));
            }
            let auth = u.expect(tag::OCTET_STRING, "msgAuthenticationParameters")?;
            let priv_params = u.read_octets("msgPrivacyParameters")?;
            u.finish("UsmSecurityParameters")?;

            let data = if flags.privacy {
                ScopedPduData::Encrypted(r.read_octets("encryptedPDU")?.to_vec())
            } else {
                ScopedPduData::Plaintext(ScopedPdu::decode_from(&mut r)?)
            };
            r.finish("Message")?;
            let auth_range = auth.offset..auth.offset + auth.content.len();
            Ok((
                Message::V3(V3Message {
                    msg_id,
                    max_size,
                    flags,
                    usm: UsmSecurityParameters {
                        engine_id: engine_id.to_vec(),
                        engine_boots,
                        engine_time,
                        user_name: user_name.to_vec(),
                        auth_params: auth.content.to_vec(),
                        priv_params: priv_params.to_vec(),
                    },
                    data,
                }),
                auth_range,
            ))
        }
        other => Err(DecodeError::UnsupportedVersion(other)),
    }
}
