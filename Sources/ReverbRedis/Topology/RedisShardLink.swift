/// One connection of a bus client, for `/metrics`: the shard's primary and whether it is ready.
public struct RedisShardLink: Sendable, Equatable {
    /// The shard's primary (`host:port`), or `slot <n>` while no primary serves it.
    public var shard: String
    public var linkState: RedisLinkState

    public init(shard: String, linkState: RedisLinkState) {
        self.shard = shard
        self.linkState = linkState
    }
}

extension RedisShardLink {
    /// The worst of `links` (the earliest outage, else the latest connection); disconnected since
    /// `empty` when there are none.
    static func worst(_ links: [RedisLinkState], empty: ContinuousClock.Instant) -> RedisLinkState {
        guard !links.isEmpty else { return .disconnected(since: empty) }
        let down = links.filter { !$0.isConnected }.map(\.since)
        if let earliest = down.min() { return .disconnected(since: earliest) }
        return .connected(since: links.map(\.since).max()!)
    }

    /// One entry per shard client, `links` keyed by the shard's anchor slot, in slot order, each
    /// named by the primary `map` says serves that shard now.
    static func links(_ links: [Int: RedisLinkState], map: RedisClusterSlotMap?) -> [RedisShardLink] {
        links.sorted { $0.key < $1.key }.map { anchor, link in
            RedisShardLink(shard: map?.shard(anchor: anchor)?.primary.description ?? "slot \(anchor)", linkState: link)
        }
    }
}
