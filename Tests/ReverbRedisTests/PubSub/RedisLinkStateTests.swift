import ReverbRedis
import Testing

@Suite("RedisLinkState")
struct RedisLinkStateTests {
    @Test func linkIsDegradedAfterTimeoutDown() {
        let start = ContinuousClock.now
        let down = RedisLinkState.disconnected(since: start)
        #expect(!down.isDegraded(timeout: .seconds(60), now: start + .seconds(59)))
        #expect(down.isDegraded(timeout: .seconds(60), now: start + .seconds(60)))
        #expect(!RedisLinkState.connected(since: start).isDegraded(timeout: .seconds(60), now: start + .seconds(600)))
    }
}
