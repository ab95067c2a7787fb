//! Self-contained HTML performance reports from the telemetry store: SVG charts over time
//! (bitrate, frames per second, RTT, packet loss, jitter, quality score, CPU, memory) per
//! member and track, a summary table, and flagged problems. Members are named by the display
//! name of their room token, with the peer id where two members share a name
//! ([`member_names`]).
//!
//! Charts are drawn with `plotters`' SVG backend without its font features: text is written
//! into the SVG as `<text>` elements (laid out with plotters' built-in estimate) and rendered
//! by the browser, so no system fonts or fontconfig are needed to generate a report.
//!
//! A report made by a server with an SFU for a room on it has an SFU section too: the room's
//! load on its Janus instances at that moment ([`SfuLoad`], [`sfu`]).
//!
//! ```
//! use streamwire::report::{render_html, ReportInput};
//! use streamwire::telemetry::store::Series;
//! let cpu = Series {
//!     peer: "p1".into(), name: "Alice".into(), source: "device".into(), track: String::new(),
//!     field: "cpu-usage".into(), points: (0..10).map(|i| (1_000 * i, 90.0)).collect(),
//! };
//! let html = render_html(&ReportInput { room: "demo", since_ms: 0, series: &[cpu], sfu: None }).unwrap();
//! assert!(html.contains("<svg") && html.contains("Alice (device): CPU above 80%"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use plotters::prelude::*;

use crate::telemetry::store::{Series, Store, StoreError};

mod sfu;
pub use sfu::{SfuInstanceLoad, SfuLoad};

/// Errors while building a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Drawing a chart failed.
    #[error("drawing the {chart} chart failed: {reason}")]
    Draw {
        /// Chart title.
        chart: &'static str,
        /// What failed.
        reason: String,
    },
    /// There is nothing to report.
    #[error("no telemetry for room {room:?} since {since}")]
    Empty {
        /// Room.
        room: String,
        /// Start of the period (RFC 3339).
        since: String,
    },
}

/// A chart: one metric, from one or more field keys.
struct Metric {
    title: &'static str,
    unit: &'static str,
    /// `(source, field)` pairs plotted in this chart.
    keys: &'static [(&'static str, &'static str)],
    scale: f64,
}

const METRICS: &[Metric] = &[
    Metric {
        title: "Bitrate",
        unit: "kbit/s",
        keys: &[("peer", "bitrate"), ("device", "stream-bitrate")],
        scale: 1e-3,
    },
    Metric {
        title: "Frames per second",
        unit: "fps",
        keys: &[("peer", "fps"), ("device", "stream-fps")],
        scale: 1.0,
    },
    Metric {
        title: "Round-trip time",
        unit: "ms",
        keys: &[("peer", "rtt")],
        scale: 1.0,
    },
    Metric {
        title: "Packet loss",
        unit: "%",
        keys: &[("peer", "packet-loss")],
        scale: 1.0,
    },
    Metric {
        title: "Jitter",
        unit: "ms",
        keys: &[("peer", "jitter")],
        scale: 1.0,
    },
    Metric {
        title: "Quality score",
        unit: "0-100",
        keys: &[("peer", "quality-score")],
        scale: 1.0,
    },
    Metric {
        title: "CPU",
        unit: "%",
        keys: &[("device", "cpu-usage")],
        scale: 1.0,
    },
    Metric {
        title: "Memory used",
        unit: "MiB",
        keys: &[("device", "memory-used")],
        scale: 1.0 / (1024.0 * 1024.0),
    },
];

/// Loss above this percentage is flagged.
pub const LOSS_FLAG_PCT: f64 = 5.0;
/// CPU above this percentage is flagged.
pub const CPU_FLAG_PCT: f64 = 80.0;
/// A frame rate below this fraction of the series' median (when the median is at least
/// [`FPS_COLLAPSE_MIN_MEDIAN`]) is a frame-rate collapse.
pub const FPS_COLLAPSE_FRACTION: f64 = 0.5;
/// Series whose median frame rate is lower than this are not checked for collapse.
pub const FPS_COLLAPSE_MIN_MEDIAN: f64 = 5.0;

