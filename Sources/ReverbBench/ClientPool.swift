import NIOCore

/// A subscriber's life as the audit needs it: its channel, when it was subscribed and when it
/// began to leave, and the sequence numbers it received.
struct ClientRecord: Sendable {
    var channel: Int
    var subscribedAt: UInt64
    var leftAt: UInt64
    var sequences: SequenceTracker
}

/// One event loop's share of a scenario's clients on one server: keeps `members` well-behaved
/// subscribers (`presenceMembers` of them on presence channels) and `slowClients` slow ones open,
/// replacing those that go; churns members (half unsubscribe first, half just close), makes presence
/// members whisper, and keeps a `ClientRecord` of every member that has gone.
///
/// Loop-confined: every method runs on `eventLoop` (the async side reaches it through `NIOLoopBound`).
final class ClientPool: SequenceClientOwner {
    struct Configuration: Sendable {
        var address: SocketAddress
        var request: ByteBuffer
        var app: BenchApp
        /// Audited channels; a record's `channel` is an index into this list.
        var channels: [String]
        /// Indexes of `channels` for public members.
        var publicChannels: Range<Int>
        /// Indexes of `channels` for presence members.
        var presenceChannels: Range<Int>
        /// The channel slow clients subscribe to.
        var busyChannel = "bench-soak-busy"
        var members: Int
        var presenceMembers = 0
        var slowClients = 0
        var slowPause = TimeAmount.seconds(12)
        var slowPatience = TimeAmount.seconds(15)
        var churnPerSecond = 0.0
        var whispersPerSecond = 0.0
        /// Keep the earliest arrival time of each sequence number (of channel 0).
        var recordArrivals = false
        /// Distinguishes this pool's presence `user_id`s from other pools'.
        var userPrefix: String
        /// Handshakes in progress at once.
        var maxConnecting = 64
    }

    /// Everything the pool counted, gathered at the end.
    struct Summary: Sendable {
        var opened = 0
        var connectFailures = 0
        var subscribeFailures = 0
        var membersClosedByServer = 0
        var memberCloseCodes: [UInt16: Int] = [:]
        var leftUnsubscribing = 0
        var leftClosing = 0
        var slowOpened = 0
        var slowClosedWith4100 = 0
        var slowClosedOtherCode = 0
        var slowDropped = 0
        var slowNotClosed = 0
        var slowOpenAtEnd = 0
        var whispersSent = 0
        var whispersReceived = 0
        var records: [ClientRecord] = []
        /// Earliest arrival (monotonic ns) of sequence `i + 1`, 0 when none arrived.
        var arrivals: [UInt64] = []

        mutating func merge(_ other: Summary) {
            opened += other.opened
            connectFailures += other.connectFailures
            subscribeFailures += other.subscribeFailures
            membersClosedByServer += other.membersClosedByServer
            memberCloseCodes.merge(other.memberCloseCodes, uniquingKeysWith: +)
            leftUnsubscribing += other.leftUnsubscribing
            leftClosing += other.leftClosing
            slowOpened += other.slowOpened
            slowClosedWith4100 += other.slowClosedWith4100
            slowClosedOtherCode += other.slowClosedOtherCode
            slowDropped += other.slowDropped
            slowNotClosed += other.slowNotClosed
            slowOpenAtEnd += other.slowOpenAtEnd
            whispersSent += other.whispersSent
            whispersReceived += other.whispersReceived
            records += other.records
            if arrivals.count < other.arrivals.count {
                arrivals += repeatElement(0, count: other.arrivals.count - arrivals.count)
            }
            for (index, time) in other.arrivals.enumerated() where time > 0 {
                if arrivals[index] == 0 || time < arrivals[index] { arrivals[index] = time }
            }
        }
    }

    /// What is open right now.
    struct Counts: Sendable {
        var members = 0
        var slow = 0
        var connecting = 0
        var live = 0

        static func + (left: Counts, right: Counts) -> Counts {
            Counts(
                members: left.members + right.members, slow: left.slow + right.slow,
                connecting: left.connecting + right.connecting, live: left.live + right.live)
        }
    }

    let eventLoop: any EventLoop
    private let configuration: Configuration
    private let stats: DeliveryStats
    private var summary = Summary()
    private var live: [ObjectIdentifier: SequenceClientHandler] = [:]
    /// Subscribed members not leaving, for random picks.
    private var members: [SequenceClientHandler] = []
    private var presenceMembers: [SequenceClientHandler] = []
    private var countedMembers = 0
    private var countedPresence = 0
    private var countedSlow = 0
    private var connecting = 0
    private var filling = false
    private var fillTimer: RepeatedTask?
    private var churnTimer: RepeatedTask?
    private var whisperTimer: RepeatedTask?
    private var churnDue = 0.0
    private var whispersDue = 0.0
    private var unsubscribeNext = true
    private var nextUser = 0
    private var whisperNumber = 0
    private var random = SystemRandomNumberGenerator()

