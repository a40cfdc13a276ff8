import NIOCore

/// One second of the overview: gauges as they stood, rates over the second before.
struct DashboardSample: Sendable, Equatable {
    /// Unix milliseconds.
    var time: UInt64
    var connections = 0
    var channels = 0
    var messagesInPerSecond = 0.0
    var messagesOutPerSecond = 0.0
    var httpCallsPerSecond = 0.0
    /// Broadcast frames not delivered since start (slow consumers, full inboxes): this node's.
    var dropped = 0
    /// Close 4100 to clients that did not read, since start: this node's.
    var slowConsumerCloses = 0

    var json: JSONValue {
        .object(
            JSONObject([
                ("time", .number(String(time))), ("connections", .number(String(connections))),
                ("channels", .number(String(channels))),
                ("messages_in", .number(Self.rate(messagesInPerSecond))),
                ("messages_out", .number(Self.rate(messagesOutPerSecond))),
                ("http_calls", .number(Self.rate(httpCallsPerSecond))), ("dropped", .number(String(dropped))),
                ("slow_consumer_closes", .number(String(slowConsumerCloses))),
            ]))
    }

    /// One decimal.
    private static func rate(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(abs(tenths % 10))"
    }
}

/// Counters that only grow, turned into rates between two samples.
struct DashboardCounters: Sendable, Equatable {
    var messagesIn = 0
    var messagesOut = 0
    var httpCalls = 0
}

/// The last `capacity` samples of one scope (an app, or the whole node): the overview's chart.
struct DashboardHistory {
    static let defaultCapacity = 300

    let capacity: Int
    private(set) var samples = CircularBuffer<DashboardSample>()
    private var previous: (time: UInt64, counters: DashboardCounters)?

    init(capacity: Int = DashboardHistory.defaultCapacity) {
        self.capacity = capacity
    }

    var latest: DashboardSample? { samples.last }

    /// Adds a sample; rates compare `counters` with the previous call's (zero on the first).
    mutating func record(
        time: UInt64, connections: Int, channels: Int, counters: DashboardCounters, dropped: Int,
        slowConsumerCloses: Int
    ) {
        var sample = DashboardSample(
            time: time, connections: connections, channels: channels, dropped: dropped,
            slowConsumerCloses: slowConsumerCloses)
        if let previous, time > previous.time {
            let seconds = Double(time - previous.time) / 1000
            sample.messagesInPerSecond = Double(max(0, counters.messagesIn - previous.counters.messagesIn)) / seconds
            sample.messagesOutPerSecond =
                Double(max(0, counters.messagesOut - previous.counters.messagesOut)) / seconds
            sample.httpCallsPerSecond = Double(max(0, counters.httpCalls - previous.counters.httpCalls)) / seconds
        }
        previous = (time, counters)
        if samples.count >= capacity { samples.removeFirst() }
        samples.append(sample)
    }
}
