import NIOCore
import Testing

@testable import Reverb

/// Failed logins per address, on a manual clock.
@Suite struct DashboardLoginLimiterTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    @Test func limitsAfterFiveFailuresUntilTheWindowEnds() {
        var limiter = DashboardLoginLimiter()
        for second in 0..<5 {
            #expect(limiter.retryAfter(address: "10.0.0.1", now: start + .seconds(Int64(second))) == nil)
            limiter.recordFailure(address: "10.0.0.1", now: start + .seconds(Int64(second)))
        }
        #expect(limiter.retryAfter(address: "10.0.0.1", now: start + .seconds(5)) == 56)
        #expect(limiter.retryAfter(address: "10.0.0.1", now: start + .seconds(59)) == 2)
        // Another address is not affected.
        #expect(limiter.retryAfter(address: "10.0.0.2", now: start + .seconds(5)) == nil)
        #expect(limiter.retryAfter(address: "10.0.0.1", now: start + .seconds(60)) == nil)
        // A new window starts with the next failure.
        limiter.recordFailure(address: "10.0.0.1", now: start + .seconds(61))
        #expect(limiter.windows["10.0.0.1"]?.failures == 1)
        #expect(limiter.retryAfter(address: "10.0.0.1", now: start + .seconds(61)) == nil)
    }

    @Test func successForgetsFailures() {
        var limiter = DashboardLoginLimiter(maxFailures: 2)
        limiter.recordFailure(address: "a", now: start)
        limiter.recordSuccess(address: "a")
        limiter.recordFailure(address: "a", now: start)
        #expect(limiter.retryAfter(address: "a", now: start) == nil)
        limiter.recordFailure(address: "a", now: start)
        #expect(limiter.retryAfter(address: "a", now: start) != nil)
    }

    @Test func trackedAddressesAreBounded() {
        var limiter = DashboardLoginLimiter(maxFailures: 1, maxAddresses: 3)
        for (index, address) in ["a", "b", "c", "d"].enumerated() {
            limiter.recordFailure(address: address, now: start + .seconds(Int64(index)))
        }
        #expect(limiter.windows.count == 3)
        // The oldest window made room.
        #expect(limiter.windows["a"] == nil && limiter.retryAfter(address: "d", now: start + .seconds(4)) != nil)
        // Expired windows go first: at 62 s, those of b (1 s) and c (2 s) have ended.
        limiter.recordFailure(address: "e", now: start + .seconds(62))
        #expect(limiter.windows.keys.sorted() == ["d", "e"])
    }
}
