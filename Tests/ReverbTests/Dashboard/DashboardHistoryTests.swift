import Testing

@testable import Reverb

/// The overview's samples: rates between seconds, five minutes kept.
@Suite struct DashboardHistoryTests {
    @Test func ratesCompareWithThePreviousSample() {
        var history = DashboardHistory()
        history.record(
            time: 10_000, connections: 1, channels: 1, counters: .init(messagesIn: 100, messagesOut: 50, httpCalls: 3),
            dropped: 0, slowConsumerCloses: 0)
        #expect(history.latest?.messagesInPerSecond == 0)
        history.record(
            time: 12_000, connections: 2, channels: 1, counters: .init(messagesIn: 140, messagesOut: 50, httpCalls: 4),
            dropped: 7, slowConsumerCloses: 1)
        let latest = history.latest!
        #expect(
            latest.messagesInPerSecond == 20 && latest.messagesOutPerSecond == 0 && latest.httpCallsPerSecond == 0.5)
        #expect(latest.connections == 2 && latest.dropped == 7 && latest.slowConsumerCloses == 1)
        #expect(JSONWriter.string(latest.json).contains(#""messages_in":20.0,"messages_out":0.0,"http_calls":0.5"#))
    }

    @Test func keepsFiveMinutes() {
        var history = DashboardHistory()
        for second in 0..<400 {
            history.record(
                time: UInt64(second) * 1000, connections: second, channels: 0, counters: .init(), dropped: 0,
                slowConsumerCloses: 0)
        }
        #expect(history.samples.count == 300)
        #expect(history.samples.first?.connections == 100 && history.samples.last?.connections == 399)
    }
}
