import ReverbRedis
import Testing

@Suite("RedisReconnectPolicy")
struct RedisReconnectPolicyTests {
    @Test func defaultScheduleDoublesFrom100msTo5s() {
        let policy = RedisReconnectPolicy()
        let schedule = (1...9).map { policy.baseDelay(afterFailedAttempts: $0) }
        #expect(
            schedule == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
                .milliseconds(1600), .milliseconds(3200), .seconds(5), .seconds(5), .seconds(5),
            ]
        )
        #expect(policy.baseDelay(afterFailedAttempts: 10_000) == .seconds(5))
    }

    @Test func jitterIsPlusMinus20Percent() {
        let policy = RedisReconnectPolicy()
        #expect(policy.delay(afterFailedAttempts: 1, unitRandom: 0) == .milliseconds(80))
        #expect(policy.delay(afterFailedAttempts: 1, unitRandom: 0.5) == .milliseconds(100))
        #expect(policy.delay(afterFailedAttempts: 1, unitRandom: 1) == .milliseconds(120))
        #expect(policy.delay(afterFailedAttempts: 7, unitRandom: 0) == .seconds(4))
        #expect(policy.delay(afterFailedAttempts: 7, unitRandom: 1) == .seconds(6))
        for attempt in 1...12 {
            let base = policy.baseDelay(afterFailedAttempts: attempt)
            let delay = policy.delay(afterFailedAttempts: attempt)
            #expect(delay >= base * 0.8 && delay <= base * 1.2)
        }
    }
}
