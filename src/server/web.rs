//! The browser client's static files (`web/`), compiled into the binary and served over plain
//! HTTP on the signalling port: `/` and `/index.html` (the call page), its modules and styles,
//! the client library's modules, and the icon (also at `/favicon.ico`, which browsers ask for
//! by themselves). The table is [`ASSETS`]; docs/web.md lists it.

/// A static file served at `path`.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file served, by path.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../web/index.html"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../web/style.css"),
    },
    Asset {
        path: "/app.js",
        content_type: JS,
        body: include_str!("../../web/app.js"),
    },
    Asset {
        path: "/app-call.js",
        content_type: JS,
        body: include_str!("../../web/app-call.js"),
    },
    Asset {
        path: "/app-chat.js",
        content_type: JS,
        body: include_str!("../../web/app-chat.js"),
    },
    Asset {
        path: "/app-media.js",
        content_type: JS,
        body: include_str!("../../web/app-media.js"),
    },
    Asset {
        path: "/streamwire.js",
        content_type: JS,
        body: include_str!("../../web/streamwire.js"),
    },
    Asset {
        path: "/streamwire-media.js",
        content_type: JS,
        body: include_str!("../../web/streamwire-media.js"),
    },
    Asset {
        path: "/streamwire-audio-dump.js",
        content_type: JS,
        body: include_str!("../../web/streamwire-audio-dump.js"),
    },
    Asset {
        path: "/streamwire-audio-dump-worklet.js",
        content_type: JS,
        body: include_str!("../../web/streamwire-audio-dump-worklet.js"),
    },
    Asset {
        path: "/streamwire-frames.js",
        content_type: JS,
        body: include_str!("../../web/streamwire-frames.js"),
    },
    Asset {
        path: "/streamwire-speaker.js",
        content_type: JS,
        body: include_str!("../../web/streamwire-speaker.js"),
    },
    Asset {
        path: "/streamwire-media-test.js",
        content_type: JS,
        body: include_str!("../../web/streamwire-media-test.js"),
    },
    Asset {
        path: "/app-test.js",
        content_type: JS,
        body: include_str!("../../web/app-test.js"),
    },
    Asset {
        path: "/sfu.js",
        content_type: JS,
        body: include_str!("../../web/sfu.js"),
    },
    Asset {
        path: "/streamwire-peer.js",
        content_type: JS,
        body: include_str!("../../web/streamwire-peer.js"),
    },
    Asset {
        path: "/streamwire-util.js",
        content_type: JS,
        body: include_str!("../../web/streamwire-util.js"),
    },
    Asset {
        path: "/whiteboard/whiteboard.js",
        content_type: JS,
        body: include_str!("../../web/whiteboard/whiteboard.js"),
    },
    Asset {
        path: "/whiteboard/board.js",
        content_type: JS,
        body: include_str!("../../web/whiteboard/board.js"),
    },
    Asset {
        path: "/whiteboard/presence.js",
        content_type: JS,
        body: include_str!("../../web/whiteboard/presence.js"),
    },
    Asset {
        path: "/whiteboard/paint.js",
        content_type: JS,
        body: include_str!("../../web/whiteboard/paint.js"),
    },
    Asset {
        path: "/whiteboard/tools.js",
        content_type: JS,
        body: include_str!("../../web/whiteboard/tools.js"),
    },
    Asset {
        path: "/whiteboard/export.js",
        content_type: JS,
        body: include_str!("../../web/whiteboard/export.js"),
    },
    Asset {
        path: "/whiteboard/whiteboard.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../web/whiteboard/whiteboard.css"),
    },
    Asset {
        path: "/vendor/yjs.js",
        content_type: JS,
        body: include_str!("../../web/vendor/yjs.js"),
    },
    Asset {
        path: "/favicon.svg",
        content_type: SVG,
        body: include_str!("../../web/favicon.svg"),
    },
    Asset {
        path: "/favicon.ico",
        content_type: SVG,
        body: include_str!("../../web/favicon.svg"),
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
