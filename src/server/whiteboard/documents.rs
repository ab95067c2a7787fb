//! Documents as pages: `POST /whiteboard/ROOM/documents[?board=B&name=F]` with the file as
//! the body imports it (PDF directly; PPTX, PPT, ODP, DOCX, DOC, ODT through
//! `libreoffice --headless --convert-to pdf` when LibreOffice is installed): every page is
//! rendered with poppler's `pdftoppm`, stored, and appended to the board as a page whose
//! background is `GET /whiteboard/ROOM/documents/DOC/N.png`. Both need a token for ROOM
//! (`Authorization: Bearer` or `?token=`); importing needs `admin` (the presenter). All pages
//! or none: a malformed PDF, a file above the size limit or a document above the page limit
//! changes nothing.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::WhiteboardService;
use super::store::PageImage;
use crate::server::handshake::Request;
use crate::server::http::{TEXT, query_param, response};
use crate::server::room_admin::request_token;
use crate::signalling::protocol::Grant;
use crate::signalling::protocol::whiteboard::{DEFAULT_BOARD, valid_board};
use crate::signalling::token::{Claims, TokenError, verify};

/// Time allowed for the whole body of an import to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A refused or failed import: the HTTP status and the message.
#[derive(Debug)]
pub(crate) struct HttpError(pub &'static str, pub String);

fn bad(status: &'static str, msg: impl Into<String>) -> HttpError {
    HttpError(status, msg.into())
}

/// `/whiteboard/ROOM/...` split into the room and the rest.
fn route(path: &str) -> Option<(String, Vec<&str>)> {
    let rest = path.strip_prefix("/whiteboard/")?;
    let mut parts = rest.split('/');
    let room = crate::server::http::decode(parts.next()?);
    Some((room, parts.collect()))
}

fn authorize(secret: &[u8], req: &Request, query: &str, room: &str) -> Result<Claims, HttpError> {
    let Some(token) = request_token(req.header("authorization"), query) else {
        return Err(bad(
            "401 Unauthorized",
            format!(
                "a token for room `{room}` is required (Authorization: Bearer <token>, or the `token` query parameter)"
            ),
        ));
    };
    verify(secret, &token, room).map_err(|e| match e {
        TokenError::WrongRoom { .. } => bad("403 Forbidden", e.to_string()),
        e => bad("401 Unauthorized", e.to_string()),
    })
}

/// `GET /whiteboard/ROOM/documents/DOC/N.png`.
pub(crate) async fn get(
    wb: Arc<WhiteboardService>,
    secret: &[u8],
    req: &Request,
    path: &str,
    query: &str,
) -> Vec<u8> {
    let result = async {
        let (room, rest) =
            route(path).ok_or_else(|| bad("404 Not Found", format!("no such page: {path}")))?;
        let [docs, doc, file] = rest.as_slice() else {
            return Err(bad("404 Not Found", format!("no such page: {path}")));
        };
        let page = file
            .strip_suffix(".png")
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|_| *docs == "documents")
            .ok_or_else(|| bad("404 Not Found", format!("no such page: {path}")))?;
        authorize(secret, req, query, &room)?;
        let (room2, doc2) = (room.clone(), (*doc).to_owned());
        let png = tokio::task::spawn_blocking(move || wb.page_image(&room2, &doc2, page))
            .await
            .map_err(|e| bad("500 Internal Server Error", e.to_string()))?
            .map_err(|e| bad("500 Internal Server Error", e.to_string()))?;
        png.ok_or_else(|| {
            bad(
                "404 Not Found",
                format!("document `{doc}` of room `{room}` has no page {page}"),
            )
        })
    }
    .await;
    match result {
        Ok(png) => binary_response("200 OK", "image/png", &png),
        Err(HttpError(status, msg)) => response(status, TEXT, format!("{msg}\n")),
    }
}

fn binary_response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: private, max-age=3600\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// `POST /whiteboard/ROOM/documents`: read the body (what arrived with the head is in
/// `req.rest`, the remainder is read from `conn`), import, answer `201` with
/// `{"document", "pages"}`.
pub(crate) async fn post<S: AsyncRead + Unpin>(
    wb: Arc<WhiteboardService>,
    secret: &[u8],
    req: &Request,
    conn: &mut S,
    path: &str,
    query: &str,
) -> Vec<u8> {
    match import_request(wb, secret, req, conn, path, query).await {
        Ok(body) => response("201 Created", "application/json", body.to_string()),
        Err(HttpError(status, msg)) => {
            tracing::info!(%path, %status, %msg, "document import refused");
            response(status, TEXT, format!("{msg}\n"))
        }
    }
}

