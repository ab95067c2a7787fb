// SPDX-License-Identifier: MIT OR Apache-2.0
//! Reading telemetry fields, gated by consent.
//!
//! Each registry field has exactly one reader function in [`READERS`]. [`Sampler::sample`]
//! walks the registry, skips every field the consent does not allow *before* looking up its
//! reader, and calls only the readers of allowed fields, so an unconsented field is never
//! read. System data comes from the `sysinfo` crate and is refreshed lazily, only for what an
//! allowed reader needs.

use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::registry::{Consent, REGISTRY};

/// A field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(String),
    /// Unsigned integer.
    U64(u64),
    /// Floating point.
    F64(f64),
}

impl Value {
    /// As a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => serde_json::Value::from(s.as_str()),
            Value::U64(v) => serde_json::Value::from(*v),
            Value::F64(v) => serde_json::Value::from(*v),
        }
    }
}

/// One report: the values of the fields that were allowed and available.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// `(field key, value)` in registry order.
    pub values: Vec<(&'static str, Value)>,
}

impl Report {
    /// Value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The report as a `streamwire-telemetry` structure (plus `consent`).
    pub fn to_structure(&self, consent: Consent) -> gst::Structure {
        let mut s = gst::Structure::new_empty(super::MESSAGE_NAME);
        s.set("consent", consent.as_str());
        for (k, v) in &self.values {
            match v {
                Value::Str(x) => s.set(*k, x.as_str()),
                Value::U64(x) => s.set(*k, *x),
                Value::F64(x) => s.set(*k, *x),
            }
        }
        s
    }

    /// The report as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.to_json()))
                .collect(),
        )
    }
}

/// Per-buffer counters updated on the streaming thread (two relaxed atomic adds per buffer).
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Buffers seen.
    pub buffers: AtomicU64,
    /// Bytes seen.
    pub bytes: AtomicU64,
    /// Video resolution from the caps, if video.
    pub resolution: Mutex<Option<(u32, u32)>>,
}

impl StreamCounters {
    /// Counts one buffer of `size` bytes.
    #[inline]
    pub fn count(&self, size: usize) {
        self.buffers.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size as u64, Ordering::Relaxed);
    }
}

/// Everything readers may use. System handles are created on first use.
pub struct Ctx {
    system: Option<sysinfo::System>,
    cpu_primed: bool,
    process_primed: bool,
    process_refreshed: bool,
    cpu_refreshed: bool,
    counters: Arc<StreamCounters>,
    last_counts: (u64, u64, Instant),
    rates: Option<(f64, f64)>,
    screen_resolution: Option<String>,
    sysfs_root: std::path::PathBuf,
}

impl Ctx {
    /// A context reading the stream counters `counters`; `screen_resolution` as provided
    /// by the application (`WIDTHxHEIGHT`).
    pub fn new(counters: Arc<StreamCounters>, screen_resolution: Option<String>) -> Self {
        let now = Instant::now();
        let b = counters.buffers.load(Ordering::Relaxed);
        let y = counters.bytes.load(Ordering::Relaxed);
        Ctx {
            system: None,
            cpu_primed: false,
            process_primed: false,
            process_refreshed: false,
            cpu_refreshed: false,
            counters,
            last_counts: (b, y, now),
            rates: None,
            screen_resolution,
            sysfs_root: "/sys".into(),
        }
    }

    /// Changes the screen resolution reported (`WIDTHxHEIGHT`), `None` if unknown.
    pub fn set_screen_resolution(&mut self, r: Option<String>) {
        self.screen_resolution = r;
    }

    fn begin_tick(&mut self) {
        self.cpu_refreshed = false;
        self.process_refreshed = false;
        self.rates = None;
    }

    fn system(&mut self) -> Option<&mut sysinfo::System> {
        if self.system.is_none() {
            self.system = sysinfo::System::new().ok();
        }
        self.system.as_mut()
    }

    /// Refreshes CPU usage once per tick; `false` on the very first refresh, whose value
    /// would be an average since boot rather than over the interval.
    fn refresh_cpu(&mut self) -> bool {
        if !self.cpu_refreshed {
            self.cpu_refreshed = true;
            if let Some(sys) = self.system() {
                sys.refresh_cpu_usage();
            }
            let primed = self.cpu_primed;
            self.cpu_primed = true;
            return primed;
        }
        self.cpu_primed
    }

