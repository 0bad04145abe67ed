//! CORS rules, without HTTP: the PutBucketCors document parsed and checked
//! as S3 checks it, written back for GetBucketCors, and matched against a
//! request as S3 matches it (the first rule whose origin, method and
//! headers all match decides).
//! References: <https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketCors.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_CORSRule.html>,
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/cors.html> ("How Amazon
//! S3 evaluates the CORS configuration on a bucket").

use super::error::{S3Error, S3ErrorCode, S3Result};
use super::xml::{self, Element, XmlWriter};
use crate::store::schema::{Cors, CorsMethod, CorsRule};

/// S3 allows at most 100 rules in a configuration.
pub const MAX_RULES: usize = 100;
/// S3's limit on a rule's `ID`, in characters.
const MAX_ID_CHARS: usize = 255;

fn malformed() -> S3Error {
    S3Error::new(S3ErrorCode::MalformedXML)
}

fn invalid(message: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, message)
}

/// Parses a `<CORSConfiguration>` document. As S3 does, the structure of
/// the whole document is checked first (MalformedXML: unknown or repeated
/// elements, a rule without an origin or a method, more than 100 rules, a
/// bad `MaxAgeSeconds`), then each rule's values in order (InvalidRequest:
/// an unknown method, two wildcards in an origin or allowed header, any
/// in an exposed header). Values are kept exactly as sent, spaces included.
pub fn parse(body: &[u8]) -> S3Result<Cors> {
    let doc = xml::parse(body)?;
    let only_rules = doc.children.iter().all(|c| c.name == "CORSRule");
    if doc.name != "CORSConfiguration" || !only_rules || !doc.text.trim().is_empty() {
        return Err(malformed());
    }
    if doc.children.is_empty() || doc.children.len() > MAX_RULES {
        return Err(malformed());
    }
    let raw = doc.children.iter().map(structure).collect::<S3Result<Vec<_>>>()?;
    let rules = raw.into_iter().map(check).collect::<S3Result<Vec<_>>>()?;
    Ok(Cors { rules })
}

/// A rule's elements before their values are checked.
#[derive(Default)]
struct RawRule<'a> {
    id: Option<&'a str>,
    origins: Vec<&'a str>,
    methods: Vec<&'a str>,
    headers: Vec<&'a str>,
    expose: Vec<&'a str>,
    max_age: Option<u32>,
}

fn structure(rule: &Element) -> S3Result<RawRule<'_>> {
    if !rule.text.trim().is_empty() {
        return Err(malformed());
    }
    let mut raw = RawRule::default();
    for child in &rule.children {
        if !child.children.is_empty() {
            return Err(malformed());
        }
        let text = child.text.as_str();
        let repeated = match child.name.as_str() {
            "ID" => raw.id.replace(text).is_some() || text.chars().count() > MAX_ID_CHARS,
            "AllowedOrigin" => push(&mut raw.origins, text),
            "AllowedMethod" => push(&mut raw.methods, text),
            "AllowedHeader" => push(&mut raw.headers, text),
            "ExposeHeader" => push(&mut raw.expose, text),
            "MaxAgeSeconds" => raw.max_age.replace(max_age(text)?).is_some(),
            _ => true,
        };
        if repeated {
            return Err(malformed());
        }
    }
    match raw.origins.is_empty() || raw.methods.is_empty() {
        true => Err(malformed()),
        false => Ok(raw),
    }
}

/// Adds a value of a repeatable element (never a reason to refuse).
fn push<'a>(values: &mut Vec<&'a str>, text: &'a str) -> bool {
    values.push(text);
    false
}

/// Decimal digits only, at most a signed 32-bit number (S3's type).
fn max_age(text: &str) -> S3Result<u32> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let value = text.parse::<u32>().ok().filter(|v| digits && i32::try_from(*v).is_ok());
    value.ok_or_else(malformed)
}