async fn import_request<S: AsyncRead + Unpin>(
    wb: Arc<WhiteboardService>,
    secret: &[u8],
    req: &Request,
    conn: &mut S,
    path: &str,
    query: &str,
) -> Result<serde_json::Value, HttpError> {
    let (room, rest) =
        route(path).ok_or_else(|| bad("404 Not Found", format!("no such page: {path}")))?;
    if rest != ["documents"] {
        return Err(bad(
            "404 Not Found",
            format!("no such page: {path} (POST /whiteboard/ROOM/documents imports)"),
        ));
    }
    let claims = authorize(secret, req, query, &room)?;
    if !claims.has(Grant::Admin) {
        return Err(bad(
            "403 Forbidden",
            format!(
                "importing a document needs the `admin` grant (the presenter), which the token of user `{}` lacks",
                claims.sub
            ),
        ));
    }
    let board = query_param(query, "board")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| DEFAULT_BOARD.to_owned());
    valid_board(&board)
        .map_err(|e| bad("400 Bad Request", format!("query parameter `board`: {e}")))?;
    let name = query_param(query, "name").unwrap_or_else(|| "document.pdf".to_owned());
    let max = wb.config().max_document_bytes;
    let len = req
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| {
            bad(
                "411 Length Required",
                "the request needs a Content-Length header",
            )
        })?;
    if len > max {
        return Err(bad(
            "413 Payload Too Large",
            format!(
                "the document is {len} bytes; at most {max} are accepted (--whiteboard-max-document-bytes)"
            ),
        ));
    }
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(&req.rest[..req.rest.len().min(len)]);
    let mut chunk = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
    while body.len() < len {
        let n = tokio::time::timeout_at(deadline, conn.read(&mut chunk))
            .await
            .map_err(|_| {
                bad(
                    "408 Request Timeout",
                    format!(
                        "the document did not arrive within {} s",
                        BODY_TIMEOUT.as_secs()
                    ),
                )
            })?
            .map_err(|e| {
                bad(
                    "400 Bad Request",
                    format!("reading the document failed: {e}"),
                )
            })?;
        if n == 0 {
            return Err(bad(
                "400 Bad Request",
                format!("the body ended after {} of {len} bytes", body.len()),
            ));
        }
        body.extend_from_slice(&chunk[..n.min(len - body.len())]);
    }
    let office = office_kind(&name, req.header("content-type"));
    let doc_id = random_id();
    let dpi = wb.config().document_dpi;
    let max_pages = wb.config().max_document_pages;
    let images = render(&body, office, dpi, max_pages).await?;
    let count = images.len();
    let (wb2, room2, doc2) = (wb.clone(), room.clone(), doc_id.clone());
    tokio::task::spawn_blocking(move || -> Result<(), HttpError> {
        wb2.store_pages(&room2, &doc2, &images)
            .map_err(|e| bad("500 Internal Server Error", e.to_string()))?;
        let ids: Vec<String> = (1..=count).map(|n| format!("{doc2}-{n}")).collect();
        let sizes: Vec<(u32, u32)> = images.iter().map(|p| (p.width, p.height)).collect();
        wb2.server_change(&room2, &board, |t, pages| {
            let mut order = pages.last().map(|p| p.order).unwrap_or(0.0);
            for (n, (id, (w, h))) in ids.iter().zip(sizes).enumerate() {
                order += 1.0;
                let url = format!(
                    "/whiteboard/{}/documents/{doc2}/{}.png",
                    encode(&room2),
                    n + 1
                );
                gststreamwire::whiteboard::insert_page(
                    t,
                    id,
                    order,
                    super::board::SERVER,
                    Some((&url, w, h)),
                );
            }
        })
        .map_err(|e| bad("500 Internal Server Error", e.to_string()))
    })
    .await
    .map_err(|e| bad("500 Internal Server Error", e.to_string()))??;
    tracing::info!(%room, document = %doc_id, pages = count, "document imported");
    Ok(serde_json::json!({
        "document": doc_id,
        "pages": (1..=count).map(|n| format!("{doc_id}-{n}")).collect::<Vec<_>>(),
    }))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn random_id() -> String {
    let mut b = [0u8; 6];
    if getrandom::getrandom(&mut b).is_err() {
        return format!("d{}", crate::telemetry::now_ms());
    }
    format!(
        "d{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// The office file extension when the document must go through LibreOffice first.
fn office_kind(name: &str, content_type: Option<&str>) -> Option<&'static str> {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    for e in ["pptx", "ppt", "odp", "docx", "doc", "odt"] {
        if ext == e {
            return Some(e);
        }
    }
    match content_type {
        Some(t) if t.contains("presentationml") => Some("pptx"),
        Some(t) if t.contains("wordprocessingml") => Some("docx"),
        _ => None,
    }
}

