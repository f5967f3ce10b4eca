//! Path templates: `/api/v1/vms/{name}/start` matched against a request's path.
//!
//! A `{name}` segment takes one non-empty segment, percent-decoded; a decoded value holding
//! `/`, a NUL or a control character, or being `.` or `..`, matches nothing, so no handler
//! ever sees a name that could walk a file tree.

/// The values of a template's `{name}` segments, in order.
pub type PathParams = Vec<(&'static str, String)>;

/// The values of `template`'s parameters in `path`, if `path` matches it.
pub fn match_template(template: &'static str, path: &str) -> Option<PathParams> {
    let mut params = PathParams::new();
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return Some(params),
            (Some(want), Some(have)) => match parameter_name(want) {
                Some(name) => params.push((name, decode_segment(have)?)),
                None if want == have => {}
                None => return None,
            },
            _ => return None,
        }
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
    let text = decode_component(segment)?;
    let unsafe_name = text.is_empty()
        || text == "."
        || text == ".."
        || text.chars().any(|c| c == '/' || c.is_control());
    (!unsafe_name).then_some(text)
}

/// `segment` percent-decoded, if it decodes to UTF-8.
pub(super) fn decode_component(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = segment.get(at + 1..at + 3)?;
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
