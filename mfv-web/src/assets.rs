//! The pages' bundled scripts and stylesheets, embedded in the binary and served at
//! `/assets/NAME.HASH.EXT`.
//!
//! The front-end packages (noVNC, xterm.js) come from npm, pinned by `web/package-lock.json`;
//! `cargo xtask web` bundles them with the pages' own code (`web/src/`) into `web/dist/`,
//! and `build.rs` embeds every bundle with a gzip and a brotli copy made at build time. The
//! host fetches nothing at run time and compresses nothing per request.
//!
//! A bundle's address carries the hash of its content, so it changes whenever the content
//! does: these answers alone may be cached for a year as `immutable`, where every other
//! answer is `no-store` ([`crate::reply::with_security_headers`]). That exception is the
//! `Immutable` marker in the response's extensions, which only this module can make, so
//! no other route can opt out of `no-store` by mistake.
//!
//! Pages link a bundle by [`href`] of a [`Bundle`]: the list of bundles is generated from
//! the manifest at build time, so a page naming a bundle that is not built does not compile
//! (rather than failing, or linking nothing, when it is served).

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

use crate::reply::{ErrorBody, error_response};

/// One embedded bundle.
#[derive(Debug)]
struct Embedded {
    /// The name a page knows it by, e.g. `vnc.js`.
    logical: &'static str,
    /// The file name it is served as, e.g. `vnc.3f2a9c01de.js`.
    file: &'static str,
    /// `/assets/` and the file name.
    href: &'static str,
    /// The `Content-Type` it is served with.
    content_type: &'static str,
    /// The bundle as built.
    plain: &'static [u8],
    /// Compressed with gzip.
    gzip: &'static [u8],
    /// Compressed with brotli.
    brotli: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

impl Bundle {
    /// Every bundle, in the order of the table.
    fn embedded(self) -> &'static Embedded {
        &EMBEDDED[self as usize]
    }

    /// The name a page knows it by, e.g. `vnc.js`.
    pub fn logical(self) -> &'static str {
        self.embedded().logical
    }
}

/// The address a page links `bundle` at, e.g. `/assets/vnc.3f2a9c01de.js`.
pub fn href(bundle: Bundle) -> &'static str {
    bundle.embedded().href
}

/// Marks a response as one whose content never changes at its address: the security
/// headers then let it be cached for a year instead of `no-store`. Only this module makes
/// one (its field is private).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Immutable {
    _made_by_assets: (),
}

/// How an answer's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

/// `GET` and `HEAD` of `/assets/NAME.HASH.EXT`: the bundle, or `404` for a name of that
/// shape that is not one (an old hash after an update, a mistyped name). Paths of another
/// shape are left to other routes (config mode's `/assets/setup.js`).
pub fn routes() -> BoxedFilter<(Response,)> {
    warp::path("assets")
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get().or(warp::head()).unify())
        .and(warp::header::headers_cloned())
        .and_then(|file: String, headers: HeaderMap| async move {
            if !is_hashed_name(&file) {
                return Err(warp::reject::not_found());
            }
            let accepted = headers
                .get(ACCEPT_ENCODING)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            Ok(
                match EMBEDDED.iter().find(|embedded| embedded.file == file) {
                    Some(embedded) => answer(embedded, preferred_encoding(accepted)),
                    None => error_response(
                        StatusCode::NOT_FOUND,
                        &ErrorBody::new(
                            "not_found",
                            format!(
                                "this host has no asset {file}: an asset's name changes with its \
                             content, so reload the page that linked it"
                            ),
                        ),
                    ),
                },
            )
        })
        .boxed()
}

/// `embedded` encoded as `encoding`, marked [`Immutable`].
fn answer(embedded: &'static Embedded, encoding: Encoding) -> Response {
    let (body, content_encoding) = match encoding {
        Encoding::Brotli => (embedded.brotli, Some("br")),
        Encoding::Gzip => (embedded.gzip, Some("gzip")),
        Encoding::Identity => (embedded.plain, None),
    };
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(embedded.content_type),
    );
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(content_encoding) = content_encoding {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(content_encoding));
    }
    response.extensions_mut().insert(Immutable {
        _made_by_assets: (),
    });
    response
}

