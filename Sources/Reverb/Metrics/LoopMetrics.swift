/// The counters of one event loop, kept by its `LoopShard` and touched only on that loop: plain
/// integers, no lock and no atomic on the delivery path. `/metrics` sums them over the loops at
/// scrape time (`ServerMetrics`).
struct LoopMetrics: Sendable {
    /// One app's connection and traffic counters on this loop.
    struct App: Sendable {
        /// Established connections open (may go negative on one loop; the sum is the gauge).
        var connected = 0
        var newConnections = 0
        var newDisconnections = 0
        var receivedBytes = 0
        var transmittedBytes = 0
        var messagesReceived = 0
        var messagesSent = 0
        var httpReceivedBytes = 0
        var httpTransmittedBytes = 0
        var httpCalls = 0

        static func + (lhs: App, rhs: App) -> App {
            App(
                connected: lhs.connected + rhs.connected, newConnections: lhs.newConnections + rhs.newConnections,
                newDisconnections: lhs.newDisconnections + rhs.newDisconnections,
                receivedBytes: lhs.receivedBytes + rhs.receivedBytes,
                transmittedBytes: lhs.transmittedBytes + rhs.transmittedBytes,
                messagesReceived: lhs.messagesReceived + rhs.messagesReceived,
                messagesSent: lhs.messagesSent + rhs.messagesSent,
                httpReceivedBytes: lhs.httpReceivedBytes + rhs.httpReceivedBytes,
                httpTransmittedBytes: lhs.httpTransmittedBytes + rhs.httpTransmittedBytes,
                httpCalls: lhs.httpCalls + rhs.httpCalls)
        }
    }

    /// A Pusher error sent: the app's index (-1: no app matched) and the code.
    struct ErrorKey: Hashable, Sendable {
        var app: Int
        var code: Int
    }

    /// By `AppContext.index`.
    var apps: [App]
    var pusherErrors: [ErrorKey: Int] = [:]
    /// Close 4100 to clients that did not read (`protocol.md` §1.5).
    var slowConsumerDisconnections = 0
    /// Broadcast frames not written because their subscriber was not reading.
    var slowConsumerDrops = 0

    init(appCount: Int) {
        apps = Array(repeating: App(), count: appCount)
    }

    /// Payload bytes of a server frame of `frameBytes` bytes, header included (`OutboundFrame`).
    static func payloadBytes(ofFrame frameBytes: Int) -> Int {
        frameBytes < 128 ? frameBytes - 2 : (frameBytes <= 65_539 ? frameBytes - 4 : frameBytes - 10)
    }

    /// The sum over loops.
    static func total(_ loops: [LoopMetrics], appCount: Int) -> LoopMetrics {
        var total = LoopMetrics(appCount: appCount)
        for loop in loops {
            for index in 0..<min(appCount, loop.apps.count) { total.apps[index] = total.apps[index] + loop.apps[index] }
            total.pusherErrors.merge(loop.pusherErrors, uniquingKeysWith: +)
            total.slowConsumerDisconnections += loop.slowConsumerDisconnections
            total.slowConsumerDrops += loop.slowConsumerDrops
        }
        return total
    }
}
