import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import Reverb
import Testing

@testable import ReverbBench

/// Each scenario, tiny and short, against a real server started in-process, so the tool cannot rot.
/// One at a time: the `--rate max` runs keep both cores of a CI machine busy, and several at once
/// starved the Redis tests running beside them past their 5 s set-up timeout (CI, 2026-12-02).
@Suite("Scenario smoke runs", .serialized)
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

    @Test("soak churns and whispers without losing a delivery, and samples the server")
    func soak() async throws {
        try await Self.withServer { url in
            let report = try await Self.run(
                [
                    "soak", "--url", url, "--connections", "60", "--minutes", "0.05", "--churn", "5", "--channels", "3",
                    "--presence-channels", "2", "--presence-fraction", "0.3", "--event-rate", "50",
                    "--whisper-rate", "10", "--slow-fraction", "0", "--sample-seconds", "1", "--server-pid",
                    "\(getpid())",
                ] + Self.credentials)
            let phase = try #require(report.phases.first)
            #expect(phase.value("connections opened") ?? 0 > 60)
            #expect(phase.value("left: unsubscribed, then closed") ?? 0 > 0)
            #expect(phase.value("left: closed") ?? 0 > 0)
            #expect(phase.value("events accepted") ?? 0 > 0)
            #expect(phase.value("deliveries audited") ?? 0 > 0)
            #expect(phase.value("lost") == 0)
            #expect(phase.value("whispers sent") ?? 0 > 0)
            #expect(phase.value("whispers received") ?? 0 > 0)
            #expect(phase.value("members closed by server") == 0)
            #expect(phase.value("HTTP failures") == 0)
            #expect(phase.value("server fds end") ?? 0 > 0)
            #expect(report.series?["t_s"]?.isEmpty == false)
        }
    }

    @Test("redis-outage runs both commands on schedule and classifies every event (one node as A and B)")
    func redisOutage() async throws {
        try await Self.withServer { url in
            let marker = FileManager.default.temporaryDirectory.appendingPathComponent("outage-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: marker) }
            let report = try await Self.run(
                [
                    "redis-outage", "--node-a-url", url, "--node-b-url", url, "--subscribers", "4", "--rate", "40",
                    "--duration", "1.5", "--outage-start", "0.3", "--outage-seconds", "0.5",
                    "--outage-begin-command", "echo begin >> \(marker.path)",
                    "--outage-end-command", "echo end >> \(marker.path)", "--server-pid", "\(getpid())",
                ] + Self.credentials)
            #expect(try String(contentsOf: marker, encoding: .utf8) == "begin\nend\n")
            #expect(report.phases.map(\.name) == ["before", "during", "after", "all"])
            let all = try #require(report.phases.last)
            let accepted = try #require(all.value("events accepted by A"))
            #expect(accepted > 0)
            #expect(all.value("B: events crossed") == accepted)
            #expect(all.value("A: lost deliveries") == 0)
            #expect(all.value("node exits") == 0)
            #expect(all.value("begin command exit") == 0)
            for phase in report.phases { #expect(phase.value("events sent") ?? 0 > 0, "\(phase.name)") }
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
