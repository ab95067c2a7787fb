//! Network impairment for tests and benchmarks: random UDP loss with nftables in a network
//! namespace this process is alone in, Gilbert–Elliott burst loss and delay jitter on the
//! packets a `webrtcbin` receives.
//!
//! * [`random_loss`]: `nft` drops `pct` % of the UDP datagrams arriving on every interface of
//!   the namespace (loopback included), so every stack in it sees the same loss. It refuses to
//!   touch a namespace this process is not alone in ([`check_private_namespace`]): the
//!   machine's own, or one shared with other processes (a test suite's).
//! * [`BurstLoss`]: a two-state Gilbert–Elliott model decided per packet, applied by
//!   [`impair_receiver`] at each `nicesrc` inside a `webrtcbin` (before DTLS/SRTP, so the
//!   packets count as network loss).
//! * Jitter: [`impair_receiver`] also puts a `netsim` after each `nicesrc`, delaying every
//!   datagram by a uniform random 0..=`jitter_ms` (packets may overtake each other, as on a
//!   real path). nftables cannot delay and this kernel has no `netem`.
//!
//! ```no_run
//! streamwire::impair::check_private_namespace().unwrap();
//! streamwire::impair::random_loss(5).unwrap();
//! ```

use std::process::Command;

use gst::prelude::*;
use parking_lot::Mutex;

/// Impairment failure.
#[derive(Debug, thiserror::Error)]
pub enum ImpairError {
    /// This process may not change the namespace's firewall.
    #[error("network namespace: {0}")]
    Namespace(String),
    /// A command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its error output or why it did not run.
        detail: String,
    },
    /// A parameter is out of range.
    #[error("impairment `{field}`: {detail}")]
    Config {
        /// The parameter.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
}

fn netns_of(pid: &str) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
}

/// The ids of this process and its ancestors.
fn own_lineage() -> Vec<u32> {
    let mut out = vec![std::process::id()];
    let mut pid = std::process::id();
    while pid > 1 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            break;
        };
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            break;
        };
        out.push(ppid);
        pid = ppid;
    }
    out
}

/// Succeeds when this process runs in a network namespace other than the machine's (pid 1's)
/// in which no process lives but itself, its ancestors (the `unshare`/`sh` that started it)
/// and its descendants. Only then may it change that namespace's firewall.
pub fn check_private_namespace() -> Result<(), ImpairError> {
    let me = netns_of("self")
        .ok_or_else(|| ImpairError::Namespace("cannot read /proc/self/ns/net".into()))?;
    let init = netns_of("1");
    if init.as_ref() == Some(&me) {
        return Err(ImpairError::Namespace(
            "this is the machine's own network namespace: run inside `unshare -n`".into(),
        ));
    }
    let lineage = own_lineage();
    let entries = std::fs::read_dir("/proc")
        .map_err(|e| ImpairError::Namespace(format!("cannot list /proc: {e}")))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if lineage.contains(&pid) || netns_of(&pid.to_string()).as_ref() != Some(&me) {
            continue;
        }
        if descends_from(pid, std::process::id()) {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        return Err(ImpairError::Namespace(format!(
            "process {pid} ({}) shares this network namespace: not changing its firewall",
            comm.trim()
        )));
    }
    Ok(())
}

