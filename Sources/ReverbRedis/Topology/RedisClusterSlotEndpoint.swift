public import Logging

/// The primary serving one slot of a Redis Cluster, for a client whose commands name keys of
/// that slot (a stream's `XADD`/`XREAD`, one shard's `SPUBLISH`/`SSUBSCRIBE`).
///
/// Each attempt uses a slot map at most `RedisClusterTopology.attemptMaxAge` old, so a client that
/// lost its primary reconnects to whichever node the cluster promoted. A node that answers `ROLE`
/// with anything but `master` (a stale map naming a demoted primary) is refused and the map refreshed.
public struct RedisClusterSlotEndpoint: RedisEndpointResolver {
    public let topology: RedisClusterTopology
    public let slot: Int

    public init(topology: RedisClusterTopology, slot: Int) {
        self.topology = topology
        self.slot = slot
    }

    public func resolve(logger: Logger) async throws(RedisConnectionError) -> RedisConnectionConfiguration {
        guard let map = await topology.map(maxAge: topology.attemptMaxAge) else {
            let seeds = topology.seeds.map(\.description).joined(separator: ", ")
            throw RedisConnectionError(.connectFailed, "No Redis Cluster node answered (seeds \(seeds))")
        }
        guard let shard = map.shard(forSlot: slot) else {
            throw RedisConnectionError(
                .connectFailed, "No Redis Cluster primary serves slot \(slot) now (a failover under way?)")
        }
        return topology.configuration(for: shard.primary)
    }

    public func accept(_ connection: RedisConnection, logger: Logger) async throws(RedisConnectionError) {
        let reply: RESPValue
        do throws(RedisConnectionError) {
            reply = try await connection.send(["ROLE"])
        } catch  where error.kind == .errorReply {
            return  // an ACL refusing ROLE: the node's -MOVED replies will tell instead
        }
        guard case .array(let fields?) = reply, fields.first?.string == "master" else {
            topology.requestRefresh()
            throw RedisConnectionError(
                .connectFailed, "Redis at \(connection.endpoint) is not a primary any more (slot \(slot))")
        }
    }
}
