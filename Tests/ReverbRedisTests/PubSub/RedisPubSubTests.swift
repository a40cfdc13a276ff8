import NIOCore
import ReverbRedis
import Testing

@Suite("RedisPublisher and RedisSubscriber", .enabled(if: TestRedis.isConfigured, TestRedis.disabledReason))
struct RedisPubSubTests {
    @Test func roundTripInOrder() async throws {
        let configuration = try TestRedis.configuration()
        let channel = TestRedis.uniqueChannel()
        let received = Collector<RedisPubSubMessage>()
        let subscriber = RedisSubscriber(configuration: configuration, channels: [channel]) { received.append($0) }
        let publisher = RedisPublisher(configuration: configuration)
        #expect(!subscriber.linkState.isConnected)
        let payloads = (0..<100).map { ByteBuffer(bytes: Array("message \($0)\r\n".utf8) + [0, UInt8($0)]) }
        try await withRunning([subscriber.run]) {
            try await eventually("subscribed") { subscriber.linkState.isConnected }
            // Published before the publisher is ready: queued, then sent in order.
            for payload in payloads.prefix(50) { publisher.publish(payload, to: channel) }
            try await withRunning([publisher.run]) {
                try await eventually("publisher ready") { publisher.linkState.isConnected }
                for payload in payloads.dropFirst(50) { publisher.publish(payload, to: channel) }
                try await eventually("100 messages") { received.all.count == 100 }
            }
        }
        #expect(received.all.map(\.payload) == payloads)
        #expect(received.all.allSatisfy { $0.channel == channel })
        #expect(publisher.droppedMessageCount == 0)
        #expect(!publisher.linkState.isConnected, "cancelling run() closes the connection")
    }

    @Test func queueBoundAppliesOnlyWhileDisconnected() async throws {
        let configuration = try TestRedis.configuration()
        let channel = TestRedis.uniqueChannel()
        let received = Collector<String>()
        let subscriber = RedisSubscriber(configuration: configuration, channels: [channel]) {
            received.append(String(buffer: $0.payload))
        }
        let publisher = RedisPublisher(configuration: configuration, queueCapacity: 10)
        let sent = (0..<2000).map { "burst \($0)" }
        try await withRunning([subscriber.run, publisher.run]) {
            try await eventually("both ready") { subscriber.linkState.isConnected && publisher.linkState.isConnected }
            for text in sent { publisher.publish(ByteBuffer(string: text), to: channel) }
            try await eventually("2000 messages") { received.all.count == sent.count }
        }
        #expect(received.all == sent)
        #expect(publisher.droppedMessageCount == 0)
    }

    /// The `redis-outage` bench lost a node's whole queue when its publisher was back before the
    /// other node's subscriber; after a reconnect the gate holds the queue until the subscribers are
    /// there.
    @Test func gateHoldsTheQueueAfterAReconnectUntilTheExpectedSubscribersAreBack() async throws {
        let configuration = try TestRedis.configuration()
        let channel = TestRedis.uniqueChannel()
        let first = Collector<String>()
        let second = Collector<String>()
        let early = RedisSubscriber(configuration: configuration, channels: [channel]) {
            first.append(String(buffer: $0.payload))
        }
        let late = RedisSubscriber(configuration: configuration, channels: [channel]) {
            second.append(String(buffer: $0.payload))
        }
        let connects = Collector<Bool>()
        let publisher = RedisPublisher(
            configuration: configuration, options: Self.options(name: "gate-\(channel)"),
            gate: SubscriberGate(channel: channel, expectedSubscribers: { 2 }, maximumHold: .seconds(30)),
            onLinkStateChange: { if $0.isConnected { connects.append(true) } })
        let sent = (0..<20).map { "held \($0)" }
        try await withRunning([early.run, publisher.run]) {
            try await eventually("ready") { early.linkState.isConnected && publisher.linkState.isConnected }
            // The first connect is not held.
            publisher.publish(ByteBuffer(string: "first"), to: channel)
            try await eventually("first") { first.all == ["first"] }
            try await Self.kill(client: "gate-\(channel)", configuration: configuration)
            try await eventually("reconnected") { connects.all.count == 2 && publisher.linkState.isConnected }
            for text in sent { publisher.publish(ByteBuffer(string: text), to: channel) }
            // One subscriber of two: held (the gate polls every 100 ms; 500 ms is five polls).
            try await Task.sleep(for: .milliseconds(500))
            #expect(first.all == ["first"], "released with one subscriber of two")
            #expect(publisher.queuedMessageCount == sent.count)
            try await withRunning([late.run]) {
                try await eventually("both subscribers got everything") {
                    first.all.count == sent.count + 1 && second.all.count == sent.count
                }
            }
            // Released: later messages go straight out.
            publisher.publish(ByteBuffer(string: "after"), to: channel)
            try await eventually("after") { first.all.last == "after" }
        }
        #expect(first.all == ["first"] + sent + ["after"])
        #expect(second.all == sent)
    }

