//! XML in and out. Responses are built with a small writer that escapes every
//! text node; request bodies are parsed with quick-xml under a size limit.

use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::Reader;
use time::format_description::well_known::Rfc3339;
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
        self.out.push_str(&escape(text));
        self.end(name)
    }

    /// Escaped text inside the current element.
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.out.push_str(&escape(text));
        self
    }

    /// Markup written as is (for elements with attributes).
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
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

/// ISO 8601 with milliseconds, as S3 writes timestamps in XML.
pub fn iso8601(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let text = t.format(&Rfc3339).unwrap_or_default();
    // Rfc3339 writes as many fraction digits as needed; S3 writes exactly three.
    match text.split_once('.') {
        Some((secs, _)) => format!("{secs}.{:03}Z", t.millisecond()),
        None => format!("{}.{:03}Z", text.trim_end_matches('Z'), t.millisecond()),
    }
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
    fn writer_escapes_text() {
        let mut w = XmlWriter::new("R");
        w.elem("Key", "a&b<c>\"d'");
        let doc = w.finish("R");
        assert!(doc.contains("<Key>a&amp;b&lt;c&gt;&quot;d&apos;</Key>"), "{doc}");
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
    }
}
