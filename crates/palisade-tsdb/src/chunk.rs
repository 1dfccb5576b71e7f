//! Chunk layouts: a raw chunk is (timestamps, values); a rollup chunk is (hour starts, min,
//! max, sum, count).

use crate::codec::{decode_f64, decode_ts, encode_f64, encode_ts, Codec, Reader};
use crate::error::{Result, TsdbError};
use crate::query::{Rows, Run};

pub(crate) fn encode_raw(run: &Run, codec: Codec, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    encode_ts(out, &run.ts, codec)?;
    encode_f64(out, &run.vals, codec)
}

pub(crate) fn decode_raw(bytes: &[u8], run: &mut Run) -> Result<()> {
    let mut r = Reader::new(bytes);
    run.regular = decode_ts(&mut r, &mut run.ts)?;
    decode_f64(&mut r, &mut run.vals)?;
    if run.ts.len() != run.vals.len() {
        return Err(TsdbError::Codec(
            "raw chunk columns differ in length".into(),
        ));
    }
    Ok(())
}

pub(crate) fn encode_rollup(rows: &Rows, codec: Codec, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    encode_ts(out, &rows.ts, codec)?;
    encode_f64(out, &rows.min, codec)?;
    encode_f64(out, &rows.max, codec)?;
    encode_f64(out, &rows.sum, codec)?;
    encode_f64(out, &rows.count, codec)
}

pub(crate) fn decode_rollup(bytes: &[u8], rows: &mut Rows) -> Result<()> {
    let mut r = Reader::new(bytes);
    decode_ts(&mut r, &mut rows.ts)?;
    decode_f64(&mut r, &mut rows.min)?;
    decode_f64(&mut r, &mut rows.max)?;
    decode_f64(&mut r, &mut rows.sum)?;
    decode_f64(&mut r, &mut rows.count)?;
    let n = rows.ts.len();
    if [&rows.min, &rows.max, &rows.sum, &rows.count]
        .iter()
        .any(|c| c.len() != n)
    {
        return Err(TsdbError::Codec(
            "rollup chunk columns differ in length".into(),
        ));
    }
    Ok(())
}
