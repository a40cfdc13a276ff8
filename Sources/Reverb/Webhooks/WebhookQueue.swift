import NIOCore

/// The webhook rules of one app (`http-api.md` §8.1), without I/O and with time passed in:
/// the 3 s delay of `channel_vacated` and `member_removed` and its cancellation, the 5 s throttle of
/// `subscription_count`, per-URL batching (50 ms, at most 100 events a POST), one POST in flight
/// per URL, retries with backoff for 5 minutes, and the bounded queue.
///
/// The caller records events, asks `poll(now:)` for the POSTs due, reports each one's outcome with
/// `finished`, and sleeps until `nextDeadline`.
struct WebhookQueue {
    struct Timing: Sendable {
        var batchWindow = TimeAmount.milliseconds(50)
        var maxBatch = 100
        var departureDelay = TimeAmount.seconds(3)
        var countInterval = TimeAmount.seconds(5)
        var firstRetry = TimeAmount.seconds(1)
        var maxRetry = TimeAmount.seconds(60)
        var retryWindow = TimeAmount.minutes(5)
        /// Events waiting at most, all URLs together.
        var capacity = 10_000

        init() {}
    }

    /// A POST to make: the events of one URL, oldest first.
    struct Attempt: Equatable {
        var endpoint: Int
        var events: [WebhookEvent]
    }

    enum Outcome: Equatable {
        case delivered
        /// Tried again at this time.
        case willRetry(NIODeadline)
        /// The retry window is over: this many events are dropped.
        case gaveUp(Int)
    }

    private struct Queued {
        var event: WebhookEvent
        var enqueuedAt: NIODeadline
        var order: Int
    }

    private struct Endpoint {
        var webhook: Webhook
        var waiting = CircularBuffer<Queued>()
        var inFlight: [Queued]?
        /// Set while the batch in flight waits for its next attempt.
        var retryAt: NIODeadline?
        var firstAttempt: NIODeadline?
        var failures = 0
        /// True between `poll` handing out the batch and `finished`.
        var sending = false
    }

    private enum DelayKey: Hashable {
        case channel(String)
        case member(channel: String, userID: String)
    }

    private struct Delayed {
        var event: WebhookEvent
        var due: NIODeadline
        var order: Int
    }

    private struct CountState {
        var lastSent: NIODeadline?
        var pending: Int?
    }

    let timing: Timing
    private var endpoints: [Endpoint]
    private var delayed: [DelayKey: Delayed] = [:]
    private var counts: [String: CountState] = [:]
    private var order = 0
    /// Events waiting in every URL's queue (not in flight).
    private(set) var waitingCount = 0
    /// Events given up: retry window over, or pushed out of a full queue.
    private(set) var droppedCount = 0

    init(webhooks: [Webhook], timing: Timing = Timing()) {
        self.timing = timing
        self.endpoints = webhooks.map { Endpoint(webhook: $0) }
    }

    var webhooks: [Webhook] { endpoints.map(\.webhook) }

    private func wanted(_ type: Webhook.EventType, _ channel: String) -> Bool {
        endpoints.contains { $0.webhook.accepts(type, channel: channel) }
    }

    // MARK: Events

    /// A channel became occupied cluster-wide: `channel_occupied`, unless it was vacated less than
    /// the delay ago (then neither event is sent).
    mutating func occupied(_ channel: String, now: NIODeadline) {
        if delayed.removeValue(forKey: .channel(channel)) != nil { return }
        record(.occupied(channel), now: now)
    }

    /// The channel's last subscriber left: `channel_vacated` after the delay.
    mutating func vacated(_ channel: String, now: NIODeadline) {
        delay(.vacated(channel), key: .channel(channel), now: now)
    }

    mutating func memberAdded(_ channel: String, userID: String, now: NIODeadline) {
        if delayed.removeValue(forKey: .member(channel: channel, userID: userID)) != nil { return }
        record(.memberAdded(channel, userID: userID), now: now)
    }

    mutating func memberRemoved(_ channel: String, userID: String, now: NIODeadline) {
        delay(.memberRemoved(channel, userID: userID), key: .member(channel: channel, userID: userID), now: now)
    }

    /// The cluster-wide count of a non-presence channel changed: sent at once, or at the end of the
    /// 5 s window with the latest count.
    mutating func countChanged(_ channel: String, count: Int, now: NIODeadline) {
        guard wanted(.subscriptionCount, channel) else { return }
        var state = counts[channel] ?? CountState()
        if let last = state.lastSent, now < last + timing.countInterval {
            state.pending = count
        } else {
            state.lastSent = now
            state.pending = nil
            record(.count(channel, count), now: now)
        }
        counts[channel] = state
    }

