import Foundation
import NIOCore
import ReverbRedis
import Testing

@Suite("RedisConnection against REVERB_TEST_REDIS_URL", .enabled(if: TestRedis.isConfigured, TestRedis.disabledReason))
struct RedisConnectionTests {
    @Test func selectChoosesTheDatabase() async throws {
        let key = "reverb-test-\(UUID().uuidString)"
        let db3 = try await RedisConnection.connect(configuration: try TestRedis.configuration(database: 3))
        let db0 = try await RedisConnection.connect(configuration: try TestRedis.configuration())
        #expect(try await db3.send(["SET", key, "three"]) == .simpleString("OK"))
        #expect(try await db3.send(["GET", key]).string == "three")
        #expect(try await db0.send(["GET", key]) == .bulkString(nil))
        #expect(try await db3.send(["DEL", key]) == .integer(1))
        await db3.close()
        await db0.close()
    }

    @Test func databaseOutOfRangeIsRefused() async throws {
        let error = await #expect(throws: RedisConnectionError.self) {
            try await RedisConnection.connect(configuration: try TestRedis.configuration(database: 9999))
        }
        #expect(error?.kind == .selectFailed)
        #expect(error?.message.contains("ERR DB index is out of range") == true)
    }

    @Test func errorReplyThrowsWithRedisText() async throws {
        let connection = try await RedisConnection.connect(configuration: try TestRedis.configuration())
        let error = await #expect(throws: RedisConnectionError.self) {
            try await connection.send(["NOSUCHCOMMAND", "x"])
        }
        #expect(error?.kind == .errorReply)
        #expect(error?.message.contains("unknown command") == true)
        #expect(try await connection.send(["PING"]) == .simpleString("PONG"))
        await connection.close()
    }

    @Test func concurrentCommandsGetTheirOwnReplies() async throws {
        let connection = try await RedisConnection.connect(configuration: try TestRedis.configuration())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let payload = ByteBuffer(bytes: Array("value-\(index)\r\n".utf8) + [0, 255])
                    let reply = try await connection.send([ByteBuffer(string: "ECHO"), payload])
                    #expect(reply == .bulkString(payload))
                }
            }
            try await group.waitForAll()
        }
        await connection.close()
    }

    @Test func subscribedConnectionReceivesMessages() async throws {
        let channels = [TestRedis.uniqueChannel("a"), TestRedis.uniqueChannel("b")]
        let received = Collector<RedisPubSubMessage>()
        let subscriber = try await RedisConnection.connect(
            configuration: try TestRedis.configuration(),
            onMessage: { received.append($0) }
        )
        try await subscriber.subscribe(to: channels)
        // Subscribed mode still answers PING, as ["pong", ""].
        #expect(
            try await subscriber.send(["PING"])
                == .array([.bulkString(ByteBuffer(string: "pong")), .bulkString(ByteBuffer())]))

        let publisher = try await RedisConnection.connect(configuration: try TestRedis.configuration())
        let payload = ByteBuffer(bytes: Array("{\"event\":\"x\"}\r\n".utf8) + [0, 1, 255])
        #expect(try await publisher.publish(payload, to: channels[1]) == 1)
        #expect(try await publisher.publish(ByteBuffer(), to: channels[0]) == 1)
        try await eventually("two messages") { received.all.count == 2 }
        #expect(
            received.all == [
                RedisPubSubMessage(channel: channels[1], payload: payload),
                RedisPubSubMessage(channel: channels[0], payload: ByteBuffer()),
            ]
        )
        await subscriber.close()
        await publisher.close()
    }

    @Test func arraysLookingLikePushesAreRepliesOnUnsubscribedConnections() async throws {
        let key = "reverb-test-\(UUID().uuidString)"
        let received = Collector<RedisPubSubMessage>()
        let connection = try await RedisConnection.connect(
            configuration: try TestRedis.configuration(),
            onMessage: { received.append($0) }
        )
        _ = try await connection.send(["RPUSH", key, "message", "channel", "payload"])
        let reply = try await connection.send(["LRANGE", key, "0", "-1"])
        #expect(reply == .array(["message", "channel", "payload"].map { .bulkString(ByteBuffer(string: $0)) }))
        #expect(received.all.isEmpty)
        _ = try await connection.send(["DEL", key])
        await connection.close()
    }

    @Test func largeBinaryPayloadSurvivesTheRoundTrip() async throws {
        let channel = TestRedis.uniqueChannel()
        let received = Collector<RedisPubSubMessage>()
        let subscriber = try await RedisConnection.connect(
            configuration: try TestRedis.configuration(),
            onMessage: { received.append($0) }
        )
        try await subscriber.subscribe(to: [channel])
        let publisher = try await RedisConnection.connect(configuration: try TestRedis.configuration())
        let bytes: [UInt8] = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(try await publisher.publish(ByteBuffer(bytes: bytes), to: channel) == 1)
        try await eventually("large message") { received.all.count == 1 }
        #expect(received.all.first?.payload == ByteBuffer(bytes: bytes))
        await subscriber.close()
        await publisher.close()
    }

    @Test func refusedConnectionIsAClearError() async throws {
        let port = try await RedisServerProcess.freePort()
        let error = await #expect(throws: RedisConnectionError.self) {
            try await RedisConnection.connect(
                configuration: RedisConnectionConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port))
            )
        }
        #expect(error?.kind == .connectFailed)
        #expect(error?.message == "Cannot connect to Redis at 127.0.0.1:\(port): Connection refused")
    }
}
