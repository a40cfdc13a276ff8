import Foundation
import NIOCore
import ReverbRedis
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// One primary, one replica and three sentinels (quorum 2, `down-after-milliseconds` 1000) on free
/// loopback ports in a temporary directory, started by `scripts/start-redis-sentinel.sh` (the
/// script the end-to-end tests and the benchmark use too), which returns once every sentinel knows
/// the primary, the replica and the other sentinels. Stop it with `stop()`.
final class RedisSentinelDeployment: Sendable {
    let directory: URL
    let sentinels: [RedisConnectionConfiguration.Endpoint]
    let master: String
    let primaryPort: Int
    let replicaPort: Int

    /// The `REDIS_SENTINELS` value.
    var sentinelsSetting: String { sentinels.map(\.description).joined(separator: ",") }

    private static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/start-redis-sentinel.sh")

    static func start(master: String = "mymaster") async throws -> RedisSentinelDeployment {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("reverb-sentinel-test-\(UUID().uuidString)")
        var environment: Environment = .inherit
        environment = environment.updating(["SENTINEL_MASTER": master])
        let result = try await Subprocess.run(
            .path(FilePath("/bin/bash")),
            arguments: [script.path, directory.path],
            environment: environment,
            output: .string(limit: 64 * 1024),
            error: .string(limit: 64 * 1024)
        )
        let output = result.standardOutput
        guard result.terminationStatus == .exited(0) else {
            try? FileManager.default.removeItem(at: directory)
            throw TestFailure(
                "start-redis-sentinel.sh exited with \(result.terminationStatus): \(result.standardError)")
        }
        var values: [String: String] = [:]
        for line in output.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        guard let list = values["REDIS_SENTINELS"], let primary = values["PRIMARY_PORT"].flatMap(Int.init),
            let replica = values["REPLICA_PORT"].flatMap(Int.init)
        else { throw TestFailure("start-redis-sentinel.sh printed no environment: \(output)") }
        let sentinels: [RedisConnectionConfiguration.Endpoint] = list.split(separator: ",").compactMap { item in
            guard let colon = item.lastIndex(of: ":"), let port = Int(item[item.index(after: colon)...]) else {
                return nil
            }
            return .tcp(host: String(item[..<colon]), port: port)
        }
        return RedisSentinelDeployment(
            directory: directory, sentinels: sentinels, master: master, primaryPort: primary, replicaPort: replica)
    }

    private init(
        directory: URL, sentinels: [RedisConnectionConfiguration.Endpoint], master: String, primaryPort: Int,
        replicaPort: Int
    ) {
        self.directory = directory
        self.sentinels = sentinels
        self.master = master
        self.primaryPort = primaryPort
        self.replicaPort = replicaPort
    }

    /// Settings as a node would get them from the environment.
    func settings(password: String? = nil) -> RedisSettings {
        RedisSettings(password: password, sentinels: sentinelsSetting, sentinelMaster: master)
    }

    /// Kills the initial primary at once (SIGKILL).
    func killPrimary() throws {
        guard let pid = pid(of: "primary") else { throw TestFailure("no primary pid in \(directory.path)") }
        RedisServerProcess.send(SIGKILL, to: pid)
    }

    /// The process id `start-redis-sentinel.sh` recorded for `name` (`primary`, `replica`, `sentinel1`…).
    private func pid(of name: String) -> pid_t? {
        let file = directory.appendingPathComponent("\(name).pid")
        return (try? String(contentsOf: file, encoding: .utf8)).flatMap {
            pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// One command to the server on `port` (a data node or a sentinel), on a connection of its own.
    ///
    /// A server that Sentinel reconfigures (promoted, or demoted to a replica) gets `CLIENT KILL TYPE
    /// normal`, which resets whatever connection the test has open to it at that moment (seen on a
    /// loaded machine during a failover): a connection lost before the reply is tried again, on a new
    /// one, up to 3 times. Error replies are not retried.
    func command(_ arguments: [String], port: Int) async throws -> RESPValue {
        var attempt = 1
        while true {
            do {
                return try await commandOnce(arguments, port: port)
            } catch {
                guard error.kind == .connectionClosed, attempt < 3 else { throw error }
                attempt += 1
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    private func commandOnce(_ arguments: [String], port: Int) async throws(RedisConnectionError) -> RESPValue {
        let connection = try await RedisConnection.connect(
            configuration: RedisConnectionConfiguration(
                endpoint: .tcp(host: "127.0.0.1", port: port), connectTimeout: .seconds(20)),
            pingInterval: nil)
        defer { connection.channel.close(promise: nil) }
        return try await connection.send(arguments)
    }

    /// The `name=` of every client connection of the server on `port`.
    func clientNames(port: Int) async throws -> [String] {
        let list = try await command(["CLIENT", "LIST"], port: port).string ?? ""
        return list.split(whereSeparator: \.isNewline).compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("name=") }.map { String($0.dropFirst(5)) }
        }.filter { !$0.isEmpty }
    }

    /// Kills every process and removes the directory.
    func stop() {
        for name in ["primary", "replica", "sentinel1", "sentinel2", "sentinel3"] {
            if let pid = pid(of: name) { RedisServerProcess.send(SIGKILL, to: pid) }
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