    fn refresh_process(&mut self) -> Option<sysinfo::Pid> {
        let pid = sysinfo::get_current_pid().ok()?;
        if !self.process_refreshed {
            self.process_refreshed = true;
            let sys = self.system()?;
            sys.refresh_processes_specifics(
                sysinfo::ProcessesToUpdate::Some(&[pid]),
                false,
                sysinfo::ProcessRefreshKind::nothing()
                    .with_cpu()
                    .with_memory()
                    .with_tasks(),
            );
        }
        Some(pid)
    }

    fn stream_rates(&mut self) -> (f64, f64) {
        if let Some(r) = self.rates {
            return r;
        }
        let b = self.counters.buffers.load(Ordering::Relaxed);
        let y = self.counters.bytes.load(Ordering::Relaxed);
        let now = Instant::now();
        let (b0, y0, t0) = self.last_counts;
        let secs = now.duration_since(t0).as_secs_f64().max(1e-3);
        let r = (
            b.saturating_sub(b0) as f64 / secs,
            y.saturating_sub(y0) as f64 * 8.0 / secs,
        );
        self.last_counts = (b, y, now);
        self.rates = Some(r);
        r
    }

    fn sys_text(&self, rel: &str) -> Option<String> {
        let t = std::fs::read_to_string(self.sysfs_root.join(rel)).ok()?;
        let t = t.trim();
        (!t.is_empty()).then(|| t.to_owned())
    }
}

/// A reader: returns the field's value, or `None` when the machine does not have it.
pub type Reader = fn(&mut Ctx) -> Option<Value>;

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn read_cpu_model(c: &mut Ctx) -> Option<Value> {
    let sys = c.system()?;
    if sys.cpus().is_empty() {
        sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    }
    let brand = sys.cpus().first()?.brand().trim().to_owned();
    (!brand.is_empty()).then_some(Value::Str(brand))
}

fn read_cpu_usage(c: &mut Ctx) -> Option<Value> {
    if !c.refresh_cpu() {
        return None;
    }
    Some(Value::F64(round2(f64::from(
        c.system()?.global_cpu_usage(),
    ))))
}

fn read_memory_used(c: &mut Ctx) -> Option<Value> {
    let sys = c.system()?;
    sys.refresh_memory();
    Some(Value::U64(sys.used_memory()))
}

fn read_memory_total(c: &mut Ctx) -> Option<Value> {
    let sys = c.system()?;
    if sys.total_memory() == 0 {
        sys.refresh_memory();
    }
    Some(Value::U64(sys.total_memory()))
}

fn read_thread_count(c: &mut Ctx) -> Option<Value> {
    let pid = c.refresh_process()?;
    let p = c.system()?.process(pid)?;
    // sysinfo lists the threads other than the main one as tasks.
    Some(Value::U64(p.tasks().map_or(1, |t| t.len() as u64 + 1)))
}

fn battery_dir(c: &Ctx) -> Option<std::path::PathBuf> {
    let dir = c.sysfs_root.join("class/power_supply");
    let mut entries: Vec<_> = std::fs::read_dir(&dir).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    entries
        .into_iter()
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p.join("type")).is_ok_and(|t| t.trim() == "Battery"))
}

fn read_battery_level(c: &mut Ctx) -> Option<Value> {
    let dir = battery_dir(c)?;
    let t = std::fs::read_to_string(dir.join("capacity")).ok()?;
    t.trim().parse::<u64>().ok().map(|v| Value::U64(v.min(100)))
}

fn read_battery_charging(c: &mut Ctx) -> Option<Value> {
    let dir = battery_dir(c)?;
    let t = std::fs::read_to_string(dir.join("status")).ok()?;
    let s = match t.trim() {
        "Charging" => "charging",
        "Discharging" => "discharging",
        "Full" => "full",
        "Not charging" => "not-charging",
        _ => "unknown",
    };
    Some(Value::Str(s.into()))
}

/// Classifies a network interface by name and sysfs kind; `None` for loopback and
/// virtual interfaces. Reads only `wireless`/`device` presence, never addresses.
pub fn classify_interface(sysfs_root: &Path, name: &str) -> Option<&'static str> {
    const VIRTUAL: &[&str] = &[
        "lo", "veth", "docker", "br-", "virbr", "tun", "tap", "wg", "vnet", "dummy", "bond",
    ];
    if VIRTUAL.iter().any(|p| name.starts_with(p)) {
        return None;
    }
    let base = sysfs_root.join("class/net").join(name);
    if base.join("wireless").exists() || base.join("phy80211").exists() || name.starts_with("wl") {
        return Some("wifi");
    }
    if ["ww", "rmnet", "ccmni", "wwan"]
        .iter()
        .any(|p| name.starts_with(p))
    {
        return Some("cellular");
    }
    if name.starts_with("en") || name.starts_with("eth") || name.starts_with("em") {
        return Some("wired");
    }
    base.join("device").exists().then_some("unknown")
}

