//! The browser path of `bench whiteboard`: stroke latency from a real pointer event in one
//! Chromium page to the stroke painted on the whiteboard canvas of another page.
//!
//! Two pages of one headless Chromium (each in a window of its own) join a room of the
//! `streamwire serve` child and open the web app's whiteboard panel. For each sample, page B
//! is armed to watch one spot of its canvas, then page A gets trusted mouse input through
//! CDP `Input.dispatchMouseEvent`: pressed at that spot, four moves to the right, released
//! (the panel starts the stroke, and sends it, on `pointerdown`).
//!
//! - Start: the `pointerdown` event's `timeStamp` in page A (when Chromium created the input
//!   event, before it reached the page), on the page's clock `performance.timeOrigin +
//!   timeStamp`.
//! - End: page B reads the canvas pixels around the spot (`getImageData`) in a
//!   `requestAnimationFrame` callback queued on each board `change` event, after the
//!   panel's own paint callback of that frame (the panel queues its paint on the same event,
//!   earlier), and in every frame while armed; the first read that finds ink takes
//!   `performance.timeOrigin + performance.now()`.
//!
//! Both pages run in one browser on one machine, so `timeOrigin + now` is one clock (the
//! monotonic clock plus an offset to Unix time each renderer process takes once). As a check
//! that needs no shared page clock, each sample is also timed on the bench process's own
//! clock, from sending the pressed event to receiving page B's answer: an upper bound (it
//! adds the CDP transport both ways). A sample whose page-clock time is not positive or
//! exceeds that bound by more than [`CLOCK_SLACK_MS`] fails the run. Page B also notes when
//! the stroke reached its board (the first `change` with one more item), before the paint.

use std::time::{Duration, Instant};

use serde_json::Value;
use streamwire::signalling::protocol::Grant;
use streamwire::signalling::token::{Claims, mint};

use super::chromium::{Chromium, ChromiumError, Mouse, Page};
use super::percentile;
use super::whiteboard::{StrokeLatency, WhiteboardBenchError};

/// The room of the browser pages (not the one of the Rust members).
const ROOM: &str = "bench-browser";

/// The longest wait for one stroke to be painted in page B.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest wait for a page to join and sync its board.
const PAGE_TIMEOUT: Duration = Duration::from_secs(45);

/// How far a page-clock sample may exceed the bench-clock bound before the run fails, ms
/// (clock rounding; a larger excess means the pages' clocks disagree).
pub const CLOCK_SLACK_MS: f64 = 1.0;

/// Board units between the starts of two strokes (the board is 1600 × 900).
const CELL: f64 = 100.0;
/// Board units of one stroke, to the right of its start.
const STROKE_LEN: f64 = 32.0;

/// The browser figures.
#[derive(Debug, Clone)]
pub struct BrowserStrokes {
    /// Pointer event in page A → painted in page B, on the pages' clock.
    pub page_clock: StrokeLatency,
    /// The same strokes on the bench process's clock (an upper bound).
    pub bench_clock: StrokeLatency,
    /// Pointer event in page A → the stroke applied to page B's board (its `change` event,
    /// before the paint), on the pages' clock.
    pub applied: StrokeLatency,
    /// `Browser.getVersion` product, e.g. `Chrome/156.0.8078.114`.
    pub browser: String,
}

fn cerr(what: &str) -> impl FnOnce(ChromiumError) -> WhiteboardBenchError + '_ {
    move |e| WhiteboardBenchError::new(format!("browser {what}: {e}"))
}

/// JS: `css(bx, by)`, the viewport CSS pixel of board point (bx, by) on the panel's canvas
/// (the view as the panel opens it: the whole page fitted, zoom 1), and `ink(bx, by)`, the
/// dark pixels within 4 CSS pixels of it.
const GEOMETRY: &str = "const c = document.querySelector('.wb-canvas');
  const css = (bx, by) => { const r = c.getBoundingClientRect(); const s = Math.min(r.width / 1600, r.height / 900);
    return [r.x + r.width / 2 + (bx - 800) * s, r.y + r.height / 2 + (by - 450) * s]; };
  const ink = (bx, by) => { const r = c.getBoundingClientRect(); const k = c.width / r.width; const [x, y] = css(bx, by);
    const d = c.getContext('2d').getImageData(Math.round((x - r.x - 4) * k), Math.round((y - r.y - 4) * k), Math.max(1, Math.round(8 * k)), Math.max(1, Math.round(8 * k))).data;
    let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128 && d[i + 1] < 128 && d[i + 2] < 128) n++; return n; };";

/// JS for page A: records each trusted `pointerdown` on the canvas (`window.__swDown`).
fn drawer_probe() -> String {
    format!(
        "(() => {{ {GEOMETRY}
  window.__swDown = [];
  c.addEventListener('pointerdown', (e) => window.__swDown.push({{ at: performance.timeOrigin + e.timeStamp, trusted: e.isTrusted }}), {{ capture: true }});
  window.__swCss = css; return true; }})()"
    )
}

