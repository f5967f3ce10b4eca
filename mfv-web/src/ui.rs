//! Normal mode's web pages: what a person managing the host sees in a browser.
//!
//! Why they are built this way: the server renders one layout for every page (the host's
//! name, who is signed in, the navigation their role allows) and leaves the page's body to
//! one script (`web/src/app.js`), which fills it from the same REST API a program uses
//! ([`crate::api`]). So the pages can do nothing the API would not let their visitor do, the
//! API stays the one place permissions are checked, and the HTML the server writes holds no
//! data but the visitor's name and role, which it escapes as every text from outside.
//!
//! A page asks for a signed-in session before anything is rendered: without one the visitor
//! is sent (`303`) to `/login?next=PATH`, and after signing in back to that path, which must
//! be a path of this site. A page the visitor's role does not allow is refused with `403`
//! and says who may see it. The content security policy allows no inline script or style,
//! so the layout carries what the script needs in `data-` attributes (the CSRF token among
//! them, which a page of this site may read anyway from `GET /api/v1/session`).
//!
//! A VM's consoles (`/vms/{name}/console`, `/vms/{name}/serial`) are pages of their own,
//! needing `use_console`: they load the VNC or serial bundle beside `app.js` (its address in
//! `data-bundle`), and only they are served with the looser `ConsolePolicy` those
//! packages need. With `?popout=1` they leave out the top bar and the navigation, for a
//! window of their own.

use std::sync::Arc;

use mfv_auth::Permission;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{CONTENT_TYPE, LOCATION};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;

use crate::api::{Api, Caller};
use crate::assets::{self, Bundle};
use crate::pages::escape;

/// A page of the site: where it is, what it is called, who may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Its path (for a VM's page, the list's).
    pub path: &'static str,
    /// What the navigation and the title call it.
    pub title: &'static str,
    /// What `app.js` renders in its body (the `data-page` attribute).
    pub view: &'static str,
    /// The permission a visitor's role needs to see it.
    pub needs: Permission,
}

/// The pages, in the navigation's order.
pub const PAGES: [Page; 7] = [
    Page {
        path: "/",
        title: "Dashboard",
        view: "dashboard",
        needs: Permission::ViewInventory,
    },
    Page {
        path: "/vms",
        title: "Virtual machines",
        view: "vms",
        needs: Permission::ViewInventory,
    },
    Page {
        path: "/storage",
        title: "Storage",
        view: "storage",
        needs: Permission::ViewInventory,
    },
    Page {
        path: "/network",
        title: "Network",
        view: "network",
        needs: Permission::ViewInventory,
    },
    Page {
        path: "/users",
        title: "Users",
        view: "users",
        needs: Permission::ManageUsers,
    },
    Page {
        path: "/audit",
        title: "Audit log",
        view: "audit",
        needs: Permission::ViewAuditLog,
    },
    Page {
        path: "/host",
        title: "Host",
        view: "host",
        needs: Permission::ManageHost,
    },
];

/// The visitor's own account (password, second factor): reached from their name in the
/// header rather than the navigation, open to every role.
const ACCOUNT_PAGE: Page = Page {
    path: "/account",
    title: "My account",
    view: "account",
    needs: Permission::ViewInventory,
};

/// The page of one VM: the list's entry in the navigation, its own view.
const VM_PAGE: Page = Page {
    path: "/vms",
    title: "Virtual machine",
    view: "vm",
    needs: Permission::ViewInventory,
};

/// The form that creates a VM (`/new-vm`, outside `/vms/`, where every name is a VM's:
/// `new` is a VM name like any other).
const NEW_VM_PAGE: Page = Page {
    path: "/vms",
    title: "New virtual machine",
    view: "vm-new",
    needs: Permission::ManageVms,
};

/// A VM's graphical console (noVNC).
const CONSOLE_PAGE: Page = Page {
    path: "/vms",
    title: "Console",
    view: "console",
    needs: Permission::UseConsole,
};

/// A VM's serial console (xterm.js).
const SERIAL_PAGE: Page = Page {
    path: "/vms",
    title: "Serial console",
    view: "serial",
    needs: Permission::UseConsole,
};

/// Marks a console page's response: the security headers then give it
/// [`crate::reply::CONSOLE_CONTENT_SECURITY_POLICY`] instead of the strict policy, because
/// xterm.js injects `<style>` elements (without a nonce, and their hashes change with the
/// theme and the font size) and noVNC draws its cursor and the JPEG and PNG rectangles from
/// `data:` images. Only this module makes one (its field is private), for the console pages
/// alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConsolePolicy {
    _made_by_ui: (),
}