async fn run(cmd: &mut tokio::process::Command, what: &str) -> Result<(), HttpError> {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| {
        bad(
            "422 Unprocessable Entity",
            format!("{what} took longer than 120 s"),
        )
    })?
    .map_err(|e| {
        bad(
            "500 Internal Server Error",
            format!("cannot run {what}: {e}"),
        )
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        return Err(bad(
            "422 Unprocessable Entity",
            format!("{what} failed ({}): {first}", out.status),
        ));
    }
    Ok(())
}

fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Render every page of the document to PNG: all pages, or an error and none.
async fn render(
    body: &[u8],
    office: Option<&str>,
    dpi: u32,
    max_pages: usize,
) -> Result<Vec<PageImage>, HttpError> {
    let dir = tempfile::Builder::new()
        .prefix("streamwire-import-")
        .tempdir()
        .map_err(|e| {
            bad(
                "500 Internal Server Error",
                format!("temporary directory: {e}"),
            )
        })?;
    let result = render_in(dir.path(), body, office, dpi, max_pages).await;
    drop(dir);
    result
}

async fn render_in(
    dir: &Path,
    body: &[u8],
    office: Option<&str>,
    dpi: u32,
    max_pages: usize,
) -> Result<Vec<PageImage>, HttpError> {
    let io = |e: std::io::Error| bad("500 Internal Server Error", format!("temporary file: {e}"));
    let pdf = match office {
        None => {
            if !body.starts_with(b"%PDF-") {
                return Err(bad(
                    "415 Unsupported Media Type",
                    "the document is not a PDF (it does not start with %PDF-); office files need a name ending in .pptx, .ppt, .odp, .docx, .doc or .odt",
                ));
            }
            let p = dir.join("in.pdf");
            tokio::fs::write(&p, body).await.map_err(io)?;
            p
        }
        Some(ext) => {
            if !installed("libreoffice") {
                return Err(bad(
                    "501 Not Implemented",
                    format!(
                        "importing a .{ext} file needs LibreOffice, which is not installed on the server (`libreoffice` is not in PATH; Debian: libreoffice-impress / libreoffice-writer); convert it to PDF and import that"
                    ),
                ));
            }
            let src = dir.join(format!("in.{ext}"));
            tokio::fs::write(&src, body).await.map_err(io)?;
            run(
                tokio::process::Command::new("libreoffice")
                    .args(["--headless", "--convert-to", "pdf", "--outdir"])
                    .arg(dir)
                    .arg(&src)
                    .env("HOME", dir),
                "libreoffice --convert-to pdf",
            )
            .await?;
            dir.join("in.pdf")
        }
    };
    // The page count first: a malformed PDF stops here, and a long one before rendering.
    let info = tokio::process::Command::new("pdfinfo")
        .arg(&pdf)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| {
            bad(
                "500 Internal Server Error",
                format!("cannot run pdfinfo (Debian: poppler-utils): {e}"),
            )
        })?;
    if !info.status.success() {
        let err = String::from_utf8_lossy(&info.stderr);
        let first = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        return Err(bad(
            "422 Unprocessable Entity",
            format!("the PDF is malformed: {first}"),
        ));
    }
    let pages = String::from_utf8_lossy(&info.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("Pages:")
                .and_then(|n| n.trim().parse::<usize>().ok())
        })
        .ok_or_else(|| {
            bad(
                "422 Unprocessable Entity",
                "the PDF is malformed: pdfinfo reports no page count",
            )
        })?;
    if pages == 0 {
        return Err(bad("422 Unprocessable Entity", "the PDF has no pages"));
    }
    if pages > max_pages {
        return Err(bad(
            "413 Payload Too Large",
            format!(
                "the document has {pages} pages; at most {max_pages} are imported (--whiteboard-max-document-pages)"
            ),
        ));
    }
    run(
        tokio::process::Command::new("pdftoppm")
            .args(["-png", "-r", &dpi.to_string()])
            .arg(&pdf)
            .arg(dir.join("page")),
        "pdftoppm",
    )
    .await?;
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("page") && n.ends_with(".png"))
        })
        .collect();
    // pdftoppm pads the number to the width of the page count: page-01.png ... page-12.png.
    files.sort();
    if files.len() != pages {
        return Err(bad(
            "422 Unprocessable Entity",
            format!(
                "pdftoppm rendered {} of {pages} pages; nothing was imported",
                files.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(pages);
    for f in files {
        let png = tokio::fs::read(&f).await.map_err(io)?;
        let (width, height) = png_size(&png).ok_or_else(|| {
            bad(
                "500 Internal Server Error",
                format!("{} is not a PNG", f.display()),
            )
        })?;
        out.push(PageImage { png, width, height });
    }
    Ok(out)
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" {
        return None;
    }
    let w = u32::from_be_bytes(png[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(png[20..24].try_into().ok()?);
    Some((w, h))
}
