import Foundation
import NIOConcurrencyHelpers
import ReverbRedis
import Testing

/// The shared throw-away Redis named by `REVERB_TEST_REDIS_URL`, which enables the integration suites.
enum TestRedis {
    static let url: String? = ProcessInfo.processInfo.environment["REVERB_TEST_REDIS_URL"].flatMap {
        $0.isEmpty ? nil : $0
    }
    static let isConfigured = url != nil
    static let disabledReason: Comment =
        "REVERB_TEST_REDIS_URL is not set: start a throw-away redis-server and set it (e.g. redis://127.0.0.1:6390)"

    /// The endpoint of `REVERB_TEST_REDIS_URL`, parsed like `REDIS_URL`.
    static func configuration(database: Int = 0) throws -> RedisConnectionConfiguration {
        var configuration = try RedisClientFactory(settings: RedisSettings(url: url)).configuration
        configuration.database = database
        // Set-up is a few round trips; on a loaded 2-core machine running every suite at once the
        // default 5 s was seen to expire. Tests of the timeout itself set their own.
        configuration.connectTimeout = .seconds(20)
        return configuration
    }

    static func uniqueChannel(_ name: String = #function) -> String {
        "reverb-test-\(name.prefix { $0.isLetter })-\(UUID().uuidString)"
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` every 20 ms until it holds; fails after `timeout`. Timeouts bound failures only.
func eventually(
    _ what: String,
    timeout: Duration = .seconds(15),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return }
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// Collects values delivered on other threads, for polling.
final class Collector<Value: Sendable>: Sendable {
    private let values = NIOLockedValueBox<[Value]>([])

    func append(_ value: Value) {
        values.withLockedValue { $0.append(value) }
    }

    var all: [Value] { values.withLockedValue { $0 } }
}

/// Runs `body` with `service.run()` going in a child task, cancelling it afterwards.
func withRunning<Result>(
    _ runs: [@Sendable () async -> Void],
    _ body: () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for run in runs { group.addTask { await run() } }
        defer { group.cancelAll() }
        return try await body()
    }
}
