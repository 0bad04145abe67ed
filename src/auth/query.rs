//! The raw query string as signers see it.
//!
//! Both signature versions sign DECODED parameter values, re-encoded by their own
//! rules, so the query is parsed once here: split on `&`, each `name[=value]`
//! percent-decoded. `+` stays a literal `+`: the AWS SDKs, aws-cli, rclone and
//! s3cmd all send a space as `%20`, and SigV4 canonicalisation
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>)
//! treats `+` as an ordinary character that encodes to `%2B`.

use percent_encoding::percent_decode;

use crate::auth::sigv4;

/// One decoded `name[=value]` parameter.
#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    /// False for `?acl`-style parameters sent without `=`; SigV2 signs those bare.
    pub has_value: bool,
}

/// The decoded parameters of a request, in the order sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawQuery {
    params: Vec<Param>,
}

impl RawQuery {
    /// Parses `raw` (without the `?`). Empty segments (`a&&b`) are skipped.
    pub fn parse(raw: &str) -> Self {
        let params = raw
            .split('&')
            .filter(|segment| !segment.is_empty())
            .map(|segment| {
                let (name, value, has_value) = match segment.split_once('=') {
                    Some((name, value)) => (name, value, true),
                    None => (segment, "", false),
                };
                Param {
                    name: percent_decode(name.as_bytes()).collect(),
                    value: percent_decode(value.as_bytes()).collect(),
                    has_value,
                }
            })
            .collect();
        RawQuery { params }
    }

    /// The first value of `name` (ASCII case-insensitive), if it is UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|p| std::str::from_utf8(&p.value).ok())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// SigV4 `CanonicalQueryString`, leaving out the parameter named `exclude`
    /// (`X-Amz-Signature` for presigned URLs).
    pub fn canonical_v4(&self, exclude: Option<&str>) -> String {
        let pairs: Vec<(&[u8], &[u8])> = self
            .params
            .iter()
            .filter(|p| exclude.is_none_or(|ex| !p.name.eq_ignore_ascii_case(ex.as_bytes())))
            .map(|p| (p.name.as_slice(), p.value.as_slice()))
            .collect();
        sigv4::canonical_query(&pairs)
    }

    /// The decoded pairs in the form `sigv2::canonical_resource` takes.
    pub fn pairs_v2(&self) -> Vec<(String, Option<String>)> {
        self.params
            .iter()
            .map(|p| {
                let name = String::from_utf8_lossy(&p.name).into_owned();
                let value = p.has_value.then(|| String::from_utf8_lossy(&p.value).into_owned());
                (name, value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_keeps_plus() {
        let q = RawQuery::parse("prefix=a%20b+c&acl&&x=%2F");
        assert_eq!(q.get("prefix"), Some("a b+c"));
        assert_eq!(q.get("ACL"), Some(""));
        assert_eq!(q.get("x"), Some("/"));
        assert_eq!(q.canonical_v4(None), "acl=&prefix=a%20b%2Bc&x=%2F");
        assert_eq!(q.canonical_v4(Some("prefix")), "acl=&x=%2F");
        let v2 = q.pairs_v2();
        assert_eq!(v2[1], ("acl".to_string(), None));
    }

    #[test]
    fn non_utf8_values_round_trip() {
        let q = RawQuery::parse("k=%FF");
        assert_eq!(q.get("k"), None);
        assert_eq!(q.canonical_v4(None), "k=%FF");
    }

    proptest::proptest! {
        /// Whatever a client encodes (strictly, as SigV4 does), decoding and
        /// re-canonicalising gives the canonical query of the original pairs.
        #[test]
        fn encode_parse_round_trip(
            pairs in proptest::collection::vec(("[^&=]{1,12}", "\\PC{0,12}"), 0..6),
        ) {
            let raw: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", sigv4::uri_encode(k, true), sigv4::uri_encode(v, true)))
                .collect();
            let q = RawQuery::parse(&raw.join("&"));
            proptest::prop_assert_eq!(q.canonical_v4(None), sigv4::canonical_query(&pairs));
        }
    }
}
