//! Unit and property tests of the schedule: the shape (doubling, cap), the
//! jitter band, and that no input makes it panic or overflow.

use std::time::Duration;

use proptest::prelude::*;

use super::*;

const MS: Duration = Duration::from_millis(1);

fn exact(initial: Duration, max: Duration) -> ExponentialBackoff {
    ExponentialBackoff::new(initial, max, 0.0)
}

#[test]
fn doubles_from_initial_up_to_max() {
    let b = exact(100 * MS, Duration::from_secs(30));
    let delays: Vec<u128> = (1..=12).map(|n| b.delay(n, 0.3).as_millis()).collect();
    assert_eq!(
        delays,
        [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]
    );
}

#[test]
fn attempt_zero_counts_as_the_first() {
    let b = exact(100 * MS, Duration::from_secs(30));
    assert_eq!(b.delay(0, 0.5), b.delay(1, 0.5));
}

#[test]
fn zero_initial_never_waits() {
    let b = ExponentialBackoff::new(Duration::ZERO, Duration::from_secs(30), 0.2);
    for n in [0, 1, 2, 64, 200, u32::MAX] {
        assert_eq!(b.delay(n, 0.99), Duration::ZERO);
    }
}

#[test]
fn jitter_band_is_twenty_percent() {
    let base = Duration::from_secs(1);
    assert_eq!(jitter(base, 0.2, 0.0), 800 * MS);
    assert_eq!(jitter(base, 0.2, 0.5), base);
    let high = jitter(base, 0.2, 0.999_999);
    assert!(high > 1199 * MS && high < 1200 * MS, "{high:?}");
}

#[test]
fn odd_inputs_do_not_panic() {
    let b = ExponentialBackoff::new(Duration::MAX, Duration::MAX, 1.0);
    assert_eq!(b.delay(u32::MAX, 0.999), Duration::MAX);
    let b = ExponentialBackoff::new(Duration::from_secs(5), MS, f64::NAN);
    assert_eq!(b.delay(1, f64::NAN), MS);
    let b = ExponentialBackoff::new(MS, Duration::from_secs(1), 0.2);
    assert_eq!(b.delay(1, f64::NAN), MS);
    assert_eq!(b.delay(1, -3.0), MS.mul_f64(0.8));
    let b = ExponentialBackoff::new(MS, Duration::from_secs(1), -1.0);
    assert_eq!(b.delay(1, 0.0), MS);
}

#[test]
fn a_seeded_rng_reproduces_the_series() {
    let b = ExponentialBackoff::new(100 * MS, Duration::from_secs(30), 0.2);
    let run = |seed| {
        let mut rng = fastrand::Rng::with_seed(seed);
        (1..20)
            .map(|n| b.delay_with(n, &mut rng))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    let d = b.random_delay(1);
    assert!(d >= 80 * MS && d < 120 * MS, "{d:?}");
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..10_000_000_000).prop_map(Duration::from_nanos),
        (0u64..u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        Just(Duration::MAX),
    ]
}

fn schedule() -> impl Strategy<Value = ExponentialBackoff> {
    (duration(), duration(), 0.0f64..1.0)
        .prop_map(|(a, b, j)| ExponentialBackoff::new(a.min(b), a.max(b), j))
}

proptest! {
    #[test]
    fn without_jitter_delays_never_shrink(
        b in schedule(), sample in 0.0f64..1.0, n in 0u32..300,
    ) {
        let b = ExponentialBackoff { jitter: 0.0, ..b };
        prop_assert!(b.delay(n, sample) <= b.delay(n + 1, sample));
    }

    #[test]
    fn delays_stay_below_the_jittered_cap(
        b in schedule(), sample in 0.0f64..1.0, n in any::<u32>(),
    ) {
        let upper = Duration::try_from_secs_f64(b.max.as_secs_f64() * (1.0 + b.jitter))
            .unwrap_or(Duration::MAX);
        prop_assert!(b.delay(n, sample) <= upper);
        prop_assert!(b.base(n) <= b.max);
    }

    #[test]
    fn first_delay_is_initial_within_jitter(b in schedule(), sample in 0.0f64..1.0) {
        let d = b.delay(1, sample).as_secs_f64();
        let initial = b.initial.as_secs_f64();
        let slack = initial * 1e-9 + 1e-9;
        prop_assert!(d >= initial * (1.0 - b.jitter) - slack, "{d} vs {initial}");
        prop_assert!(d <= initial * (1.0 + b.jitter) + slack, "{d} vs {initial}");
    }

    #[test]
    fn the_cap_is_reached(b in schedule()) {
        // initial * 2^127 exceeds any Duration unless initial is zero.
        prop_assert_eq!(b.base(128), if b.initial.is_zero() { Duration::ZERO } else { b.max });
        prop_assert_eq!(b.base(u32::MAX), b.base(128));
    }

    #[test]
    fn any_input_is_safe(
        initial in duration(), max in duration(), j in any::<f64>(),
        n in any::<u32>(), sample in any::<f64>(),
    ) {
        let _ = ExponentialBackoff::new(initial, max, j).delay(n, sample);
    }
}