fn descends_from(mut pid: u32, ancestor: u32) -> bool {
    for _ in 0..64 {
        if pid == ancestor {
            return true;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        match stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
        {
            Some(p) if p > 1 => pid = p,
            _ => return false,
        }
    }
    false
}

fn run(program: &str, args: &[&str]) -> Result<(), ImpairError> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| ImpairError::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(ImpairError::Command {
            command,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Name of the nftables table [`random_loss`] creates.
pub const NFT_TABLE: &str = "streamwire_impair";

/// Bring `lo` up (a fresh namespace starts with it down). Needs a private namespace.
pub fn loopback_up() -> Result<(), ImpairError> {
    check_private_namespace()?;
    run("ip", &["link", "set", "lo", "up"])
}

/// Drop `pct` % (0..=100) of the UDP datagrams arriving on every interface of this namespace,
/// replacing an earlier [`random_loss`] rule; 0 removes it. Needs a private namespace
/// ([`check_private_namespace`]) and `nft` (Debian `nftables`).
pub fn random_loss(pct: u32) -> Result<(), ImpairError> {
    if pct > 100 {
        return Err(ImpairError::Config {
            field: "loss",
            detail: format!("{pct} % is above 100"),
        });
    }
    check_private_namespace()?;
    // Deleting a table that does not exist fails; that is fine.
    let _ = run("nft", &["delete", "table", "inet", NFT_TABLE]);
    if pct == 0 {
        return Ok(());
    }
    run("nft", &["add", "table", "inet", NFT_TABLE])?;
    run(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            NFT_TABLE,
            "in",
            "{ type filter hook input priority 0; }",
        ],
    )?;
    let limit = pct.to_string();
    run(
        "nft",
        &[
            "add", "rule", "inet", NFT_TABLE, "in", "meta", "l4proto", "udp", "numgen", "random",
            "mod", "100", "<", &limit, "drop",
        ],
    )
}

/// Two-state Gilbert–Elliott loss: in the good state packets are lost with `loss_good`, in the
/// bad state with `loss_bad`; after each packet the state changes with `p_good_to_bad` or
/// `p_bad_to_good`.
///
/// ```
/// use streamwire::impair::BurstLoss;
/// let ge = BurstLoss::with_mean_loss(5.0, 4.0);
/// assert!((ge.mean_loss_pct() - 5.0).abs() < 1e-9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstLoss {
    /// Good → bad transition probability per packet.
    pub p_good_to_bad: f64,
    /// Bad → good transition probability per packet.
    pub p_bad_to_good: f64,
    /// Loss probability in the good state.
    pub loss_good: f64,
    /// Loss probability in the bad state.
    pub loss_bad: f64,
}

impl BurstLoss {
    /// Bursts of `mean_burst` packets on average (every packet of a burst lost, none outside),
    /// as often as needed for a mean loss of `loss_pct` %.
    pub fn with_mean_loss(loss_pct: f64, mean_burst: f64) -> Self {
        let p_bad_to_good = 1.0 / mean_burst.max(1.0);
        let loss = (loss_pct / 100.0).clamp(0.0, 0.99);
        // Stationary share of the bad state: p_gb / (p_gb + p_bg) = loss.
        let p_good_to_bad = loss * p_bad_to_good / (1.0 - loss);
        BurstLoss {
            p_good_to_bad,
            p_bad_to_good,
            loss_good: 0.0,
            loss_bad: 1.0,
        }
    }

    /// Long-run loss (%).
    pub fn mean_loss_pct(&self) -> f64 {
        let bad = self.p_good_to_bad / (self.p_good_to_bad + self.p_bad_to_good);
        100.0 * (bad * self.loss_bad + (1.0 - bad) * self.loss_good)
    }
}

/// A running [`BurstLoss`] model.
#[derive(Debug)]
struct BurstState {
    model: BurstLoss,
    bad: bool,
}

impl BurstState {
    fn drop_next(&mut self) -> bool {
        let r = gst::glib::random_double;
        let lost = r()
            < if self.bad {
                self.model.loss_bad
            } else {
                self.model.loss_good
            };
        let flip = if self.bad {
            self.model.p_bad_to_good
        } else {
            self.model.p_good_to_bad
        };
        if r() < flip {
            self.bad = !self.bad;
        }
        lost
    }
}

/// What [`impair_receiver`] applies to the datagrams a `webrtcbin` receives.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReceiveImpairment {
    /// Burst loss (`None`: none).
    pub burst: Option<BurstLoss>,
    /// Uniform random delay of 0..=`jitter_ms` per datagram (0: none).
    pub jitter_ms: u32,
}

