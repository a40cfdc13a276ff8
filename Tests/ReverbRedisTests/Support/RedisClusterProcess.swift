import Foundation
import NIOCore
import ReverbRedis

/// A throw-away Redis Cluster for tests: `primaries` `redis-server`s in cluster mode on free loopback
/// ports (each a `RedisServerProcess` with its own directory), each with `replicasPerPrimary`
/// replicas, `cluster-node-timeout` 1000 ms. Slots are assigned evenly and nodes introduced with
/// `CLUSTER MEET` (faster than `redis-cli --cluster create`, which waits seconds between steps).
/// Stop it with `stop()`.
final class RedisClusterProcess {
    private(set) var primaries: [RedisServerProcess] = []
    private(set) var replicas: [RedisServerProcess] = []
    private var ids: [Int: String] = [:]
    private var busPorts: [Int: String] = [:]

    var all: [RedisServerProcess] { primaries + replicas }

    /// The primaries' addresses, as `REDIS_CLUSTER` would list them.
    var seeds: [RedisConnectionConfiguration.Endpoint] { primaries.map { .tcp(host: "127.0.0.1", port: $0.port) } }

    static func start(primaries: Int = 3, replicasPerPrimary: Int = 1) async throws -> RedisClusterProcess {
        let cluster = RedisClusterProcess()
        do {
            try await cluster.start(primaries: primaries, replicasPerPrimary: replicasPerPrimary)
        } catch {
            cluster.stop()
            throw error
        }
        return cluster
    }

    private func start(primaries count: Int, replicasPerPrimary: Int) async throws {
        let arguments = [
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
            // A replica fails over however long ago it last heard its primary (a fresh one may not have synced long).
            "--cluster-replica-validity-factor", "0",
        ]
        for index in 0..<(count * (1 + replicasPerPrimary)) {
            // The bus port given explicitly: the default, port + 10000, may be taken or beyond 65535.
            // A bus port taken meanwhile (tests start clusters in parallel) fails every retry of
            // `RedisServerProcess.start`, which keeps the arguments: pick another one here.
            var started: (server: RedisServerProcess, busPort: String)?
            var lastError: (any Error)?
            for _ in 0..<5 where started == nil {
                let busPort = String(try await RedisServerProcess.freePort())
                do {
                    started = (try await RedisServerProcess.start(arguments + ["--cluster-port", busPort]), busPort)
                } catch {
                    lastError = error
                }
            }
            guard let (server, busPort) = started else { throw lastError ?? TestFailure("redis-server did not start") }
            busPorts[server.port] = busPort
            if index < count { primaries.append(server) } else { replicas.append(server) }
        }
        for server in all { ids[server.port] = try await command(server, ["CLUSTER", "MYID"]).string }
        let perPrimary = RedisClusterSlot.count / count
        for (index, primary) in primaries.enumerated() {
            let low = index * perPrimary
            let high = index == count - 1 ? RedisClusterSlot.count - 1 : low + perPrimary - 1
            _ = try await command(primary, ["CLUSTER", "ADDSLOTSRANGE", String(low), String(high)])
        }
        let first = primaries[0]
        for server in all.dropFirst() {
            _ = try await command(server, ["CLUSTER", "MEET", "127.0.0.1", String(first.port), busPorts[first.port]!])
        }
        let total = all.count
        try await eventually("every node knows all \(total)") {
            for server in self.all {
                let nodes = try await self.command(server, ["CLUSTER", "NODES"]).string ?? ""
                if nodes.split(separator: "\n").count < total || nodes.contains("handshake") { return false }
            }
            return true
        }
        for (index, replica) in replicas.enumerated() {
            _ = try await command(replica, ["CLUSTER", "REPLICATE", id(of: primaries[index % count])])
        }
        try await waitUntilHealthy()
        try await eventually("every replica in sync") {
            for replica in self.replicas {
                let info = try await self.command(replica, ["INFO", "REPLICATION"]).string ?? ""
                if !info.contains("master_link_status:up") { return false }
            }
            return true
        }
    }

    /// Waits until every live node reports `cluster_state:ok`.
    func waitUntilHealthy(timeout: Duration = .seconds(20)) async throws {
        try await eventually("cluster_state:ok everywhere", timeout: timeout) {
            for server in self.all where server.isRunning {
                let info = try await self.command(server, ["CLUSTER", "INFO"]).string ?? ""
                if !info.contains("cluster_state:ok") { return false }
            }
            return true
        }
    }

    func id(of server: RedisServerProcess) -> String { ids[server.port] ?? "" }

    /// Sends one command to `server` on a connection of its own.
    @discardableResult
    func command(_ server: RedisServerProcess, _ arguments: [String]) async throws -> RESPValue {
        let connection = try await RedisConnection.connect(configuration: server.configuration(), pingInterval: nil)
        defer { connection.channel.close(promise: nil) }
        return try await connection.send(arguments)
    }

    /// Sends `commands` to `server` one after the other on one connection; returns the last reply.
    func commands(_ server: RedisServerProcess, _ commands: [[String]]) async throws -> RESPValue {
        let connection = try await RedisConnection.connect(configuration: server.configuration(), pingInterval: nil)
        defer { connection.channel.close(promise: nil) }
        var reply = RESPValue.bulkString(nil)
        for command in commands { reply = try await connection.send(command) }
        return reply
    }

    /// The live node that is primary for `slot` now, as its own `CLUSTER SHARDS` says.
    func primary(forSlot slot: Int) async throws -> RedisServerProcess {
        for server in all where server.isRunning {
            let map = try await RedisClusterSlotMap.parse(
                shardsReply: command(server, ["CLUSTER", "SHARDS"]), host: "127.0.0.1", tls: false)
            if let endpoint = map.shard(forSlot: slot)?.primary,
                let owner = all.first(where: { .tcp(host: "127.0.0.1", port: $0.port) == endpoint })
            {
                return owner
            }
        }
        throw TestFailure("no primary for slot \(slot)")
    }

    /// A replica of `primary`, from `primary`'s own `CLUSTER NODES`.
    func replica(of primary: RedisServerProcess) async throws -> RedisServerProcess {
        let nodes = try await command(primary, ["CLUSTER", "NODES"]).string ?? ""
        let primaryID = id(of: primary)
        for line in nodes.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 3, fields[3] == primaryID,
                let replica = all.first(where: { id(of: $0) == fields[0] })
            {
                return replica
            }
        }
        throw TestFailure("primary \(primary.port) has no replica")
    }

    /// Moves `slot` (empty of keys) from `source` to `target` the way `redis-cli --cluster reshard`
    /// does: `IMPORTING` on the target, `MIGRATING` on the source, then `NODE` on both and the rest.
    func migrate(slot: Int, from source: RedisServerProcess, to target: RedisServerProcess) async throws {
        let slotText = String(slot)
        _ = try await command(target, ["CLUSTER", "SETSLOT", slotText, "IMPORTING", id(of: source)])
        _ = try await command(source, ["CLUSTER", "SETSLOT", slotText, "MIGRATING", id(of: target)])
        _ = try await command(target, ["CLUSTER", "SETSLOT", slotText, "NODE", id(of: target)])
        _ = try await command(source, ["CLUSTER", "SETSLOT", slotText, "NODE", id(of: target)])
        for server in primaries where server !== source && server !== target && server.isRunning {
            _ = try await command(server, ["CLUSTER", "SETSLOT", slotText, "NODE", id(of: target)])
        }
    }

    func stop() {
        for server in all { server.stop() }
    }
}