    @Test func gateReleasesAfterItsMaximumHold() async throws {
        let configuration = try TestRedis.configuration()
        let channel = TestRedis.uniqueChannel()
        let received = Collector<String>()
        let subscriber = RedisSubscriber(configuration: configuration, channels: [channel]) {
            received.append(String(buffer: $0.payload))
        }
        let connects = Collector<Bool>()
        let publisher = RedisPublisher(
            configuration: configuration, options: Self.options(name: "gate-\(channel)"),
            gate: SubscriberGate(channel: channel, expectedSubscribers: { 3 }, maximumHold: .milliseconds(300)),
            onLinkStateChange: { if $0.isConnected { connects.append(true) } })
        try await withRunning([subscriber.run, publisher.run]) {
            try await eventually("ready") { subscriber.linkState.isConnected && publisher.linkState.isConnected }
            try await Self.kill(client: "gate-\(channel)", configuration: configuration)
            try await eventually("reconnected") { connects.all.count == 2 && publisher.linkState.isConnected }
            let start = ContinuousClock.now
            for index in 0..<5 { publisher.publish(ByteBuffer(string: "m\(index)"), to: channel) }
            try await eventually("released") { received.all.count == 5 }
            #expect(ContinuousClock.now - start >= .milliseconds(100), "released long before the hold was over")
        }
        #expect(received.all == (0..<5).map { "m\($0)" })
    }

    private static func options(name: String) -> RedisClientOptions {
        RedisClientOptions(
            role: "publisher", clientName: name,
            reconnectPolicy: RedisReconnectPolicy(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(200)))
    }

    /// Closes the connection named `client` on the shared server (`CLIENT KILL ID`).
    private static func kill(client: String, configuration: RedisConnectionConfiguration) async throws {
        let admin = try await RedisConnection.connect(configuration: configuration)
        defer { Task { await admin.close() } }
        guard case .bulkString(let list?) = try await admin.send(["CLIENT", "LIST"]) else {
            throw RESPError(message: "no client list")
        }
        let line = String(buffer: list).split(separator: "\n").first { $0.contains(" name=\(client) ") }
        guard let id = line?.split(separator: " ").first(where: { $0.hasPrefix("id=") })?.dropFirst(3) else {
            throw RESPError(message: "no client named \(client)")
        }
        _ = try await admin.send(["CLIENT", "KILL", "ID", String(id)])
    }
}

/// Tests that kill, restart or freeze their own `redis-server`.
@Suite("Redis outages (own redis-server)", .enabled(if: TestRedis.isConfigured, TestRedis.disabledReason))
struct RedisOutageTests {
    private static let fast = RedisReconnectPolicy(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(200))

    /// A publisher and a subscriber with their own ACL users. Pub/sub has no replay, so to see the
    /// queue flushed the test must know the subscriber is back first: it restarts Redis with the
    /// publisher's user disabled and enables it once the subscriber has resubscribed.
    private static func aclArguments(publisherEnabled: Bool) -> [String] {
        ["--user", "publisher", publisherEnabled ? "on" : "off", ">pubpass", "~*", "&*", "+@all"]
            + ["--user", "subscriber", "on", ">subpass", "~*", "&*", "+@all"]
    }

    private static func numberOfSubscribers(_ channel: String, on server: RedisServerProcess) async throws -> Int64 {
        let admin = try await RedisConnection.connect(configuration: server.configuration())
        defer { Task { await admin.close() } }
        guard case .array(let reply?) = try await admin.send(["PUBSUB", "NUMSUB", channel]),
            case .integer(let count) = reply.last
        else { return -1 }
        return count
    }

    private static func enablePublisher(on server: RedisServerProcess) async throws {
        let admin = try await RedisConnection.connect(configuration: server.configuration())
        _ = try await admin.send(["ACL", "SETUSER", "publisher", "on"])
        await admin.close()
    }

