//! Per-client token buckets for the public endpoints.
//!
//! Bounded: at most `clients_max` addresses are tracked; when full, buckets that have
//! refilled completely (idle clients) are dropped first, and if that frees nothing the
//! table is cleared (erring towards letting requests through, never towards memory).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
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
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
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
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let rate = self.per_minute / 60.0;
        if b.len() >= self.clients_max && !b.contains_key(&ip) {
            let cap = self.per_minute;
            b.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < cap
            });
            if b.len() >= self.clients_max {
                b.clear();
            }
        }
        let (tokens, at) = b.entry(ip).or_insert((self.per_minute, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(self.per_minute);
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
}
