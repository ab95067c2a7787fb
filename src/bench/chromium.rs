//! Headless Chromium driven over the Chrome DevTools Protocol (CDP), for the benchmarks that
//! time the browser client (`bench whiteboard`).
//!
//! A small client on the crate's async-tungstenite + serde_json, like the tests' one
//! (`tests/browser_support`, which the binary cannot use): one browser process, pages as CDP
//! sessions on its one connection (`flatten`), several commands in flight at once
//! ([`Chromium::send`], then [`Chromium::response`], which also tells when each answer
//! arrived, on this process's clock). Every read is bounded by a timeout; the browser is
//! killed when the [`Chromium`] is dropped. No network but loopback: Chromium listens for
//! DevTools on 127.0.0.1 and its background services are off.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use futures::StreamExt;
use serde_json::{Value, json};

type Ws = async_tungstenite::WebSocketStream<async_tungstenite::tokio::ConnectStream>;

/// Where Debian installs Chromium.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// The longest wait for one CDP answer.
pub const CDP_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed browser step.
#[derive(Debug, thiserror::Error)]
#[error("chromium: {0}")]
pub struct ChromiumError(String);

fn err(what: &str, e: impl std::fmt::Display) -> ChromiumError {
    ChromiumError(format!("{what}: {e}"))
}

/// A mouse event of [`Chromium::mouse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mouse {
    /// Moved, no button held.
    Move,
    /// Left button pressed.
    Press,
    /// Moved with the left button held.
    Drag,
    /// Left button released.
    Release,
}

/// One page of the browser: its CDP session.
#[derive(Debug, Clone)]
pub struct Page(String);

/// One headless Chromium process and its DevTools connection.
pub struct Chromium {
    child: Child,
    _profile: tempfile::TempDir,
    ws: Ws,
    next_id: u64,
    /// Answers read while waiting for another one: id → (answer, when it arrived).
    early: HashMap<u64, (Value, Instant)>,
    /// Uncaught exceptions and console errors of the pages, for error messages.
    pub console: Vec<String>,
}

