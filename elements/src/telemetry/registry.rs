// SPDX-License-Identifier: MIT OR Apache-2.0
//! The telemetry field registry: the single source of truth for what `devicetelemetry`
//! (and later the telemetry service) may collect, why, and under which consent.
//!
//! It mirrors what commercial RTC SDKs disclose in their privacy policies
//! (see `docs/privacy.md`, generated from this table): every field the reference SDKs class
//! as necessary is [`Class::Necessary`] here too; finer-grained performance detail that
//! those policies do not list is [`Class::Optional`] and read only with full consent.
//!
//! ```
//! use gststreamwire::telemetry::{Class, Consent, REGISTRY, field};
//! assert_eq!(field("cpu-model").unwrap().class, Class::Necessary);
//! assert!(REGISTRY.iter().any(|f| f.class == Class::Optional));
//! assert!(!Consent::Necessary.allows(Class::Optional));
//! ```

use std::fmt;

pub use super::consent::Consent;

/// How a field is classed in the privacy policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Needed to run and support the service; collected once the user agreed to the policy.
    Necessary,
    /// Extra detail; collected only with the user's explicit (full) consent.
    Optional,
}

impl Class {
    /// `necessary` or `optional`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Necessary => "necessary",
            Class::Optional => "optional",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a field describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The device and operating system.
    Device,
    /// The media stream at the element's position in the pipeline.
    Stream,
}

impl Scope {
    /// `device` or `stream`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Device => "device",
            Scope::Stream => "stream",
        }
    }
}

/// One telemetry field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Key in the `streamwire-telemetry` message structure and in exports.
    pub key: &'static str,
    /// Privacy class.
    pub class: Class,
    /// Device or stream.
    pub scope: Scope,
    /// What the value is, with its unit.
    pub description: &'static str,
    /// Why it is collected (as disclosed in the privacy policy).
    pub purpose: &'static str,
    /// Platforms where it is available.
    pub platforms: &'static str,
    /// Maximum retention in days before deletion or anonymisation.
    pub retention_days: u32,
}

const PERF: &str = "performance analysis";
const NEC_DAYS: u32 = 30;
const OPT_DAYS: u32 = 7;

/// Every field telemetry may report, in report order.
pub static REGISTRY: &[Field] = &[
    Field {
        key: "cpu-model",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "CPU model name (brand string)",
        purpose: PERF,
        platforms: "Linux, Android, desktop",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "cpu-usage",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "system-wide CPU usage over the last interval, percent",
        purpose: PERF,
        platforms: "Linux, Android, desktop",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "memory-used",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "system memory in use, bytes",
        purpose: PERF,
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "memory-total",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "total system memory, bytes",
        purpose: PERF,
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "thread-count",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "threads running in the application process",
        purpose: "analysis",
        platforms: "mobile, desktop",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "battery-level",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "battery charge, percent (only where the machine has a battery)",
        purpose: PERF,
        platforms: "mobile, desktop",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "battery-charging",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "battery state: charging, discharging, full, not-charging or unknown",
        purpose: PERF,
        platforms: "mobile, desktop",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "network-type",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "network access type: wired, wifi, cellular, none or unknown \
                      (from interface kinds; no addresses or hardware identifiers)",
        purpose: "analysis, connectivity checks",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "screen-resolution",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "screen resolution WIDTHxHEIGHT, where the application provides it",
        purpose: "analysis",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "os-name",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "operating system name",
        purpose: "tell system versions apart; enable or disable features",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "os-version",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "operating system version",
        purpose: "tell system versions apart; enable or disable features",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "device-brand",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "device manufacturer (DMI sys_vendor; never a serial number)",
        purpose: "tell devices apart; compatibility and crash triage",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "device-model",
        class: Class::Necessary,
        scope: Scope::Device,
        description: "device model (DMI product_name; never a serial number)",
        purpose: "tell devices apart; compatibility and crash triage",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "stream-fps",
        class: Class::Necessary,
        scope: Scope::Stream,
        description: "buffers per second through the element over the last interval",
        purpose: "media quality analysis and troubleshooting",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "stream-bitrate",
        class: Class::Necessary,
        scope: Scope::Stream,
        description: "bits per second through the element over the last interval",
        purpose: "media quality analysis and troubleshooting",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "stream-resolution",
        class: Class::Necessary,
        scope: Scope::Stream,
        description: "video resolution WIDTHxHEIGHT from the negotiated caps (video only)",
        purpose: "media quality analysis and troubleshooting",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "process-cpu-usage",
        class: Class::Optional,
        scope: Scope::Device,
        description: "CPU used by the application process over the last interval, \
                      percent of one core",
        purpose: "detailed performance profiling",
        platforms: "Linux, Android, desktop",
        retention_days: OPT_DAYS,
    },
    Field {
        key: "process-memory",
        class: Class::Optional,
        scope: Scope::Device,
        description: "resident memory of the application process, bytes",
        purpose: "detailed performance profiling",
        platforms: "all",
        retention_days: OPT_DAYS,
    },
    Field {
        key: "load-average",
        class: Class::Optional,
        scope: Scope::Device,
        description: "system load average over one minute",
        purpose: "detailed performance profiling",
        platforms: "Linux, Android, macOS",
        retention_days: OPT_DAYS,
    },
    Field {
        key: "cpu-frequency",
        class: Class::Optional,
        scope: Scope::Device,
        description: "current frequency of the first CPU core, MHz",
        purpose: "detailed performance profiling (thermal throttling)",
        platforms: "Linux, Android, desktop",
        retention_days: OPT_DAYS,
    },
];