    init(eventLoop: any EventLoop, configuration: Configuration, stats: DeliveryStats) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.stats = stats
    }

    var counts: Counts {
        Counts(members: members.count, slow: countedSlow, connecting: connecting, live: live.count)
    }

    /// Opens clients up to the targets and keeps replacing those that go.
    func startFilling() {
        filling = true
        fill()
        let pool = NIOLoopBound(self, eventLoop: eventLoop)
        fillTimer = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in
            pool.value.fill()
        }
    }

    /// Starts churn and whispers.
    func startChurn() {
        let pool = NIOLoopBound(self, eventLoop: eventLoop)
        if configuration.churnPerSecond > 0 {
            churnTimer = eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                pool.value.churn()
            }
        }
        if configuration.whispersPerSecond > 0 {
            whisperTimer = eventLoop.scheduleRepeatedTask(
                initialDelay: .milliseconds(100), delay: .milliseconds(100)
            ) { _ in pool.value.whisper() }
        }
    }

    /// Stops churn, whispers and replacements.
    func stop() {
        filling = false
        for timer in [fillTimer, churnTimer, whisperTimer] { timer?.cancel() }
        fillTimer = nil
        churnTimer = nil
        whisperTimer = nil
    }

    /// Closes every client (their records are made as they go).
    func closeAll() {
        let now = PayloadTimestamp.now()
        for client in Array(live.values) { client.closeNow(now: now) }
    }

    /// The figures so far, records included.
    func takeSummary() -> Summary { summary }

    private func fill() {
        guard filling else { return }
        while connecting < configuration.maxConnecting {
            if countedMembers < configuration.members {
                open(slow: false, presence: countedPresence < configuration.presenceMembers)
            } else if countedSlow < configuration.slowClients {
                open(slow: true, presence: false)
            } else {
                return
            }
        }
    }

    private func open(slow: Bool, presence: Bool) {
        let channel: Int
        let name: String
        var user: String?
        let role: SequenceClientHandler.Role
        if slow {
            channel = -1
            name = configuration.busyChannel
            role = .slow(pause: configuration.slowPause, patience: configuration.slowPatience)
        } else {
            let range =
                presence && !configuration.presenceChannels.isEmpty
                ? configuration.presenceChannels : configuration.publicChannels
            channel = Int.random(in: range, using: &random)
            name = configuration.channels[channel]
            role = .member
            if presence && !configuration.presenceChannels.isEmpty {
                nextUser += 1
                user = "\(configuration.userPrefix)-\(nextUser)"
            }
        }
        let client = SequenceClientHandler(
            request: configuration.request, app: configuration.app, channelName: name, trackedChannel: channel,
            presenceUser: user, role: role, owner: self, stats: stats, recorder: stats.recorder(for: eventLoop))
        count(client, by: 1)
        client.isCounted = true
        client.isConnecting = true
        connecting += 1
        live[ObjectIdentifier(client)] = client
        summary.opened += 1
        if slow { summary.slowOpened += 1 }
        SequenceClientHandler.connect(client, to: configuration.address, on: eventLoop).assumeIsolated()
            .whenFailure { _ in
                self.summary.connectFailures += 1
                if !client.wasAdded { client.finish() }
            }
    }

    private func count(_ client: SequenceClientHandler, by delta: Int) {
        if client.isSlow {
            countedSlow += delta
        } else {
            countedMembers += delta
            if client.presenceUser != nil { countedPresence += delta }
        }
    }

    private func churn() {
        churnDue += configuration.churnPerSecond
        let now = PayloadTimestamp.now()
        while churnDue >= 1 && !members.isEmpty {
            churnDue -= 1
            let client = members[Int.random(in: members.indices, using: &random)]
            removeFromLists(client)
            if client.isCounted {
                client.isCounted = false
                count(client, by: -1)
            }
            if unsubscribeNext { summary.leftUnsubscribing += 1 } else { summary.leftClosing += 1 }
            client.leave(unsubscribeFirst: unsubscribeNext, now: now)
            unsubscribeNext.toggle()
        }
        churnDue = min(churnDue, 1)
        fill()
    }

    private func whisper() {
        whispersDue += configuration.whispersPerSecond / 10
        while whispersDue >= 1 && !presenceMembers.isEmpty {
            whispersDue -= 1
            whisperNumber += 1
            presenceMembers[Int.random(in: presenceMembers.indices, using: &random)].whisper(number: whisperNumber)
            summary.whispersSent += 1
        }
        whispersDue = min(whispersDue, 1)
    }

    private func removeFromLists(_ client: SequenceClientHandler) {
        Self.remove(client, from: &members, slot: \.slot)
        Self.remove(client, from: &presenceMembers, slot: \.presenceSlot)
    }

    /// Removes `client` from `list` in O(1), moving the last element into its place.
    private static func remove(
        _ client: SequenceClientHandler, from list: inout [SequenceClientHandler],
        slot: ReferenceWritableKeyPath<SequenceClientHandler, Int>
    ) {
        let index = client[keyPath: slot]
        guard index >= 0 else { return }
        let last = list.removeLast()
        if last !== client {
            list[index] = last
            last[keyPath: slot] = index
        }
        client[keyPath: slot] = -1
    }

    // MARK: SequenceClientOwner

    func clientSubscribed(_ client: SequenceClientHandler) {
        if client.isConnecting {
            client.isConnecting = false
            connecting -= 1
        }
        if !client.isSlow {
            client.slot = members.count
            members.append(client)
            if client.presenceUser != nil {
                client.presenceSlot = presenceMembers.count
                presenceMembers.append(client)
            }
        }
        fill()
    }

    func clientReceived(_ client: SequenceClientHandler, sequence: UInt64, now: UInt64) {
        guard configuration.recordArrivals, client.trackedChannel == 0, sequence > 0, sequence < 100_000_000 else {
            return
        }
        let index = Int(sequence) - 1
        if index >= summary.arrivals.count {
            summary.arrivals += repeatElement(0, count: index - summary.arrivals.count + 1024)
        }
        if summary.arrivals[index] == 0 { summary.arrivals[index] = now }
    }

    func clientReceivedWhisper(_ client: SequenceClientHandler) {
        summary.whispersReceived += 1
    }

    func clientFinished(_ client: SequenceClientHandler) {
        live[ObjectIdentifier(client)] = nil
        if client.isConnecting {
            client.isConnecting = false
            connecting -= 1
            if client.wasAdded { summary.subscribeFailures += 1 }
        }
        let wasActive = client.slot >= 0
        removeFromLists(client)
        if client.isCounted {
            client.isCounted = false
            count(client, by: -1)
        }
        if client.isSlow {
            if client.subscribedAt != nil {
                switch client.ending {
                case .serverClose(4100): summary.slowClosedWith4100 += 1
                case .serverClose: summary.slowClosedOtherCode += 1
                case .serverDrop: summary.slowDropped += 1
                case .client, .open:
                    if client.outlastedPatience { summary.slowNotClosed += 1 } else { summary.slowOpenAtEnd += 1 }
                }
            }
        } else if let subscribedAt = client.subscribedAt {
            if wasActive {
                switch client.ending {
                case .serverClose(let code):
                    summary.membersClosedByServer += 1
                    summary.memberCloseCodes[code, default: 0] += 1
                case .serverDrop:
                    summary.membersClosedByServer += 1
                    summary.memberCloseCodes[1006, default: 0] += 1
                case .client, .open:
                    break
                }
            }
            summary.records.append(
                ClientRecord(
                    channel: client.trackedChannel, subscribedAt: subscribedAt,
                    leftAt: client.leftAt ?? PayloadTimestamp.now(), sequences: client.sequences))
        }
    }
}