/// The pages' routes beside the API's, and `404` in the API's error shape elsewhere: what a
/// host that is set up serves (and `mfv-web --dev`).
pub fn site(api: Arc<Api>) -> BoxedFilter<(Response,)> {
    Api::filter(Arc::clone(&api))
        .or(routes(api))
        .unify()
        .or(crate::assets::routes())
        .unify()
        .recover(crate::rejection::answer)
        .unify()
        .boxed()
}

/// The pages: `/login`, then each of [`PAGES`] and `/vms/{name}`, for a signed-in visitor.
fn routes(api: Arc<Api>) -> BoxedFilter<(Response,)> {
    let with_api = warp::any().map(move || Arc::clone(&api));
    let login = warp::path!("login")
        .and(warp::get())
        .and(with_api.clone())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .then(
            |api: Arc<Api>, headers: HeaderMap, query: String| async move {
                login_page(&api, &headers, &query).await
            },
        );
    let page = warp::path::full()
        .and(warp::get())
        .and(with_api)
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(
            |path: warp::path::FullPath, api: Arc<Api>, headers: HeaderMap, query: String| async move {
                let Some((page, vm)) = page_at(path.as_str()) else {
                    return Err(warp::reject::not_found());
                };
                Ok(show_page(&api, &headers, path.as_str(), &query, page, vm.as_deref()).await)
            },
        );
    login.or(page).unify().boxed()
}

/// The page at `path`, with the VM's name for a VM's page (percent-decoded).
fn page_at(path: &str) -> Option<(Page, Option<String>)> {
    if let Some(page) = PAGES
        .iter()
        .chain([&ACCOUNT_PAGE])
        .find(|page| page.path == path)
    {
        return Some((*page, None));
    }
    if path == "/new-vm" {
        return Some((NEW_VM_PAGE, None));
    }
    let rest = path.strip_prefix("/vms/")?;
    let (name, page) = if let Some(name) = rest.strip_suffix("/console") {
        (name, CONSOLE_PAGE)
    } else if let Some(name) = rest.strip_suffix("/serial") {
        (name, SERIAL_PAGE)
    } else {
        (rest, VM_PAGE)
    };
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let name = decode_segment(name)?;
    Some((page, Some(name)))
}

