import NIOCore
import NIOPosix

/// Every event a `SequencedPublisher` sent: per channel, indexed by sequence number − 1, the send
/// time and the time its answer arrived (monotonic ns).
struct PublishLog: Sendable {
    /// An answer that was not 2xx.
    static let failed = UInt64.max

    var sendTimes: [[UInt64]]
    /// 0 while unanswered (and for good, if the connection closed first), `failed` for a non-2xx answer.
    var answers: [[UInt64]]

    init(channels: Int) {
        sendTimes = Array(repeating: [], count: channels)
        answers = Array(repeating: [], count: channels)
    }

    /// When event `sequence` of `channel` was accepted (2xx), nil otherwise.
    func accepted(channel: Int, sequence: Int) -> UInt64? {
        let answer = answers[channel][sequence - 1]
        return answer == 0 || answer == Self.failed ? nil : answer
    }
}

/// Publishes signed events at a fixed rate, round-robin over `channels`, each channel numbering its
/// own events 1, 2, 3…, and logs each event's send and answer time for the loss audit.
///
/// Channel `c` always goes over connection `c % connections`, and the server handles one
/// connection's requests one at a time, in order: so each channel's events are handled in sequence
/// order, and a subscriber that joins or leaves cuts its channel's sequence at one point, never
/// leaving a hole. A closed connection is opened again after 500 ms; events due meanwhile for its
/// channels are skipped (counted, never numbered).
///
/// Loop-confined: every method runs on `eventLoop`.
final class SequencedPublisher: PublishResponseReceiver {
    let eventLoop: any EventLoop
    private var encoders: [EventRequestEncoder]
    private let rate: Double
    private let address: SocketAddress
    private var handlers: [PublisherHandler?]
    private var connected: [Bool]
    private var inFlight: [CircularBuffer<(channel: Int, sequence: Int)>]
    private let maxInFlightPerConnection = 512
    private(set) var log: PublishLog
    private(set) var result = PublishResult()
    /// Events not sent because their connection was down or full.
    private(set) var skipped = 0
    private(set) var reconnects = 0
    private var running = false
    private var start: UInt64 = 0
    private var nextChannel = 0
    private var pacer: RepeatedTask?

    /// - Parameters:
    ///   - channels: one encoder per channel (its name and payload size are the encoder's).
    ///   - rate: events per second over all channels.
    init(
        eventLoop: any EventLoop, encoders: [EventRequestEncoder], rate: Double, connections: Int,
        address: SocketAddress
    ) {
        self.eventLoop = eventLoop
        self.encoders = encoders
        self.rate = rate
        self.address = address
        let connectionCount = min(connections, encoders.count)
        self.handlers = Array(repeating: nil, count: connectionCount)
        self.connected = Array(repeating: false, count: connectionCount)
        self.inFlight = Array(repeating: CircularBuffer(), count: connectionCount)
        self.log = PublishLog(channels: encoders.count)
    }

    /// Opens the connections; the future completes when all are up.
    func connect() -> EventLoopFuture<Void> {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let futures = handlers.indices.map { index in
            Connector.publisher(index: index, address: address, kind: .http, driver: bound).map { _ in
                bound.value.connected[index] = true
            }
        }
        return EventLoopFuture.andAllSucceed(futures, on: eventLoop)
    }

    /// Starts publishing.
    func run() {
        running = true
        start = PayloadTimestamp.now()
        let publisher = NIOLoopBound(self, eventLoop: eventLoop)
        pacer = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(2)) { _ in
            publisher.value.tick()
        }
    }

    /// Stops publishing; answers still arrive.
    func stop() {
        running = false
        pacer?.cancel()
        pacer = nil
    }

    /// Requests sent and not yet answered.
    var unanswered: Int { inFlight.reduce(0) { $0 + $1.count } }

    func closeConnections() {
        stop()
        for handler in handlers { handler?.close() }
    }

    private func tick() {
        guard running else { return }
        let now = PayloadTimestamp.now()
        var due = min(Int(Double(now - start) / 1e9 * rate) + 1 - result.sent - skipped, 1000)
        guard due > 0 else { return }
        var batches: [ByteBuffer?] = Array(repeating: nil, count: handlers.count)
        var counts = Array(repeating: 0, count: handlers.count)
        while due > 0 {
            due -= 1
            let channel = nextChannel
            nextChannel = (nextChannel + 1) % encoders.count
            let connection = channel % handlers.count
            guard connected[connection], handlers[connection]?.isOpen == true,
                inFlight[connection].count < maxInFlightPerConnection
            else {
                skipped += 1
                continue
            }
            let sequence = log.sendTimes[channel].count + 1
            if batches[connection] == nil { batches[connection] = ByteBufferAllocator().buffer(capacity: 1024) }
            encoders[channel].write(sequence: UInt64(sequence), timestamp: now, into: &batches[connection]!)
            log.sendTimes[channel].append(now)
            log.answers[channel].append(0)
            inFlight[connection].append((channel, sequence))
            counts[connection] += 1
            result.sent += 1
        }
        for index in batches.indices where counts[index] > 0 {
            handlers[index]!.send(batches[index]!, count: counts[index], time: now)
        }
    }

    // MARK: PublishResponseReceiver

    func publisherAdded(_ handler: PublisherHandler) {
        handlers[handler.index] = handler
    }

    func responseReceived(index: Int, ok: Bool, receivers: Int, latency: UInt64, failure: String?) {
        guard let (channel, sequence) = inFlight[index].popFirst() else { return }
        if ok {
            result.succeeded += 1
            result.latency.record(nanoseconds: latency)
            log.answers[channel][sequence - 1] = PayloadTimestamp.now()
        } else {
            result.failed += 1
            log.answers[channel][sequence - 1] = PublishLog.failed
            if result.firstFailure == nil { result.firstFailure = failure }
        }
    }

    func connectionClosed(index: Int, unanswered: Int) {
        result.unanswered += inFlight[index].count
        inFlight[index].removeAll()
        connected[index] = false
        handlers[index] = nil
        guard running else { return }
        reconnects += 1
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(500)) {
            Connector.publisher(index: index, address: self.address, kind: .http, driver: bound).assumeIsolated()
                .whenComplete { outcome in
                    switch outcome {
                    case .success: self.connected[index] = true
                    case .failure: self.connectionClosed(index: index, unanswered: 0)
                    }
                }
        }
    }
}

@available(*, unavailable)
extension SequencedPublisher: Sendable {}

extension NIOLoopBound<SequencedPublisher> {
    /// Waits until every request sent has its answer, at most `seconds`.
    func awaitAnswers(seconds: Double) async throws {
        let deadline = ResourceUsage.wallSeconds() + seconds
        while ResourceUsage.wallSeconds() < deadline, try await eventLoop.submit({ self.value.unanswered }).get() > 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
