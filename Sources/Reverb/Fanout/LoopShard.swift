import Logging
import NIOCore

/// Channel → subscribers for the connections of one event loop (`style.md` §3, §4.2).
///
/// Loop-bound: only touched on its own event loop. Other loops reach it through its `ShardInbox`.
final class LoopShard {
    /// How often at most a loop logs that it dropped frames for subscribers that do not read.
    static let dropWarningInterval = TimeAmount.seconds(10)

    let eventLoop: any EventLoop
    private let logger: Logger
    private(set) var subscribers: [ChannelKey: SubscriberList] = [:]
    /// Every open connection of this loop, by app, for sweeps and terminations.
    private var connectionsByApp: [String: [ObjectIdentifier: WebSocketConnectionHandler]] = [:]
    /// Connections written to during the current drain, flushed once at its end.
    private var touched: [WebSocketConnectionHandler] = []
    /// Broadcast frames not written because their subscriber was not reading (counted, not logged
    /// per frame).
    var slowConsumerDrops: Int { metrics.slowConsumerDrops }
    private var dropsAtLastWarning = 0
    private var lastDropWarning: NIODeadline?
    /// This loop's counters for `/metrics`, summed over loops at scrape time.
    private(set) var metrics: LoopMetrics
    /// `AppContext.index` by app id, for counting broadcasts.
    private let appIndices: [String: Int]
    /// Frames and payload bytes written by the run being delivered.
    private var runFrames = 0
    private var runBytes = 0

    init(eventLoop: any EventLoop, logger: Logger, appIndices: [String: Int] = [:]) {
        self.eventLoop = eventLoop
        self.logger = logger
        self.appIndices = appIndices
        self.metrics = LoopMetrics(appCount: (appIndices.values.max() ?? -1) + 1)
    }

    /// Changes the counters of the app at `index` (`AppContext.index`).
    func count(app index: Int, _ body: (inout LoopMetrics.App) -> Void) {
        if index >= metrics.apps.count {
            metrics.apps += Array(repeating: LoopMetrics.App(), count: index + 1 - metrics.apps.count)
        }
        body(&metrics.apps[index])
    }

    /// A `pusher:error` or Pusher-code Close sent; `app` is nil when no app matched.
    func countPusherError(app: Int?, code: Int) {
        metrics.pusherErrors[LoopMetrics.ErrorKey(app: app ?? -1, code: code), default: 0] += 1
    }

    func countSlowConsumerDisconnection() {
        metrics.slowConsumerDisconnections += 1
    }

    func add(_ connection: WebSocketConnectionHandler, appID: String) {
        connectionsByApp[appID, default: [:]][ObjectIdentifier(connection)] = connection
    }

    func remove(_ connection: WebSocketConnectionHandler, appID: String) {
        connectionsByApp[appID]?[ObjectIdentifier(connection)] = nil
        if connectionsByApp[appID]?.isEmpty == true { connectionsByApp[appID] = nil }
    }

    /// - Parameter joinedAt: the broadcast sequence now: earlier broadcasts still queued skip it.
    /// - Returns: false when the connection was already subscribed.
    @discardableResult
    func subscribe(_ connection: WebSocketConnectionHandler, key: ChannelKey, joinedAt: UInt64) -> Bool {
        if let list = subscribers[key] { return list.insert(connection, joinedAt: joinedAt) }
        let list = SubscriberList()
        list.insert(connection, joinedAt: joinedAt)
        subscribers[key] = list
        return true
    }

    /// - Returns: false when the connection was not subscribed.
    @discardableResult
    func unsubscribe(_ connection: WebSocketConnectionHandler, key: ChannelKey) -> Bool {
        guard let list = subscribers[key], list.remove(connection) else { return false }
        if list.isEmpty { subscribers[key] = nil }
        return true
    }