/// JS for page B: `__swProbe.arm(bx, by)` starts watching board point (bx, by);
/// `__swProbe.watch.done` resolves to `{at, via, applied}` when ink is found there (`applied`:
/// the first board `change` with more items than at arming, i.e. the stroke in the model).
fn viewer_probe() -> String {
    format!(
        "(() => {{ {GEOMETRY}
  const probe = {{ watch: null }};
  const board = window.streamwireApp.whiteboard.board;
  const check = (via) => {{ const w = probe.watch; if (!w || w.at !== null) return;
    if (ink(w.bx, w.by) > 0) {{ w.at = performance.timeOrigin + performance.now(); w.resolve({{ at: w.at, via, applied: w.applied }}); }} }};
  board.addEventListener('change', () => {{ const w = probe.watch; if (w?.at !== null) return;
    if (w.applied === null && board.itemList().length > w.items) w.applied = performance.timeOrigin + performance.now();
    requestAnimationFrame(() => check('change')); }});
  const frame = () => {{ if (probe.watch?.at === null) {{ check('frame'); requestAnimationFrame(frame); }} }};
  probe.arm = (bx, by) => {{ if (ink(bx, by) > 0) throw new Error(`ink at (${{bx}}, ${{by}}) before the stroke`);
    let resolve; const done = new Promise((r) => {{ resolve = r; }});
    probe.watch = {{ bx, by, at: null, applied: null, items: board.itemList().length, resolve, done }}; requestAnimationFrame(frame); return true; }};
  window.__swProbe = probe; return true; }})()"
    )
}

/// Open the app in a new page as `user`, joined, with the whiteboard panel open and synced.
async fn open_board(
    b: &mut Chromium,
    http: &str,
    secret: &[u8],
    user: &str,
    grants: &[Grant],
) -> Result<Page, WhiteboardBenchError> {
    let token = mint(
        secret,
        &Claims::new(ROOM, user, user, Duration::from_secs(3600), grants),
    )
    .map_err(|e| WhiteboardBenchError::new(format!("token: {e}")))?;
    let page = b
        .open(&format!(
            "{http}/?room={ROOM}&token={token}&name={user}&publish=0&autojoin=1"
        ))
        .await
        .map_err(cerr("page"))?;
    b.wait_for(
        &page,
        &format!("{user} in the call"),
        "window.streamwireApp?.view === 'call' && window.streamwireApp.client.state === 'joined'",
        PAGE_TIMEOUT,
    )
    .await
    .map_err(cerr("join"))?;
    b.click(&page, "#wb-btn").await.map_err(cerr("panel"))?;
    b.wait_for(
        &page,
        &format!("{user}'s board synced"),
        "window.streamwireApp.whiteboard?.board.synced === true && document.visibilityState === 'visible'",
        PAGE_TIMEOUT,
    )
    .await
    .map_err(cerr("sync"))?;
    Ok(page)
}

fn number(v: &Value, key: &str, what: &str) -> Result<f64, WhiteboardBenchError> {
    v[key]
        .as_f64()
        .ok_or_else(|| WhiteboardBenchError::new(format!("{what}: no `{key}` in {v}")))
}