/// A path segment percent-decoded, if it is UTF-8 without control characters.
fn decode_segment(segment: &str) -> Option<String> {
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
    let text = String::from_utf8(decoded).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

/// Who holds the session the request's cookie names, with the session's token; `None`
/// without a cookie or with one that no longer passes.
async fn visitor(api: &Api, headers: &HeaderMap) -> Option<(Caller, String)> {
    match api.state().caller(headers).await {
        Ok((Some(caller), Some(session))) => Some((caller, session)),
        _ => None,
    }
}

/// `page` for the visitor, or the way to the login without a session; `403` when their role
/// does not allow it.
async fn show_page(
    api: &Api,
    headers: &HeaderMap,
    path: &str,
    query: &str,
    page: Page,
    vm: Option<&str>,
) -> Response {
    let Some((caller, session)) = visitor(api, headers).await else {
        let here = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        return see_other(&format!("/login?next={}", encode_component(&here)));
    };
    let layout = Layout {
        caller: &caller,
        csrf: &crate::api::csrf_token(&session),
        current: page,
    };
    if !caller.role.allows(page.needs) {
        let mut response = layout.render(
            page.title,
            "forbidden",
            &[],
            &format!(
                "<h1>{}</h1>\n<p class=\"error\" role=\"alert\">Your role ({}) does not allow \
                 this page: it needs the {} permission. Ask an administrator.</p>\n",
                escape(page.title),
                caller.role.as_str(),
                page.needs.as_str()
            ),
        );
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    if let (Some(name), Some(bundles)) = (vm, console_bundles(page)) {
        return console_page(&layout, page, name, bundles, query);
    }
    let title = vm.unwrap_or(page.title);
    let data: Vec<(&str, &str)> = vm.map(|name| ("vm", name)).into_iter().collect();
    layout.render(
        title,
        page.view,
        &data,
        &format!(
            "<h1 id=\"title\">{}</h1>\n<div id=\"view\"><p class=\"loading\">Loading…</p></div>\n",
            escape(title)
        ),
    )
}

/// The script and, for the serial console, the stylesheet a console page loads beside the
/// app's; `None` for the other pages.
fn console_bundles(page: Page) -> Option<(Bundle, Option<Bundle>)> {
    if page == CONSOLE_PAGE {
        Some((Bundle::VncJs, None))
    } else if page == SERIAL_PAGE {
        Some((Bundle::SerialJs, Some(Bundle::SerialCss)))
    } else {
        None
    }
}

/// The console `page` of the VM `name`: its bundle's address in `data-bundle` for
/// `app.js` to import, without the top bar and navigation for `?popout=1`, marked for the
/// console's content security policy.
fn console_page(
    layout: &Layout<'_>,
    page: Page,
    name: &str,
    (script, style): (Bundle, Option<Bundle>),
    query: &str,
) -> Response {
    let popout = url::form_urlencoded::parse(query.as_bytes())
        .any(|(key, value)| key == "popout" && value == "1");
    let title = format!("{} - {name}", page.title);
    let data = [
        ("vm", name),
        ("bundle", assets::href(script)),
        ("popout", if popout { "true" } else { "false" }),
    ];
    let main = format!(
        "<h1 id=\"title\">{}</h1>\n<div id=\"view\" class=\"console-view\">\
         <p class=\"loading\">Loading…</p></div>\n",
        escape(&title)
    );
    let head = style
        .map(|style| {
            format!(
                "<link rel=\"stylesheet\" href=\"{}\">\n",
                assets::href(style)
            )
        })
        .unwrap_or_default();
    let mut response = layout.render_with(&title, page.view, &data, &main, &head, !popout);
    response
        .extensions_mut()
        .insert(ConsolePolicy { _made_by_ui: () });
    response
}

/// The login page, or the way on for a visitor who is signed in already.
async fn login_page(api: &Api, headers: &HeaderMap, query: &str) -> Response {
    let next = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "next")
        .map(|(_, value)| value.into_owned())
        .filter(|next| is_local_path(next))
        .unwrap_or_else(|| "/".to_owned());
    if visitor(api, headers).await.is_some() {
        return see_other(&next);
    }
    let host = host_name();
    let body = format!(
        "<main id=\"main\" class=\"login\">\n<form id=\"login\" class=\"card\" \
         data-next=\"{next}\" novalidate>\n\
         <h1>Sign in</h1>\n<p class=\"hint\">to <strong>{host}</strong></p>\n\
         <noscript><p class=\"error\">These pages need JavaScript. Without it, manage the \
         host with <code>mfv --remote</code> or the REST API under /api/v1.</p></noscript>\n\
         <p id=\"login-error\" class=\"error\" role=\"alert\" hidden></p>\n\
         <div class=\"field\"><label for=\"username\">User name</label>\n\
         <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" \
         autocapitalize=\"none\" spellcheck=\"false\" required autofocus></div>\n\
         <div class=\"field\"><label for=\"password\">Password</label>\n\
         <input type=\"password\" id=\"password\" name=\"password\" \
         autocomplete=\"current-password\" required></div>\n\
         <div class=\"field\" id=\"totp-field\" hidden><label for=\"totp\">Authentication \
         code</label>\n<input type=\"text\" id=\"totp\" name=\"totp\" \
         autocomplete=\"one-time-code\" inputmode=\"numeric\" spellcheck=\"false\">\n\
         <p class=\"hint\">The 6 digits your authenticator app shows, or one of your recovery \
         codes.</p></div>\n\
         <button type=\"submit\" id=\"sign-in\">Sign in</button>\n</form>\n</main>\n",
        next = escape(&next),
        host = escape(&host),
    );
    html_page("Sign in", "login", "", "", &body)
}

/// What every page but the login shows around its body.
struct Layout<'a> {
    caller: &'a Caller,
    csrf: &'a str,
    current: Page,
}

