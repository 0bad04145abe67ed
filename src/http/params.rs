//! The typed query parameters of an operation, parsed once when the request
//! is routed: handlers read numbers, never strings. A parameter an operation
//! does not use is not looked at (S3 ignores it too).

use super::route::{Op, Query};
use crate::error::{S3Error, S3ErrorCode, S3Result};

/// S3's largest part number.
pub const MAX_PART_NUMBER: u16 = 10_000;
/// The length of every upload id Tessera hands out (time prefix + random).
pub const UPLOAD_ID_LEN: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// `partNumber`: required by UploadPart(Copy), optional on GET and HEAD.
    pub part_number: Option<u16>,
    /// `uploadId` of the multipart operations, of Tessera's form.
    pub upload_id: Option<String>,
    /// `max-keys`, `max-parts` or `max-uploads`: the page size asked for
    /// (each handler caps it at S3's 1000).
    pub max: Option<usize>,
    /// `part-number-marker` of ListParts (0: from the start).
    pub part_number_marker: u16,
}

impl Params {
    /// The parameters `op` uses, parsed and checked.
    pub fn parse(op: Op, query: &Query) -> S3Result<Params> {
        let mut params = Params::default();
        match op {
            Op::UploadPart | Op::UploadPartCopy => {
                params.part_number = Some(part_number(query.get("partNumber"))?);
                params.upload_id = Some(upload_id(query)?);
            }
            Op::GetObject | Op::HeadObject => {
                params.part_number = query.get("partNumber").map(|n| part_number(Some(n))).transpose()?;
            }
            Op::CompleteMultipartUpload | Op::AbortMultipartUpload => params.upload_id = Some(upload_id(query)?),
            Op::ListParts => {
                params.upload_id = Some(upload_id(query)?);
                params.max = max(query, "max-parts")?;
                params.part_number_marker = match query.get("part-number-marker") {
                    None | Some("") => 0,
                    Some(v) => v.trim().parse().map_err(|_| {
                        S3Error::with_message(S3ErrorCode::InvalidArgument, "Invalid part-number-marker")
                    })?,
                };
            }
            Op::ListMultipartUploads => params.max = max(query, "max-uploads")?,
            Op::ListObjects | Op::ListObjectsV2 | Op::ListObjectVersions => params.max = max(query, "max-keys")?,
            _ => {}
        }
        Ok(params)
    }

    /// The upload id of a multipart operation (routing made sure it has one).
    pub fn upload_id(&self) -> S3Result<&str> {
        self.upload_id.as_deref().ok_or_else(|| S3Error::new(S3ErrorCode::NoSuchUpload))
    }

    /// The part number of UploadPart(Copy) (routing made sure it has one).
    pub fn part_number(&self) -> S3Result<u16> {
        self.part_number.ok_or_else(part_number_error)
    }
}

fn part_number(value: Option<&str>) -> S3Result<u16> {
    value
        .and_then(|n| n.parse::<u16>().ok())
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(part_number_error)
}

fn part_number_error() -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive")
        .with_extra("ArgumentName", "partNumber")
}

/// An id of another form was never handed out: no such upload.
fn upload_id(query: &Query) -> S3Result<String> {
    match query.get("uploadId") {
        Some(id) if id.len() == UPLOAD_ID_LEN => Ok(id.to_string()),
        _ => Err(S3Error::new(S3ErrorCode::NoSuchUpload)),
    }
}

fn max(query: &Query, name: &str) -> S3Result<Option<usize>> {
    query
        .get(name)
        .map(|v| {
            v.trim().parse::<usize>().map_err(|_| {
                S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    format!("Provided {name} not an integer or within integer range"),
                )
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(op: Op, query: &str) -> S3Result<Params> {
        Params::parse(op, &Query::parse(Some(query)))
    }

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn each_operation_gets_its_parameters_typed() {
        let part = parse(Op::UploadPart, &format!("partNumber=7&uploadId={ID}")).expect("valid");
        assert_eq!((part.part_number, part.upload_id.as_deref()), (Some(7), Some(ID)));
        let list = parse(Op::ListParts, &format!("uploadId={ID}&max-parts=5&part-number-marker=3")).expect("valid");
        assert_eq!((list.max, list.part_number_marker), (Some(5), 3));
        assert_eq!(parse(Op::ListObjectsV2, "max-keys=0").expect("valid").max, Some(0));
        assert_eq!(parse(Op::GetObject, "").expect("valid").part_number, None);
        assert_eq!(parse(Op::PutObject, "partNumber=oops&max-keys=x").expect("unused: ignored"), Params::default());
    }

    #[test]
    fn bad_values_are_refused_at_the_edge() {
        let code = |op, q: &str| parse(op, q).map(|_| ()).map_err(|e| e.code);
        assert_eq!(code(Op::UploadPart, &format!("partNumber=0&uploadId={ID}")), Err(S3ErrorCode::InvalidArgument));
        assert_eq!(code(Op::UploadPart, &format!("partNumber=10001&uploadId={ID}")), Err(S3ErrorCode::InvalidArgument));
        assert_eq!(code(Op::UploadPart, "partNumber=1&uploadId=short"), Err(S3ErrorCode::NoSuchUpload));
        assert_eq!(code(Op::GetObject, "partNumber=x"), Err(S3ErrorCode::InvalidArgument));
        assert_eq!(code(Op::ListObjects, "max-keys=-1"), Err(S3ErrorCode::InvalidArgument));
        assert_eq!(
            code(Op::ListParts, &format!("uploadId={ID}&part-number-marker=x")),
            Err(S3ErrorCode::InvalidArgument)
        );
        assert_eq!(code(Op::AbortMultipartUpload, ""), Err(S3ErrorCode::NoSuchUpload));
    }
}
