import NIOCore
import ReverbRedis
import Testing

@Suite("RedisConnection over TLS (own redis-server)", .enabled(if: TestRedis.isConfigured, TestRedis.disabledReason))
struct RedisTLSTests {
    private func startServer(_ certificates: TestCertificates, clientCertificates: String) async throws
        -> RedisServerProcess
    {
        try #require(
            try await Self.redisHasTLS(),
            "this redis-server was built without TLS support (--tls-port unknown); TLS cannot be tested"
        )
        return try await RedisServerProcess.start(
            [
                "--tls-cert-file", certificates.serverCertificate, "--tls-key-file", certificates.serverKey,
                "--tls-ca-cert-file", certificates.caCertificate, "--tls-auth-clients", clientCertificates,
            ],
            tls: true
        )
    }

    /// Whether `redis-server` accepts TLS options (Debian builds it with TLS).
    static func redisHasTLS() async throws -> Bool {
        do {
            let server = try await RedisServerProcess.start(["--tls-port", "0"])
            server.stop()
            return true
        } catch {
            return false
        }
    }

    @Test func verifiedServerCertificate() async throws {
        let certificates = try await TestCertificates.generate()
        defer { certificates.remove() }
        let server = try await startServer(certificates, clientCertificates: "optional")
        defer { server.stop() }

        // Through the factory, as `rediss://` with REDIS_TLS_CA.
        let factory = try RedisClientFactory(
            settings: RedisSettings(url: "rediss://127.0.0.1:\(server.port)/1", tlsCA: certificates.caCertificate)
        )
        let connection = try await RedisConnection.connect(configuration: factory.configuration)
        #expect(try await connection.send(["CLIENT", "INFO"]).string?.contains("db=1") == true)
        await connection.close()

        // The system trust store does not know the test CA.
        let untrusted = await #expect(throws: RedisConnectionError.self) {
            try await RedisConnection.connect(configuration: server.configuration(tls: .init()))
        }
        #expect(untrusted?.kind == .connectFailed)
        #expect(untrusted?.message.hasPrefix("TLS with Redis at 127.0.0.1:\(server.port) failed:") == true)

        // Row 25: verify_peer false accepts it anyway.
        let unverified = try await RedisConnection.connect(
            configuration: server.configuration(tls: .init(verifyPeer: false)))
        #expect(try await unverified.send(["PING"]) == .simpleString("PONG"))
        await unverified.close()
    }

    @Test func mutualTLS() async throws {
        let certificates = try await TestCertificates.generate()
        defer { certificates.remove() }
        let server = try await startServer(certificates, clientCertificates: "yes")
        defer { server.stop() }

        let withCertificate = RedisConnectionConfiguration.TLS(
            caFile: certificates.caCertificate,
            certificateFile: certificates.clientCertificate,
            keyFile: certificates.clientKey
        )
        let connection = try await RedisConnection.connect(configuration: server.configuration(tls: withCertificate))
        #expect(try await connection.send(["PING"]) == .simpleString("PONG"))
        await connection.close()

        await #expect(throws: RedisConnectionError.self) {
            try await RedisConnection.connect(
                configuration: server.configuration(tls: .init(caFile: certificates.caCertificate))
            )
        }
    }

    @Test func publishAndSubscribeOverTLS() async throws {
        let certificates = try await TestCertificates.generate()
        defer { certificates.remove() }
        let server = try await startServer(certificates, clientCertificates: "optional")
        defer { server.stop() }
        let factory = try RedisClientFactory(
            settings: RedisSettings(
                host: "127.0.0.1", port: String(server.port), scheme: "tls", tlsCA: certificates.caCertificate)
        )
        let channel = TestRedis.uniqueChannel()
        let received = Collector<String>()
        let subscriber = factory.makeSubscriber(channels: [channel]) { received.append(String(buffer: $0.payload)) }
        let publisher = factory.makePublisher()
        try await withRunning([subscriber.run, publisher.run]) {
            try await eventually("subscribed") { subscriber.linkState.isConnected }
            publisher.publish(ByteBuffer(string: "over tls"), to: channel)
            try await eventually("message") { received.all == ["over tls"] }
        }
    }
}
