import ArgumentParser
import Testing

@testable import ReverbBench

/// Bad input exits non-zero with a message naming the flag.
@Suite("Command line")
struct CommandLineTests {
    /// The message ArgumentParser prints for `arguments`, or nil when they parse and validate.
    static func parseError(_ arguments: [String]) -> String? {
        do {
            _ = try BenchCommand.parseAsRoot(arguments)
            return nil
        } catch {
            #expect(BenchCommand.exitCode(for: error) != .success)
            return BenchCommand.message(for: error)
        }
    }

    @Test("an unknown scenario is refused")
    func unknownScenario() throws {
        let message = try #require(Self.parseError(["flood"]))
        #expect(message.contains("flood"))
    }

    @Test(
        "negative and zero sizes name their flag",
        arguments: [
            (["fanout", "--subscribers=-5"], "--subscribers"),
            (["fanout", "--payload-size", "10"], "--payload-size"),
            (["fanout", "--rate", "fast"], "--rate"),
            (["fanout", "--duration", "0"], "--duration"),
            (["http", "--connections=-1"], "--connections"),
            (["http", "--subscribers=-1"], "--subscribers"),
            (["connections", "--connections", "0"], "--connections"),
            (["connections", "--source-addresses", "300"], "--source-addresses"),
            (["redis-baseline", "--publishers", "0"], "--publishers"),
            (["fanout", "--threads", "0"], "--threads"),
            (["fanout", "--url", "ftp://x"], "--url"),
            (["redis-baseline", "--redis-url", "http://127.0.0.1:1"], "--redis-url"),
            (["cluster", "--trigger-url", "http://127.0.0.1:1"], "--subscriber-url"),
            (["soak", "--minutes", "0"], "--minutes"),
            (["soak", "--churn=-1"], "--churn"),
            (["soak", "--connections", "100", "--churn", "200"], "--churn"),
            (["soak", "--presence-fraction", "1.5"], "--presence-fraction"),
            (["soak", "--presence-channels", "0"], "--whisper-rate"),
            (["soak", "--slow-fraction", "1"], "--slow-fraction"),
            (["soak", "--sample-seconds", "0"], "--sample-seconds"),
            (["soak", "--url", "redis://x"], "--url"),
            (["redis-outage", "--node-a-url", "http://127.0.0.1:1"], "--node-b-url"),
            (["redis-outage", "--node-a-url", "ftp://x", "--node-b-url", "http://127.0.0.1:1"], "--node-a-url"),
            (
                [
                    "redis-outage", "--node-a-url", "http://127.0.0.1:1", "--node-b-url", "http://127.0.0.1:2",
                    "--outage-start", "100", "--outage-seconds", "60", "--duration", "150",
                ], "--outage-start"
            ),
            (
                [
                    "redis-outage", "--node-a-url", "http://127.0.0.1:1", "--node-b-url", "http://127.0.0.1:2",
                    "--rate", "0",
                ],
                "--rate"
            ),
        ])
    func badValues(arguments: [String], flag: String) throws {
        let message = try #require(Self.parseError(arguments))
        #expect(message.contains(flag), "\(message)")
    }

    @Test("defaults parse")
    func defaults() throws {
        #expect(Self.parseError(["fanout"]) == nil)
        #expect(Self.parseError(["connections", "--connections", "10"]) == nil)
        #expect(Self.parseError(["soak", "--minutes", "0.5"]) == nil)
        #expect(
            Self.parseError([
                "redis-outage", "--node-a-url", "http://127.0.0.1:1", "--node-b-url", "http://127.0.0.1:2",
            ])
                == nil)
    }

    @Test("an unreachable server fails with the flag and the reason")
    func unreachable() async throws {
        var command = try #require(
            try BenchCommand.parseAsRoot([
                "fanout", "--url", "http://127.0.0.1:1", "--subscribers", "1", "--duration", "0.1", "--threads", "1",
            ]) as? any AsyncParsableCommand)
        let error = await #expect(throws: BenchError.self) { try await command.run() }
        #expect(error?.description.contains("--url") == true)
        #expect(error?.description.contains("refused") == true, "\(String(describing: error))")
    }
}
