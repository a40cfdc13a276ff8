import Foundation
import Logging
import NIOCore
import Testing

@testable import ReverbRedis

@Suite("RedisSentinelEndpoint rules")
struct RedisSentinelRulesTests {
    typealias Endpoint = RedisConnectionConfiguration.Endpoint
    static let a = Endpoint.tcp(host: "10.0.0.1", port: 26379)
    static let b = Endpoint.tcp(host: "10.0.0.2", port: 26379)
    static let c = Endpoint.tcp(host: "10.0.0.3", port: 26379)

    @Test func theSentinelThatAnsweredMovesToTheFront() {
        #expect(RedisSentinelEndpoint.preferring(Self.c, in: [Self.a, Self.b, Self.c]) == [Self.c, Self.a, Self.b])
        #expect(RedisSentinelEndpoint.preferring(Self.a, in: [Self.a, Self.b, Self.c]) == [Self.a, Self.b, Self.c])
        #expect(RedisSentinelEndpoint.preferring(Self.b, in: [Self.a, Self.c]) == [Self.a, Self.c])
    }

    @Test func masterAddressReply() {
        let reply = RESPValue.array([
            .bulkString(ByteBuffer(string: "10.0.0.9")), .bulkString(ByteBuffer(string: "6380")),
        ])
        #expect(RedisSentinelEndpoint.address(fromReply: reply) == .tcp(host: "10.0.0.9", port: 6380))
        #expect(RedisSentinelEndpoint.address(fromReply: .bulkString(nil)) == nil, "a sentinel not knowing the master")
        let badPort = RESPValue.array([.bulkString(ByteBuffer(string: "h")), .bulkString(ByteBuffer(string: "0"))])
        #expect(RedisSentinelEndpoint.address(fromReply: badPort) == nil)
        #expect(RedisSentinelEndpoint.address(fromReply: .error("ERR unknown")) == nil)
    }

    @Test func roleReply() {
        let primary = RESPValue.array([.bulkString(ByteBuffer(string: "master")), .integer(0), .array([])])
        let replica = RESPValue.array([.bulkString(ByteBuffer(string: "slave")), .bulkString(ByteBuffer(string: "h"))])
        #expect(RedisSentinelEndpoint.role(fromReply: primary) == "master")
        #expect(RedisSentinelEndpoint.role(fromReply: replica) == "slave")
        #expect(RedisSentinelEndpoint.role(fromReply: .simpleString("OK")) == nil)
    }

    @Test func switchMasterMessage() {
        let text = "mymaster 127.0.0.1 6379 127.0.0.1 6380"
        let change = RedisSentinelEndpoint.switchMaster(text, master: "mymaster")
        #expect(change?.old == .tcp(host: "127.0.0.1", port: 6379))
        #expect(change?.new == .tcp(host: "127.0.0.1", port: 6380))
        #expect(RedisSentinelEndpoint.switchMaster(text, master: "other") == nil)
        #expect(RedisSentinelEndpoint.switchMaster("mymaster 127.0.0.1 x 127.0.0.1 6380", master: nil) == nil)
        #expect(RedisSentinelEndpoint.switchMaster("mymaster 127.0.0.1 6379", master: nil) == nil)
    }

    @Test func aSwitchClosesOnlyConnectionsElsewhereAndIsCountedOnce() {
        let endpoint = RedisSentinelEndpoint(
            sentinel: RedisSentinelConfiguration(sentinels: [Self.a, Self.b]), dataNode: RedisConnectionConfiguration())
        let logger = Logger(label: "test")
        endpoint.primaryChanged(to: .tcp(host: "p", port: 1), announcedBy: Self.b, logger: logger)
        #expect(endpoint.switchCount == 0, "the first answer is no switch")
        #expect(endpoint.sentinelOrder == [Self.b, Self.a])
        endpoint.heard(
            RedisPubSubMessage(channel: "+switch-master", payload: ByteBuffer(string: "mymaster p 1 q 2")),
            from: Self.a,
            logger: logger)
        #expect(endpoint.primary == .tcp(host: "q", port: 2))
        #expect(endpoint.switchCount == 1)
        #expect(endpoint.sentinelOrder == [Self.a, Self.b])
        endpoint.primaryChanged(to: .tcp(host: "q", port: 2), announcedBy: Self.b, logger: logger)
        #expect(endpoint.switchCount == 1, "the same primary from another sentinel")
        endpoint.heard(
            RedisPubSubMessage(channel: "+switch-master", payload: ByteBuffer(string: "other q 2 r 3")), from: Self.a,
            logger: logger)
        #expect(endpoint.primary == .tcp(host: "q", port: 2), "another master's switch")
    }

