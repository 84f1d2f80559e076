//! Per-client token buckets for the public endpoints.
//!
//! A client is an IPv4 address or an IPv6 /64 (`crate::source`): one host commonly holds
//! a whole /64, so counting IPv6 addresses one by one would be no limit at all.
//!
//! Bounded: at most `clients_max` clients are tracked; when full, buckets that have
//! refilled completely (idle clients) are dropped first, and if that frees nothing the
//! one closest to full goes (the least active client). The table is never cleared for
//! everyone at once: a flood of new addresses must not hand every busy client a fresh
//! bucket.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::source::Source;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;

pub struct RateLimiter {
    per_minute: f64,
    clients_max: usize,
    buckets: Mutex<HashMap<Source, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32, clients_max: usize) -> Self {
        Self {
            per_minute: f64::from(per_minute),
            clients_max: clients_max.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`; false when its bucket is empty.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let client = Source::of(ip);
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let rate = self.per_minute / 60.0;
        if b.len() >= self.clients_max && !b.contains_key(&client) {
            let cap = self.per_minute;
            let refilled = |(tokens, at): &(f64, Instant)| {
                tokens + now.saturating_duration_since(*at).as_secs_f64() * rate
            };
            b.retain(|_, bucket| refilled(bucket) < cap);
            if b.len() >= self.clients_max {
                let least_active = b
                    .iter()
                    .max_by(|x, y| refilled(x.1).total_cmp(&refilled(y.1)))
                    .map(|(k, _)| *k);
                if let Some(k) = least_active {
                    b.remove(&k);
                }
            }
        }
        let (tokens, at) = b.entry(client).or_insert((self.per_minute, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate)
            .min(self.per_minute);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Tests drive the router without a socket; they count as one local client.
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip());
    if !state.limiter.allow(ip, state.clock.instant()) {
        state.metrics.api_rate_limited.inc();
        return ApiError::new(
            huren_api::ErrorCode::RateLimited,
            "too many requests from this address; wait a moment",
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_refill_and_stay_bounded() {
        let r = RateLimiter::new(60, 2);
        let t0 = Instant::now();
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        for _ in 0..60 {
            assert!(r.allow(ip, t0));
        }
        assert!(!r.allow(ip, t0));
        assert!(r.allow(ip, t0 + Duration::from_secs(1)));
        for i in 0..100 {
            r.allow(IpAddr::V4(Ipv4Addr::new(10, 0, 1, i)), t0);
        }
        assert!(r.buckets.lock().expect("lock").len() <= 2);
    }

    #[test]
    fn ipv6_clients_are_counted_by_64() {
        let r = RateLimiter::new(3, 100);
        let t0 = Instant::now();
        for host in 1..=3u16 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 7, 7, host, 0, 0, 1));
            assert!(r.allow(ip, t0), "host {host} of the /64");
        }
        let fourth = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 7, 7, 99, 0, 0, 1));
        assert!(!r.allow(fourth, t0), "the /64 shares one bucket");
        let other = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 7, 8, 1, 0, 0, 1));
        assert!(r.allow(other, t0), "another /64 has its own");
    }

    /// A flood of new addresses evicts one bucket at a time, the least active: a busy
    /// client keeps its empty bucket instead of getting a fresh one.
    #[test]
    fn a_full_table_is_never_reset_for_everyone() {
        let r = RateLimiter::new(10, 3);
        let t0 = Instant::now();
        let busy = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        while r.allow(busy, t0) {}
        for i in 0..50 {
            r.allow(IpAddr::V4(Ipv4Addr::new(10, 9, 0, i)), t0);
        }
        assert!(r.buckets.lock().expect("lock").len() <= 3);
        assert!(
            !r.allow(busy, t0),
            "the busy client's bucket survived the flood"
        );
    }
}
