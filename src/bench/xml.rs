//! Just enough XML reading for S3 replies: the text of every `<Tag>` element.
//! S3's reply documents have no attributes on these elements and no nesting of
//! the same name, so a scan is exact for them and far cheaper than a DOM.

use std::borrow::Cow;

/// The unescaped text of each `<tag>...</tag>`, in document order.
pub fn texts<'a>(doc: &'a str, tag: &str) -> impl Iterator<Item = String> + 'a {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut rest = doc;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let len = rest.get(start..)?.find(&close)?;
        let raw = rest.get(start..start + len)?;
        rest = rest.get(start + len + close.len()..).unwrap_or_default();
        Some(quick_xml::escape::unescape(raw).unwrap_or(Cow::Borrowed(raw)).into_owned())
    })
}

/// Escapes text for an element body (keys in DeleteObjects, ETags in Complete).
pub fn escape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_element_and_unescapes() {
        let doc = "<R><Contents><Key>a&amp;b</Key></Contents><Contents><Key>c</Key></Contents>\
                   <IsTruncated>true</IsTruncated><Key></Key></R>";
        assert_eq!(texts(doc, "Key").collect::<Vec<_>>(), ["a&b", "c", ""]);
        assert_eq!(texts(doc, "IsTruncated").next().as_deref(), Some("true"));
        assert_eq!(texts(doc, "Missing").next(), None);
        assert_eq!(texts("<Key>unclosed", "Key").next(), None);
        assert_eq!(escape("a<&>\"b"), "a&lt;&amp;&gt;&quot;b");
    }
}
