//! The SFU section of a room's report: what the server's SFU bridge holds for the room when
//! the report is made, the figures of `/sfu/status` (docs/sfu.md, "Status").

use std::fmt::Write as _;

use super::esc;

/// A room's load on its SFU instances at one moment.
///
/// ```
/// use streamwire::report::{SfuInstanceLoad, SfuLoad};
/// let load = SfuLoad {
///     state: "up".into(),
///     members: 3,
///     publishers: 2,
///     subscribers: 3,
///     forwarded_streams: 8,
///     recreated: 0,
///     ingest_kbps: Some(1200.0),
///     forward_kbps: Some(2100.0),
///     instances: vec![SfuInstanceLoad {
///         instance: 0, connected: true, members: 3, publishers: 2, remote_publishers: 0,
///         ingest_kbps: Some(1200.0), forward_kbps: Some(2100.0),
///     }],
/// };
/// assert_eq!(load.instances.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SfuLoad {
    /// `up`, or `down`: every instance of the room was lost and it waits for one.
    pub state: String,
    /// Members of the room.
    pub members: usize,
    /// Members whose publishing connection to Janus is up.
    pub publishers: usize,
    /// Members with a subscribing connection.
    pub subscribers: usize,
    /// Media streams Janus forwards to members (m-lines of the subscribing connections that
    /// carry a member's media).
    pub forwarded_streams: usize,
    /// Times the room was re-created after losing its instance.
    pub recreated: u64,
    /// Media Janus received from the publishers in the last second, kbit/s (`None`: the
    /// server has no Admin API access, or an instance did not answer).
    pub ingest_kbps: Option<f64>,
    /// Media Janus sent to the members in the last second, kbit/s.
    pub forward_kbps: Option<f64>,
    /// Every instance the room is on, the first one first.
    pub instances: Vec<SfuInstanceLoad>,
}

/// The room on one Janus instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SfuInstanceLoad {
    /// Index in the server's `--sfu` list.
    pub instance: usize,
    /// Whether the server's connection to it is up.
    pub connected: bool,
    /// Members it serves.
    pub members: usize,
    /// Of those, members whose publishing connection is up.
    pub publishers: usize,
    /// Publications of members on other instances forwarded to it.
    pub remote_publishers: usize,
    /// Media it received from its publishers in the last second, kbit/s.
    pub ingest_kbps: Option<f64>,
    /// Media it sent to its members in the last second, kbit/s.
    pub forward_kbps: Option<f64>,
}

/// `n` kbit/s, or "not known".
fn kbps(n: Option<f64>) -> String {
    n.map_or_else(|| "not known".to_owned(), |v| format!("{v:.0} kbit/s"))
}

/// Append the section for `load` (taken at `at`, an RFC 3339 time) to `html`.
pub(super) fn render(html: &mut String, load: &SfuLoad, at: &str) {
    let n = load.instances.len();
    let _ = write!(
        html,
        "<h2>SFU</h2>\n<p>At {at}: the room is {state} on {n} Janus instance{s}, {m} members, \
         {p} publishing, {sub} subscribing, {f} media streams forwarded to members{rec}; \
         received {ingest}, sent {forward} (the last second).</p>\n",
        state = esc(&load.state),
        s = if n == 1 { "" } else { "s" },
        m = load.members,
        p = load.publishers,
        sub = load.subscribers,
        f = load.forwarded_streams,
        ingest = kbps(load.ingest_kbps),
        forward = kbps(load.forward_kbps),
        rec = match load.recreated {
            0 => String::new(),
            r => format!(
                "; re-created {r} time{} after losing its instance",
                if r == 1 { "" } else { "s" }
            ),
        },
    );
    if n == 0 {
        return;
    }
    html.push_str(
        "<table class=\"sfu\"><tr><th>instance</th><th>connected</th><th>members</th>\
         <th>publishers</th><th>remote publishers</th><th>received</th><th>sent</th></tr>\n",
    );
    for i in &load.instances {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i.instance,
            if i.connected { "yes" } else { "no" },
            i.members,
            i.publishers,
            i.remote_publishers,
            kbps(i.ingest_kbps),
            kbps(i.forward_kbps)
        );
    }
    html.push_str("</table>\n");
}