/// The access type of the busiest up interface, from sysfs only: the interface names in
/// `class/net`, each one's `operstate` and its `statistics/{rx,tx}_bytes` counters. No
/// netlink dump and no `address` file is read, so no MAC or IP address is ever seen.
fn read_network_type(c: &mut Ctx) -> Option<Value> {
    let base = c.sysfs_root.join("class/net");
    let mut kinds: Vec<(&'static str, u64)> = std::fs::read_dir(&base)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let name = name.to_str()?;
            let kind = classify_interface(&c.sysfs_root, name)?;
            let dir = base.join(name);
            let state = std::fs::read_to_string(dir.join("operstate")).unwrap_or_default();
            let up = !matches!(state.trim(), "down" | "notpresent" | "lowerlayerdown");
            let counter = |f: &str| {
                std::fs::read_to_string(dir.join("statistics").join(f))
                    .ok()
                    .and_then(|t| t.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            up.then(|| {
                (
                    kind,
                    counter("rx_bytes").saturating_add(counter("tx_bytes")),
                )
            })
        })
        .collect();
    // The busiest interface is the one carrying the traffic.
    kinds.sort_by_key(|(_, traffic)| std::cmp::Reverse(*traffic));
    Some(Value::Str(
        kinds.first().map_or("none", |(k, _)| *k).to_owned(),
    ))
}

/// Validates a `WIDTHxHEIGHT` string.
pub fn parse_resolution(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.trim().split_once(['x', 'X'])?;
    let (w, h) = (w.parse().ok()?, h.parse().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}

fn read_screen_resolution(c: &mut Ctx) -> Option<Value> {
    let r = c.screen_resolution.as_deref().and_then(parse_resolution)?;
    Some(Value::Str(format!("{}x{}", r.0, r.1)))
}

fn read_os_name(_c: &mut Ctx) -> Option<Value> {
    sysinfo::System::name().ok().map(Value::Str)
}

fn read_os_version(_c: &mut Ctx) -> Option<Value> {
    sysinfo::System::os_version().ok().map(Value::Str)
}

fn read_device_brand(c: &mut Ctx) -> Option<Value> {
    c.sys_text("class/dmi/id/sys_vendor").map(Value::Str)
}

fn read_device_model(c: &mut Ctx) -> Option<Value> {
    c.sys_text("class/dmi/id/product_name").map(Value::Str)
}

fn read_stream_fps(c: &mut Ctx) -> Option<Value> {
    Some(Value::F64(round2(c.stream_rates().0)))
}

fn read_stream_bitrate(c: &mut Ctx) -> Option<Value> {
    Some(Value::U64(c.stream_rates().1.round() as u64))
}

fn read_stream_resolution(c: &mut Ctx) -> Option<Value> {
    let (w, h) = (*c.counters.resolution.lock())?;
    Some(Value::Str(format!("{w}x{h}")))
}

fn read_process_cpu_usage(c: &mut Ctx) -> Option<Value> {
    let pid = c.refresh_process()?;
    let first = !c.process_primed;
    c.process_primed = true;
    if first {
        return None;
    }
    let p = c.system()?.process(pid)?;
    Some(Value::F64(round2(f64::from(p.cpu_usage()))))
}

fn read_process_memory(c: &mut Ctx) -> Option<Value> {
    let pid = c.refresh_process()?;
    Some(Value::U64(c.system()?.process(pid)?.memory()))
}

fn read_load_average(_c: &mut Ctx) -> Option<Value> {
    sysinfo::System::load_average()
        .ok()
        .map(|l| Value::F64(round2(l.one)))
}

fn read_cpu_frequency(c: &mut Ctx) -> Option<Value> {
    let sys = c.system()?;
    sys.refresh_cpu_specifics(sysinfo::CpuRefreshKind::nothing().with_frequency());
    let f = sys.cpus().first()?.frequency();
    (f > 0).then_some(Value::U64(f))
}

/// The reader of every registry field (same keys as [`REGISTRY`]).
pub static READERS: &[(&str, Reader)] = &[
    ("cpu-model", read_cpu_model),
    ("cpu-usage", read_cpu_usage),
    ("memory-used", read_memory_used),
    ("memory-total", read_memory_total),
    ("thread-count", read_thread_count),
    ("battery-level", read_battery_level),
    ("battery-charging", read_battery_charging),
    ("network-type", read_network_type),
    ("screen-resolution", read_screen_resolution),
    ("os-name", read_os_name),
    ("os-version", read_os_version),
    ("device-brand", read_device_brand),
    ("device-model", read_device_model),
    ("stream-fps", read_stream_fps),
    ("stream-bitrate", read_stream_bitrate),
    ("stream-resolution", read_stream_resolution),
    ("process-cpu-usage", read_process_cpu_usage),
    ("process-memory", read_process_memory),
    ("load-average", read_load_average),
    ("cpu-frequency", read_cpu_frequency),
];

/// Samples the registry fields allowed by a consent level.
pub struct Sampler {
    ctx: Ctx,
    readers: &'static [(&'static str, Reader)],
}

