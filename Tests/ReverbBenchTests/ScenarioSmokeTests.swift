import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import Reverb
import Testing

@testable import ReverbBench

/// Each scenario, tiny and short, against a real server started in-process, so the tool cannot rot.
@Suite("Scenario smoke runs")
struct ScenarioSmokeTests {
    static let app = Application(id: "bench-test", key: "bench-key", secret: "bench-secret")

    /// Starts a server on 127.0.0.1:0, runs `body` with its URL, shuts it down.
    static func withServer(_ body: (String) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let configuration = ReverbConfiguration(
            server: ServerConfiguration(host: "127.0.0.1", port: 0), apps: [app])
        let server = try ReverbServer(
            configuration: configuration, eventLoopGroup: group, logger: Logger(label: "bench-test"))
        let address = try await server.start()
        do {
            try await body("http://127.0.0.1:\(address.port!)")
        } catch {
            await server.shutdown()
            try await group.shutdownGracefully()
            throw error
        }
        await server.shutdown()
        try await group.shutdownGracefully()
    }

    static var credentials: [String] {
        ["--app-id", app.id, "--app-key", app.key, "--app-secret", app.secret, "--threads", "1"]
    }

    /// Parses and runs `arguments` as `reverb-bench` would, returning the JSON report.
    static func run(_ arguments: [String]) async throws -> BenchReport {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("reverb-bench-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var command = try #require(
            try BenchCommand.parseAsRoot(arguments + ["--json", path]) as? any AsyncParsableCommand)
        try await command.run()
        return try JSONDecoder().decode(BenchReport.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test("fanout delivers every event to every subscriber at a fixed rate and at max")
    func fanout() async throws {
        try await Self.withServer { url in
            let report = try await Self.run(
                ["fanout", "--url", url, "--subscribers", "20", "--duration", "0.5", "--rate", "50", "--rate", "max"]
                    + Self.credentials)
            #expect(report.phases.map(\.name) == ["50/s", "max"])
            for phase in report.phases {
                let accepted = try #require(phase.value("events accepted"))
                #expect(accepted > 0)
                #expect(phase.value("deliveries") == accepted * 20)
                #expect(phase.value("lost") == 0)
                #expect(phase.value("latency p99") ?? 0 > 0)
            }
        }
    }

    @Test("http publishes signed events without and with subscribers")
    func http() async throws {
        try await Self.withServer { url in
            for subscribers in [0, 5] {
                let report = try await Self.run(
                    [
                        "http", "--url", url, "--connections", "2", "--duration", "0.5", "--subscribers",
                        "\(subscribers)",
                    ]
                        + Self.credentials)
                let phase = try #require(report.phases.first)
                #expect(phase.value("events accepted") ?? 0 > 0)
                #expect(phase.value("events failed") == 0)
                #expect(phase.value("lost") == 0)
                #expect(phase.value("publish p50") ?? 0 > 0)
            }
        }
    }

    @Test("cluster triggers on one URL and subscribes on the other (one node here)")
    func cluster() async throws {
        try await Self.withServer { url in
            let report = try await Self.run(
                [
                    "cluster", "--trigger-url", url, "--subscriber-url", url, "--subscribers", "10", "--duration",
                    "0.5",
                    "--rate", "20",
                ] + Self.credentials)
            let phase = try #require(report.phases.first)
            #expect(phase.value("deliveries") == (phase.value("events accepted") ?? -1) * 10)
            #expect(phase.value("lost") == 0)
        }
    }

    @Test("connections opens subscribed idle connections and reports the server's RSS")
    func connections() async throws {
        try await Self.withServer { url in
            let report = try await Self.run(
                [
                    "connections", "--url", url, "--connections", "50", "--hold", "0", "--source-addresses", "2",
                    "--server-pid", "\(getpid())",
                ] + Self.credentials)
            let phase = try #require(report.phases.first)
            #expect(phase.value("connections") == 50)
            #expect(phase.value("server RSS after") ?? 0 > 0)
            #expect(phase.value("connect rate") ?? 0 > 0)
        }
    }

    @Test(
        "redis-baseline fans out through redis-server",
        .enabled(
            if: ProcessInfo.processInfo.environment["REVERB_TEST_REDIS_URL"] != nil,
            "REVERB_TEST_REDIS_URL is unset: this test needs a running redis-server (scripts/test.sh starts one)"))
    func redisBaseline() async throws {
        let url = try #require(ProcessInfo.processInfo.environment["REVERB_TEST_REDIS_URL"])
        let report = try await Self.run(
            [
                "redis-baseline", "--redis-url", url, "--subscribers", "10", "--duration", "0.5", "--rate", "50",
                "--rate", "max", "--threads", "1",
            ])
        for phase in report.phases {
            let accepted = try #require(phase.value("events accepted"))
            #expect(accepted > 0)
            #expect(phase.value("deliveries") == accepted * 10)
            #expect(phase.value("lost") == 0)
        }
    }
}