@available(*, unavailable)
extension ClientPool: Sendable {}

/// The async side's handle on the pools of every loop.
extension [NIOLoopBound<ClientPool>] {
    /// One pool per loop, loop `i` configured by `configuration(i)`.
    static func make(
        loops: [any EventLoop], stats: DeliveryStats,
        configuration: (Int) -> ClientPool.Configuration
    ) async throws -> Self {
        var pools: Self = []
        for (index, loop) in loops.enumerated() {
            let configuration = configuration(index)
            pools.append(
                try await loop.submit {
                    NIOLoopBound(
                        ClientPool(eventLoop: loop, configuration: configuration, stats: stats), eventLoop: loop)
                }.get())
        }
        return pools
    }

    /// Runs `body` on each pool's loop, one after the other.
    func each(_ body: @escaping @Sendable (ClientPool) -> Void) async throws {
        for pool in self { try await pool.eventLoop.submit { body(pool.value) }.get() }
    }

    var counts: ClientPool.Counts {
        get async throws {
            var total = ClientPool.Counts()
            for pool in self { total = total + (try await pool.eventLoop.submit { pool.value.counts }.get()) }
            return total
        }
    }

    var summary: ClientPool.Summary {
        get async throws {
            var total = ClientPool.Summary()
            for pool in self { total.merge(try await pool.eventLoop.submit { pool.value.takeSummary() }.get()) }
            return total
        }
    }
}