    /// A backoff of an hour ends once the primary changes (switches repeat until it does, so the
    /// pause cannot miss one that came before it started; the time limit fails a pause that runs on).
    @Test(.timeLimit(.minutes(1))) func aSwitchEndsTheBackoffAtOnce() async throws {
        let endpoint = RedisSentinelEndpoint(
            sentinel: RedisSentinelConfiguration(sentinels: [Self.a]), dataNode: RedisConnectionConfiguration())
        let logger = Logger(label: "test")
        endpoint.primaryChanged(to: .tcp(host: "p", port: 1), announcedBy: nil, logger: logger)
        let done = Collector<Bool>()
        let pause = Task {
            try await endpoint.pause(for: .seconds(3600))
            done.append(true)
        }
        var port = 1
        while done.all.isEmpty {
            port += 1
            endpoint.primaryChanged(to: .tcp(host: "p", port: port), announcedBy: nil, logger: logger)
            try await Task.sleep(for: .milliseconds(100))
        }
        try await pause.value
        #expect(endpoint.switchCount == port - 1)
    }

    @Test func noSentinelAnsweringNamesTheMasterAndEverySentinel() async throws {
        let closed = [try await RedisServerProcess.freePort(), try await RedisServerProcess.freePort()]
        let sentinels = closed.map { Endpoint.tcp(host: "127.0.0.1", port: $0) }
        let endpoint = RedisSentinelEndpoint(
            sentinel: RedisSentinelConfiguration(sentinels: sentinels, masterName: "cache"),
            dataNode: RedisConnectionConfiguration())
        let error = await #expect(throws: RedisConnectionError.self) {
            try await endpoint.resolve(logger: Logger(label: "test"))
        }
        // The ports were free a moment ago; what refuses (or, taken meanwhile, resets) is not the point.
        let message = error?.message ?? ""
        #expect(message.hasPrefix("No sentinel named the primary of \"cache\" (asked 2): 127.0.0.1:\(closed[0]): "))
        #expect(message.contains("; 127.0.0.1:\(closed[1]): "), "\(message)")
    }
}

/// Against a real Sentinel deployment (`RedisSentinelDeployment`: primary, replica, three
/// sentinels) started by each test.
@Suite("Redis Sentinel (own deployment)", .enabled(if: TestRedis.isConfigured, TestRedis.disabledReason))
struct RedisSentinelTests {
    let logger = Logger(label: "sentinel-test")

    /// Resolve, the ROLE check, a publisher and subscriber over Sentinel, then a manual failover
    /// (`SENTINEL FAILOVER`): the old primary stays up as a replica, so only `+switch-master` can
    /// move the clients.
    @Test func clientsFollowAManualFailoverAndNeverUseAReplica() async throws {
        let deployment = try await RedisSentinelDeployment.start(master: "sentinel-manual")
        defer { deployment.stop() }
        let factory = try RedisClientFactory(settings: deployment.settings())
        let endpoint = try #require(factory.sentinelEndpoint)
        let primary = RedisConnectionConfiguration.Endpoint.tcp(host: "127.0.0.1", port: deployment.primaryPort)
        let replica = RedisConnectionConfiguration.Endpoint.tcp(host: "127.0.0.1", port: deployment.replicaPort)

        let resolved = try await endpoint.resolve(logger: logger)
        #expect(resolved.endpoint == primary)
        // A sentinel that is down is skipped, and the one that answered is asked first next time.
        let down = RedisConnectionConfiguration.Endpoint.tcp(
            host: "127.0.0.1", port: try await RedisServerProcess.freePort())
        let skipping = RedisSentinelEndpoint(
            sentinel: RedisSentinelConfiguration(
                sentinels: [down, deployment.sentinels[1]], masterName: deployment.master),
            dataNode: factory.configuration)
        let found = try await skipping.resolve(logger: logger)
        #expect(found.endpoint == primary)
        #expect(skipping.sentinelOrder == [deployment.sentinels[1], down])
        // A sentinel that does not know the master is skipped too, and named in the error.
        let unknown = RedisSentinelEndpoint(
            sentinel: RedisSentinelConfiguration(sentinels: [deployment.sentinels[2]], masterName: "no-such-master"),
            dataNode: factory.configuration)
        let error = await #expect(throws: RedisConnectionError.self) { try await unknown.resolve(logger: logger) }
        #expect(
            error?.message
                == "No sentinel named the primary of \"no-such-master\" (asked 1): \(deployment.sentinels[2]) does not know it"
        )
        try await expectRefused(replica, by: endpoint, role: "a replica")
        try await expectROLERefusalNamesTheACL(on: primary, deployment: deployment, endpoint: endpoint)

