//! Protocol data units (RFC 3416).

use crate::ber::{self, tag, write_signed, Reader};
use crate::error::{DecodeError, ErrorStatus};
use crate::oid::Oid;
use crate::value::Value;

/// A variable binding: an OID and its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VarBind {
    /// The variable's name.
    pub oid: Oid,
    /// Its value ([`Value::Null`] in requests).
    pub value: Value,
}

impl VarBind {
    /// A varbind with a NULL value, as used in requests.
    pub fn null(oid: Oid) -> Self {
        VarBind {
            oid,
            value: Value::Null,
        }
    }
}

/// The PDU types that share the `PDU`/`BulkPDU` layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PduType {
    /// GetRequest-PDU (0xA0).
    GetRequest,
    /// GetNextRequest-PDU (0xA1).
    GetNextRequest,
    /// Response-PDU (0xA2).
    Response,
    /// SetRequest-PDU (0xA3).
    SetRequest,
    /// GetBulkRequest-PDU (0xA5).
    GetBulkRequest,
    /// InformRequest-PDU (0xA6).
    InformRequest,
    /// SNMPv2-Trap-PDU (0xA7).
    SnmpV2Trap,
    /// Report-PDU (0xA8).
    Report,
}

impl PduType {
    /// The BER tag.
    pub fn tag(self) -> u8 {
        match self {
            PduType::GetRequest => 0xa0,
            PduType::GetNextRequest => 0xa1,
            PduType::Response => 0xa2,
            PduType::SetRequest => 0xa3,
            PduType::GetBulkRequest => 0xa5,
            PduType::InformRequest => 0xa6,
            PduType::SnmpV2Trap => 0xa7,
            PduType::Report => 0xa8,
        }
    }

    /// The type for a BER tag.
    pub fn from_tag(t: u8) -> Option<Self> {
        Some(match t {
            0xa0 => PduType::GetRequest,
            0xa1 => PduType::GetNextRequest,
            0xa2 => PduType::Response,
            0xa3 => PduType::SetRequest,
            0xa5 => PduType::GetBulkRequest,
            0xa6 => PduType::InformRequest,
            0xa7 => PduType::SnmpV2Trap,
            0xa8 => PduType::Report,
            _ => return None,
        })
    }
}

/// A PDU. For GetBulkRequest, `error_status` and `error_index` carry
/// non-repeaters and max-repetitions (see [`Pdu::get_bulk`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pdu {
    /// The PDU type.
    pub pdu_type: PduType,
    /// request-id.
    pub request_id: i32,
    /// error-status, or non-repeaters for GetBulkRequest.
    pub error_status: i32,
    /// error-index, or max-repetitions for GetBulkRequest.
    pub error_index: i32,
    /// The variable bindings.
    pub varbinds: Vec<VarBind>,
}

impl Pdu {
    /// A request of `pdu_type` for `oids`, with NULL values.
    pub fn request(pdu_type: PduType, request_id: i32, oids: &[Oid]) -> Self {
        Pdu {
            pdu_type,
            request_id,
            error_status: 0,
            error_index: 0,
            varbinds: oids.iter().cloned().map(VarBind::null).collect(),
        }
    }

    /// A GetBulkRequest.
    pub fn get_bulk(
        request_id: i32,
        non_repeaters: i32,
        max_repetitions: i32,
        oids: &[Oid],
    ) -> Self {
        Pdu {
            error_status: non_repeaters,
            error_index: max_repetitions,
            ..Pdu::request(PduType::GetBulkRequest, request_id, oids)
        }
    }

    /// The error-status as an enum.
    pub fn status(&self) -> ErrorStatus {
        ErrorStatus::from_i32(self.error_status)
    }

    /// Appends the BER encoding.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        write_signed(out, tag::INTEGER, i64::from(self.request_id));
        write_signed(out, tag::INTEGER, i64::from(self.error_status));
        write_signed(out, tag::INTEGER, i64::from(self.error_index));
        let list = out.len();
        for vb in &self.varbinds {
            let one = out.len();
            vb.oid.encode(out);
            vb.value.encode(out);
            ber::wrap(out, one, tag::SEQUENCE);
        }
        ber::wrap(out, list, tag::SEQUENCE);
        ber::wrap(out, start, self.pdu_type.tag());
    }

    /// Decodes a PDU from `r`'s next TLV.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Pdu, DecodeError> {
        let tlv = r.read_tlv()?;
        let pdu_type = PduType::from_tag(tlv.tag).ok_or(DecodeError::UnknownPdu(tlv.tag))?;
        let mut p = Reader::nested(tlv);
        let request_id = p.read_i32("request-id")?;
        let error_status = p.read_i32("error-status")?;
        let error_index = p.read_i32("error-index")?;
        let mut list = p.sequence(tag::SEQUENCE, "variable-bindings")?;
        p.finish("PDU")?;
        // Grows with what is actually decoded; never sized from a claim.
        let mut varbinds = Vec::new();
        while !list.is_empty() {
            let mut vb = list.sequence(tag::SEQUENCE, "VarBind")?;
            let oid = Oid::decode(vb.expect(tag::OBJECT_IDENTIFIER, "VarBind name")?.content)?;
            let value = Value::decode(vb.read_tlv()?)?;
            vb.finish("VarBind")?;
            varbinds.push(VarBind { oid, value });
        }
        Ok(Pdu {
            pdu_type,
            request_id,
            error_status,
            error_index,
            varbinds,
        })
    }
}