/// What a report is made from.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    /// Room name (shown in the title).
    pub room: &'a str,
    /// Start of the period, milliseconds since the Unix epoch.
    pub since_ms: i64,
    /// Samples, as returned by [`Store::room_series`].
    pub series: &'a [Series],
    /// The room's SFU load now, when it is on an SFU.
    pub sfu: Option<&'a SfuLoad>,
}

/// How the report names each peer of `series`: its display name, or `name (peer id)` where
/// two peers share a name, or the peer id when no name was stored.
///
/// ```
/// use streamwire::report::member_names;
/// use streamwire::telemetry::store::Series;
/// let s = |peer: &str, name: &str| Series {
///     peer: peer.into(), name: name.into(), source: "device".into(), track: String::new(),
///     field: "cpu-usage".into(), points: vec![(1, 1.0)],
/// };
/// let names = member_names(&[s("p1", "Alice"), s("p2", "Bob"), s("p3", "Bob"), s("p4", "")]);
/// assert_eq!(names["p1"], "Alice");
/// assert_eq!(names["p2"], "Bob (p2)");
/// assert_eq!(names["p3"], "Bob (p3)");
/// assert_eq!(names["p4"], "p4");
/// ```
pub fn member_names(series: &[Series]) -> BTreeMap<String, String> {
    let peers: BTreeMap<&str, &str> = series
        .iter()
        .map(|s| (s.peer.as_str(), s.name.as_str()))
        .collect();
    let mut uses: BTreeMap<&str, usize> = BTreeMap::new();
    for name in peers.values() {
        *uses.entry(name).or_default() += 1;
    }
    peers
        .iter()
        .map(|(peer, name)| {
            let label = match uses.get(name) {
                _ if name.is_empty() => (*peer).to_owned(),
                Some(n) if *n > 1 => format!("{name} ({peer})"),
                _ => (*name).to_owned(),
            };
            ((*peer).to_owned(), label)
        })
        .collect()
}

/// A track key (`<remote peer>/<kind>-<direction>-<ssrc>`) with the remote peer named as in
/// `names` when it is a member of the report.
fn track_label(track: &str, names: &BTreeMap<String, String>) -> String {
    match track.split_once('/') {
        Some((peer, rest)) => match names.get(peer) {
            Some(name) => format!("{name}/{rest}"),
            None => track.to_owned(),
        },
        None => track.to_owned(),
    }
}

/// The member's name for `s`'s peer.
fn member<'a>(s: &'a Series, names: &'a BTreeMap<String, String>) -> &'a str {
    names.get(&s.peer).map_or(s.peer.as_str(), String::as_str)
}

fn label(s: &Series, names: &BTreeMap<String, String>) -> String {
    if s.track.is_empty() {
        format!("{} ({})", member(s, names), s.source)
    } else {
        format!("{} / {}", member(s, names), track_label(&s.track, names))
    }
}

/// A flagged problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// What kind: `loss`, `cpu` or `fps-collapse`.
    pub kind: &'static str,
    /// Human-readable description.
    pub message: String,
}

/// Reads `room`'s telemetry since `since_ms` from `store` and renders the report, with the
/// room's SFU load now when it is on an SFU.
pub fn generate(
    store: &Store,
    room: &str,
    since_ms: i64,
    sfu: Option<&SfuLoad>,
) -> Result<String, ReportError> {
    let series = store.room_series(room, since_ms)?;
    if series.is_empty() {
        return Err(ReportError::Empty {
            room: room.to_owned(),
            since: rfc3339(since_ms),
        });
    }
    render_html(&ReportInput {
        room,
        since_ms,
        series: &series,
        sfu,
    })
}

