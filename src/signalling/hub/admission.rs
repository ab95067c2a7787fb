//! Admission of connections that have not joined yet: at most `max_pending` of them in all and
//! `max_pending_per_ip` from one source (an IPv4 address, or an IPv6 /64), so unauthenticated
//! clients cannot hold more than a bounded share of the server's sockets.
//!
//! A connection takes a [`Slot`] at accept and holds it through the HTTP handshake until its
//! `join` or `resume` succeeds (or it ends); dropping the slot frees it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// The source a per-source limit counts: the IPv4 address, or the IPv6 /64 prefix (one
/// subscriber usually holds a whole /64).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// `max_pending` connections are waiting to join.
    Global(usize),
    /// `max_pending_per_ip` connections from this source are waiting to join.
    Source(usize),
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// Counts of connections that have not joined yet.
#[derive(Default)]
pub(crate) struct Admission {
    counts: Mutex<Counts>,
}

/// One admitted, not yet joined connection; dropping it frees the slot.
pub(crate) struct Slot {
    admission: Arc<Admission>,
    source: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.admission.counts.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                c.by_source.remove(&self.source);
            }
        }
    }
}

impl Admission {
    /// Take a slot for a connection from `ip`, unless a limit is reached.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_source: usize,
    ) -> Result<Slot, Full> {
        let source = source_of(ip);
        let mut c = self.counts.lock();
        if c.total >= max_total {
            return Err(Full::Global(max_total));
        }
        let n = c.by_source.entry(source).or_insert(0);
        if *n >= max_per_source {
            return Err(Full::Source(max_per_source));
        }
        *n += 1;
        c.total += 1;
        Ok(Slot {
            admission: self.clone(),
            source,
        })
    }

    /// Connections admitted and not joined yet.
    pub(crate) fn pending(&self) -> usize {
        self.counts.lock().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_global_and_per_source_and_slots_free_on_drop() {
        let a = Arc::new(Admission::default());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let s1 = a.admit(ip("127.0.0.2"), 3, 2).unwrap();
        let _s2 = a.admit(ip("127.0.0.2"), 3, 2).unwrap();
        assert_eq!(a.admit(ip("127.0.0.2"), 3, 2).err(), Some(Full::Source(2)));
        let _s3 = a.admit(ip("127.0.0.3"), 3, 2).unwrap();
        assert_eq!(a.admit(ip("127.0.0.4"), 3, 2).err(), Some(Full::Global(3)));
        drop(s1);
        assert_eq!(a.pending(), 2);
        let _s4 = a.admit(ip("127.0.0.2"), 3, 2).unwrap();
        // One IPv6 /64 is one source; a v4-mapped address counts as the IPv4 address.
        let _v = a.admit(ip("2001:db8::1"), 10, 1).unwrap();
        assert_eq!(
            a.admit(ip("2001:db8::2"), 10, 1).err(),
            Some(Full::Source(1))
        );
        assert!(a.admit(ip("2001:db8:0:1::1"), 10, 1).is_ok());
        assert_eq!(
            a.admit(ip("::ffff:127.0.0.3"), 10, 1).err(),
            Some(Full::Source(1))
        );
    }
}