/// Per-peer WebRTC statistics that a Streamwire session forwards to the telemetry service
/// alongside the `devicetelemetry` records (one value per peer and track). They are not read
/// by the element (so they have no sampler reader) but are disclosed and consent-gated the
/// same way: the client batcher and the server both drop any key not listed here or in
/// [`REGISTRY`], and any optional key below `full` consent.
pub static PEER_STATS: &[Field] = &[
    Field {
        key: "bitrate",
        class: Class::Necessary,
        scope: Scope::Stream,
        description: "media bitrate of the track over the last interval, bits per second",
        purpose: "media quality analysis and troubleshooting",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "fps",
        class: Class::Necessary,
        scope: Scope::Stream,
        description: "frames per second of a video track over the last interval",
        purpose: "media quality analysis and troubleshooting",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "rtt",
        class: Class::Necessary,
        scope: Scope::Stream,
        description: "round-trip time to the remote peer, milliseconds",
        purpose: "media quality analysis and troubleshooting",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "packet-loss",
        class: Class::Necessary,
        scope: Scope::Stream,
        description: "packets lost over the last interval, percent",
        purpose: "media quality analysis and troubleshooting",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "jitter",
        class: Class::Necessary,
        scope: Scope::Stream,
        description: "inter-arrival jitter, milliseconds",
        purpose: "media quality analysis and troubleshooting",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "quality-score",
        class: Class::Necessary,
        scope: Scope::Stream,
        description: "call quality score 0-100 derived from loss, RTT and jitter",
        purpose: "media quality analysis and troubleshooting",
        platforms: "all",
        retention_days: NEC_DAYS,
    },
    Field {
        key: "nack-count",
        class: Class::Optional,
        scope: Scope::Stream,
        description: "retransmission requests (NACKs) over the last interval",
        purpose: "detailed transport profiling",
        platforms: "all",
        retention_days: OPT_DAYS,
    },
];

/// How the telemetry service handles the connection's IP address (stated in `docs/privacy.md`).
pub const IP_HANDLING: &str = "The signalling server needs the connection's IP address to route \
     the session; the telemetry service never stores it. With each session it keeps only the \
     coarse network prefix (the /24 network of an IPv4 address, e.g. `203.0.113.0/24`, or the \
     /48 network of an IPv6 address), for region statistics and choosing the nearest server. \
     An IPv4-mapped IPv6 address is treated as IPv4. The prefix is retained as long as the \
     session's records (at most the configured retention, default 30 days).";

/// Looks a field up by key in [`REGISTRY`] or [`PEER_STATS`].
pub fn any_field(key: &str) -> Option<&'static Field> {
    field(key).or_else(|| PEER_STATS.iter().find(|f| f.key == key))
}

/// Data that is never read or reported, with the reason (also listed in `docs/privacy.md`).
pub static NEVER_COLLECTED: &[(&str, &str)] = &[
    (
        "MAC addresses",
        "hardware identifier; network interfaces are classified by kind only",
    ),
    (
        "serial numbers, product/board UUIDs (DMI product_serial, board_serial, product_uuid)",
        "hardware identifiers; only sys_vendor and product_name are read",
    ),
    ("IMEI, IMSI, SIM serial", "hardware/subscriber identifiers"),
    (
        "advertising or platform device ids",
        "Streamwire authenticates with room tokens instead",
    ),
    (
        "accelerometer samples and device rotation",
        "used on the device by sensorrotation only, never reported",
    ),
    (
        "raw IP addresses",
        "never stored; the telemetry service keeps only a coarse network prefix \
         (see IP addresses below)",
    ),
];

