//! The throttle's policy, with time moved by hand.

use super::*;

const S: Duration = Duration::from_secs(1);

fn policy() -> ThrottlePolicy {
    ThrottlePolicy {
        max_failures: 3,
        window: 120 * S,
        ban: 300 * S,
        backoff: S,
        max_concurrent: 4,
        capacity: 1024,
    }
}

/// A fixed starting point; tests add durations to it.
fn t0() -> Instant {
    crate::clock::instant()
}

fn from(address: &str, at: Instant) -> Option<LoginOrigin> {
    Some(LoginOrigin {
        address: address.parse().unwrap(),
        at,
    })
}

/// The `Retry-After` of a refused attempt, or `None` if it was let through
/// (and then ended without failing).
fn refusal(throttle: &LoginThrottle, address: &str, at: Instant) -> Option<u64> {
    match throttle.begin(from(address, at)) {
        Ok(_) => None,
        Err(OAuthError::Throttled { retry_after_secs }) => Some(retry_after_secs),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

fn fail(throttle: &LoginThrottle, address: &str, at: Instant) {
    throttle.begin(from(address, at)).unwrap().failed();
}

#[test]
fn failures_slow_an_address_then_ban_it_and_the_ban_expires() {
    let throttle = LoginThrottle::new(policy());
    let t = t0();
    assert_eq!(refusal(&throttle, "192.0.2.1", t), None);
    fail(&throttle, "192.0.2.1", t);
    // After the first failure: refused for the backoff, 1 s.
    assert_eq!(refusal(&throttle, "192.0.2.1", t), Some(1));
    assert_eq!(
        refusal(&throttle, "192.0.2.1", t + Duration::from_millis(999)),
        Some(1)
    );
    fail(&throttle, "192.0.2.1", t + S);
    // After the second: twice as long.
    assert_eq!(refusal(&throttle, "192.0.2.1", t + S), Some(2));
    assert_eq!(
        refusal(&throttle, "192.0.2.1", t + S + Duration::from_millis(1500)),
        Some(1)
    );
    // The third within the window bans for 300 s.
    fail(&throttle, "192.0.2.1", t + 3 * S);
    assert_eq!(refusal(&throttle, "192.0.2.1", t + 3 * S), Some(300));
    assert_eq!(refusal(&throttle, "192.0.2.1", t + 302 * S), Some(1));
    // Refused attempts do not extend the ban.
    assert_eq!(refusal(&throttle, "192.0.2.1", t + 303 * S), None);
    // After the ban the address starts afresh: one failure is one backoff.
    fail(&throttle, "192.0.2.1", t + 303 * S);
    assert_eq!(refusal(&throttle, "192.0.2.1", t + 303 * S), Some(1));
    assert_eq!(refusal(&throttle, "192.0.2.1", t + 304 * S), None);
}

#[test]
fn failures_older_than_the_window_are_forgotten() {
    let throttle = LoginThrottle::new(policy());
    let t = t0();
    fail(&throttle, "192.0.2.1", t);
    fail(&throttle, "192.0.2.1", t + 10 * S);
    // The window opened by the first failure closes at t + 120 s.
    fail(&throttle, "192.0.2.1", t + 120 * S);
    assert_eq!(refusal(&throttle, "192.0.2.1", t + 120 * S), Some(1));
    fail(&throttle, "192.0.2.1", t + 125 * S);
    assert_eq!(refusal(&throttle, "192.0.2.1", t + 125 * S), Some(2));
    fail(&throttle, "192.0.2.1", t + 130 * S);
    assert_eq!(refusal(&throttle, "192.0.2.1", t + 130 * S), Some(300));
}

#[test]
fn a_success_does_not_reset_the_count() {
    let throttle = LoginThrottle::new(policy());
    let t = t0();
    fail(&throttle, "192.0.2.1", t);
    fail(&throttle, "192.0.2.1", t + 2 * S);
    // A successful login (the attempt ends without a failure).
    drop(throttle.begin(from("192.0.2.1", t + 10 * S)).unwrap());
    fail(&throttle, "192.0.2.1", t + 11 * S);
    assert_eq!(refusal(&throttle, "192.0.2.1", t + 11 * S), Some(300));
}

#[test]
fn addresses_are_counted_apart_and_ipv6_by_its_64_prefix() {
    let throttle = LoginThrottle::new(ThrottlePolicy {
        max_failures: 1,
        ..policy()
    });
    let t = t0();
    fail(&throttle, "192.0.2.1", t);
    assert_eq!(refusal(&throttle, "192.0.2.1", t), Some(300));
    assert_eq!(refusal(&throttle, "::ffff:192.0.2.1", t), Some(300));
    assert_eq!(refusal(&throttle, "192.0.2.2", t), None);
    fail(&throttle, "2001:db8:1:2::1", t);
    assert_eq!(refusal(&throttle, "2001:db8:1:2:ffff::9", t), Some(300));
    assert_eq!(refusal(&throttle, "2001:db8:1:3::1", t), None);
}

#[test]
fn checks_in_progress_count_as_possible_failures() {
    let throttle = LoginThrottle::new(policy());
    let t = t0();
    let a = throttle.begin(from("192.0.2.1", t)).unwrap();
    let b = throttle.begin(from("192.0.2.1", t)).unwrap();
    let c = throttle.begin(from("192.0.2.1", t)).unwrap();
    // Three may still fail; a fourth could overshoot the limit of three.
    assert_eq!(refusal(&throttle, "192.0.2.1", t), Some(1));
    a.failed();
    b.failed();
    c.failed();
    assert_eq!(refusal(&throttle, "192.0.2.1", t), Some(300));
}

#[test]
fn at_most_max_concurrent_checks_per_address() {
    let throttle = LoginThrottle::new(ThrottlePolicy {
        max_failures: 0,
        max_concurrent: 2,
        ..policy()
    });
    let t = t0();
    let a = throttle.begin(from("192.0.2.1", t)).unwrap();
    let b = throttle.begin(from("192.0.2.1", t)).unwrap();
    assert_eq!(refusal(&throttle, "192.0.2.1", t), Some(1));
    assert_eq!(refusal(&throttle, "192.0.2.2", t), None);
    drop(a);
    let c = throttle.begin(from("192.0.2.1", t)).unwrap();
    // With failures not counted, failing changes nothing.
    b.failed();
    c.failed();
    assert_eq!(refusal(&throttle, "192.0.2.1", t), None);
}

#[test]
fn without_limits_or_an_address_nothing_is_throttled() {
    let off = LoginThrottle::new(ThrottlePolicy {
        max_failures: 0,
        max_concurrent: 0,
        ..policy()
    });
    let on = LoginThrottle::new(policy());
    let t = t0();
    for _ in 0..10 {
        fail(&off, "192.0.2.1", t);
        on.begin(None).unwrap().failed();
    }
    assert_eq!(refusal(&off, "192.0.2.1", t), None);
    assert_eq!(off.remembered() + on.remembered(), 0);
}

#[test]
fn without_backoff_only_the_ban_refuses() {
    let throttle = LoginThrottle::new(ThrottlePolicy {
        backoff: Duration::ZERO,
        ..policy()
    });
    let t = t0();
    fail(&throttle, "192.0.2.1", t);
    assert_eq!(refusal(&throttle, "192.0.2.1", t), None);
    fail(&throttle, "192.0.2.1", t);
    assert_eq!(refusal(&throttle, "192.0.2.1", t), None);
    fail(&throttle, "192.0.2.1", t);
    assert_eq!(refusal(&throttle, "192.0.2.1", t), Some(300));
}

#[test]
fn the_backoff_never_exceeds_the_ban() {
    let throttle = LoginThrottle::new(ThrottlePolicy {
        max_failures: 40,
        window: 100_000 * S,
        ban: 60 * S,
        ..policy()
    });
    let mut t = t0();
    for _ in 0..39 {
        fail(&throttle, "192.0.2.1", t);
        let wait = refusal(&throttle, "192.0.2.1", t).unwrap();
        assert!(wait <= 60, "{wait}");
        t += Duration::from_secs(wait);
    }
}

#[test]
fn memory_is_bounded_however_many_addresses_fail() {
    let capacity = 1000;
    let throttle = LoginThrottle::new(ThrottlePolicy {
        capacity,
        ..policy()
    });
    let t = t0();
    for n in 0..20_000u32 {
        fail(
            &throttle,
            &std::net::Ipv4Addr::from(0x0a00_0000 + n).to_string(),
            t,
        );
        let v6 = std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(n) << 64);
        fail(&throttle, &v6.to_string(), t);
    }
    assert!(
        throttle.remembered() <= capacity,
        "{} addresses remembered",
        throttle.remembered()
    );
    let used = throttle.addresses.memory_used();
    let per_entry = (used.entries + used.map) / throttle.remembered().max(1);
    assert!(per_entry <= 128, "{per_entry} bytes per address");
}

#[test]
fn an_address_with_nothing_to_remember_is_forgotten() {
    let throttle = LoginThrottle::new(policy());
    let t = t0();
    for n in 0..100u8 {
        let attempt = throttle.begin(from(&format!("192.0.2.{n}"), t)).unwrap();
        assert_eq!(throttle.remembered(), 1);
        drop(attempt);
    }
    assert_eq!(throttle.remembered(), 0);
    fail(&throttle, "192.0.2.1", t);
    assert_eq!(throttle.remembered(), 1);
}

#[test]
fn retry_after_is_whole_seconds_rounded_up() {
    assert_eq!(whole_seconds(Duration::ZERO), 1);
    assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
    assert_eq!(whole_seconds(Duration::from_millis(1000)), 1);
    assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
}