    private mutating func delay(_ event: WebhookEvent, key: DelayKey, now: NIODeadline) {
        guard wanted(event.type, event.channel), delayed[key] == nil else { return }
        order += 1
        delayed[key] = Delayed(event: event, due: now + timing.departureDelay, order: order)
    }

    /// Queues `event` for every URL that takes it.
    mutating func record(_ event: WebhookEvent, now: NIODeadline) {
        order += 1
        for index in endpoints.indices where endpoints[index].webhook.accepts(event.type, channel: event.channel) {
            endpoints[index].waiting.append(Queued(event: event, enqueuedAt: now, order: order))
            waitingCount += 1
        }
        while waitingCount > timing.capacity { dropOldest() }
    }

    private mutating func dropOldest() {
        var oldest: Int?
        for index in endpoints.indices {
            guard let head = endpoints[index].waiting.first else { continue }
            if let current = oldest, endpoints[current].waiting.first!.order <= head.order { continue }
            oldest = index
        }
        guard let oldest else { return }
        endpoints[oldest].waiting.removeFirst()
        waitingCount -= 1
        droppedCount += 1
    }

    // MARK: Sending

    /// Moves delayed events that are due into the queues, then hands out every POST that is due.
    mutating func poll(now: NIODeadline) -> [Attempt] {
        let due = delayed.filter { $0.value.due <= now }.sorted {
            ($0.value.due, $0.value.order) < ($1.value.due, $1.value.order)
        }
        for (key, entry) in due {
            delayed[key] = nil
            record(entry.event, now: entry.due)
        }
        for (channel, state) in counts {
            guard let last = state.lastSent, now >= last + timing.countInterval else { continue }
            if let pending = state.pending {
                counts[channel] = CountState(lastSent: now, pending: nil)
                record(.count(channel, pending), now: now)
            } else {
                counts[channel] = nil
            }
        }
        var attempts: [Attempt] = []
        for index in endpoints.indices {
            var endpoint = endpoints[index]
            defer { endpoints[index] = endpoint }
            guard !endpoint.sending else { continue }
            if let batch = endpoint.inFlight {
                guard let retryAt = endpoint.retryAt, retryAt <= now else { continue }
                endpoint.retryAt = nil
                endpoint.sending = true
                attempts.append(Attempt(endpoint: index, events: batch.map(\.event)))
                continue
            }
            guard let first = endpoint.waiting.first else { continue }
            guard endpoint.waiting.count >= timing.maxBatch || first.enqueuedAt + timing.batchWindow <= now else {
                continue
            }
            let batch = Array(endpoint.waiting.prefix(timing.maxBatch))
            endpoint.waiting.removeFirst(batch.count)
            waitingCount -= batch.count
            endpoint.inFlight = batch
            endpoint.firstAttempt = now
            endpoint.failures = 0
            endpoint.sending = true
            attempts.append(Attempt(endpoint: index, events: batch.map(\.event)))
        }
        return attempts
    }

    /// The outcome of the POST `poll` handed out for `endpoint`.
    mutating func finished(endpoint index: Int, success: Bool, now: NIODeadline) -> Outcome {
        var endpoint = endpoints[index]
        defer { endpoints[index] = endpoint }
        endpoint.sending = false
        guard !success else {
            endpoint.inFlight = nil
            endpoint.firstAttempt = nil
            return .delivered
        }
        endpoint.failures += 1
        let shift = min(endpoint.failures - 1, 30)
        let backoff = min(timing.maxRetry, .nanoseconds(timing.firstRetry.nanoseconds << shift))
        let next = now + backoff
        if let first = endpoint.firstAttempt, next - first > timing.retryWindow {
            let count = endpoint.inFlight?.count ?? 0
            endpoint.inFlight = nil
            endpoint.firstAttempt = nil
            droppedCount += count
            return .gaveUp(count)
        }
        endpoint.retryAt = next
        return .willRetry(next)
    }

    /// When `poll` has something to do next; nil when nothing is waiting.
    func nextDeadline() -> NIODeadline? {
        var next: NIODeadline?
        func consider(_ deadline: NIODeadline) { next = min(next ?? deadline, deadline) }
        for entry in delayed.values { consider(entry.due) }
        for state in counts.values {
            if let last = state.lastSent { consider(last + timing.countInterval) }
        }
        for endpoint in endpoints where !endpoint.sending {
            if endpoint.inFlight != nil {
                if let retryAt = endpoint.retryAt { consider(retryAt) }
            } else if let first = endpoint.waiting.first {
                consider(
                    endpoint.waiting.count >= timing.maxBatch ? first.enqueuedAt : first.enqueuedAt + timing.batchWindow
                )
            }
        }
        return next
    }

    /// Events waiting, in flight or delayed.
    var pendingCount: Int {
        waitingCount + delayed.count + endpoints.reduce(0) { $0 + ($1.inFlight?.count ?? 0) }
    }
}
