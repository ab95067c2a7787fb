//! Coarse network prefixes: the only trace of a connection's IP address the telemetry
//! service keeps (see "IP addresses" in `docs/privacy.md`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The /24 (IPv4) or /48 (IPv6) network of `ip`, in CIDR notation. An IPv4-mapped IPv6
/// address is treated as the IPv4 address it carries.
///
/// ```
/// use streamwire::telemetry::ip::coarse_prefix;
/// assert_eq!(coarse_prefix("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
/// assert_eq!(coarse_prefix("2001:db8:aa:bb::1".parse().unwrap()), "2001:db8:aa::/48");
/// assert_eq!(coarse_prefix("::ffff:198.51.100.9".parse().unwrap()), "198.51.100.0/24");
/// ```
pub fn coarse_prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4_prefix(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_prefix(v4),
            None => {
                let s = v6.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
                format!("{net}/48")
            }
        },
    }
}

fn v4_prefix(v4: Ipv4Addr) -> String {
    let o = v4.octets();
    format!("{}/24", Ipv4Addr::new(o[0], o[1], o[2], 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_drop_the_host_part() {
        assert_eq!(coarse_prefix("127.0.0.1".parse().unwrap()), "127.0.0.0/24");
        assert_eq!(coarse_prefix("::1".parse().unwrap()), "::/48");
        assert_eq!(
            coarse_prefix("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1::/48"
        );
    }
}