/// Non-empty series ordered by peer, source, track and field.
fn sorted(series: &[Series]) -> Vec<&Series> {
    let mut v: Vec<&Series> = series.iter().filter(|s| !s.points.is_empty()).collect();
    v.sort_by(|a, b| {
        (&a.peer, &a.source, &a.track, &a.field).cmp(&(&b.peer, &b.source, &b.track, &b.field))
    });
    v
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The problems found in `points`: loss above [`LOSS_FLAG_PCT`], CPU above
/// [`CPU_FLAG_PCT`], frame-rate collapse.
pub fn flags(series: &[Series]) -> Vec<Flag> {
    let names = member_names(series);
    let mut out = Vec::new();
    for key in sorted(series) {
        let samples = &key.points;
        let over = |limit: f64| -> Vec<&(i64, f64)> {
            samples.iter().filter(|(_, v)| *v > limit).collect()
        };
        let describe = |hits: &[&(i64, f64)], what: &str| {
            let max = hits.iter().map(|(_, v)| *v).fold(f64::MIN, f64::max);
            format!(
                "{}: {what} in {} of {} samples (worst {max:.1}) between {} and {}",
                label(key, &names),
                hits.len(),
                samples.len(),
                rfc3339(hits.first().map_or(0, |h| h.0)),
                rfc3339(hits.last().map_or(0, |h| h.0)),
            )
        };
        match key.field.as_str() {
            "packet-loss" => {
                let hits = over(LOSS_FLAG_PCT);
                if !hits.is_empty() {
                    out.push(Flag {
                        kind: "loss",
                        message: describe(&hits, "packet loss above 5%"),
                    });
                }
            }
            "cpu-usage" => {
                let hits = over(CPU_FLAG_PCT);
                if !hits.is_empty() {
                    out.push(Flag {
                        kind: "cpu",
                        message: describe(&hits, "CPU above 80%"),
                    });
                }
            }
            "fps" | "stream-fps" => {
                let mut vals: Vec<f64> = samples.iter().map(|(_, v)| *v).collect();
                let med = median(&mut vals);
                if med >= FPS_COLLAPSE_MIN_MEDIAN {
                    let limit = med * FPS_COLLAPSE_FRACTION;
                    let hits: Vec<&(i64, f64)> =
                        samples.iter().filter(|(_, v)| *v < limit).collect();
                    if !hits.is_empty() {
                        let min = hits.iter().map(|(_, v)| *v).fold(f64::MAX, f64::min);
                        out.push(Flag {
                            kind: "fps-collapse",
                            message: format!(
                                "{}: frame rate collapsed below half its median ({med:.1} fps) \
                                 in {} of {} samples (lowest {min:.1} fps) between {} and {}",
                                label(key, &names),
                                hits.len(),
                                samples.len(),
                                rfc3339(hits.first().map_or(0, |h| h.0)),
                                rfc3339(hits.last().map_or(0, |h| h.0)),
                            ),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    out
}

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Most points drawn per series; longer series are reduced by taking every n-th sample
/// (the summary table and the flags always use every sample).
const MAX_POINTS_PER_SERIES: usize = 1500;

fn chart_svg(
    metric: &Metric,
    series: &[&Series],
    names: &BTreeMap<String, String>,
    t0: i64,
) -> Result<String, ReportError> {
    let err = |e: &dyn std::fmt::Display| ReportError::Draw {
        chart: metric.title,
        reason: e.to_string(),
    };
    let mut x_max = 1.0f64;
    let mut y_max = 0.0f64;
    let mut y_min = 0.0f64;
    for s in series {
        for (t, v) in &s.points {
            x_max = x_max.max((t - t0) as f64 / 1000.0);
            y_max = y_max.max(v * metric.scale);
            y_min = y_min.min(v * metric.scale);
        }
    }
    if y_max <= y_min {
        y_max = y_min + 1.0;
    }
    y_max *= 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{} ({})", metric.title, metric.unit),
                ("sans-serif", 18),
            )
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..x_max, y_min..y_max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc(metric.unit)
            .draw()
            .map_err(|e| err(&e))?;
        for (i, key) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let step = key.points.len().div_ceil(MAX_POINTS_PER_SERIES).max(1);
            let pts = key
                .points
                .iter()
                .step_by(step)
                .map(|(t, v)| ((t - t0) as f64 / 1000.0, v * metric.scale));
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(label(key, names))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders the report as one self-contained HTML document (inline SVG and CSS, no scripts,
/// no external resources).
pub fn render_html(input: &ReportInput<'_>) -> Result<String, ReportError> {
    let groups = sorted(input.series);
    let t0 = groups
        .iter()
        .filter_map(|s| s.points.iter().map(|p| p.0).min())
        .min()
        .unwrap_or(input.since_ms);
    let t1 = groups
        .iter()
        .filter_map(|s| s.points.iter().map(|p| p.0).max())
        .max()
        .unwrap_or(t0);
    let samples: usize = groups.iter().map(|s| s.points.len()).sum();
    let names = member_names(input.series);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Streamwire report: {room}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;font-size:0.9em}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         td:first-child,th:first-child,td:nth-child(2),td:nth-child(3){{text-align:left}}\
         .flag{{color:#a00}} figure{{margin:1em 0}}</style></head><body>\n\
         <h1>Streamwire performance report: room {room}</h1>\n\
         <p>From {from} to {to} ({n} samples, {p} members: {members}).</p>\n",
        room = esc(input.room),
        from = rfc3339(t0),
        to = rfc3339(t1),
        n = samples,
        p = names.len(),
        members = esc(&{
            let mut v: Vec<&str> = names.values().map(String::as_str).collect();
            v.sort_unstable();
            v.join(", ")
        }),
    );

    if let Some(load) = input.sfu {
        sfu::render(&mut html, load, &rfc3339(crate::telemetry::store::now_ms()));
    }

    let flags = flags(input.series);
    html.push_str("<h2>Flagged problems</h2>\n");
    if flags.is_empty() {
        html.push_str("<p>None: loss stayed at or below 5%, CPU at or below 80%, and no frame-rate collapse.</p>\n");
    } else {
        html.push_str("<ul>\n");
        for f in &flags {
            let _ = writeln!(
                html,
                "<li class=\"flag\" data-kind=\"{}\">{}</li>",
                f.kind,
                esc(&f.message)
            );
        }
        html.push_str("</ul>\n");
    }

    html.push_str("<h2>Charts</h2>\n");
    for metric in METRICS {
        let series: Vec<&Series> = groups
            .iter()
            .copied()
            .filter(|k| {
                metric
                    .keys
                    .iter()
                    .any(|(src, f)| k.source == *src && k.field == *f)
            })
            .collect();
        if series.is_empty() {
            continue;
        }
        let svg = chart_svg(metric, &series, &names, t0)?;
        let _ = writeln!(
            html,
            "<figure data-metric=\"{}\">{}</figure>",
            esc(metric.title),
            svg
        );
    }

    html.push_str(
        "<h2>Summary</h2>\n<table><tr><th>member</th><th>track</th><th>field</th>\
         <th>samples</th><th>min</th><th>mean</th><th>max</th><th>last</th></tr>\n",
    );
    for key in &groups {
        let s = &key.points;
        let n = s.len() as f64;
        let min = s.iter().map(|x| x.1).fold(f64::MAX, f64::min);
        let max = s.iter().map(|x| x.1).fold(f64::MIN, f64::max);
        let mean = s.iter().map(|x| x.1).sum::<f64>() / n;
        let last = s.last().map_or(0.0, |x| x.1);
        let track = if key.track.is_empty() {
            key.source.clone()
        } else {
            track_label(&key.track, &names)
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{min:.2}</td>\
             <td>{mean:.2}</td><td>{max:.2}</td><td>{last:.2}</td></tr>",
            esc(member(key, &names)),
            esc(&track),
            esc(&key.field),
            s.len()
        );
    }
    html.push_str("</table>\n</body></html>\n");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(field: &str, source: &str, values: &[f64]) -> Vec<Series> {
        vec![Series {
            peer: "p<1>".into(),
            name: String::new(),
            source: source.into(),
            track: if source == "peer" {
                "video0".into()
            } else {
                String::new()
            },
            field: field.into(),
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| (1_000_000 + i as i64 * 1000, *v))
                .collect(),
        }]
    }

    #[test]
    fn flags_loss_cpu_and_fps_collapse_and_nothing_else() {
        let mut pts = series("packet-loss", "peer", &[0.0, 1.0, 7.5, 5.0]);
        pts.extend(series("cpu-usage", "device", &[10.0, 80.0, 95.0]));
        pts.extend(series("fps", "peer", &[30.0, 30.0, 29.0, 8.0, 30.0]));
        let f = flags(&pts);
        let kinds: Vec<&str> = f.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["cpu", "fps-collapse", "loss"]);
        assert!(
            f[2].message.contains("1 of 4 samples (worst 7.5)"),
            "{}",
            f[2].message
        );
        assert!(
            f[0].message.contains("1 of 3 samples (worst 95.0)"),
            "{}",
            f[0].message
        );
        assert!(f[1].message.contains("lowest 8.0 fps"), "{}", f[1].message);

        let calm = [
            series("packet-loss", "peer", &[0.0, 5.0]),
            series("cpu-usage", "device", &[80.0]),
            series("fps", "peer", &[30.0, 16.0, 30.0]),
        ]
        .concat();
        assert!(flags(&calm).is_empty());
    }

    #[test]
    fn html_escapes_names_and_embeds_one_svg_per_metric() {
        let mut pts = series("rtt", "peer", &[10.0, 20.0]);
        pts.extend(series("cpu-usage", "device", &[10.0, 20.0]));
        let html = render_html(&ReportInput {
            room: "<room>",
            since_ms: 0,
            series: &pts,
            sfu: None,
        })
        .unwrap();
        assert_eq!(html.matches("<svg").count(), 2);
        assert!(html.contains("&lt;room&gt;"));
        assert!(!html.contains("p<1>"));
        assert!(html.contains("p&lt;1&gt; / video0"));
        assert!(!html.contains("<script"));
        // Self-contained: nothing loaded from elsewhere.
        for external in [" src=", " href=", "url("] {
            assert!(!html.contains(external), "{external}");
        }
    }

    #[test]
    fn members_are_named_by_display_name_and_peer_id_where_names_collide() {
        let mut pts = Vec::new();
        for (peer, name, remote) in [
            ("p1", "Alice", "p2"),
            ("p2", "Bob", "p1"),
            ("p3", "Bob", "p1"),
        ] {
            let mut s = series("rtt", "peer", &[10.0, 95.0])
                .pop()
                .expect("one series");
            s.peer = peer.into();
            s.name = name.into();
            s.track = format!("{remote}/video-send-1");
            pts.push(s);
        }
        let html = render_html(&ReportInput {
            room: "r",
            since_ms: 0,
            series: &pts,
            sfu: None,
        })
        .unwrap();
        assert!(
            html.contains("3 members: Alice, Bob (p2), Bob (p3)"),
            "{html}"
        );
        // Summary rows and legend: the member and the remote end of its track by name.
        assert!(html.contains("<tr><td>Alice</td><td>Bob (p2)/video-send-1</td><td>rtt</td>"));
        assert!(html.contains("<tr><td>Bob (p3)</td><td>Alice/video-send-1</td><td>rtt</td>"));
        assert!(html.contains("Bob (p2) / Alice/video-send-1"));
    }
}