impl Layout<'_> {
    /// The page titled `title` whose body `app.js` fills as `view`, with `data` as `data-`
    /// attributes, and `main` inside the main area.
    fn render(&self, title: &str, view: &str, data: &[(&str, &str)], main: &str) -> Response {
        self.render_with(title, view, data, main, "", true)
    }

    /// [`Layout::render`] with `head` added to the page's head, and without the top bar and
    /// the navigation unless `chrome`.
    fn render_with(
        &self,
        title: &str,
        view: &str,
        data: &[(&str, &str)],
        main: &str,
        head: &str,
        chrome: bool,
    ) -> Response {
        if !chrome {
            let attributes = self.attributes(data);
            let body =
                format!("<main id=\"main\" class=\"popout\" tabindex=\"-1\">\n{main}</main>\n");
            return html_page(title, view, &attributes, head, &body);
        }
        let host = host_name();
        let role = self.caller.role;
        let nav: String = PAGES
            .iter()
            .filter(|page| role.allows(page.needs))
            .map(|page| {
                let current = if page.path == self.current.path {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                format!(
                    "<li><a href=\"{}\"{current}>{}</a></li>\n",
                    page.path, page.title
                )
            })
            .collect();
        let attributes = self.attributes(data);
        let body = format!(
            "<a class=\"skip\" href=\"#main\">Skip to content</a>\n\
             <header class=\"topbar\">\n\
             <button type=\"button\" id=\"nav-toggle\" class=\"icon\" aria-controls=\"nav\" \
             aria-expanded=\"false\" aria-label=\"Menu\">☰</button>\n\
             <a class=\"brand\" href=\"/\">Minifed-Virt</a>\n\
             <span class=\"host\" title=\"Host name\">{host}</span>\n\
             <span class=\"spacer\"></span>\n\
             <a class=\"who\" href=\"/account\" title=\"My account\"><span class=\"user\">{user}</span> \
             <span class=\"role\">{role}</span></a>\n\
             <button type=\"button\" id=\"sign-out\" class=\"secondary small\">Sign out</button>\n\
             </header>\n<div class=\"frame\">\n\
             <nav id=\"nav\" aria-label=\"Sections\"><ul>\n{nav}</ul></nav>\n\
             <main id=\"main\" tabindex=\"-1\">\n{main}</main>\n</div>\n",
            host = escape(&host),
            user = escape(&self.caller.username),
            role = role.as_str(),
        );
        html_page(title, view, &attributes, head, &body)
    }

    /// The `<body>` attributes: who is signed in, what their role allows, the CSRF token,
    /// and `data` as `data-` attributes.
    fn attributes(&self, data: &[(&str, &str)]) -> String {
        let role = self.caller.role;
        let data: String = data
            .iter()
            .map(|(key, value)| format!(" data-{key}=\"{}\"", escape(value)))
            .collect();
        format!(
            " data-user=\"{user}\" data-role=\"{role}\" data-csrf=\"{csrf}\" \
             data-can-control=\"{control}\" data-can-manage=\"{manage}\" \
             data-can-console=\"{console}\" data-can-network=\"{network}\" \
             data-can-storage=\"{storage}\" data-can-host=\"{host}\"{data}",
            user = escape(&self.caller.username),
            role = role.as_str(),
            csrf = escape(self.csrf),
            control = role.allows(Permission::ControlVms),
            manage = role.allows(Permission::ManageVms),
            console = role.allows(Permission::UseConsole),
            network = role.allows(Permission::ManageNetwork),
            storage = role.allows(Permission::ManageStorage),
            host = role.allows(Permission::ManageHost),
        )
    }
}

/// A whole page: `body` inside, the app's stylesheet and script and `head` in its head,
/// `attributes` on `<body>`.
fn html_page(title: &str, view: &str, attributes: &str, head: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} - {host} - Minifed-Virt</title>\n\
         <link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"{css}\">\n\
         {head}<script type=\"module\" src=\"{js}\"></script>\n</head>\n\
         <body data-page=\"{view}\"{attributes}>\n{body}</body>\n</html>\n",
        title = escape(title),
        host = escape(&host_name()),
        icon = assets::href(Bundle::IconSvg),
        css = assets::href(Bundle::AppCss),
        js = assets::href(Bundle::AppJs),
    );
    let mut response = Response::new(html.into());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// The host's name, as the kernel has it.