/// Whether `path` is a file to start as the browser; the error names it and the flags.
pub fn check(path: &Path) -> Result<(), ChromiumError> {
    if path.is_file() {
        return Ok(());
    }
    Err(ChromiumError(format!(
        "no browser at {} (install Debian's chromium, give --browser PATH, or --no-browser \
         to skip the browser figures)",
        path.display()
    )))
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Chromium {
    /// Start `path` headless (fake camera and microphone, loopback ICE allowed, no
    /// background networking) with a fresh profile, and connect to its DevTools endpoint.
    pub async fn launch(path: &Path) -> Result<Chromium, ChromiumError> {
        check(path)?;
        let profile = tempfile::tempdir().map_err(|e| err("profile directory", e))?;
        let mut child = Command::new(path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--allow-loopback-in-peer-connection",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                // Host candidates as plain 127.0.0.1 (not mDNS names).
                "--disable-features=WebRtcHideLocalIpsWithMdns",
                "--window-size=1280,1000",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(&format!("starting {}", path.display()), e))?;
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            return Err(ChromiumError("no stderr pipe".into()));
        };
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
        let url =
            match tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
                .await
            {
                Ok(Ok(url)) => url,
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ChromiumError(format!(
                        "{} printed no DevTools URL within 20 s",
                        path.display()
                    )));
                }
            };
        let ws = match tokio::time::timeout(
            Duration::from_secs(10),
            async_tungstenite::tokio::connect_async(url.as_str()),
        )
        .await
        {
            Ok(Ok((ws, _))) => ws,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out after 10 s".into(),
                };
                return Err(ChromiumError(format!("DevTools connection {url}: {why}")));
            }
        };
        Ok(Chromium {
            child,
            _profile: profile,
            ws,
            next_id: 0,
            early: HashMap::new(),
            console: Vec::new(),
        })
    }

    /// Open a new page (in a window of its own, so it is visible and paints) at `url`, with
    /// `Page` and `Runtime` events on.
    pub async fn open(&mut self, url: &str) -> Result<Page, ChromiumError> {
        let t = self
            .call(
                None,
                "Target.createTarget",
                json!({"url": "about:blank", "newWindow": true}),
            )
            .await?;
        let target = t["targetId"]
            .as_str()
            .ok_or_else(|| err("Target.createTarget", format!("no targetId in {t}")))?
            .to_owned();
        let s = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await?;
        let page = Page(
            s["sessionId"]
                .as_str()
                .ok_or_else(|| err("Target.attachToTarget", format!("no sessionId in {s}")))?
                .to_owned(),
        );
        self.call(Some(&page), "Page.enable", json!({})).await?;
        self.call(Some(&page), "Runtime.enable", json!({})).await?;
        self.call(Some(&page), "Page.navigate", json!({"url": url}))
            .await?;
        Ok(page)
    }

    /// Send `method` (to `page`, or to the browser) without waiting; returns its id for
    /// [`Chromium::response`].
    pub async fn send(
        &mut self,
        page: Option<&Page>,
        method: &str,
        params: Value,
    ) -> Result<u64, ChromiumError> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(p) = page {
            msg["sessionId"] = json!(p.0);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .map_err(|e| err(&format!("sending {method}"), e))?;
        Ok(id)
    }

    /// The answer to command `id` and when it arrived, waiting at most `timeout`. A CDP error
    /// is an error naming `what`.
    pub async fn response(
        &mut self,
        id: u64,
        what: &str,
        timeout: Duration,
    ) -> Result<(Value, Instant), ChromiumError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let (v, at) = loop {
            if let Some(got) = self.early.remove(&id) {
                break got;
            }
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| {
                    err(
                        what,
                        format!("no answer within {} s", timeout.as_secs_f64()),
                    )
                })?
                .ok_or_else(|| err(what, "the DevTools connection closed"))?
                .map_err(|e| err(what, e))?;
            let at = Instant::now();
            let Message::Text(t) = frame else { continue };
            let v: Value = serde_json::from_str(&t).map_err(|e| err("CDP message", e))?;
            if v.get("method").is_some() {
                self.note_event(&v);
                continue;
            }
            match v["id"].as_u64() {
                Some(got) if got == id => break (v, at),
                Some(got) => {
                    self.early.insert(got, (v, at));
                }
                None => {}
            }
        };
        if let Some(e) = v.get("error") {
            return Err(err(what, e));
        }
        Ok((v["result"].clone(), at))
    }

    /// Send and wait for the answer (at most [`CDP_TIMEOUT`]).
    pub async fn call(
        &mut self,
        page: Option<&Page>,
        method: &str,
        params: Value,
    ) -> Result<Value, ChromiumError> {
        let id = self.send(page, method, params).await?;
        Ok(self.response(id, method, CDP_TIMEOUT).await?.0)
    }

    /// Start evaluating the JS expression `expr` in `page` (a promise is awaited); read the
    /// value with [`Chromium::eval_result`].
    pub async fn send_eval(&mut self, page: &Page, expr: &str) -> Result<u64, ChromiumError> {
        self.send(
            Some(page),
            "Runtime.evaluate",
            json!({"expression": expr, "awaitPromise": true, "returnByValue": true}),
        )
        .await
    }

    /// The value of evaluation `id` and when it arrived; a thrown exception is an error.
    pub async fn eval_result(
        &mut self,
        id: u64,
        what: &str,
        timeout: Duration,
    ) -> Result<(Value, Instant), ChromiumError> {
        let (r, at) = self.response(id, what, timeout).await?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| ex.to_string());
            return Err(err(what, format!("the page threw {text}")));
        }
        Ok((r["result"]["value"].clone(), at))
    }

    /// Evaluate `expr` in `page` and return its JSON value.
    pub async fn eval(&mut self, page: &Page, expr: &str) -> Result<Value, ChromiumError> {
        let id = self.send_eval(page, expr).await?;
        Ok(self.eval_result(id, expr, CDP_TIMEOUT).await?.0)
    }

    /// Poll `expr` in `page` every 50 ms until it is truthy (then its value), at most
    /// `timeout`; the error names `what` and the last value.
    pub async fn wait_for(
        &mut self,
        page: &Page,
        what: &str,
        expr: &str,
        timeout: Duration,
    ) -> Result<Value, ChromiumError> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let v = self.eval(page, expr).await?;
            let falsy =
                matches!(&v, Value::Null | Value::Bool(false)) || v == json!(0) || v == json!("");
            if !falsy {
                return Ok(v);
            }
            last = v;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut msg = format!(
            "{what}: not within {} s (last value {last})",
            timeout.as_secs_f64()
        );
        if !self.console.is_empty() {
            msg.push_str(&format!("; page errors: {}", self.console.join(" | ")));
        }
        Err(ChromiumError(msg))
    }

    /// A trusted mouse event at CSS pixel (x, y) of the page's viewport (left button);
    /// returns when the page has handled it.
    pub async fn mouse(
        &mut self,
        page: &Page,
        event: Mouse,
        x: f64,
        y: f64,
    ) -> Result<(), ChromiumError> {
        let (kind, button, buttons) = match event {
            Mouse::Move => ("mouseMoved", "none", 0),
            Mouse::Press => ("mousePressed", "left", 1),
            Mouse::Drag => ("mouseMoved", "left", 1),
            Mouse::Release => ("mouseReleased", "left", 0),
        };
        self.call(
            Some(page),
            "Input.dispatchMouseEvent",
            json!({"type": kind, "x": x, "y": y, "button": button, "buttons": buttons, "clickCount": 1}),
        )
        .await?;
        Ok(())
    }

    /// Click the centre of the first element matching `selector` with real mouse input.
    pub async fn click(&mut self, page: &Page, selector: &str) -> Result<(), ChromiumError> {
        let sel = serde_json::to_string(selector).map_err(|e| err("selector", e))?;
        let at = self
            .wait_for(
                page,
                &format!("{selector} to be clickable"),
                &format!(
                    "(() => {{ const e = document.querySelector({sel}); if (!e || e.disabled) return null;
                       e.scrollIntoView({{block: 'center', inline: 'center'}});
                       const r = e.getBoundingClientRect(); if (r.width === 0 || r.height === 0) return null;
                       return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
                ),
                Duration::from_secs(20),
            )
            .await?;
        let (Some(x), Some(y)) = (at[0].as_f64(), at[1].as_f64()) else {
            return Err(err(selector, format!("no position in {at}")));
        };
        self.mouse(page, Mouse::Move, x, y).await?;
        self.mouse(page, Mouse::Press, x, y).await?;
        self.mouse(page, Mouse::Release, x, y).await
    }

    /// Remember uncaught exceptions and console errors among the CDP events.
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
            _ => {}
        }
    }
}
