//! Headless Debian `chromium` driven over the Chrome DevTools Protocol, for the browser tests.
//!
//! A deliberately small CDP client on the crate's own async-tungstenite + serde_json: the tests
//! need a handful of commands (targets, navigation, evaluation, screenshots, the viewport and
//! trusted mouse and keyboard input through `Input.dispatch*Event`), so `cargo test` stays
//! self-contained (no node/npm, no network at test time) without compiling a full generated
//! CDP binding such as chromiumoxide. The page's own controls are driven with real clicks and
//! key presses ([`Browser::click`], [`Browser::type_text`], [`Browser::press`]); console errors,
//! uncaught exceptions and failed loads are collected ([`Browser::assert_no_console_errors`]).
//! Chromium is killed when the [`Browser`] is dropped; every call is bounded by a timeout.
#![allow(dead_code)]

pub mod delay_proxy;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use base64::Engine;
use futures::StreamExt;
use serde_json::{Value, json};

type Ws = async_tungstenite::WebSocketStream<async_tungstenite::tokio::ConnectStream>;

/// The demo page served at `addr`, joining `room` as `name` with `token` on load
/// (`autojoin=1`), publishing the fake camera and microphone when `publish`.
pub fn page_url(
    addr: impl std::fmt::Display,
    room: &str,
    token: &str,
    name: &str,
    publish: bool,
) -> String {
    format!(
        "http://{addr}/?room={room}&token={token}&name={name}&publish={}&autojoin=1",
        u8::from(publish)
    )
}

/// Path of the Chromium binary (`CHROMIUM` overrides).
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Where tests write screenshots (git-ignored).
pub fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/output");
    std::fs::create_dir_all(&dir).expect("create tests/output");
    dir
}

/// One headless Chromium process with one page.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: Ws,
    session: String,
    next_id: u64,
    /// Console errors, uncaught exceptions and failed loads seen so far.
    console: Vec<String>,
    /// The TCP port of Chromium's DevTools endpoint (a test that cuts the network spares it).
    pub devtools_port: u16,
}

/// JS run in every new document before the page's own scripts: records every track that
/// `getUserMedia`/`getDisplayMedia` hands out in `window.__captured`, so a test can tell
/// whether the camera was ever opened and whether every capture was released.
const CAPTURE_PROBE: &str = "(() => {
  window.__captured = [];
  const md = navigator.mediaDevices;
  for (const name of ['getUserMedia', 'getDisplayMedia']) {
    const orig = md[name]?.bind(md);
    if (!orig) continue;
    md[name] = async (c) => { const s = await orig(c); window.__captured.push(...s.getTracks()); return s; };
  }
})();";

