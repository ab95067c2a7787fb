//! The browser client's static files (`web/`), compiled into the binary and served over plain
//! HTTP on the signalling port: `/` and `/index.html` (the demo page), `/app.js`,
//! `/streamwire.js`, `/style.css`.

/// A static file served at `path`.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../web/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/app.js"),
    },
    Asset {
        path: "/streamwire.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/streamwire.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../web/style.css"),
    },
];

/// The file served at `path` (`/` is `/index.html`): its content type and body.
pub(super) fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS
        .iter()
        .find(|a| a.path == path)
        .map(|a| (a.content_type, a.body))
}