    @Test func restartFlushesQueueInOrderAndResubscribes() async throws {
        let server = try await RedisServerProcess.start(Self.aclArguments(publisherEnabled: true))
        defer { server.stop() }
        let channel = TestRedis.uniqueChannel()
        let received = Collector<String>()
        let subscriberStates = Collector<Bool>()
        let subscriber = RedisSubscriber(
            configuration: server.configuration(username: "subscriber", password: "subpass"),
            channels: [channel],
            options: RedisClientOptions(role: "subscriber", reconnectPolicy: Self.fast),
            onLinkStateChange: { subscriberStates.append($0.isConnected) },
            onMessage: { received.append(String(buffer: $0.payload)) }
        )
        let publisherStates = Collector<Bool>()
        let publisher = RedisPublisher(
            configuration: server.configuration(username: "publisher", password: "pubpass"),
            options: RedisClientOptions(role: "publisher", reconnectPolicy: Self.fast),
            onLinkStateChange: { publisherStates.append($0.isConnected) }
        )
        try await withRunning([subscriber.run, publisher.run]) {
            try await eventually("both ready") { subscriber.linkState.isConnected && publisher.linkState.isConnected }
            publisher.publish(ByteBuffer(string: "before"), to: channel)
            try await eventually("first message") { received.all == ["before"] }

            try await server.kill()
            try await eventually("outage noticed") {
                !subscriber.linkState.isConnected && !publisher.linkState.isConnected
            }
            for index in 1...5 { publisher.publish(ByteBuffer(string: "queued \(index)"), to: channel) }
            #expect(publisher.queuedMessageCount == 5)

            try await server.start(arguments: Self.aclArguments(publisherEnabled: false))
            try await eventually("resubscribed") { subscriber.linkState.isConnected }
            #expect(try await Self.numberOfSubscribers(channel, on: server) == 1)
            #expect(publisher.queuedMessageCount == 5, "the publisher cannot authenticate yet")
            try await Self.enablePublisher(on: server)

            try await eventually("queued messages") { received.all.count == 6 }
            publisher.publish(ByteBuffer(string: "after"), to: channel)
            try await eventually("message after restart") { received.all.count == 7 }
        }
        #expect(received.all == ["before", "queued 1", "queued 2", "queued 3", "queued 4", "queued 5", "after"])
        // One change each way, however many attempts failed during the outage.
        #expect(subscriberStates.all == [true, false, true, false])
        #expect(publisherStates.all == [true, false, true, false])
        #expect(publisher.droppedMessageCount == 0)
    }

    @Test func fullQueueDropsTheOldest() async throws {
        let server = try await RedisServerProcess.start(Self.aclArguments(publisherEnabled: false))
        defer { server.stop() }
        let channel = TestRedis.uniqueChannel()
        let received = Collector<String>()
        let subscriber = RedisSubscriber(
            configuration: server.configuration(username: "subscriber", password: "subpass"),
            channels: [channel],
            options: RedisClientOptions(role: "subscriber", reconnectPolicy: Self.fast),
            onMessage: { received.append(String(buffer: $0.payload)) }
        )
        let publisher = RedisPublisher(
            configuration: server.configuration(username: "publisher", password: "pubpass"),
            queueCapacity: 3,
            options: RedisClientOptions(role: "publisher", reconnectPolicy: Self.fast)
        )
        try await withRunning([subscriber.run, publisher.run]) {
            for index in 1...5 { publisher.publish(ByteBuffer(string: "m\(index)"), to: channel) }
            #expect(publisher.droppedMessageCount == 2)
            #expect(publisher.queuedMessageCount == 3)
            try await eventually("subscribed") { subscriber.linkState.isConnected }
            try await Self.enablePublisher(on: server)
            try await eventually("three messages") { received.all.count == 3 }
        }
        #expect(received.all == ["m3", "m4", "m5"])
    }

    @Test func unansweredPingClosesTheConnection() async throws {
        let server = try await RedisServerProcess.start()
        defer { server.stop() }
        var configuration = server.configuration()
        configuration.connectTimeout = .seconds(1)
        let log = CapturedLog()
        let publisher = RedisPublisher(
            configuration: configuration,
            options: RedisClientOptions(
                role: "publisher", reconnectPolicy: Self.fast, pingInterval: .milliseconds(1500)),
            logger: log.logger
        )
        let unanswered = "did not answer PING"
        let admin = try await RedisConnection.connect(configuration: server.configuration(), pingInterval: nil)
        try await withRunning([publisher.run]) {
            try await eventually("ready") { publisher.linkState.isConnected }
            // A healthy connection survives several health checks (connect PINGs: 2, then one per
            // interval). Asked of the log, not of the link: what is under test is that no health check
            // closed it (a reconnect for another reason, seen once on a loaded CI machine, is not).
            try await eventually("three health-check PINGs") {
                let stats = try await admin.send(["INFO", "commandstats"]).string ?? ""
                let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_ping:calls=") }
                let calls = line.flatMap { Int($0.dropFirst("cmdstat_ping:calls=".count).prefix { $0.isNumber }) }
                return (calls ?? 0) >= 5
            }
            #expect(!log.all.contains { $0.contains(unanswered) }, "\(log.all)")
            #expect(publisher.linkState.isConnected)
            await admin.close()
            server.suspend(true)  // the socket stays open, nothing answers
            try await eventually("frozen Redis detected") { !publisher.linkState.isConnected }
            #expect(log.all.contains { $0.contains(unanswered) && $0.contains("1500 ms") }, "\(log.all)")
            server.suspend(false)
            try await eventually("reconnected") { publisher.linkState.isConnected }
        }
    }

}