/// Looks a field up by key.
pub fn field(key: &str) -> Option<&'static Field> {
    REGISTRY.iter().find(|f| f.key == key)
}

/// Data Streamwire can write on the device but never collects or sends: each entry needs an
/// explicit call by the application and stays where the application puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalData {
    /// Name (also in `docs/privacy.md`).
    pub key: &'static str,
    /// What is written.
    pub description: &'static str,
    /// Why an application would turn it on.
    pub purpose: &'static str,
    /// What turns it on and off.
    pub trigger: &'static str,
    /// Where it is stored and for how long.
    pub storage: &'static str,
}

/// Every kind of device-only data.
pub static LOCAL_DATA: &[LocalData] = &[
    LocalData {
        key: "audio_dump",
        description: "raw voice: a published microphone before and after processing and the \
                  far-end (received) audio it is compared with, as WAV files, with a JSON \
                  sidecar (start time, sample rate, processing settings, capture device name)",
        purpose: "debugging echo, noise or level problems",
        trigger: "off by default; only between the application's `Session::start_audio_dump` \
              (or `streamwire run --audio-dump DIR`, preset key `audio.dump`) and \
              `stop_audio_dump`; each file stops at a size limit (default 64 MiB)",
        storage: "the directory the application names, on the device; never sent by Streamwire; \
              kept until the application or user deletes it",
    },
    LocalData {
        key: "audio_dump_web",
        description: "the browser client's audio dump, raw voice: the published microphone as \
                      sent (after the browser's processing), where the browser allows a second \
                      unprocessed capture of it, and the mix of the received audio, as WAV files, \
                      with a JSON sidecar (start time, sample rate, the microphone's processing \
                      settings, device label)",
        purpose: "debugging echo, noise or level problems in a browser",
        trigger: "off by default; only between the application's `client.startAudioDump()` and \
                  `client.stopAudioDump()` (it also ends when the microphone is unpublished); \
                  each file stops at a size limit (`maxBytes`, default 64 MiB)",
        storage: "the page's memory until the dump stops, then Blobs handed to the application; \
                  never sent or stored by Streamwire; what happens to them is the application's \
                  choice",
    },
];

/// The fields readable under `consent`, in report order.
pub fn allowed(consent: Consent) -> impl Iterator<Item = &'static Field> {
    REGISTRY.iter().filter(move |f| consent.allows(f.class))
}

