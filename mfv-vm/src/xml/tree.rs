//! A small XML element tree read and written with quick-xml: enough for libvirt domain XML
//! (elements, attributes, text), with namespace declarations kept as plain attributes.

use std::io;

use quick_xml::Reader;
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

/// An element: its qualified name (`mfv:vm`), its attributes in document order and its
/// children. Whitespace-only text between elements is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) children: Vec<Node>,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Element(Element),
    Text(String),
}

/// Why a text is not a single well-formed element.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TreeError {
    #[error("not well-formed at byte {position}: {source}")]
    Syntax {
        position: u64,
        #[source]
        source: quick_xml::Error,
    },
    #[error("no element")]
    NoElement,
    #[error("more than one top-level element")]
    SeveralElements,
    #[error("text outside the top-level element")]
    TextOutsideElement,
    #[error("<{0}> is not closed")]
    Unclosed(String),
}

impl Element {
    pub(crate) fn new(name: &str) -> Self {
        Element {
            name: name.to_owned(),
            attributes: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Adds an attribute (builder style).
    pub(crate) fn attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attributes.push((name.to_owned(), value.into()));
        self
    }

    /// Adds a child element (builder style).
    pub(crate) fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Adds a text child (builder style).
    pub(crate) fn text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    pub(crate) fn push(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// The value of an attribute.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The child elements.
    pub(crate) fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this name.
    pub(crate) fn find(&self, name: &str) -> Option<&Element> {
        self.elements().find(|element| element.name == name)
    }

    /// The concatenated text children, trimmed.
    pub(crate) fn text_content(&self) -> String {
        let mut text = String::new();
        for node in &self.children {
            if let Node::Text(part) = node {
                text.push_str(part);
            }
        }
        text.trim().to_owned()
    }

    /// The prefix of the element's name (`mfv` for `mfv:vm`), if any.
    pub(crate) fn prefix(&self) -> Option<&str> {
        self.name.split_once(':').map(|(prefix, _)| prefix)
    }

    /// The part of the element's name after its prefix.
    pub(crate) fn local_name(&self) -> &str {
        self.name
            .split_once(':')
            .map_or(self.name.as_str(), |(_, local)| local)
    }

    /// The namespace declarations on this element: (prefix, URI), the default namespace
    /// with an empty prefix.
    pub(crate) fn namespace_declarations(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes.iter().filter_map(|(key, value)| {
            if key == "xmlns" {
                Some(("", value.as_str()))
            } else {
                key.strip_prefix("xmlns:")
                    .map(|prefix| (prefix, value.as_str()))
            }
        })
    }

    /// Every namespace prefix used by names in this subtree and not declared in it.
    pub(crate) fn undeclared_prefixes(&self) -> Vec<String> {
        let mut undeclared = Vec::new();
        self.collect_undeclared(&mut Vec::new(), &mut undeclared);
        undeclared
    }

    fn collect_undeclared(&self, declared: &mut Vec<String>, undeclared: &mut Vec<String>) {
        let scope = declared.len();
        declared.extend(
            self.namespace_declarations()
                .map(|(prefix, _)| prefix.to_owned()),
        );
        let attribute_prefixes = self.attributes.iter().filter_map(|(key, _)| {
            key.split_once(':')
                .map(|(prefix, _)| prefix)
                .filter(|prefix| *prefix != "xmlns" && *prefix != "xml")
        });
        for prefix in self.prefix().into_iter().chain(attribute_prefixes) {
            if !declared.iter().any(|known| known == prefix)
                && !undeclared.iter().any(|known| known == prefix)
            {
                undeclared.push(prefix.to_owned());
            }
        }
        for child in self.elements() {
            child.collect_undeclared(declared, undeclared);
        }
        declared.truncate(scope);
    }
}

/// Reads a text holding exactly one element (an XML declaration, comments and processing
/// instructions around it are skipped; comments inside are dropped).
pub(crate) fn parse(text: &str) -> Result<Element, TreeError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let syntax = |reader: &Reader<&[u8]>, source| TreeError::Syntax {
        position: reader.error_position(),
        source,
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|error| syntax(&reader, error))?;
        match event {
            Event::Start(start) => {
                stack.push(start_to_element(&start).map_err(|error| syntax(&reader, error))?);
            }
            Event::Empty(start) => {
                let element = start_to_element(&start).map_err(|error| syntax(&reader, error))?;
                close(&mut stack, &mut root, element)?;
            }
            Event::End(_) => {
                // quick-xml checks that end names match their start, so the stack holds
                // the element this event closes.
                if let Some(element) = stack.pop() {
                    close(&mut stack, &mut root, element)?;
                }
            }
            Event::Text(text) => {
                let text = text.unescape().map_err(|error| syntax(&reader, error))?;
                add_text(&mut stack, &text)?;
            }
            Event::CData(data) => {
                let text = String::from_utf8_lossy(&data).into_owned();
                add_text(&mut stack, &text)?;
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.pop() {
        return Err(TreeError::Unclosed(open.name));
    }
    root.ok_or(TreeError::NoElement)
}

fn start_to_element(start: &BytesStart<'_>) -> Result<Element, quick_xml::Error> {
    let mut element = Element::new(&String::from_utf8_lossy(start.name().as_ref()));
    for attribute in start.attributes() {
        let attribute = attribute?;
        let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
        let value = attribute.unescape_value()?.into_owned();
        element.attributes.push((key, value));
    }
    Ok(element)
}

fn close(
    stack: &mut [Element],
    root: &mut Option<Element>,
    element: Element,
) -> Result<(), TreeError> {
    match stack.last_mut() {
        Some(parent) => {
            parent.push(element);
            Ok(())
        }
        None if root.is_some() => Err(TreeError::SeveralElements),
        None => {
            *root = Some(element);
            Ok(())
        }
    }
}

fn add_text(stack: &mut [Element], text: &str) -> Result<(), TreeError> {
    if text.trim().is_empty() {
        return Ok(());
    }
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(Node::Text(text.to_owned()));
            Ok(())
        }
        None => Err(TreeError::TextOutsideElement),
    }
}

/// Writes the element as XML text, indented by two spaces per level when `indent` is set.
pub(crate) fn write(element: &Element, indent: bool) -> String {
    let mut writer = if indent {
        Writer::new_with_indent(Vec::new(), b' ', 2)
    } else {
        Writer::new(Vec::new())
    };
    // Writing into a Vec<u8> cannot fail: its io::Write implementation never returns an
    // error, so the only error source is absent.
    let outcome = write_element(&mut writer, element);
    debug_assert!(outcome.is_ok(), "writing XML into memory failed");
    // Names and texts come from `&str`s and quick-xml writes them unchanged or escaped, so
    // the bytes are UTF-8 and no replacement happens.
    String::from_utf8_lossy(&writer.into_inner()).into_owned()
}

fn write_element(writer: &mut Writer<Vec<u8>>, element: &Element) -> io::Result<()> {
    let attributes = element
        .attributes
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()));
    let start = BytesStart::new(element.name.as_str()).with_attributes(attributes);
    if element.children.is_empty() {
        return writer.write_event(Event::Empty(start));
    }
    writer.write_event(Event::Start(start))?;
    for child in &element.children {
        match child {
            Node::Element(child) => write_element(writer, child)?,
            Node::Text(text) => writer.write_event(Event::Text(BytesText::new(text)))?,
        }
    }
    writer.write_event(Event::End(BytesEnd::new(element.name.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_elements_attributes_and_text() {
        let element = parse(
            "<?xml version='1.0'?>\n<!-- c --><a x='1 &amp; 2'>\n  <b>t&lt;x</b>\n  <c/><![CDATA[<raw>]]></a>",
        )
        .unwrap();
        assert_eq!(element.get("x"), Some("1 & 2"));
        assert_eq!(element.find("b").unwrap().text_content(), "t<x");
        assert_eq!(
            write(&element, false),
            "<a x=\"1 &amp; 2\"><b>t&lt;x</b><c/>&lt;raw&gt;</a>"
        );
        assert_eq!(
            write(&element, true),
            "<a x=\"1 &amp; 2\">\n  <b>t&lt;x</b>\n  <c/>&lt;raw&gt;</a>"
        );
    }

    #[test]
    fn rejects_what_is_not_one_element() {
        let message = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(message(""), "no element");
        assert_eq!(message("<!-- only -->"), "no element");
        assert_eq!(message("<a/><b/>"), "more than one top-level element");
        assert_eq!(message("<a/>text"), "text outside the top-level element");
        assert_eq!(message("<a><b>"), "<b> is not closed");
        assert!(message("<a></b>").starts_with("not well-formed at byte"));
        assert!(message("<a x='&bogus;'/>").starts_with("not well-formed at byte"));
        assert!(message("<a>&bogus;</a>").starts_with("not well-formed at byte"));
        assert!(message("<a x='1' x='2'/>").starts_with("not well-formed at byte"));
    }

    #[test]
    fn finds_undeclared_prefixes() {
        let element = parse(
            "<q:a xmlns:r='urn:r'><r:b q:x='1' xml:lang='en'/><c xmlns:s='urn:s'><s:d/></c><s:e/></q:a>",
        )
        .unwrap();
        assert_eq!(element.undeclared_prefixes(), ["q", "s"]);
        assert_eq!(element.prefix(), Some("q"));
        assert_eq!(element.local_name(), "a");
        assert_eq!(
            element.namespace_declarations().collect::<Vec<_>>(),
            [("r", "urn:r")]
        );
    }
}