    /// Writes each delivery to its local subscribers, then flushes every touched connection once.
    ///
    /// Consecutive deliveries to one channel are joined into one buffer and written connection by
    /// connection, so a subscriber with several pending frames gets them in one write and one
    /// flush, in order.
    func deliver(_ deliveries: [Delivery]) {
        var start = 0
        while start < deliveries.count {
            let key = deliveries[start].key
            var end = start + 1
            while end < deliveries.count && deliveries[end].key == key { end += 1 }
            if let recipients = subscribers[key] {
                write(deliveries[start..<end], to: recipients)
                if runFrames > 0, let index = appIndices[key.appID] {
                    let (frames, bytes) = (runFrames, runBytes)
                    count(app: index) {
                        $0.messagesSent += frames
                        $0.transmittedBytes += bytes
                    }
                }
                runFrames = 0
                runBytes = 0
            }
            start = end
        }
        for connection in touched { connection.flushBroadcasts() }
        touched.removeAll(keepingCapacity: true)
        if slowConsumerDrops != dropsAtLastWarning { warnAboutDrops() }
    }

    private func write(_ run: ArraySlice<Delivery>, to recipients: SubscriberList) {
        guard run.count > 1 else {
            for entry in recipients.entries { writeFrameByFrame(run, to: entry) }
            return
        }
        // Several frames for the same subscribers: joined once into one buffer that every
        // subscriber eligible for all of them gets in a single write, as redis-server sends a
        // client's queued replies together. NIO's per-write cost is paid once per connection
        // per run instead of once per frame; the join is one copy per run, shared by all.
        var joined = ByteBufferAllocator().buffer(capacity: run.reduce(0) { $0 + $1.frame.bytes.readableBytes })
        var earliest = UInt64.max
        var excluded: [String] = []
        var payloadBytes = 0
        for delivery in run {
            payloadBytes += LoopMetrics.payloadBytes(ofFrame: delivery.frame.bytes.readableBytes)
            joined.writeImmutableBuffer(delivery.frame.bytes)
            earliest = min(earliest, delivery.sequence)
            if let except = delivery.exceptSocketID { excluded.append(except) }
        }
        for entry in recipients.entries {
            let connection = entry.connection
            if entry.joinedAt < earliest && (excluded.isEmpty || !excluded.contains(connection.socketID)) {
                record(
                    connection.enqueueBroadcast(joined, frameCount: run.count), for: connection, frames: run.count,
                    payloadBytes: payloadBytes)
                continue
            }
            writeFrameByFrame(run, to: entry)
        }
    }

    /// Each frame of `run` that the subscription may see: made before it was numbered, and not
    /// from the excluded socket.
    private func writeFrameByFrame(_ run: ArraySlice<Delivery>, to entry: SubscriberList.Entry) {
        let connection = entry.connection
        for delivery in run where entry.joinedAt < delivery.sequence {
            if let except = delivery.exceptSocketID, connection.socketID == except { continue }
            record(
                connection.enqueueBroadcast(delivery.frame.bytes), for: connection, frames: 1,
                payloadBytes: LoopMetrics.payloadBytes(ofFrame: delivery.frame.bytes.readableBytes))
        }
    }

    private func record(
        _ write: WebSocketConnectionHandler.BroadcastWrite, for connection: WebSocketConnectionHandler, frames: Int,
        payloadBytes: Int
    ) {
        switch write {
        case .firstSinceFlush:
            touched.append(connection)
            runFrames += frames
            runBytes += payloadBytes
        case .queued:
            runFrames += frames
            runBytes += payloadBytes
        case .notOpen: break
        case .dropped: metrics.slowConsumerDrops += frames
        }
    }

    private func warnAboutDrops() {
        let now = NIODeadline.now()
        if let last = lastDropWarning, now - last < Self.dropWarningInterval { return }
        logger.warning(
            "Dropped broadcast frames for subscribers that are not reading",
            metadata: ["dropped": "\(slowConsumerDrops - dropsAtLastWarning)", "dropped_total": "\(slowConsumerDrops)"])
        lastDropWarning = now
        dropsAtLastWarning = slowConsumerDrops
    }

    /// Connections of `appID` on this loop.
    func connections(of appID: String) -> [WebSocketConnectionHandler] {
        connectionsByApp[appID].map { Array($0.values) } ?? []
    }

    func allConnections() -> [WebSocketConnectionHandler] {
        connectionsByApp.values.flatMap(\.values)
    }
}

@available(*, unavailable)
extension LoopShard: Sendable {}