fn check(raw: RawRule<'_>) -> S3Result<CorsRule> {
    let allowed_methods = raw
        .methods
        .iter()
        .map(|m| {
            CorsMethod::parse(m).ok_or_else(|| {
                invalid(format!("Found unsupported HTTP method in CORS config. Unsupported method is {m}"))
            })
        })
        .collect::<S3Result<Vec<_>>>()?;
    let one_wildcard = |kind: &str, value: &str| match value.matches('*').count() > 1 {
        true => Err(invalid(format!("{kind} \"{value}\" can not have more than one wildcard."))),
        false => Ok(value.to_string()),
    };
    let allowed_origins = raw.origins.iter().map(|o| one_wildcard("AllowedOrigin", o)).collect::<S3Result<_>>()?;
    let allowed_headers = raw.headers.iter().map(|h| one_wildcard("AllowedHeader", h)).collect::<S3Result<_>>()?;
    let expose_headers = raw.expose.iter().map(|h| expose_header(h)).collect::<S3Result<_>>()?;
    let id = raw.id.map(str::to_string);
    Ok(CorsRule { id, allowed_origins, allowed_methods, allowed_headers, expose_headers, max_age_seconds: raw.max_age })
}

/// An exposed header is sent back as is in `Access-Control-Expose-Headers`,
/// so it must be something a header can carry: no wildcard (S3's rule) and
/// only visible ASCII (Tessera's, so a stored rule can always be answered).
fn expose_header(name: &str) -> S3Result<String> {
    if name.contains('*') {
        return Err(invalid(format!(
            "ExposeHeader \"{name}\" contains wildcard. We currently do not support wildcard for ExposeHeader."
        )));
    }
    match !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()) {
        true => Ok(name.to_string()),
        false => Err(invalid(format!("ExposeHeader \"{name}\" is not a header name"))),
    }
}

/// The GetBucketCors document, elements in the order S3 writes them.
pub fn to_xml(cors: &Cors) -> String {
    let mut w = XmlWriter::new("CORSConfiguration");
    for rule in &cors.rules {
        w.start("CORSRule").opt("ID", rule.id.as_deref());
        for method in &rule.allowed_methods {
            w.elem("AllowedMethod", method.as_str());
        }
        for (name, values) in [("AllowedOrigin", &rule.allowed_origins), ("AllowedHeader", &rule.allowed_headers)] {
            for value in values {
                w.elem(name, value);
            }
        }
        if let Some(seconds) = rule.max_age_seconds {
            w.elem_u64("MaxAgeSeconds", u64::from(seconds));
        }
        for value in &rule.expose_headers {
            w.elem("ExposeHeader", value);
        }
        w.end("CORSRule");
    }
    w.finish("CORSConfiguration")
}

/// The first rule that allows `origin` to use `method` with every header
/// of `headers` (the names of a preflight's `Access-Control-Request-Headers`;
/// none for an actual request).
pub fn find<'a>(cors: &'a Cors, origin: &[u8], method: CorsMethod, headers: &[String]) -> Option<&'a CorsRule> {
    cors.rules.iter().find(|rule| {
        rule.allowed_methods.contains(&method)
            && rule.allowed_origins.iter().any(|o| origin_matches(o, origin))
            && headers.iter().all(|h| rule.allowed_headers.iter().any(|p| header_matches(p, h)))
    })
}

/// Origins compare case-sensitively, as S3 compares them.
pub fn origin_matches(pattern: &str, origin: &[u8]) -> bool {
    wildcard(pattern.as_bytes(), origin, |a, b| a == b)
}

/// Header names compare case-insensitively (they are in HTTP).
pub fn header_matches(pattern: &str, name: &str) -> bool {
    wildcard(pattern.as_bytes(), name.as_bytes(), <[u8]>::eq_ignore_ascii_case)
}

/// Whether `text` matches `pattern`, which holds at most one `*` (any run
/// of characters, the empty one too): the part before the `*` must begin
/// the text and the part after it end it, without overlapping. Linear in
/// the lengths, whatever the input: a request cannot make it backtrack.
fn wildcard(pattern: &[u8], text: &[u8], eq: impl Fn(&[u8], &[u8]) -> bool) -> bool {
    let Some(star) = pattern.iter().position(|&b| b == b'*') else { return eq(pattern, text) };
    let (before, after) = pattern.split_at(star);
    let after = after.get(1..).unwrap_or_default();
    let Some(tail_at) = text.len().checked_sub(after.len()) else { return false };
    tail_at >= before.len()
        && text.get(..before.len()).is_some_and(|head| eq(before, head))
        && text.get(tail_at..).is_some_and(|tail| eq(after, tail))
}

#[cfg(test)]
#[path = "cors_rules_tests.rs"]
mod tests;