/// Time `samples` strokes from page A to page B against the server at `http`
/// (`http://127.0.0.1:PORT`, the server's secret `secret`) with the browser at `chromium`.
pub async fn run(
    chromium: &std::path::Path,
    http: &str,
    secret: &[u8],
    samples: usize,
) -> Result<BrowserStrokes, WhiteboardBenchError> {
    let mut b = Chromium::launch(chromium).await.map_err(cerr("launch"))?;
    let version = b
        .call(None, "Browser.getVersion", serde_json::json!({}))
        .await
        .map_err(cerr("version"))?;
    let browser = version["product"].as_str().unwrap_or("?").to_owned();
    // A draws and may clear the page (presenter); B only watches.
    let a = open_board(
        &mut b,
        http,
        secret,
        "drawer",
        &[Grant::Draw, Grant::Subscribe, Grant::Admin],
    )
    .await?;
    let v = open_board(&mut b, http, secret, "viewer", &[Grant::Subscribe]).await?;
    b.eval(&a, &drawer_probe())
        .await
        .map_err(cerr("probe in page A"))?;
    b.eval(&v, &viewer_probe())
        .await
        .map_err(cerr("probe in page B"))?;

    let cols = ((1600.0 - 2.0 * CELL) / CELL) as usize + 1;
    let rows = ((900.0 - 2.0 * CELL) / CELL) as usize + 1;
    let mut page_ms = Vec::with_capacity(samples);
    let mut bench_ms = Vec::with_capacity(samples);
    let mut applied_ms = Vec::with_capacity(samples);
    let mut via_change = 0usize;
    for i in 0..samples {
        let cell = i % (cols * rows);
        if cell == 0 && i > 0 {
            clear(&mut b, &a, &v).await?;
        }
        let (bx, by) = (
            CELL + (cell % cols) as f64 * CELL,
            CELL + (cell / cols) as f64 * CELL,
        );
        let at = b
            .eval(
                &a,
                &format!(
                    "[...window.__swCss({bx}, {by}), window.__swCss({}, {by})[0]]",
                    bx + STROKE_LEN
                ),
            )
            .await
            .map_err(cerr("position"))?;
        let (Some(x), Some(y), Some(x_end)) = (at[0].as_f64(), at[1].as_f64(), at[2].as_f64())
        else {
            return Err(WhiteboardBenchError::new(format!(
                "browser position: {at} for board point ({bx}, {by})"
            )));
        };
        b.eval(&v, &format!("window.__swProbe.arm({bx}, {by})"))
            .await
            .map_err(cerr("arming page B"))?;
        let wait = b
            .send_eval(&v, "window.__swProbe.watch.done")
            .await
            .map_err(cerr("page B"))?;
        b.mouse(&a, Mouse::Move, x, y)
            .await
            .map_err(cerr("mouse"))?;
        let t0 = Instant::now();
        b.mouse(&a, Mouse::Press, x, y)
            .await
            .map_err(cerr("mouse"))?;
        let step = (x_end - x) / 4.0;
        for k in 1..=4 {
            b.mouse(&a, Mouse::Drag, x + step * f64::from(k), y)
                .await
                .map_err(cerr("mouse"))?;
        }
        b.mouse(&a, Mouse::Release, x_end, y)
            .await
            .map_err(cerr("mouse"))?;
        let (seen, t1) = b
            .eval_result(
                wait,
                &format!("stroke {i} painted in page B"),
                RENDER_TIMEOUT,
            )
            .await
            .map_err(cerr("render"))?;
        let down = b
            .eval(&a, "window.__swDown.shift() ?? null")
            .await
            .map_err(cerr("pointerdown"))?;
        if down["trusted"] != Value::Bool(true) {
            return Err(WhiteboardBenchError::new(format!(
                "browser: stroke {i}: page A saw no trusted pointerdown ({down})"
            )));
        }
        let down_at = number(&down, "at", "page A")?;
        let inner = number(&seen, "at", "page B")? - down_at;
        let applied = number(&seen, "applied", "page B")? - down_at;
        let outer = (t1 - t0).as_secs_f64() * 1000.0;
        if !(inner > 0.0 && inner <= outer + CLOCK_SLACK_MS) {
            return Err(WhiteboardBenchError::new(format!(
                "browser: stroke {i}: {inner:.3} ms on the pages' clock but {outer:.3} ms on \
                 the bench's (the pages do not share a clock)"
            )));
        }
        tracing::debug!(
            stroke = i,
            page_clock_ms = inner,
            applied_ms = applied,
            bench_clock_ms = outer,
            via = %seen["via"],
            "bench whiteboard: browser stroke"
        );
        if seen["via"] == "change" {
            via_change += 1;
        }
        if !(applied > 0.0 && applied <= inner) {
            return Err(WhiteboardBenchError::new(format!(
                "browser: stroke {i}: applied in page B after {applied:.3} ms, painted after \
                 {inner:.3} ms"
            )));
        }
        page_ms.push(inner);
        applied_ms.push(applied);
        bench_ms.push(outer);
        // Let the stroke's last points (sent once per frame) arrive before the next one.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tracing::debug!(
        via_change,
        samples,
        "bench whiteboard: strokes found by the check after the panel's paint"
    );
    let lat = |v: &[f64], path| StrokeLatency {
        p50_ms: percentile(v, 50.0).unwrap_or(f64::NAN),
        p95_ms: percentile(v, 95.0).unwrap_or(f64::NAN),
        samples: v.len(),
        path,
    };
    Ok(BrowserStrokes {
        page_clock: lat(
            &page_ms,
            "pointerdown in Chromium page A (event timeStamp) -> server -> ink on page B's \
             whiteboard canvas (getImageData after the paint); the pages' clock",
        ),
        bench_clock: lat(
            &bench_ms,
            "CDP mousePressed sent to page A -> page B's answer received; the bench \
             process's clock (upper bound: adds CDP transport both ways)",
        ),
        applied: lat(
            &applied_ms,
            "pointerdown in Chromium page A (event timeStamp) -> server -> applied to page B's \
             board (its change event, before the paint); the pages' clock",
        ),
        browser,
    })
}

/// Page A clears the page with the panel's "Clear page" button; both boards then hold no
/// item and page B has painted the empty page.
async fn clear(b: &mut Chromium, a: &Page, v: &Page) -> Result<(), WhiteboardBenchError> {
    b.click(a, ".wb-bar button[title^='Remove everything']")
        .await
        .map_err(cerr("clear page"))?;
    for (who, p) in [("A", a), ("B", v)] {
        b.wait_for(
            p,
            &format!("page {who} empty after clearing"),
            "window.streamwireApp.whiteboard.board.itemList().length === 0",
            PAGE_TIMEOUT,
        )
        .await
        .map_err(cerr("clear page"))?;
    }
    // Two frames: the panel's paint of the empty page is done.
    b.eval(
        v,
        "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))",
    )
    .await
    .map_err(cerr("clear page"))?;
    Ok(())
}
