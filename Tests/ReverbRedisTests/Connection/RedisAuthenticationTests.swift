import Foundation
import ReverbRedis
import Testing

@Suite(
    "RedisConnection AUTH and unix sockets (own redis-server)",
    .enabled(if: TestRedis.isConfigured, TestRedis.disabledReason))
struct RedisAuthenticationTests {
    @Test func passwordAuthentication() async throws {
        let server = try await RedisServerProcess.start(["--requirepass", "s3cret"])
        defer { server.stop() }

        let connection = try await RedisConnection.connect(configuration: server.configuration(password: "s3cret"))
        #expect(try await connection.send(["ACL", "WHOAMI"]).string == "default")
        await connection.close()

        let wrong = await #expect(throws: RedisConnectionError.self) {
            try await RedisConnection.connect(configuration: server.configuration(password: "wrong"))
        }
        #expect(wrong?.kind == .authenticationFailed)
        #expect(
            wrong?.message
                == "Redis at 127.0.0.1:\(server.port) refused AUTH: WRONGPASS invalid username-password pair or user is disabled."
        )

        let missing = await #expect(throws: RedisConnectionError.self) {
            try await RedisConnection.connect(configuration: server.configuration())
        }
        #expect(missing?.message.contains("NOAUTH Authentication required") == true)
    }

    @Test func aclUserAuthentication() async throws {
        let server = try await RedisServerProcess.start(["--user", "reverb", "on", ">userpass", "~*", "&*", "+@all"])
        defer { server.stop() }

        let connection = try await RedisConnection.connect(
            configuration: server.configuration(username: "reverb", password: "userpass")
        )
        #expect(try await connection.send(["ACL", "WHOAMI"]).string == "reverb")
        await connection.close()

        let wrong = await #expect(throws: RedisConnectionError.self) {
            try await RedisConnection.connect(configuration: server.configuration(username: "reverb", password: "nope"))
        }
        #expect(wrong?.kind == .authenticationFailed)
        #expect(wrong?.message.contains("WRONGPASS") == true)
    }

    @Test func unixSocket() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("reverb-\(UUID().uuidString).sock")
            .path
        let server = try await RedisServerProcess.start(["--unixsocket", path])
        defer {
            server.stop()
            try? FileManager.default.removeItem(atPath: path)
        }
        let factory = try RedisClientFactory(settings: RedisSettings(url: "unix://\(path)?database=2"))
        #expect(factory.configuration.endpoint == .unixSocket(path: path))
        let connection = try await RedisConnection.connect(configuration: factory.configuration)
        #expect(try await connection.send(["CLIENT", "INFO"]).string?.contains("db=2") == true)
        await connection.close()
    }
}
