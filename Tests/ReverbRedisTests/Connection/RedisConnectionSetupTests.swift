import ReverbRedis
import Testing

/// Connection setup against a scripted server: what a real Redis 7 cannot be made to do.
@Suite("RedisConnection setup (scripted server)")
struct RedisConnectionSetupTests {
    @Test func aclAuthFallsBackToPasswordOnlyOnOldRedis() async throws {
        let server = try await FakeRedisServer { command in
            switch (command.first, command.count) {
            case ("AUTH", 3): "-ERR wrong number of arguments for 'auth' command\r\n"
            case ("AUTH", 2): "+OK\r\n"
            case ("PING", _): "+PONG\r\n"
            default: "-ERR unexpected\r\n"
            }
        }
        var configuration = server.configuration
        configuration.username = "reverb"
        configuration.password = "secret"
        let connection = try await RedisConnection.connect(configuration: configuration)
        #expect(server.commands.all == [["AUTH", "reverb", "secret"], ["AUTH", "secret"], ["PING"]])
        await connection.close()
        await server.close()
    }

    @Test func setupSendsSelectAndClientNameInOrder() async throws {
        let server = try await FakeRedisServer { command in
            command.first == "PING" ? "+PONG\r\n" : "+OK\r\n"
        }
        var configuration = server.configuration
        configuration.password = "pw"
        configuration.database = 4
        let connection = try await RedisConnection.connect(
            configuration: configuration,
            clientName: "swift-reverb:node:publisher"
        )
        #expect(
            server.commands.all == [
                ["AUTH", "pw"], ["SELECT", "4"], ["CLIENT", "SETNAME", "swift-reverb:node:publisher"], ["PING"],
            ]
        )
        await connection.close()
        await server.close()
    }

    @Test func corruptReplyClosesTheConnection() async throws {
        let server = try await FakeRedisServer { _ in "!garbage\r\n" }
        let error = await #expect(throws: RedisConnectionError.self) {
            try await RedisConnection.connect(configuration: server.configuration)
        }
        #expect(error?.kind == .protocolError)
        #expect(
            error?.message
                == "Invalid reply from Redis at 127.0.0.1:\(server.port): Protocol error, got \"!\" as reply type byte"
        )
        await server.close()
    }

    @Test func silentServerHitsTheConnectTimeout() async throws {
        let server = try await FakeRedisServer { _ in nil }
        var configuration = server.configuration
        // Long enough that the TCP connect itself never hits it on a loaded machine.
        configuration.connectTimeout = .seconds(1)
        let error = await #expect(throws: RedisConnectionError.self) {
            try await RedisConnection.connect(configuration: configuration)
        }
        #expect(error?.kind == .connectTimeout)
        #expect(
            error?.message
                == "Timed out after 1 s setting up the connection to Redis at 127.0.0.1:\(server.port)"
        )
        await server.close()
    }
}
