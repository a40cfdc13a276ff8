import NIOCore
import NIOPosix
import Synchronization

/// How fast events are published.
enum PublishPace: Sendable, CustomStringConvertible {
    /// A fixed number of events per second, spread over the connections (open loop).
    case rate(Double)
    /// As fast as delivery allows: at most `window` events not yet delivered to every subscriber.
    case window(Int)
    /// As fast as the server answers: each connection keeps `depth` requests in flight.
    case closedLoop(depth: Int)

    var description: String {
        switch self {
        case .rate(let rate): "\(Int(rate))/s"
        case .window: "max"
        case .closedLoop: "max"
        }
    }
}

/// What a publishing phase did.
struct PublishResult: Sendable {
    var sent = 0
    var succeeded = 0
    var failed = 0
    var unanswered = 0
    /// Sum of PUBLISH replies (Redis only): subscribers each message reached.
    var receivers = 0
    var seconds = 0.0
    var latency = LatencyHistogram()
    var firstFailure: String?
}

/// Drives the publishing connections of one event loop. Loop-confined: every method runs on
/// `eventLoop` (the handlers call back on it; the async side reaches it through `NIOLoopBound`).
final class PublishDriver: PublishResponseReceiver {
    let eventLoop: any EventLoop
    private var encoder: EventRequestEncoder
    private let deliveries: DeliveryStats
    private let subscribersPerEvent: Int
    private let maxInFlightPerConnection = 512
    var handlers: [PublisherHandler] = []
    private var pace = PublishPace.rate(0)
    private var result = PublishResult()
    private var sending = false
    private var start: UInt64 = 0
    private var stopTime: UInt64 = 0
    private var sequence: UInt64 = 0
    private var deliveredAtStart = 0
    private var nextConnection = 0
    private var pacer: RepeatedTask?
    private var finished: EventLoopPromise<PublishResult>?
    private var scratch: [ByteBuffer?] = []
    private var scratchCounts: [Int] = []

    init(eventLoop: any EventLoop, encoder: EventRequestEncoder, deliveries: DeliveryStats, subscribersPerEvent: Int) {
        self.eventLoop = eventLoop
        self.encoder = encoder
        self.deliveries = deliveries
        self.subscribersPerEvent = subscribersPerEvent
    }

    /// Publishes for `duration`, then waits for every answer; the future gives the phase's figures.
    func run(pace: PublishPace, duration: TimeAmount) -> EventLoopFuture<PublishResult> {
        let promise = eventLoop.makePromise(of: PublishResult.self)
        finished = promise
        self.pace = pace
        result = PublishResult()
        sending = true
        start = PayloadTimestamp.now()
        deliveredAtStart = deliveries.delivered.load(ordering: .relaxed)
        scratch = Array(repeating: nil, count: handlers.count)
        scratchCounts = Array(repeating: 0, count: handlers.count)
        switch pace {
        case .rate, .window:
            let driver = NIOLoopBound(self, eventLoop: eventLoop)
            pacer = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { _ in
                driver.value.tick()
            }
        case .closedLoop(let depth):
            for handler in handlers where handler.isOpen {
                for _ in 0..<depth { publish(count: 1, on: handler) }
            }
        }
        eventLoop.assumeIsolated().scheduleTask(in: duration) { self.stopSending() }
        return promise.futureResult
    }

    private func stopSending() {
        sending = false
        stopTime = PayloadTimestamp.now()
        pacer?.cancel()
        pacer = nil
        finishIfDone()
    }

    private func finishIfDone() {
        guard !sending, let finished, handlers.allSatisfy({ $0.inFlight == 0 }) else { return }
        self.finished = nil
        result.seconds = Double(stopTime - start) / 1e9
        finished.succeed(result)
    }

    /// Gives up waiting for answers (the caller's timeout).
    func abandon() {
        guard let finished else { return }
        self.finished = nil
        result.unanswered += handlers.reduce(0) { $0 + $1.inFlight }
        result.seconds = Double(stopTime - start) / 1e9
        finished.succeed(result)
    }

    private func tick() {
        guard sending else { return }
        var due: Int
        switch pace {
        case .rate(let rate):
            let elapsed = Double(PayloadTimestamp.now() - start) / 1e9
            due = Int(elapsed * rate) + 1 - result.sent
        case .window(let window):
            let delivered = deliveries.delivered.load(ordering: .relaxed) - deliveredAtStart
            let completed = subscribersPerEvent > 0 ? delivered / subscribersPerEvent : result.succeeded
            due = window - (result.sent - result.failed - completed)
        case .closedLoop:
            return
        }
        guard due > 0, !handlers.isEmpty else { return }
        let now = PayloadTimestamp.now()
        var attempts = 0
        while due > 0 && attempts < handlers.count {
            let index = nextConnection
            nextConnection = (nextConnection + 1) % handlers.count
            let handler = handlers[index]
            guard handler.isOpen, handler.inFlight + scratchCounts[index] < maxInFlightPerConnection else {
                attempts += 1
                continue
            }
            attempts = 0
            if scratch[index] == nil { scratch[index] = eventLoop.makeBuffer(capacity: 1024) }
            sequence += 1
            encoder.write(sequence: sequence, timestamp: now, into: &scratch[index]!)
            scratchCounts[index] += 1
            result.sent += 1
            due -= 1
        }
        for index in scratch.indices where scratchCounts[index] > 0 {
            handlers[index].send(scratch[index]!, count: scratchCounts[index], time: now)
            scratch[index] = nil
            scratchCounts[index] = 0
        }
    }

    private func publish(count: Int, on handler: PublisherHandler) {
        let now = PayloadTimestamp.now()
        var buffer = eventLoop.makeBuffer(capacity: 1024)
        for _ in 0..<count {
            sequence += 1
            encoder.write(sequence: sequence, timestamp: now, into: &buffer)
        }
        result.sent += count
        handler.send(buffer, count: count, time: now)
    }

    func publisherAdded(_ handler: PublisherHandler) {
        handlers.append(handler)
    }

    func responseReceived(index: Int, ok: Bool, receivers: Int, latency: UInt64, failure: String?) {
        if ok {
            result.succeeded += 1
            result.receivers += receivers
            result.latency.record(nanoseconds: latency)
        } else {
            result.failed += 1
            if result.firstFailure == nil { result.firstFailure = failure }
        }
        if sending, case .closedLoop = pace {
            publish(count: 1, on: handlers[index])
        } else if !sending {
            finishIfDone()
        }
    }

    func connectionClosed(index: Int, unanswered: Int) {
        result.unanswered += unanswered
        if !sending { finishIfDone() }
    }
}

@available(*, unavailable)
extension PublishDriver: Sendable {}

extension EventLoop {
    fileprivate func makeBuffer(capacity: Int) -> ByteBuffer {
        ByteBufferAllocator().buffer(capacity: capacity)
    }
}
