/// How long to wait between connection attempts: capped exponential backoff with jitter.
///
/// The defaults give spec `scaling.md` §5.3's schedule: 100 ms doubling to 5 s, ±20 % jitter
/// (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5, 5, ... s before jitter). Retries never stop.
public struct RedisReconnectPolicy: Sendable, Equatable {
    /// Wait after the first failed attempt. Default 100 ms.
    public var initialDelay: Duration
    /// Longest wait, before jitter. Default 5 s.
    public var maximumDelay: Duration
    /// Growth factor per failed attempt. Default 2.
    public var multiplier: Double
    /// Relative jitter applied to every wait: 0.2 means ±20 %. Default 0.2.
    public var jitter: Double

    /// A policy; the defaults give the schedule of spec `scaling.md` §5.3.
    public init(
        initialDelay: Duration = .milliseconds(100),
        maximumDelay: Duration = .seconds(5),
        multiplier: Double = 2,
        jitter: Double = 0.2
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The wait after `failedAttempts` consecutive failures (1 = the first), before jitter.
    public func baseDelay(afterFailedAttempts failedAttempts: Int) -> Duration {
        let exponent = Double(max(0, failedAttempts - 1))
        let seconds = initialDelay.seconds * power(multiplier, exponent)
        return seconds >= maximumDelay.seconds ? maximumDelay : .roundedNanoseconds(seconds)
    }

    /// The wait after `failedAttempts` failures with jitter; `unitRandom` in `0...1` picks the point
    /// in the jitter range (0 = shortest, 1 = longest).
    public func delay(afterFailedAttempts failedAttempts: Int, unitRandom: Double) -> Duration {
        let base = baseDelay(afterFailedAttempts: failedAttempts).seconds
        return .roundedNanoseconds(base * (1 - jitter + 2 * jitter * min(max(unitRandom, 0), 1)))
    }

    /// The wait after `failedAttempts` failures, with random jitter.
    public func delay(afterFailedAttempts failedAttempts: Int) -> Duration {
        delay(afterFailedAttempts: failedAttempts, unitRandom: Double.random(in: 0...1))
    }
}

extension Duration {
    /// The duration in seconds as a floating-point number.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// `seconds` rounded to whole nanoseconds, so schedules compare exactly.
    static func roundedNanoseconds(_ seconds: Double) -> Duration {
        .nanoseconds(Int64((seconds * 1e9).rounded()))
    }
}

/// `base` raised to a small whole `exponent`, without Foundation; stops growing past 1e12.
private func power(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 && result < 1e12 {
        result *= base
        remaining -= 1
    }
    return result
}
