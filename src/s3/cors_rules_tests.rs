use proptest::prelude::*;

use super::*;

const ORIGIN: &str = "<AllowedOrigin>https://example.com</AllowedOrigin>";
const METHOD: &str = "<AllowedMethod>GET</AllowedMethod>";

/// A configuration document, each argument the inside of one `<CORSRule>`.
fn doc(rules: &[&str]) -> String {
    let rules: String = rules.iter().map(|r| format!("<CORSRule>{r}</CORSRule>")).collect();
    format!("<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</CORSConfiguration>")
}

fn code(body: &str) -> Option<S3ErrorCode> {
    parse(body.as_bytes()).err().map(|e| e.code)
}

fn message(body: &str) -> String {
    parse(body.as_bytes()).err().map(|e| e.message).unwrap_or_default()
}

fn rule(origins: &[&str], methods: &[CorsMethod], headers: &[&str]) -> CorsRule {
    CorsRule {
        allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
        allowed_methods: methods.to_vec(),
        allowed_headers: headers.iter().map(|s| s.to_string()).collect(),
        ..CorsRule::default()
    }
}

#[test]
fn every_element_is_read_in_any_order_and_form() {
    let body = "<?xml version=\"1.0\"?>\n<s3:CORSConfiguration xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n\
                <s3:CORSRule>\n  <s3:MaxAgeSeconds>0042</s3:MaxAgeSeconds><s3:ExposeHeader>ETag</s3:ExposeHeader>\n\
                <s3:AllowedMethod>PUT</s3:AllowedMethod><s3:ID>r &amp; 1</s3:ID>\
                <s3:AllowedOrigin><![CDATA[https://*.example.com]]></s3:AllowedOrigin>\
                <s3:AllowedHeader>x-amz-*</s3:AllowedHeader><s3:AllowedMethod>HEAD</s3:AllowedMethod>\
                <!-- a comment --></s3:CORSRule>\n</s3:CORSConfiguration>";
    let parsed = parse(body.as_bytes()).expect("valid");
    let want = CorsRule {
        id: Some("r & 1".into()),
        allowed_origins: vec!["https://*.example.com".into()],
        allowed_methods: vec![CorsMethod::Put, CorsMethod::Head],
        allowed_headers: vec!["x-amz-*".into()],
        expose_headers: vec!["ETag".into()],
        max_age_seconds: Some(42),
    };
    assert_eq!(parsed.rules, vec![want]);
}

#[test]
fn values_keep_their_case_and_spaces() {
    let body = doc(&["<AllowedOrigin> HTTPS://Example.COM\n</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader> X-Amz-Date </AllowedHeader>"]);
    let parsed = parse(body.as_bytes()).expect("valid");
    let first = parsed.rules.first().expect("a rule");
    assert_eq!(first.allowed_origins, vec![" HTTPS://Example.COM\n"]);
    assert_eq!(first.allowed_headers, vec![" X-Amz-Date "]);
}

#[test]
fn limits_are_s3s() {
    let minimal = format!("{ORIGIN}{METHOD}");
    let hundred = vec![minimal.as_str(); MAX_RULES];
    assert_eq!(parse(doc(&hundred).as_bytes()).map(|c| c.rules.len()).ok(), Some(100));
    let too_many = vec![minimal.as_str(); MAX_RULES + 1];
    assert_eq!(code(&doc(&too_many)), Some(S3ErrorCode::MalformedXML));
    let id = |n: usize| doc(&[&format!("{minimal}<ID>{}</ID>", "é".repeat(n))]);
    assert!(parse(id(255).as_bytes()).is_ok(), "255 characters, not bytes");
    assert_eq!(code(&id(256)), Some(S3ErrorCode::MalformedXML));
    let age = |v: &str| doc(&[&format!("{minimal}<MaxAgeSeconds>{v}</MaxAgeSeconds>")]);
    assert!(parse(age("2147483647").as_bytes()).is_ok());
    for bad in ["2147483648", "-1", "1.5", "", "1e3", "+1", " 1", "0x10"] {
        assert_eq!(code(&age(bad)), Some(S3ErrorCode::MalformedXML), "MaxAgeSeconds {bad:?}");
    }
}