/// Renders `docs/privacy.md` from the registry.
pub fn privacy_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Streamwire device telemetry: privacy\n\n");
    out.push_str(
        "<!-- GENERATED from elements/src/telemetry/registry.rs by \
         `cargo run -p gst-plugin-streamwire --example privacy-doc > docs/privacy.md`; \
         do not edit. A test fails when this file and the registry differ. -->\n\n",
    );
    out.push_str(
        "The `devicetelemetry` element reports the fields below, every `interval`, as an \
         element message named `streamwire-telemetry`. What it reads depends on its \
         `consent` property, which the application sets from the end user's choice:\n\n\
         - `none` (default): nothing is read and nothing is reported.\n\
         - `necessary`: only fields classed *necessary*.\n\
         - `full`: necessary and *optional* fields.\n\n\
         A field above the consent level is never read, not merely left out of the report. \
         No value identifies a person on its own; fields the machine does not \
         have (e.g. a battery) are omitted.\n\n",
    );
    out.push_str(
        "| field | class | scope | what | purpose | platforms | retention |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for f in REGISTRY {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} days |\n",
            f.key,
            f.class,
            f.scope.as_str(),
            f.description,
            f.purpose,
            f.platforms,
            f.retention_days
        ));
    }
    out.push_str(
        "\n## Per-peer WebRTC statistics\n\n\
         A Streamwire session forwards, per peer and track, these statistics to the telemetry \
         service together with the fields above, in batches and under the same consent \
         (nothing at `none`, optional keys only at `full`). Client and server both drop any \
         key not listed in this document.\n\n\
         The application sets the consent in `SessionConfig::telemetry` (default `none`: the \
         session's `devicetelemetry` element reads nothing and no telemetry message leaves the \
         client) and may change it at any time with `Session::set_consent`; lowering it also \
         strips what is still pending of what the new level does not allow. Pending records \
         are sent every interval (default 10 s) and when the session leaves, split into \
         messages that each fit the server's frame limit.\n\n",
    );
    out.push_str(
        "| field | class | scope | what | purpose | platforms | retention |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for f in PEER_STATS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} days |\n",
            f.key,
            f.class,
            f.scope.as_str(),
            f.description,
            f.purpose,
            f.platforms,
            f.retention_days
        ));
    }
    out.push_str("\n## IP addresses\n\n");
    out.push_str(IP_HANDLING);
    out.push_str(
        "\n\n## User feedback\n\n\
         An end user may send a rating (1-5) and a comment (class optional, purpose: analysis), \
         through the application (`Client::send_feedback`, or `sendFeedback(rating, comment)` \
         of the browser client) or the demo page's optional form. It is stored only when sent, \
         tagged with the session, and kept at most the configured retention (default 30 \
         days).\n\n\
         ## Performance reports\n\n\
         Reports (`streamwire report --room R`, or `GET /report?room=R` on the server) chart a \
         room's stored values per member and track. They name members by the display name of \
         their room token (the token's `name` claim, which the room's other members see in its \
         presence list), with the session peer id where two members share a name; never by \
         user identity or address. The display name is stored with the session's row, so it \
         is exported and deleted with the user's data and purged with that row (once its \
         records and feedback have expired). The server's endpoint answers only \
         to a token for that room with the `admin` grant (`Authorization: Bearer`, or a \
         `token` query parameter, as the demo page's link does: a token in a URL can end up in \
         browser history, so give such links short-lived tokens).\n\n\
         ## Retention\n\n\
         Each stored value expires after its field's retention above, or after the server's \
         configured retention (`streamwire serve --retention`, default 30 days) if that is \
         shorter. Expired data is purged automatically by the server (hourly) and on demand.\n\n\
         ## Data-subject requests\n\n\
         Stored data belongs to the room its session was in. A room's admin (a token for that \
         room with the `admin` grant) can export (`privacy_export`) and delete \
         (`privacy_delete`) a user's data, and read `GET /report`, for that room only: no room \
         token reaches another room's data, whatever its grants. Requests across rooms are for \
         the operator of the database: `streamwire privacy export --user U` returns everything \
         held about a user in every room (`--room R`: in one), `streamwire privacy delete \
         --user U` removes it. A delete leaves only an audit entry with the action, the time \
         and row counts.\n",
    );
    out.push_str(
        "\n## Kept on the device only\n\n\
         Streamwire never collects or sends the following; it writes it only when the \
         application asks.\n\n\
         | data | what | purpose | when | storage |\n\
         |---|---|---|---|---|\n",
    );
    for d in LOCAL_DATA {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            d.key, d.description, d.purpose, d.trigger, d.storage
        ));
    }
    out.push_str("\n## Never collected\n\n");
    for (what, why) in NEVER_COLLECTED {
        out.push_str(&format!("- {what}: {why}.\n"));
    }
    out.push_str(
        "\n## Promises\n\n\
         - Only the fields above, only for the stated purpose, on behalf of the application \
         developer, who obtains the end user's consent first.\n\
         - Optional fields only with full consent; with consent `none` the element reads \
         nothing.\n\
         - Data is kept at most the retention period above, then deleted or anonymised; \
         end users exercise access, export, correction and deletion through the \
         application developer.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_well_formed() {
        let mut keys: Vec<_> = REGISTRY.iter().map(|f| f.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), REGISTRY.len());
        for k in keys {
            assert!(k.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{k}");
        }
    }

    #[test]
    fn no_identifier_is_a_field() {
        for f in REGISTRY {
            for banned in [
                "mac", "serial", "imei", "imsi", "uuid", "advert", "accel", "ip-", "rotation",
            ] {
                assert!(!f.key.contains(banned), "{} looks like {banned}", f.key);
            }
        }
    }

    #[test]
    fn consent_levels_are_ordered() {
        assert_eq!(allowed(Consent::None).count(), 0);
        let nec = allowed(Consent::Necessary).count();
        let full = allowed(Consent::Full).count();
        assert!(nec > 0 && full > nec && full == REGISTRY.len());
        assert!(allowed(Consent::Necessary).all(|f| f.class == Class::Necessary));
    }

    #[test]
    fn reference_necessary_fields_are_necessary() {
        // Classed necessary by the SDK policies this registry mirrors.
        for k in [
            "cpu-model",
            "device-brand",
            "device-model",
            "os-name",
            "os-version",
            "screen-resolution",
            "battery-level",
            "memory-used",
            "thread-count",
            "network-type",
        ] {
            assert_eq!(field(k).map(|f| f.class), Some(Class::Necessary), "{k}");
        }
    }
}
