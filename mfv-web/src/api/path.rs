//! Path templates: `/api/v1/vms/{name}/start` matched against a request's path.
//!
//! A `{name}` segment takes one non-empty segment, percent-decoded; a decoded value holding
//! `/`, a NUL or a control character, or being `.` or `..`, matches nothing, so no handler
//! ever sees a name that could walk a file tree.

use std::collections::HashMap;

/// The values of a template's `{name}` segments, in order.
pub type PathParams = Vec<(&'static str, String)>;

/// A template split into its segments once, when the route table is made, so that matching
/// a request compares segments and nothing else.
#[derive(Debug, Clone)]
pub struct Template {
    segments: Box<[Segment]>,
}

#[derive(Debug, Clone, Copy)]
enum Segment {
    Literal(&'static str),
    Parameter(&'static str),
}

impl Template {
    /// `template` split at `/`, its `{name}` segments marked as parameters.
    pub fn new(template: &'static str) -> Template {
        let segments = template
            .split('/')
            .map(|segment| match parameter_name(segment) {
                Some(name) => Segment::Parameter(name),
                None => Segment::Literal(segment),
            })
            .collect();
        Template { segments }
    }

    /// Whether the template has no parameters: only the path equal to it matches.
    fn is_literal(&self) -> bool {
        self.segments
            .iter()
            .all(|segment| matches!(segment, Segment::Literal(_)))
    }

    /// The values of the parameters in `path`, if `path` matches.
    pub fn matches(&self, path: &str) -> Option<PathParams> {
        let mut params = PathParams::new();
        let mut given = path.split('/');
        for segment in &self.segments {
            let have = given.next()?;
            match *segment {
                Segment::Literal(want) if want == have => {}
                Segment::Literal(_) => return None,
                Segment::Parameter(name) => params.push((name, decode_segment(have)?)),
            }
        }
        given.next().is_none().then_some(params)
    }
}

/// Finds the templates of a table that match a path. Why: the API is asked most for paths
/// without parameters (the VM list), and trying each of the table's templates in turn was a
/// fifth of the server's time under `cargo xtask bench web`; such paths are found by one
/// hash look-up, and only the others are matched template by template.
#[derive(Debug)]
pub struct TemplateIndex {
    literal: HashMap<&'static str, Vec<usize>>,
    with_parameters: Vec<(usize, Template)>,
}

impl TemplateIndex {
    /// The index of `templates`, which are known by their position.
    pub fn new(templates: impl IntoIterator<Item = &'static str>) -> TemplateIndex {
        let mut literal: HashMap<&'static str, Vec<usize>> = HashMap::new();
        let mut with_parameters = Vec::new();
        for (position, text) in templates.into_iter().enumerate() {
            let template = Template::new(text);
            if template.is_literal() {
                literal.entry(text).or_default().push(position);
            } else {
                with_parameters.push((position, template));
            }
        }
        TemplateIndex {
            literal,
            with_parameters,
        }
    }

    /// The positions of the templates `path` matches, with the parameters' values: the
    /// templates equal to `path` first, then those whose parameters take its segments.
    pub fn matching<'a>(&'a self, path: &'a str) -> impl Iterator<Item = (usize, PathParams)> + 'a {
        let literal = self
            .literal
            .get(path)
            .into_iter()
            .flatten()
            .map(|&position| (position, PathParams::new()));
        let with_parameters = self
            .with_parameters
            .iter()
            .filter_map(move |(position, template)| Some((*position, template.matches(path)?)));
        literal.chain(with_parameters)
    }
}

/// The names of `template`'s parameters, in order.
pub fn parameter_names(template: &'static str) -> impl Iterator<Item = &'static str> {
    template.split('/').filter_map(parameter_name)
}

/// `name` when `segment` is `{name}`.
fn parameter_name(segment: &'static str) -> Option<&'static str> {
    segment.strip_prefix('{')?.strip_suffix('}')
}

/// A percent-decoded path segment that is safe to use as a name, if it is.
fn decode_segment(segment: &str) -> Option<String> {
    let text = percent_decode(segment)?;
    let unsafe_name = text.is_empty()
        || text == "."
        || text == ".."
        || text.chars().any(|c| c == '/' || c.is_control());
    (!unsafe_name).then_some(text)
}

/// `text` with its `%XX` escapes decoded, if they are complete and the result is UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = text.get(at + 1..at + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn match_template(template: &'static str, path: &str) -> Option<PathParams> {
        Template::new(template).matches(path)
    }

    #[test]
    fn literal_segments_must_be_equal_and_parameters_take_one_segment() {
        assert_eq!(
            match_template("/api/v1/vms/{name}/start", "/api/v1/vms/web-1/start"),
            Some(vec![("name", "web-1".to_owned())])
        );
        assert_eq!(match_template("/api/v1/vms", "/api/v1/vms"), Some(vec![]));
        for path in [
            "/api/v1/vms/web-1",
            "/api/v1/vms/web-1/start/now",
            "/api/v1/vms//start",
            "/api/v1/pools/web-1/start",
        ] {
            assert_eq!(
                match_template("/api/v1/vms/{name}/start", path),
                None,
                "{path}"
            );
        }
        assert_eq!(
            parameter_names("/api/v1/pools/{pool}/volumes/{volume}").collect::<Vec<_>>(),
            ["pool", "volume"]
        );
    }

    #[test]
    fn the_index_finds_literal_and_parameterised_templates_by_position() {
        let index = TemplateIndex::new([
            "/api/v1/vms",
            "/api/v1/vms/{name}",
            "/api/v1/vms",
            "/api/v1/vms/{name}/start",
            "/api/v1/tasks/{id}",
        ]);
        let found = |path| index.matching(path).collect::<Vec<_>>();
        assert_eq!(found("/api/v1/vms"), [(0, vec![]), (2, vec![])]);
        assert_eq!(
            found("/api/v1/vms/a"),
            [(1, vec![("name", "a".to_owned())])]
        );
        assert_eq!(
            found("/api/v1/vms/a/start"),
            [(3, vec![("name", "a".to_owned())])]
        );
        assert_eq!(found("/api/v1/vms/"), []);
        assert_eq!(found("/api/v1/vms/a/stop"), []);
        assert_eq!(found("/api/v1/tasks/%2e%2e"), []);
    }

    #[test]
    fn parameters_are_decoded_and_never_walk_a_tree() {
        assert_eq!(
            match_template("/api/v1/vms/{name}", "/api/v1/vms/my%20vm"),
            Some(vec![("name", "my vm".to_owned())])
        );
        for path in [
            "/api/v1/vms/..",
            "/api/v1/vms/%2e%2e",
            "/api/v1/vms/a%2fb",
            "/api/v1/vms/a%00",
            "/api/v1/vms/%zz",
            "/api/v1/vms/%e2%82",
        ] {
            assert_eq!(match_template("/api/v1/vms/{name}", path), None, "{path}");
        }
    }
}