/// JS: how many captured tracks are still live.
pub const LIVE_CAPTURES: &str = "window.__captured.filter(t => t.readyState === 'live').length";

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Start Chromium (fake camera and microphone, loopback ICE allowed) and open a blank page.
    pub async fn launch() -> Browser {
        Self::launch_with(true).await
    }

    /// Start Chromium; `grant_media: false` leaves out `--use-fake-ui-for-media-stream`, so
    /// camera/microphone requests are not granted (headless has no prompt to accept them).
    pub async fn launch_with(grant_media: bool) -> Browser {
        let profile = tempfile::tempdir().expect("tmp profile");
        let mut child = Command::new(chromium_path())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--use-fake-device-for-media-stream",
                "--allow-loopback-in-peer-connection",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--autoplay-policy=no-user-gesture-required",
                // Host candidates as plain 127.0.0.1 (not mDNS names webrtcbin cannot resolve).
                "--disable-features=WebRtcHideLocalIpsWithMdns",
                "--window-size=1280,1000",
                "--remote-debugging-port=0",
            ])
            .args(grant_media.then_some("--use-fake-ui-for-media-stream"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium_path().display()));
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Read the DevTools URL, then keep draining stderr so Chromium never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
            .await
            .expect("join")
            .expect("chromium did not print its DevTools URL within 20 s");
        let devtools_port = url
            .split('/')
            .nth(2)
            .and_then(|hp| hp.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in the DevTools URL {url}"));
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(10),
            async_tungstenite::tokio::connect_async(url),
        )
        .await
        .expect("CDP connect timed out")
        .expect("CDP connect");
        let mut b = Browser {
            child,
            devtools_port,
            _profile: profile,
            ws,
            session: String::new(),
            next_id: 0,
            console: Vec::new(),
        };
        let t = b
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target = t["targetId"].as_str().expect("targetId").to_owned();
        let s = b
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await;
        b.session = s["sessionId"].as_str().expect("sessionId").to_owned();
        b.cmd("Page.enable", json!({})).await;
        b.cmd("Runtime.enable", json!({})).await;
        b.cmd("Log.enable", json!({})).await;
        b.cmd(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": CAPTURE_PROBE}),
        )
        .await;
        b
    }

    /// Remember console errors, exceptions and failed loads among CDP events.
    fn note_event(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => self.console.push(format!(
                "exception: {}",
                p["exceptionDetails"]["exception"]["description"]
                    .as_str()
                    .unwrap_or_else(|| p["exceptionDetails"]["text"].as_str().unwrap_or("?"))
            )),
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                let args: Vec<String> = p["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| {
                                x["value"]
                                    .as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| x["description"].to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.console
                    .push(format!("console.error: {}", args.join(" ")));
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => self.console.push(format!(
                "log: {} {}",
                p["entry"]["text"].as_str().unwrap_or(""),
                p["entry"]["url"].as_str().unwrap_or("")
            )),
            _ => {}
        }
    }

    /// Fail if the page logged an error, threw, or failed to load something (a 404 included).
    pub async fn assert_no_console_errors(&mut self) {
        // Let pending events arrive.
        self.eval("1").await;
        assert!(
            self.console.is_empty(),
            "console errors on the page: {:#?}",
            self.console
        );
    }

    /// Set the viewport (CSS pixels); `mobile` emulates a phone (touch, meta viewport).
    pub async fn set_viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.cmd(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    /// Wait until `selector` is visible and enabled, scroll it into view and click its centre
    /// with a real (trusted) mouse press and release. Panics if another element covers it.
    pub async fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).expect("selector");
        let at = self
            .wait_for(
                &format!("{selector} to be clickable"),
                &format!(
                    "(() => {{ const e = document.querySelector({sel}); if (!e || e.disabled) return null;
                       e.scrollIntoView({{block: 'center', inline: 'center'}});
                       const r = e.getBoundingClientRect(); if (r.width === 0 || r.height === 0) return null;
                       const x = r.x + r.width / 2, y = r.y + r.height / 2;
                       const top = document.elementFromPoint(x, y);
                       return {{x, y, covered: !(top && (top === e || e.contains(top) || top.contains(e))) && (top ? top.outerHTML.slice(0, 120) : 'nothing')}}; }})()"
                ),
                Duration::from_secs(20),
            )
            .await;
        assert_eq!(
            at["covered"],
            json!(false),
            "{selector} is covered by another element"
        );
        let (x, y) = (at["x"].clone(), at["y"].clone());
        self.cmd(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        )
        .await;
        for kind in ["mousePressed", "mouseReleased"] {
            self.cmd(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Click `selector` (to focus it) and type `text` into it as keyboard input.
    pub async fn type_text(&mut self, selector: &str, text: &str) {
        self.click(selector).await;
        self.cmd("Input.insertText", json!({"text": text})).await;
    }

    /// Press and release one key (`Enter`, `Tab`, `Escape`, ` `) on the focused element.
    pub async fn press(&mut self, key: &str) {
        let (code, vk, text) = match key {
            "Enter" => ("Enter", 13, "\r"),
            "Tab" => ("Tab", 9, ""),
            "Escape" => ("Escape", 27, ""),
            " " => ("Space", 32, " "),
            other => panic!("press: no key table entry for {other:?}"),
        };
        let mut down =
            json!({"type": "keyDown", "key": key, "code": code, "windowsVirtualKeyCode": vk});
        if !text.is_empty() {
            down["text"] = json!(text);
        }
        self.cmd("Input.dispatchKeyEvent", down).await;
        self.cmd(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk}),
        )
        .await;
    }

    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .expect("CDP send");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("CDP {method} timed out"))
                .expect("CDP connection closed")
                .expect("CDP read");
            let Message::Text(t) = frame else { continue };
            let v: Value = serde_json::from_str(&t).expect("CDP JSON");
            if v.get("method").is_some() {
                self.note_event(&v);
                continue;
            }
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("CDP {method} failed: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    /// A command on the page's session.
    pub async fn cmd(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.call(Some(&s), method, params).await
    }

    /// A browser-level command (no page session), e.g. `Browser.setPermission`.
    pub async fn cmd_browser(&mut self, method: &str, params: Value) -> Value {
        self.call(None, method, params).await
    }

    /// Load `url` in the page.
    pub async fn goto(&mut self, url: &str) {
        self.cmd("Page.navigate", json!({"url": url})).await;
    }

    /// Evaluate a JS expression (promises awaited) and return its JSON value. A thrown
    /// exception is returned as `Err(description)`.
    pub async fn try_eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self
            .cmd(
                "Runtime.evaluate",
                json!({"expression": expr, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(ex["exception"]["description"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| ex.to_string()));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Evaluate, panicking on a JS exception.
    pub async fn eval(&mut self, expr: &str) -> Value {
        match self.try_eval(expr).await {
            Ok(v) => v,
            Err(e) => panic!("JS `{expr}` threw: {e}"),
        }
    }

    /// Poll `expr` until it is truthy; panics with `what` and the last value after `timeout`.
    pub async fn wait_for(&mut self, what: &str, expr: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = Value::Null;
        while tokio::time::Instant::now() < deadline {
            if let Ok(v) = self.try_eval(expr).await {
                let truthy = !matches!(&v, Value::Null | Value::Bool(false))
                    && v != json!(0)
                    && v != json!("");
                if truthy {
                    return v;
                }
                last = v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let status = self
            .try_eval("document.getElementById('status')?.textContent")
            .await
            .unwrap_or(Value::Null);
        panic!("timed out waiting for {what}: last value {last}, page status {status}");
    }

    /// Save a PNG screenshot of the page.
    pub async fn screenshot(&mut self, path: &Path) {
        let r = self
            .cmd("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64");
        std::fs::write(path, png).expect("write screenshot");
    }
}