#[test]
fn bad_structure_is_malformed_xml() {
    let minimal = format!("{ORIGIN}{METHOD}");
    let cases = [
        String::new(),
        "not xml".into(),
        format!("<CORSConfiguration><CORSRule>{minimal}</CORSConfiguration>"),
        format!("<CORSRules><CORSRule>{minimal}</CORSRule></CORSRules>"),
        format!("<CORSRule>{minimal}</CORSRule>"),
        format!("<CORSConfiguration><Rule>{minimal}</Rule></CORSConfiguration>"),
        format!("<CORSConfiguration>text<CORSRule>{minimal}</CORSRule></CORSConfiguration>"),
        format!("<CORSConfiguration>{minimal}</CORSConfiguration>"),
        doc(&[]),
        doc(&[""]),
        doc(&[METHOD]),
        doc(&[ORIGIN]),
        doc(&[&minimal, METHOD]),
        doc(&[&format!("{minimal}text")]),
        doc(&[&format!("{minimal}<AllowedHeaders>*</AllowedHeaders>")]),
        doc(&[&format!("{minimal}<allowedheader>*</allowedheader>")]),
        doc(&[&format!("<AllowedOrigin><O>*</O></AllowedOrigin>{METHOD}")]),
        doc(&[&format!("{minimal}<ID>a</ID><ID>b</ID>")]),
        doc(&[&format!("{minimal}<MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>1</MaxAgeSeconds>")]),
    ];
    for body in cases {
        assert_eq!(code(&body), Some(S3ErrorCode::MalformedXML), "{body}");
    }
}

#[test]
fn bad_values_are_invalid_request_with_s3s_messages() {
    for method in ["OPTIONS", "PATCH", "get", " GET", "GET,PUT", "*", ""] {
        let body = doc(&[&format!("{ORIGIN}{METHOD}<AllowedMethod>{method}</AllowedMethod>")]);
        assert_eq!(code(&body), Some(S3ErrorCode::InvalidRequest), "{method:?}");
        assert_eq!(
            message(&body),
            format!("Found unsupported HTTP method in CORS config. Unsupported method is {method}")
        );
    }
    let origin = doc(&[&format!("<AllowedOrigin>https://*.example.*</AllowedOrigin>{METHOD}")]);
    assert_eq!(message(&origin), "AllowedOrigin \"https://*.example.*\" can not have more than one wildcard.");
    let header = doc(&[&format!("{ORIGIN}{METHOD}<AllowedHeader>x-*-meta-*</AllowedHeader>")]);
    assert_eq!(message(&header), "AllowedHeader \"x-*-meta-*\" can not have more than one wildcard.");
    let expose = doc(&[&format!("{ORIGIN}{METHOD}<ExposeHeader>x-amz-*</ExposeHeader>")]);
    assert_eq!(
        message(&expose),
        "ExposeHeader \"x-amz-*\" contains wildcard. We currently do not support wildcard for ExposeHeader."
    );
    let unsendable = doc(&[&format!("{ORIGIN}{METHOD}<ExposeHeader>a&#xA;b</ExposeHeader>")]);
    assert_eq!(code(&unsendable), Some(S3ErrorCode::InvalidRequest));
}

