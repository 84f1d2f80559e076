//! Where a connection comes from, for limits that count per client: an IPv4 address, or
//! an IPv6 /64 (one host or one customer line usually holds a whole /64, so counting IPv6
//! addresses one by one would be no limit). IPv4-mapped IPv6 counts as the IPv4 address.
//! The HTTP rate limiter and the p2p pending-handshake gate both count by it.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    V4([u8; 4]),
    V6Prefix([u8; 8]),
    /// Not an IP address (a transport without one): all such count as one.
    Other,
}

impl Source {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Source::V4(a.octets()),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.octets()),
                None => {
                    let mut prefix = [0; 8];
                    prefix.copy_from_slice(&a.octets()[..8]);
                    Source::V6Prefix(prefix)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(
            Source::of(ip("2001:db8:1:2:aaaa::1")),
            Source::of(ip("2001:db8:1:2:ffff::2"))
        );
        assert_ne!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Source::of(ip("::ffff:203.0.113.9")),
            Source::of(ip("203.0.113.9"))
        );
        assert_ne!(
            Source::of(ip("203.0.113.9")),
            Source::of(ip("203.0.113.10"))
        );
    }
}
