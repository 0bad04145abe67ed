//! XML in and out. Responses are built with a small writer that escapes every
//! text node; request bodies are parsed with quick-xml under a size limit.

use quick_xml::events::Event;
use quick_xml::Reader;
use std::fmt::Write as _;

use time::OffsetDateTime;

use super::error::{S3Error, S3ErrorCode, S3Result};

pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Builds an XML document: `start`/`end` elements, `elem` for text leaves.
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// A document whose root element carries the S3 namespace.
    pub fn new(root: &str) -> XmlWriter {
        let mut out = String::with_capacity(512);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!("<{root} xmlns=\"{S3_NAMESPACE}\">"));
        XmlWriter { out }
    }

    /// A document whose root has no namespace (S3's `<Error>`).
    pub fn bare(root: &str) -> XmlWriter {
        XmlWriter { out: format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root}>") }
    }

    pub fn start(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn end(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.start(name);
        escape_into(&mut self.out, text);
        self.end(name)
    }

    /// Escaped text inside the current element.
    pub fn text(&mut self, text: &str) -> &mut Self {
        escape_into(&mut self.out, text);
        self
    }

    /// Markup written as is (for elements with attributes).
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// An element holding an ISO 8601 timestamp (milliseconds since the epoch).
    pub fn elem_time(&mut self, name: &str, ms: i64) -> &mut Self {
        self.start(name);
        write_iso8601(&mut self.out, ms);
        self.end(name)
    }

    /// An element holding a number.
    pub fn elem_u64(&mut self, name: &str, value: u64) -> &mut Self {
        self.start(name);
        let _ = write!(self.out, "{value}");
        self.end(name)
    }

    /// An element holding an ETag in its quotes (escaped, as S3 writes them).
    pub fn elem_etag(&mut self, name: &str, etag: &str) -> &mut Self {
        self.start(name).raw("&quot;").text(etag).raw("&quot;").end(name)
    }

    pub fn opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(text) = text {
            self.elem(name, text);
        }
        self
    }

    /// Closes the root element and returns the document.
    pub fn finish(mut self, root: &str) -> String {
        self.end(root);
        self.out
    }
}

/// Appends `text` escaped as S3 escapes it: the five markup characters as
/// entities, and every C0 control character (keys may hold any of them) as a
/// numeric reference such as `&#x1;`, which is what S3 answers (a raw
/// control byte makes the document ill-formed, and a raw CR or TAB would come
/// back as LF or space after XML's end-of-line and whitespace normalisation,
/// naming another key). Clients that cannot parse such references ask for
/// `encoding-type=url`, as S3 documents.
fn escape_into(out: &mut String, text: &str) {
    let special = |c: char| matches!(c, '&' | '<' | '>' | '"' | '\'') || c.is_ascii_control() && c != '\u{7f}';
    let mut rest = text;
    while let Some(at) = rest.find(special) {
        out.push_str(&rest[..at]);
        let c = rest[at..].chars().next().unwrap_or(' ');
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            control => {
                let _ = write!(out, "&#x{:X};", u32::from(control));
            }
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.push_str(rest);
}

/// ISO 8601 with milliseconds, as S3 writes timestamps in XML.
pub fn iso8601(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    write_iso8601(&mut out, ms);
    out
}

/// [`iso8601`] appended to `out`: a listing writes one per key, so no
/// intermediate strings.
fn write_iso8601(out: &mut String, ms: i64) {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (date, time) = (t.date(), t.time());
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        date.year(),
        u8::from(date.month()),
        date.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.millisecond()
    );
}

/// A parsed element tree, enough for S3's small request documents.
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// Parses a request document into a tree. Text is kept exactly (keys may
/// begin or end with spaces); namespaces prefixes are dropped from names.
pub fn parse(body: &[u8]) -> S3Result<Element> {
    let malformed = || S3Error::new(S3ErrorCode::MalformedXML);
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        match reader.read_event().map_err(|_| malformed())? {
            Event::Start(e) => stack.push(Element { name: local_name(e.local_name().as_ref()), ..Element::default() }),
            Event::Empty(e) => {
                let elem = Element { name: local_name(e.local_name().as_ref()), ..Element::default() };
                attach(&mut stack, &mut root, elem);
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.unescape().map_err(|_| malformed())?);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(std::str::from_utf8(&t).map_err(|_| malformed())?);
                }
            }
            Event::End(_) => {
                let elem = stack.pop().ok_or_else(malformed)?;
                attach(&mut stack, &mut root, elem);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match (root, stack.is_empty()) {
        (Some(root), true) => Ok(root),
        _ => Err(malformed()),
    }
}

fn local_name(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, elem: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(elem),
        None => *root = Some(elem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_leaves_write_what_s3_writes() {
        let mut w = XmlWriter::bare("Contents");
        w.elem_time("LastModified", 1_700_000_000_123).elem_etag("ETag", "abc-2").elem_u64("Size", 5_368_709_120);
        assert_eq!(
            w.finish("Contents"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Contents><LastModified>2023-11-14T22:13:20.123Z</LastModified>\
             <ETag>&quot;abc-2&quot;</ETag><Size>5368709120</Size></Contents>"
        );
    }

    #[test]
    fn writer_escapes_text() {
        let mut w = XmlWriter::new("R");
        w.elem("Key", "a&b<c>\"d'");
        let doc = w.finish("R");
        assert!(doc.contains("<Key>a&amp;b&lt;c&gt;&quot;d&apos;</Key>"), "{doc}");
    }

    /// Issue 9: raw control characters from keys made listings ill-formed.
    #[test]
    fn control_characters_become_references() {
        let mut w = XmlWriter::new("R");
        w.elem("Key", "a\u{0}b\u{1}c\td\re\nf\u{1f}g\u{7f}h\u{e9}");
        let doc = w.finish("R");
        assert!(doc.contains("<Key>a&#x0;b&#x1;c&#x9;d&#xD;e&#xA;f&#x1F;g\u{7f}h\u{e9}</Key>"), "{doc}");
        assert!(!doc.bytes().any(|b| b < 0x20 && b != b'\n'), "raw control byte in {doc:?}");
        let parsed = parse(b"<Delete><Object><Key>a&#x1;b&#xD;c&#x9;</Key></Object></Delete>").ok();
        let key = parsed.as_ref().and_then(|d| d.child("Object")).and_then(|o| o.child_text("Key"));
        assert_eq!(key, Some("a\u{1}b\rc\t"));
    }

    #[test]
    fn parser_keeps_spaces_and_entities() {
        let doc = br#"<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key> a&amp;b </Key></Object><Object><Key>c</Key></Object></Delete>"#;
        let root = parse(doc).ok();
        let root = root.as_ref();
        assert_eq!(root.map(|r| r.name.as_str()), Some("Delete"));
        let keys: Vec<_> =
            root.map(|r| r.children_named("Object").filter_map(|o| o.child_text("Key")).collect()).unwrap_or_default();
        assert_eq!(keys, vec![" a&b ", "c"]);
    }

    #[test]
    fn parser_rejects_garbage() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn timestamps_have_milliseconds() {
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_007), "2000-02-29T00:00:00.007Z");
    }
}