/// S3 reports the structure of the whole document before any value, and
/// the values of a rule in the order method, origin, header, exposed header.
#[test]
fn errors_are_reported_in_s3s_order() {
    let bad_method = "<AllowedMethod>PATCH</AllowedMethod>";
    let bad_origin = "<AllowedOrigin>*.*</AllowedOrigin>";
    let bad_header = "<AllowedHeader>*-*</AllowedHeader>";
    let bad_expose = "<ExposeHeader>x-*</ExposeHeader>";
    let first = doc(&[&format!("{bad_expose}{bad_header}{bad_origin}{bad_method}")]);
    assert!(message(&first).starts_with("Found unsupported HTTP method"), "{}", message(&first));
    let second = doc(&[&format!("{bad_expose}{bad_header}{bad_origin}{METHOD}")]);
    assert!(message(&second).starts_with("AllowedOrigin"), "{}", message(&second));
    let later_structure = doc(&[&format!("{ORIGIN}{bad_method}"), METHOD]);
    assert_eq!(code(&later_structure), Some(S3ErrorCode::MalformedXML));
}

#[test]
fn written_back_in_s3s_order() {
    let mut r = rule(&["https://example.com", "*"], &[CorsMethod::Get, CorsMethod::Put], &["*"]);
    r.id = Some("a<b".into());
    r.expose_headers = vec!["ETag".into()];
    r.max_age_seconds = Some(3000);
    let xml = to_xml(&Cors { rules: vec![r] });
    assert!(
        xml.ends_with(
            "<CORSRule><ID>a&lt;b</ID><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>\
             <AllowedOrigin>https://example.com</AllowedOrigin><AllowedOrigin>*</AllowedOrigin>\
             <AllowedHeader>*</AllowedHeader><MaxAgeSeconds>3000</MaxAgeSeconds><ExposeHeader>ETag</ExposeHeader>\
             </CORSRule></CORSConfiguration>"
        ),
        "{xml}"
    );
}

#[test]
fn origins_match_as_s3_matches_them() {
    let table = [
        ("*", "https://example.com", true),
        ("*", "null", true),
        ("https://example.com", "https://example.com", true),
        ("https://example.com", "http://example.com", false),
        ("https://example.com", "https://example.com:8443", false),
        ("https://example.com", "https://EXAMPLE.com", false),
        ("https://*.example.com", "https://www.example.com", true),
        ("https://*.example.com", "https://a.b.example.com", true),
        ("https://*.example.com", "https://WWW.example.com", true),
        ("https://*.example.com", "https://example.com", false),
        ("https://*.example.com", "http://www.example.com", false),
        ("https://*.example.com", "https://www.example.com.evil", false),
        ("https://*.example.com", "https://www.Example.com", false),
        ("https://example.com:*", "https://example.com:8443", true),
        ("https://example.com:*", "https://example.com", false),
        ("http*", "https://example.com", true),
        ("*.example.com", "https://x.example.com", true),
        ("https://a*a", "https://aa", true),
        ("https://a*a", "https://a", false),
        ("ab*ba", "aba", false),
        ("", "", true),
        ("", "https://example.com", false),
    ];
    for (pattern, origin, want) in table {
        assert_eq!(origin_matches(pattern, origin.as_bytes()), want, "{pattern:?} ~ {origin:?}");
    }
}

#[test]
fn headers_match_case_insensitively() {
    let table = [
        ("content-type", "Content-Type", true),
        ("CONTENT-TYPE", "content-type", true),
        ("x-amz-*", "X-Amz-Date", true),
        ("X-Amz-*", "x-amz-", true),
        ("x-amz-*", "x-amz", false),
        ("x-amz-*", "x-amzn-trace-id", false),
        ("x-amz-*", "my-x-amz-date", false),
        ("*-type", "content-type", true),
        ("*-type", "content-types", false),
        ("x-*-id", "x--id", true),
        ("x-*-id", "x-id", false),
        ("*", "anything", true),
        ("content.type", "contentXtype", false),
    ];
    for (pattern, name, want) in table {
        assert_eq!(header_matches(pattern, name), want, "{pattern:?} ~ {name:?}");
    }
}