/// Apply `imp` to every transport that appears inside `bin` (a pipeline holding `webrtcbin`s,
/// or one `webrtcbin`), from now on: burst loss at each `nicesrc`'s source pad (every datagram:
/// media, RTCP, DTLS), and for jitter a `netsim` between each transport's decrypted RTP output
/// and `rtpbin` (a `netsim` right behind `nicesrc` broke the stream: DTLS and SRTP in webrtcbin
/// 1.22 did not survive it; RTCP is not delayed). Returns how many of them have every requested
/// impairment in place so far (the `netsim` is linked a moment after its transport appears).
pub fn impair_receiver(
    bin: &gst::Bin,
    imp: ReceiveImpairment,
) -> std::sync::Arc<std::sync::atomic::AtomicU32> {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    if imp.burst.is_none() && imp.jitter_ms == 0 {
        return count;
    }
    let seen = count.clone();
    bin.connect_deep_element_added(move |_, sub, element| {
        if imp.jitter_ms > 0 && element.type_().name() == "TransportReceiveBin" {
            if let Some(rtp) = element.static_pad("rtp_src") {
                insert_jitter(sub, &rtp, imp.jitter_ms, seen.clone());
            }
            return;
        }
        if element.factory().is_none_or(|f| f.name() != "nicesrc") {
            return;
        }
        let Some(model) = imp.burst else {
            return;
        };
        let Some(src) = element.static_pad("src") else {
            return;
        };
        let state = Mutex::new(BurstState { model, bad: false });
        src.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, _| {
                if state.lock().drop_next() {
                    gst::PadProbeReturn::Drop
                } else {
                    gst::PadProbeReturn::Ok
                }
            },
        );
        if imp.jitter_ms == 0 {
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    count
}

/// Put a `netsim` (uniform delay 0..=`jitter_ms`) behind `src`: now if it is linked already,
/// otherwise once it is. Counts it in `inserted` once linked.
fn insert_jitter(
    bin: &gst::Bin,
    src: &gst::Pad,
    jitter_ms: u32,
    inserted: std::sync::Arc<std::sync::atomic::AtomicU32>,
) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let jitter = i32::try_from(jitter_ms).unwrap_or(i32::MAX);
    let insert = {
        let (bin, done) = (bin.clone(), done.clone());
        move |src: &gst::Pad, peer: &gst::Pad| {
            if !done.swap(true, std::sync::atomic::Ordering::SeqCst) {
                put_netsim(&bin, src, peer, jitter, inserted.clone());
            }
        }
    };
    if let Some(peer) = src.peer() {
        insert(src, &peer);
    } else {
        src.connect_linked(move |src, peer| insert(src, peer));
    }
}

/// Relink `src` → `peer` as `src` → `netsim` → `peer`; count it in `inserted` once linked.
fn put_netsim(
    bin: &gst::Bin,
    src: &gst::Pad,
    peer: &gst::Pad,
    jitter_ms: i32,
    inserted: std::sync::Arc<std::sync::atomic::AtomicU32>,
) {
    let Ok(netsim) = gst::ElementFactory::make("netsim")
        .property("min-delay", 0i32)
        .property("max-delay", jitter_ms)
        .property_from_str("delay-distribution", "uniform")
        .property("delay-probability", 1.0f32)
        .build()
    else {
        tracing::warn!("netsim is not installed: no jitter");
        return;
    };
    let (src, peer) = (src.clone(), peer.clone());
    let bin = bin.clone();
    // Not from inside `deep-element-added` or `linked` (they hold locks): add the element from
    // another thread, then relink once the pad is idle (between two packets).
    std::thread::spawn(move || {
        if bin.add(&netsim).is_err() || netsim.sync_state_with_parent().is_err() {
            tracing::warn!("cannot start netsim: no jitter");
            return;
        }
        src.add_probe(gst::PadProbeType::IDLE, move |src, _| {
            let (Some(ns_sink), Some(ns_src)) =
                (netsim.static_pad("sink"), netsim.static_pad("src"))
            else {
                return gst::PadProbeReturn::Remove;
            };
            let _ = src.unlink(&peer);
            if ns_src.link(&peer).is_err() || src.link(&ns_sink).is_err() {
                tracing::warn!("cannot link netsim: no jitter");
            } else {
                inserted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            gst::PadProbeReturn::Remove
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gilbert_elliott_loses_in_bursts_at_the_mean_rate() {
        crate::gst_init::init().unwrap();
        let model = BurstLoss::with_mean_loss(5.0, 4.0);
        let mut st = BurstState { model, bad: false };
        let n = 200_000;
        let mut lost = 0;
        let mut bursts = 0;
        let mut prev = false;
        for _ in 0..n {
            let l = st.drop_next();
            if l {
                lost += 1;
                if !prev {
                    bursts += 1;
                }
            }
            prev = l;
        }
        let pct = 100.0 * f64::from(lost) / f64::from(n);
        let mean_burst = f64::from(lost) / f64::from(bursts);
        assert!((4.5..5.5).contains(&pct), "{pct} %");
        assert!((3.5..4.5).contains(&mean_burst), "{mean_burst}");
    }

    #[test]
    fn loss_above_100_percent_is_refused() {
        assert!(matches!(
            random_loss(101),
            Err(ImpairError::Config { field: "loss", .. })
        ));
    }
}