/// Whether `file` has the shape of a bundle's file name: `NAME.HASH.EXT`, HASH 10 lower-case
/// hex digits, EXT `js`, `css` or `svg`.
fn is_hashed_name(file: &str) -> bool {
    let Some((rest, extension)) = file.rsplit_once('.') else {
        return false;
    };
    let Some((stem, hash)) = rest.rsplit_once('.') else {
        return false;
    };
    !stem.is_empty()
        && matches!(extension, "js" | "css" | "svg")
        && hash.len() == 10
        && hash
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// The smallest encoding the client's `Accept-Encoding` header (`accepted`) allows: brotli,
/// then gzip, then none. A coding is allowed when it is named, or `*` is, with a quality above
/// zero; the client's own order of preference is not followed, since the smaller body is
/// better for both sides.
fn preferred_encoding(accepted: &str) -> Encoding {
    let mut brotli = None;
    let mut gzip = None;
    let mut any = None;
    for item in accepted.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let allowed = parts
            .filter_map(|parameter| parameter.trim().split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .is_none_or(|(_, quality)| {
                quality
                    .trim()
                    .parse::<f32>()
                    .is_ok_and(|quality| quality > 0.0)
            });
        if coding.eq_ignore_ascii_case("br") {
            brotli = Some(allowed);
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(allowed);
        } else if coding == "*" {
            any = Some(allowed);
        }
    }
    let any = any.unwrap_or(false);
    if brotli.unwrap_or(any) {
        Encoding::Brotli
    } else if gzip.unwrap_or(any) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_allowed_encoding_is_chosen() {
        for (accepted, encoding) in [
            ("gzip, deflate, br, zstd", Encoding::Brotli),
            ("br;q=0.1, gzip;q=1.0", Encoding::Brotli),
            ("gzip, deflate", Encoding::Gzip),
            ("GZIP", Encoding::Gzip),
            ("x-gzip", Encoding::Gzip),
            ("br;q=0, gzip", Encoding::Gzip),
            ("br; q=0.000, gzip;q=0", Encoding::Identity),
            ("*", Encoding::Brotli),
            ("br;q=0, *", Encoding::Gzip),
            ("*;q=0", Encoding::Identity),
            ("identity", Encoding::Identity),
            ("", Encoding::Identity),
            ("br;q=nonsense", Encoding::Identity),
            ("deflate, compress", Encoding::Identity),
        ] {
            assert_eq!(preferred_encoding(accepted), encoding, "{accepted:?}");
        }
    }

    #[test]
    fn only_names_of_the_hashed_shape_are_claimed() {
        for (file, hashed) in [
            ("vnc.3f2a9c01de.js", true),
            ("app.0123456789.css", true),
            ("mfv.css", false),
            ("setup.js", false),
            ("vnc.3F2A9C01DE.js", false),
            ("vnc.3f2a9c01d.js", false),
            ("vnc.3f2a9c01de.html", false),
            (".3f2a9c01de.js", false),
            ("vnc.3f2a9c01de.js.br", false),
        ] {
            assert_eq!(is_hashed_name(file), hashed, "{file:?}");
        }
    }

    #[test]
    fn every_bundle_links_its_hashed_name_and_is_found_by_it() {
        for embedded in &EMBEDDED {
            assert!(is_hashed_name(embedded.file), "{}", embedded.file);
            assert_eq!(embedded.href, format!("/assets/{}", embedded.file));
            assert!(
                embedded
                    .file
                    .starts_with(embedded.logical.split('.').next().unwrap())
            );
        }
        assert_eq!(Bundle::VncJs.logical(), "vnc.js");
        assert!(href(Bundle::VncJs).starts_with("/assets/vnc."));
        assert!(href(Bundle::SerialCss).ends_with(".css"));
    }
}