#[test]
fn the_first_rule_matching_origin_method_and_every_header_decides() {
    let exact = rule(&["https://example.com"], &[CorsMethod::Get, CorsMethod::Put], &[]);
    let pattern = rule(&["https://*.com"], &[CorsMethod::Get], &["*"]);
    let any = rule(&["*"], &[CorsMethod::Get, CorsMethod::Head], &[]);
    let cors = Cors { rules: vec![exact.clone(), pattern.clone(), any.clone()] };
    let find = |origin: &str, method, headers: &[&str]| {
        let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        find(&cors, origin.as_bytes(), method, &headers).cloned()
    };
    assert_eq!(find("https://example.com", CorsMethod::Get, &[]), Some(exact.clone()));
    assert_eq!(find("https://example.com", CorsMethod::Put, &[]), Some(exact));
    assert_eq!(find("https://example.com", CorsMethod::Head, &[]), Some(any.clone()));
    assert_eq!(find("https://example.com", CorsMethod::Get, &["x-amz-date"]), Some(pattern));
    assert_eq!(find("https://example.org", CorsMethod::Get, &["x-amz-date"]), None);
    assert_eq!(find("https://example.org", CorsMethod::Delete, &[]), None);
    assert_eq!(find("https://example.org", CorsMethod::Get, &[]), Some(any));
}

/// A rule with 1 to 3 origins and headers of at most one `*` each, any
/// methods, optional ID and max age, all of them values PutBucketCors takes.
fn valid_rule() -> impl Strategy<Value = CorsRule> {
    let text = "[a-zA-Z0-9 .:/&<>\"'-]{0,12}";
    let one_star = (text, proptest::option::of(text)).prop_map(|(a, b)| match b {
        Some(b) => format!("{a}*{b}"),
        None => a,
    });
    let methods = proptest::sample::subsequence(CorsMethod::ALL.to_vec(), 1..=5);
    (
        proptest::option::of("[a-zA-Z0-9 _&<-]{0,20}"),
        proptest::collection::vec(one_star.clone(), 1..3),
        methods,
        proptest::collection::vec(one_star, 0..3),
        proptest::collection::vec("[a-zA-Z0-9-]{1,12}", 0..3),
        proptest::option::of(0..=i32::MAX as u32),
    )
        .prop_map(|(id, allowed_origins, allowed_methods, allowed_headers, expose_headers, max_age_seconds)| {
            CorsRule { id, allowed_origins, allowed_methods, allowed_headers, expose_headers, max_age_seconds }
        })
}

proptest! {
    /// GetBucketCors's document, put again, is the same configuration.
    #[test]
    fn written_rules_parse_back_the_same(rules in proptest::collection::vec(valid_rule(), 1..5)) {
        let cors = Cors { rules };
        prop_assert_eq!(parse(to_xml(&cors).as_bytes()).ok(), Some(cors));
    }

    /// Whatever is put, the parser answers: a configuration or an error.
    #[test]
    fn any_body_is_answered(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse(&body);
    }

    /// `before*after` matches every text that begins with `before` and
    /// ends with `after` without overlap, and nothing else.
    #[test]
    fn a_wildcard_is_a_prefix_and_a_suffix(
        before in "[a-c.]{0,4}", after in "[a-c.]{0,4}", text in "[a-c.]{0,10}"
    ) {
        let pattern = format!("{before}*{after}");
        let want = text.len() >= before.len() + after.len() && text.starts_with(&before) && text.ends_with(&after);
        prop_assert_eq!(origin_matches(&pattern, text.as_bytes()), want);
        let framed = format!("{before}{text}{after}");
        prop_assert!(origin_matches(&pattern, framed.as_bytes()));
    }

    /// Header names match whatever their case; a pattern without `*` is
    /// an exact comparison.
    #[test]
    fn header_case_never_matters(pattern in "[a-zA-Z-]{0,6}\\*?[a-zA-Z-]{0,6}", name in "[a-zA-Z-]{0,14}") {
        let got = header_matches(&pattern, &name);
        prop_assert_eq!(header_matches(&pattern.to_ascii_uppercase(), &name.to_ascii_lowercase()), got);
        if !pattern.contains('*') {
            prop_assert_eq!(got, pattern.eq_ignore_ascii_case(&name));
        }
    }
}
