import Foundation
import NIOCore
import ReverbRedis
import Testing

/// The Redis Streams transport: `RedisPublisher` in stream mode and `RedisStreamReader`.
@Suite("Redis Streams transport", .enabled(if: TestRedis.isConfigured, TestRedis.disabledReason))
struct RedisStreamTests {
    static let fast = RedisReconnectPolicy(initialDelay: .milliseconds(20), maximumDelay: .milliseconds(200))

    /// Every sequence number 1...count present, first copies in order (a retry may add a second copy).
    static func expectExactlyOnceInOrder(_ entries: [RedisStreamEntry], count: Int, origin: String) {
        var seen = Set<UInt64>()
        var firstCopies: [UInt64] = []
        for entry in entries where entry.origin == origin && seen.insert(entry.sequence).inserted {
            firstCopies.append(entry.sequence)
        }
        #expect(firstCopies == (1...UInt64(count)).map { $0 })
        for entry in entries { #expect(String(buffer: entry.payload) == "m\(entry.sequence)") }
    }

    static func publisher(_ configuration: RedisConnectionConfiguration, origin: String, ping: Duration? = .seconds(10))
        -> RedisPublisher
    {
        RedisPublisher(
            configuration: configuration,
            options: RedisClientOptions(role: "publisher", reconnectPolicy: fast, pingInterval: ping),
            mode: .stream(maxLength: 10_000, origin: origin))
    }

    static func reader(
        _ configuration: RedisConnectionConfiguration, stream: String, name: String? = nil,
        entries: Collector<RedisStreamEntry>, gaps: Collector<String>
    ) -> RedisStreamReader {
        RedisStreamReader(
            configuration: configuration, stream: stream,
            options: RedisClientOptions(role: "subscriber", clientName: name, reconnectPolicy: fast),
            onGap: { gaps.append($0) }, onEntry: { entries.append($0) })
    }

    @Test("appended with origin and sequence; a reader starts at the newest entry and resumes after CLIENT KILL")
    func resumesAfterClientKill() async throws {
        let configuration = try TestRedis.configuration()
        let stream = TestRedis.uniqueChannel()
        let entries = Collector<RedisStreamEntry>()
        let gaps = Collector<String>()
        let name = "stream-reader-\(UUID().uuidString.prefix(8))"
        let early = Self.publisher(configuration, origin: "early")
        let publisher = Self.publisher(configuration, origin: "o1")
        let reader = Self.reader(configuration, stream: stream, name: name, entries: entries, gaps: gaps)
        let admin = try await RedisConnection.connect(configuration: configuration, pingInterval: nil)
        try await withRunning([early.run]) {
            // Entries from before the reader first connected are not replayed.
            early.publish(ByteBuffer(string: "old"), to: stream)
            try await eventually("old entry appended") { early.queuedMessageCount == 0 }
        }
        try await withRunning([reader.run, publisher.run]) {
            try await eventually("reader ready") { reader.linkState.isConnected }
            for index in 1...50 { publisher.publish(ByteBuffer(string: "m\(index)"), to: stream) }
            try await eventually("50 entries") { entries.all.count == 50 }
            let list = try await admin.send(["CLIENT", "LIST"]).string ?? ""
            let id = list.split(separator: "\n").first { $0.contains("name=\(name) ") }?
                .split(separator: " ").first { $0.hasPrefix("id=") }?.dropFirst(3)
            _ = try await admin.send(["CLIENT", "KILL", "ID", String(try #require(id))])
            for index in 51...100 { publisher.publish(ByteBuffer(string: "m\(index)"), to: stream) }
            try await eventually("100 entries") { Set(entries.all.map(\.sequence)).count == 100 }
            // The reader can see an entry before the publisher has read Redis's answer to its XADD.
            try await eventually("every append answered") { publisher.queuedMessageCount == 0 }
        }
        await admin.close()
        #expect(!entries.all.contains { $0.origin == "early" })
        Self.expectExactlyOnceInOrder(entries.all, count: 100, origin: "o1")
        #expect(entries.all.count == 100, "no retry was needed")
        #expect(gaps.all.isEmpty)
    }

    @Test("a frozen Redis loses nothing: unanswered appends wait, and go again after the health check")
    func frozenRedis() async throws {
        let server = try await RedisServerProcess.start()
        defer { server.stop() }
        let stream = TestRedis.uniqueChannel()
        let entries = Collector<RedisStreamEntry>()
        let gaps = Collector<String>()
        let publisher = Self.publisher(server.configuration(), origin: "o1", ping: .milliseconds(500))
        let reader = Self.reader(server.configuration(), stream: stream, entries: entries, gaps: gaps)
        try await withRunning([reader.run, publisher.run]) {
            try await eventually("ready") { reader.linkState.isConnected && publisher.linkState.isConnected }
            publisher.publish(ByteBuffer(string: "m1"), to: stream)
            try await eventually("first entry") { entries.all.count == 1 }
            server.suspend(true)
            for index in 2...20 { publisher.publish(ByteBuffer(string: "m\(index)"), to: stream) }
            try await eventually("frozen Redis noticed") { !publisher.linkState.isConnected }
            #expect(publisher.queuedMessageCount == 19, "unanswered appends are kept")
            server.suspend(false)
            try await eventually("20 entries") { Set(entries.all.map(\.sequence)).count == 20 }
            try await eventually("all answered") { publisher.queuedMessageCount == 0 }
        }
        Self.expectExactlyOnceInOrder(entries.all, count: 20, origin: "o1")
        #expect(publisher.droppedMessageCount == 0)
        #expect(gaps.all.isEmpty)
    }

    @Test("Redis restarted with persistence: the reader resumes, queued appends arrive, no gap")
    func restartWithPersistence() async throws {
        let server = try await RedisServerProcess.start(["--appendonly", "yes", "--appendfsync", "always"])
        defer { server.stop() }
        let stream = TestRedis.uniqueChannel()
        let entries = Collector<RedisStreamEntry>()
        let gaps = Collector<String>()
        let publisher = Self.publisher(server.configuration(), origin: "o1")
        let reader = Self.reader(server.configuration(), stream: stream, entries: entries, gaps: gaps)
        try await withRunning([reader.run, publisher.run]) {
            try await eventually("ready") { reader.linkState.isConnected && publisher.linkState.isConnected }
            for index in 1...10 { publisher.publish(ByteBuffer(string: "m\(index)"), to: stream) }
            try await eventually("10 entries") { entries.all.count == 10 }
            try await server.kill()
            for index in 11...20 { publisher.publish(ByteBuffer(string: "m\(index)"), to: stream) }
            try await server.start()
            try await eventually("20 entries") { Set(entries.all.map(\.sequence)).count == 20 }
        }
        Self.expectExactlyOnceInOrder(entries.all, count: 20, origin: "o1")
        #expect(gaps.all.isEmpty)
    }

    @Test("Redis restarted empty: the reader reports the gap once and reads the new stream from its start")
    func restartWithoutPersistence() async throws {
        let server = try await RedisServerProcess.start()
        defer { server.stop() }
        let stream = TestRedis.uniqueChannel()
        let entries = Collector<RedisStreamEntry>()
        let gaps = Collector<String>()
        let publisher = Self.publisher(server.configuration(), origin: "o1")
        let reader = Self.reader(server.configuration(), stream: stream, entries: entries, gaps: gaps)
        try await withRunning([reader.run, publisher.run]) {
            try await eventually("ready") { reader.linkState.isConnected && publisher.linkState.isConnected }
            publisher.publish(ByteBuffer(string: "m1"), to: stream)
            try await eventually("first entry") { entries.all.count == 1 }
            try await server.kill()
            try await eventually("outage noticed") { !reader.linkState.isConnected }
            try await server.start()
            try await eventually("gap reported") { gaps.all.count == 1 }
            publisher.publish(ByteBuffer(string: "m2"), to: stream)
            try await eventually("entry after the restart") { entries.all.count == 2 }
        }
        Self.expectExactlyOnceInOrder(entries.all, count: 2, origin: "o1")
        #expect(gaps.all.first?.contains("no longer exists") == true, "\(gaps.all)")
    }

    @Test("Redis restarted empty and the stream created again by another node before this reader is back: gap reported")
    func recreatedBeforeReconnect() async throws {
        let users = ["--user", "reader", "on", ">readpass", "~*", "&*", "+@all"]
        let server = try await RedisServerProcess.start(users)
        defer { server.stop() }
        let stream = TestRedis.uniqueChannel()
        let entries = Collector<RedisStreamEntry>()
        let gaps = Collector<String>()
        let publisher = Self.publisher(server.configuration(), origin: "o1")
        let reader = Self.reader(
            server.configuration(username: "reader", password: "readpass"), stream: stream, entries: entries,
            gaps: gaps)
        try await withRunning([reader.run, publisher.run]) {
            try await eventually("ready") { reader.linkState.isConnected && publisher.linkState.isConnected }
            publisher.publish(ByteBuffer(string: "m1"), to: stream)
            try await eventually("first entry") { entries.all.count == 1 }
            try await server.kill()
            // Back empty, with the reader locked out until another publisher has appended.
            try await server.start(arguments: ["--user", "reader", "off", ">readpass", "~*", "&*", "+@all"])
            publisher.publish(ByteBuffer(string: "m2"), to: stream)
            try await eventually("appended after the restart") { publisher.queuedMessageCount == 0 }
            let admin = try await RedisConnection.connect(configuration: server.configuration())
            _ = try await admin.send(["ACL", "SETUSER", "reader", "on"])
            await admin.close()
            try await eventually("gap reported") { gaps.all.count == 1 }
            try await eventually("the new stream read") { entries.all.count == 2 }
        }
        Self.expectExactlyOnceInOrder(entries.all, count: 2, origin: "o1")
        #expect(gaps.all.first?.contains("no longer holds") == true, "\(gaps.all)")
    }
}