impl Sampler {
    /// A sampler with the real [`READERS`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gststreamwire::telemetry::{Consent, Ctx, Sampler, StreamCounters};
    /// let mut s = Sampler::new(Ctx::new(Arc::new(StreamCounters::default()), None));
    /// assert!(s.sample(Consent::None).values.is_empty());
    /// assert!(s.sample(Consent::Necessary).get("os-name").is_some());
    /// ```
    pub fn new(ctx: Ctx) -> Self {
        Self::with_readers(ctx, READERS)
    }

    /// A sampler with a custom reader table (tests use it to prove gating).
    pub fn with_readers(ctx: Ctx, readers: &'static [(&'static str, Reader)]) -> Self {
        Sampler { ctx, readers }
    }

    /// Mutable access to the context (e.g. to update the screen resolution).
    pub fn ctx_mut(&mut self) -> &mut Ctx {
        &mut self.ctx
    }

    /// Takes the starting point of the interval averages (`cpu-usage`, `process-cpu-usage`)
    /// that `consent` allows, once, so that the next [`sample`](Self::sample) one interval
    /// later already reports them. Reads nothing at [`Consent::None`] or once primed.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gststreamwire::telemetry::{Consent, Ctx, Sampler, StreamCounters};
    /// let mut s = Sampler::new(Ctx::new(Arc::new(StreamCounters::default()), None));
    /// s.prime(Consent::Necessary);
    /// std::thread::sleep(std::time::Duration::from_millis(250));
    /// assert!(s.sample(Consent::Necessary).get("cpu-usage").is_some());
    /// ```
    pub fn prime(&mut self, consent: Consent) {
        if consent == Consent::None {
            return;
        }
        let allowed = |key: &str| {
            REGISTRY
                .iter()
                .any(|f| f.key == key && consent.allows(f.class))
        };
        self.ctx.begin_tick();
        if allowed("cpu-usage") && !self.ctx.cpu_primed {
            self.ctx.refresh_cpu();
        }
        if allowed("process-cpu-usage") && !self.ctx.process_primed {
            let _ = read_process_cpu_usage(&mut self.ctx);
        }
    }

    /// Reads every field `consent` allows and the machine has, in registry order.
    pub fn sample(&mut self, consent: Consent) -> Report {
        let mut report = Report::default();
        if consent == Consent::None {
            return report;
        }
        self.ctx.begin_tick();
        for field in REGISTRY {
            // Gate first: an unconsented field's reader is never even looked up.
            if !consent.allows(field.class) {
                continue;
            }
            let Some((_, reader)) = self.readers.iter().find(|(k, _)| *k == field.key) else {
                continue;
            };
            if let Some(v) = reader(&mut self.ctx) {
                report.values.push((field.key, v));
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::registry::{Class, field};
    use std::sync::atomic::AtomicUsize;

    static OPTIONAL_CALLS: AtomicUsize = AtomicUsize::new(0);
    static NECESSARY_CALLS: AtomicUsize = AtomicUsize::new(0);

    fn count_optional(_: &mut Ctx) -> Option<Value> {
        OPTIONAL_CALLS.fetch_add(1, Ordering::SeqCst);
        Some(Value::U64(1))
    }

    fn count_necessary(_: &mut Ctx) -> Option<Value> {
        NECESSARY_CALLS.fetch_add(1, Ordering::SeqCst);
        Some(Value::U64(1))
    }

    static COUNTING: &[(&str, Reader)] = &[
        ("cpu-model", count_necessary),
        ("memory-used", count_necessary),
        ("process-cpu-usage", count_optional),
        ("process-memory", count_optional),
    ];

    #[test]
    fn every_field_has_exactly_one_reader() {
        assert_eq!(READERS.len(), REGISTRY.len());
        for f in REGISTRY {
            assert_eq!(
                READERS.iter().filter(|(k, _)| *k == f.key).count(),
                1,
                "{}",
                f.key
            );
        }
    }

    #[test]
    fn unconsented_readers_are_never_called() {
        for (k, _) in COUNTING {
            assert!(field(k).is_some());
        }
        let mut s = Sampler::with_readers(
            Ctx::new(Arc::new(StreamCounters::default()), None),
            COUNTING,
        );
        let r = s.sample(Consent::None);
        assert!(r.values.is_empty());
        assert_eq!(NECESSARY_CALLS.load(Ordering::SeqCst), 0);
        assert_eq!(OPTIONAL_CALLS.load(Ordering::SeqCst), 0);

        let r = s.sample(Consent::Necessary);
        assert_eq!(NECESSARY_CALLS.load(Ordering::SeqCst), 2);
        assert_eq!(OPTIONAL_CALLS.load(Ordering::SeqCst), 0);
        assert!(
            r.values
                .iter()
                .all(|(k, _)| field(k).unwrap().class == Class::Necessary)
        );

        let r = s.sample(Consent::Full);
        assert_eq!(OPTIONAL_CALLS.load(Ordering::SeqCst), 2);
        assert_eq!(r.values.len(), 4);
    }

    #[test]
    fn interfaces_are_classified_by_kind() {
        let root = Path::new("/nonexistent-sysfs");
        assert_eq!(classify_interface(root, "lo"), None);
        assert_eq!(classify_interface(root, "veth12"), None);
        assert_eq!(classify_interface(root, "wlp2s0"), Some("wifi"));
        assert_eq!(classify_interface(root, "wwan0"), Some("cellular"));
        assert_eq!(classify_interface(root, "enp3s0"), Some("wired"));
        assert_eq!(classify_interface(root, "eth0"), Some("wired"));
        assert_eq!(classify_interface(root, "foo0"), None);
    }

    #[test]
    fn network_type_comes_from_sysfs_kinds_and_counters() {
        let root = std::env::temp_dir().join(format!("sw-net-{}", std::process::id()));
        let net = root.join("class/net");
        for (name, state, bytes) in [
            ("lo", "unknown", 9_000_000),
            ("eth0", "up", 10),
            ("wlan0", "up", 5_000),
            ("wwan0", "down", 90_000),
        ] {
            let dir = net.join(name);
            std::fs::create_dir_all(dir.join("statistics")).unwrap();
            std::fs::write(dir.join("operstate"), format!("{state}\n")).unwrap();
            std::fs::write(dir.join("statistics/rx_bytes"), format!("{bytes}\n")).unwrap();
            std::fs::write(dir.join("statistics/tx_bytes"), "0\n").unwrap();
        }
        let mut c = Ctx::new(Arc::new(StreamCounters::default()), None);
        c.sysfs_root = root.clone();
        // lo is virtual and wwan0 is down: the busiest up interface is the Wi-Fi one.
        assert_eq!(read_network_type(&mut c), Some(Value::Str("wifi".into())));
        std::fs::write(net.join("wlan0/operstate"), "down\n").unwrap();
        assert_eq!(read_network_type(&mut c), Some(Value::Str("wired".into())));
        std::fs::write(net.join("eth0/operstate"), "lowerlayerdown\n").unwrap();
        assert_eq!(read_network_type(&mut c), Some(Value::Str("none".into())));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn resolutions_are_validated() {
        assert_eq!(parse_resolution("1920x1080"), Some((1920, 1080)));
        assert_eq!(parse_resolution(" 720X1280 "), Some((720, 1280)));
        assert_eq!(parse_resolution("0x10"), None);
        assert_eq!(parse_resolution("big"), None);
    }

    #[test]
    fn battery_is_read_from_power_supply() {
        let root = std::env::temp_dir().join(format!("sw-sysfs-{}", std::process::id()));
        let bat = root.join("class/power_supply/BAT0");
        let ac = root.join("class/power_supply/AC");
        std::fs::create_dir_all(&bat).unwrap();
        std::fs::create_dir_all(&ac).unwrap();
        std::fs::write(ac.join("type"), "Mains\n").unwrap();
        std::fs::write(bat.join("type"), "Battery\n").unwrap();
        std::fs::write(bat.join("capacity"), "87\n").unwrap();
        std::fs::write(bat.join("status"), "Charging\n").unwrap();
        let mut c = Ctx::new(Arc::new(StreamCounters::default()), None);
        c.sysfs_root = root.clone();
        assert_eq!(read_battery_level(&mut c), Some(Value::U64(87)));
        assert_eq!(
            read_battery_charging(&mut c),
            Some(Value::Str("charging".into()))
        );
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(read_battery_level(&mut c), None);
    }
}