fn host_name() -> String {
    nix::unistd::gethostname()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A `303` to `location`, a path of this site.
fn see_other(location: &str) -> Response {
    let mut response = Response::default();
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Whether `next` is a path of this site a login may go on to: it starts with one `/`, and
/// holds no backslash or control character a browser could read as another host.
pub fn is_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 2048
}

/// `text` as a query string's value.
fn encode_component(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfv_auth::Role;

    /// The role a page's navigation is drawn for, as its name (tests read it).
    fn navigation_for(role: Role) -> Vec<&'static str> {
        PAGES
            .iter()
            .filter(|page| role.allows(page.needs))
            .map(|page| page.title)
            .collect()
    }

    #[test]
    fn a_login_goes_on_only_to_a_path_of_this_site() {
        for good in ["/", "/vms", "/vms/web-1?tab=disks"] {
            assert!(is_local_path(good), "{good}");
        }
        for bad in [
            "",
            "vms",
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "/vms\n",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn pages_are_found_by_path_and_a_vms_name_is_decoded() {
        assert_eq!(page_at("/").map(|(page, _)| page.view), Some("dashboard"));
        assert_eq!(page_at("/audit").map(|(page, _)| page.view), Some("audit"));
        assert_eq!(
            page_at("/account").map(|(page, _)| page.view),
            Some("account")
        );
        let (page, vm) = page_at("/vms/web%201").unwrap();
        assert_eq!((page.view, vm.as_deref()), ("vm", Some("web 1")));
        let (page, vm) = page_at("/new-vm").unwrap();
        assert_eq!(
            (page.view, page.needs, vm),
            ("vm-new", Permission::ManageVms, None)
        );
        let (page, vm) = page_at("/vms/new").unwrap();
        assert_eq!((page.view, vm.as_deref()), ("vm", Some("new")));
        let (page, vm) = page_at("/vms/web%201/console").unwrap();
        assert_eq!((page.view, vm.as_deref()), ("console", Some("web 1")));
        let (page, vm) = page_at("/vms/console/serial").unwrap();
        assert_eq!((page.view, vm.as_deref()), ("serial", Some("console")));
        assert_eq!(page.needs, Permission::UseConsole);
        for nothing in [
            "/vms/",
            "/vms/a/b",
            "/nothing",
            "/vms/%0a",
            "/vms/%zz",
            "/vms/%ff",
            "/vms//console",
            "/vms/a/b/serial",
            "/vms/%0a/console",
        ] {
            assert!(page_at(nothing).is_none(), "{nothing}");
        }
    }

    #[test]
    fn only_the_console_pages_get_the_console_policy_and_a_pop_out_has_no_chrome() {
        use crate::reply::{
            CONSOLE_CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE, with_security_headers,
        };
        use warp::http::header::CONTENT_SECURITY_POLICY;
        let caller = Caller {
            username: "ann".into(),
            role: Role::Operator,
            credential: crate::api::Credential::Session,
        };
        let layout = Layout {
            caller: &caller,
            csrf: "token",
            current: VM_PAGE,
        };
        let policy = |response: Response| {
            with_security_headers(response).headers()[CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .to_owned()
        };
        let vnc = console_page(&layout, CONSOLE_PAGE, "web", (Bundle::VncJs, None), "");
        assert_eq!(policy(vnc), CONSOLE_CONTENT_SECURITY_POLICY);
        let serial = console_page(
            &layout,
            SERIAL_PAGE,
            "web",
            (Bundle::SerialJs, Some(Bundle::SerialCss)),
            "popout=1",
        );
        assert_eq!(policy(serial), CONSOLE_CONTENT_SECURITY_POLICY);
        let vm = layout.render("web", "vm", &[("vm", "web")], "");
        assert_eq!(policy(vm), CONTENT_SECURITY_POLICY_VALUE);
        assert_eq!(
            policy(html_page("Sign in", "login", "", "", "")),
            CONTENT_SECURITY_POLICY_VALUE
        );

        let html = |response: Response| {
            let response = Arc::new(std::sync::Mutex::new(Some(response)));
            let filter = warp::any().map(move || response.lock().unwrap().take().unwrap());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let answer = runtime.block_on(warp::test::request().reply(&filter));
            String::from_utf8(answer.body().to_vec()).unwrap()
        };
        let popped = html(console_page(
            &layout,
            SERIAL_PAGE,
            "web",
            (Bundle::SerialJs, Some(Bundle::SerialCss)),
            "popout=1",
        ));
        assert!(
            !popped.contains("topbar") && !popped.contains("id=\"nav\""),
            "{popped}"
        );
        assert!(popped.contains(assets::href(Bundle::SerialCss)), "{popped}");
        assert!(popped.contains(&format!(
            "data-bundle=\"{}\"",
            assets::href(Bundle::SerialJs)
        )));
        let framed = html(console_page(
            &layout,
            CONSOLE_PAGE,
            "web",
            (Bundle::VncJs, None),
            "",
        ));
        assert!(framed.contains("topbar") && framed.contains("data-popout=\"false\""));
    }

    #[test]
    fn the_navigation_shows_what_the_role_allows() {
        assert_eq!(
            navigation_for(Role::Viewer),
            ["Dashboard", "Virtual machines", "Storage", "Network"]
        );
        assert_eq!(navigation_for(Role::Admin).len(), PAGES.len());
    }
}