        let channel = TestRedis.uniqueChannel()
        let names = ["publisher", "subscriber"].map { "sentinel-test-\($0)-\(UUID().uuidString.prefix(8))" }
        let received = Collector<String>()
        let publisherDown = Collector<ContinuousClock.Instant>()
        let publisher = factory.makeBusPublisher(
            clientName: names[0], logger: logger,
            onLinkStateChange: { if !$0.isConnected { publisherDown.append(.now) } })
        let subscriber = factory.makeBusSubscriber(channels: [channel], clientName: names[1], logger: logger) {
            received.append(String(buffer: $0.payload))
        }
        let announced = Collector<ContinuousClock.Instant>()
        let listeners = try await listenForSwitches(deployment) { announced.append(.now) }
        defer { for listener in listeners { listener.channel.close(promise: nil) } }

        try await withRunning([publisher.run, subscriber.run]) {
            try await eventually("both connected") {
                publisher.linkState.isConnected && subscriber.linkState.isConnected
            }
            publisher.publish(ByteBuffer(string: "before"), to: channel)
            try await eventually("before") { received.all == ["before"] }
            #expect(Set(try await deployment.clientNames(port: deployment.primaryPort)).isSuperset(of: names))
            let downsBefore = publisherDown.all.count

            _ = try await deployment.command(
                ["SENTINEL", "FAILOVER", deployment.master], port: portOf(deployment.sentinels[0]))
            try await eventually("the clients on the new primary", timeout: .seconds(20)) {
                guard endpoint.primary == replica, publisher.linkState.isConnected, subscriber.linkState.isConnected
                else { return false }
                return Set(try await deployment.clientNames(port: deployment.replicaPort)).isSuperset(of: names)
            }
            let onOld = Set(try await deployment.clientNames(port: deployment.primaryPort))
            #expect(onOld.isDisjoint(with: names), "a connection stayed on the demoted primary")
            #expect(endpoint.switchCount == 1)
            publisher.publish(ByteBuffer(string: "after"), to: channel)
            try await eventually("after") { received.all == ["before", "after"] }

            let firstAnnouncement = try #require(announced.all.min())
            let down = try #require(publisherDown.all.dropFirst(downsBefore).first)
            print(
                "Sentinel manual failover: connections closed \(down - firstAnnouncement) after the first +switch-master"
            )
            #expect(down - firstAnnouncement < .seconds(3), "closed long after the switch was announced")
        }
        // The old primary, reconfigured as a replica by the sentinels, is refused if named again.
        try await eventually("the old primary demoted", timeout: .seconds(20)) {
            RedisSentinelEndpoint.role(fromReply: try await deployment.command(["ROLE"], port: deployment.primaryPort))
                == "slave"
        }
        try await expectRefused(primary, by: endpoint, role: "a replica")
    }

    /// SIGKILL of the primary while a publisher sends every 20 ms: the sentinels promote the replica,
    /// publisher and subscriber reconnect to it, and the messages flow again, in order.
    @Test func clientsFollowAKilledPrimary() async throws {
        let deployment = try await RedisSentinelDeployment.start(master: "sentinel-kill")
        defer { deployment.stop() }
        let factory = try RedisClientFactory(settings: deployment.settings())
        let endpoint = try #require(factory.sentinelEndpoint)
        let channel = TestRedis.uniqueChannel()
        let received = Collector<(Int, ContinuousClock.Instant)>()
        // As in a cluster node: after a reconnect the queue waits for the subscriber.
        let publisher = factory.makeBusPublisher(
            gate: SubscriberGate(channel: channel, expectedSubscribers: { 1 }), logger: logger)
        let subscriber = factory.makeBusSubscriber(channels: [channel], logger: logger) {
            received.append((Int(String(buffer: $0.payload)) ?? -1, .now))
        }
        var sent = 0
        var sentAt: [ContinuousClock.Instant] = []
        var killedAt: ContinuousClock.Instant?
        var sentAtKill = 0
        try await withRunning([publisher.run, subscriber.run]) {
            try await eventually("both connected") {
                publisher.linkState.isConnected && subscriber.linkState.isConnected
            }
            let deadline = ContinuousClock.now + .seconds(25)
            while ContinuousClock.now < deadline {
                publisher.publish(ByteBuffer(string: String(sent)), to: channel)
                sentAt.append(.now)
                sent += 1
                if sent == 25 {
                    try deployment.killPrimary()
                    killedAt = .now
                    sentAtKill = sent
                }
                // Resumed: a message sent after the kill arrived; then one more second of traffic.
                if killedAt != nil, let resumed = received.all.first(where: { $0.0 >= sentAtKill })?.1,
                    ContinuousClock.now - resumed > .seconds(1)
                {
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            try await eventually("the queue flushed") { publisher.queuedMessageCount == 0 }
            try await eventually("the last message", timeout: .seconds(5)) {
                received.all.last?.0 == sent - 1
            }
        }
        let numbers = received.all.map(\.0)
        let killed = try #require(killedAt)
        let resumed = try #require(received.all.first { $0.0 >= sentAtKill }?.1, "no message after the kill arrived")
        let lost = sent - Set(numbers).count
        let missing = Set(0..<sent).subtracting(numbers).sorted().map { $0 - sentAtKill }
        print(
            "Sentinel SIGKILL failover: delivery resumed \(resumed - killed) after the kill; "
                + "\(lost) of \(sent) messages lost (one every 20 ms; relative to the kill: \(missing))")
        #expect(endpoint.primary == .tcp(host: "127.0.0.1", port: deployment.replicaPort))
        #expect(numbers == numbers.sorted() && Set(numbers).count == numbers.count, "out of order or duplicated")
        // Lost: what was written to the old primary's socket before the node saw it close: 0 or 1,
        // 8 once and 35 once (the first 640 ms after the kill) on a loaded machine whose event loops
        // ran late. A broken queue or gate loses the rest of the outage too, up to the resumption: so
        // what is lost must start next to the kill and stay within the outage's first half.
        let outage = sentAt.filter { $0 >= killed && $0 < resumed }.count
        #expect(
            missing.allSatisfy { $0 >= -25 && $0 < max(25, outage / 2) },
            "lost more than those written as the primary died: \(missing) of an outage of \(outage)")
        #expect(resumed - killed < .seconds(15))
    }

    private func expectRefused(
        _ server: RedisConnectionConfiguration.Endpoint, by endpoint: RedisSentinelEndpoint, role: String
    ) async throws {
        let connection = try await RedisConnection.connect(
            configuration: RedisConnectionConfiguration(endpoint: server), pingInterval: nil)
        defer { connection.channel.close(promise: nil) }
        let refusal = await #expect(throws: RedisConnectionError.self) {
            try await endpoint.accept(connection, logger: logger)
        }
        #expect(refusal?.kind == .notPrimary)
        #expect(refusal?.message.contains("\(server) is \(role), not the primary of \"") == true)
    }

    /// An ACL user without `+role` cannot be checked: refused, saying what to grant.
    private func expectROLERefusalNamesTheACL(
        on primary: RedisConnectionConfiguration.Endpoint, deployment: RedisSentinelDeployment,
        endpoint: RedisSentinelEndpoint
    ) async throws {
        _ = try await deployment.command(
            ["ACL", "SETUSER", "no-role", "on", ">pw", "~*", "&*", "+@pubsub", "+ping"], port: deployment.primaryPort)
        let connection = try await RedisConnection.connect(
            configuration: RedisConnectionConfiguration(endpoint: primary, username: "no-role", password: "pw"),
            pingInterval: nil)
        defer { connection.channel.close(promise: nil) }
        let refusal = await #expect(throws: RedisConnectionError.self) {
            try await endpoint.accept(connection, logger: logger)
        }
        #expect(refusal?.message.hasPrefix("Redis refused ROLE: NOPERM") == true, "\(String(describing: refusal))")
        #expect(refusal?.message.hasSuffix("allow +role for the ACL user)") == true)
    }

    /// A connection to each sentinel subscribed to `+switch-master`, calling `heard` on each message.
    private func listenForSwitches(
        _ deployment: RedisSentinelDeployment, heard: @escaping @Sendable () -> Void
    ) async throws -> [RedisConnection] {
        var connections: [RedisConnection] = []
        for sentinel in deployment.sentinels {
            let connection = try await RedisConnection.connect(
                configuration: RedisConnectionConfiguration(endpoint: sentinel), pingInterval: nil,
                onMessage: { _ in heard() })
            try await connection.subscribe(to: ["+switch-master"])
            connections.append(connection)
        }
        return connections
    }

    private func portOf(_ endpoint: RedisConnectionConfiguration.Endpoint) -> Int {
        if case .tcp(_, let port) = endpoint { return port }
        return 0
    }
}
