/// Which primary serves each of a Redis Cluster's 16,384 slots, as one node reported it
/// (`CLUSTER SHARDS`, or `CLUSTER SLOTS` before Redis 7). A value: the shared, refreshed copy lives
/// in `RedisClusterTopology`.
public struct RedisClusterSlotMap: Sendable, Equatable {
    /// A primary and the slots it serves.
    public struct Shard: Sendable, Equatable {
        /// Where the primary listens, as the cluster announces it.
        public var primary: RedisConnectionConfiguration.Endpoint
        /// Its slot ranges, ascending.
        public var slots: [ClosedRange<Int>]

        public init(primary: RedisConnectionConfiguration.Endpoint, slots: [ClosedRange<Int>]) {
            self.primary = primary
            self.slots = slots.sorted { $0.lowerBound < $1.lowerBound }
        }

        /// The shard's lowest slot: what names it across failovers (a promoted replica keeps the
        /// slots, not the address), so a client of one shard follows its primary wherever it moves.
        public var anchor: Int { slots.first?.lowerBound ?? 0 }
    }

    /// The primaries that serve at least one slot.
    public let shards: [Shard]
    /// Slot → index in `shards`, -1 when no primary serves it.
    private let owners: [Int16]

    /// A map of `shards`; a slot claimed twice goes to the first shard claiming it.
    public init(shards: [Shard]) {
        let shards = shards.filter { !$0.slots.isEmpty }
        var owners = [Int16](repeating: -1, count: RedisClusterSlot.count)
        for (index, shard) in shards.enumerated() {
            for range in shard.slots {
                for slot in range.clamped(to: 0...(RedisClusterSlot.count - 1)) where owners[slot] < 0 {
                    owners[slot] = Int16(index)
                }
            }
        }
        self.shards = shards
        self.owners = owners
    }

    /// The shard serving `slot`, nil when none does (a primary failed and no replica took over yet).
    public func shard(forSlot slot: Int) -> Shard? {
        guard (0..<RedisClusterSlot.count).contains(slot) else { return nil }
        let index = owners[slot]
        return index < 0 ? nil : shards[Int(index)]
    }

    /// The shard serving `key`'s slot.
    public func shard(forKey key: String) -> Shard? {
        shard(forSlot: RedisClusterSlot.slot(forKey: key))
    }

    /// The shard named by `anchor` (`Shard.anchor`): the one serving that slot now.
    public func shard(anchor: Int) -> Shard? { shard(forSlot: anchor) }

    /// Slots some primary serves; 16,384 when the cluster is whole.
    public var coveredSlotCount: Int { owners.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
}

extension RedisClusterSlotMap {
    /// Parses a `CLUSTER SHARDS` reply (Redis 7): per shard, its slot ranges and nodes; the primary
    /// is the node whose role is `master` and whose health is not `failed`.
    ///
    /// - Parameters:
    ///   - host: The host of the node asked, for nodes announcing no address.
    ///   - tls: Use each node's `tls-port` (its `port` when it has none).
    /// - Throws: `RedisConnectionError` of kind `.protocolError` when the reply is not that shape.
    public static func parse(shardsReply reply: RESPValue, host: String, tls: Bool) throws(RedisConnectionError)
        -> RedisClusterSlotMap
    {
        guard case .array(let items?) = reply else { throw malformed("CLUSTER SHARDS", reply) }
        var shards: [Shard] = []
        for item in items {
            guard let fields = pairs(item), case .array(let bounds?) = fields["slots"],
                case .array(let nodes?) = fields["nodes"], bounds.count % 2 == 0
            else { throw malformed("CLUSTER SHARDS", item) }
            var ranges: [ClosedRange<Int>] = []
            for index in stride(from: 0, to: bounds.count, by: 2) {
                guard let low = integer(bounds[index]), let high = integer(bounds[index + 1]), isSlotRange(low, high)
                else {
                    throw malformed("CLUSTER SHARDS", item)
                }
                ranges.append(low...high)
            }
            let primary = nodes.lazy.compactMap { pairs($0) }.first {
                $0["role"]?.string == "master" && $0["health"]?.string != "failed"
            }
            guard let primary, !ranges.isEmpty else { continue }
            let portField = tls ? (primary["tls-port"] ?? primary["port"]) : (primary["port"] ?? primary["tls-port"])
            guard let port = portField.flatMap(integer), (1...65_535).contains(port) else {
                throw malformed("CLUSTER SHARDS", item)
            }
            let announced = [primary["endpoint"]?.string, primary["ip"]?.string].compactMap { $0 }
                .first { !$0.isEmpty && $0 != "?" }
            shards.append(Shard(primary: .tcp(host: announced ?? host, port: port), slots: ranges))
        }
        return RedisClusterSlotMap(shards: shards)
    }

    /// Parses a `CLUSTER SLOTS` reply: `[start, end, [host, port, id, ...], replicas...]` per range.
    ///
    /// - Parameter host: The host of the node asked, for an empty host (a node announcing none).
    /// - Throws: `RedisConnectionError` of kind `.protocolError` when the reply is not that shape.
    public static func parse(slotsReply reply: RESPValue, host: String) throws(RedisConnectionError)
        -> RedisClusterSlotMap
    {
        guard case .array(let items?) = reply else { throw malformed("CLUSTER SLOTS", reply) }
        var shards: [Shard] = []
        for item in items {
            guard case .array(let fields?) = item, fields.count >= 3, let low = integer(fields[0]),
                let high = integer(fields[1]), isSlotRange(low, high), case .array(let node?) = fields[2],
                node.count >= 2,
                let port = integer(node[1]), (1...65_535).contains(port)
            else { throw malformed("CLUSTER SLOTS", item) }
            let announced = node[0].string.flatMap { $0.isEmpty || $0 == "?" ? nil : $0 } ?? host
            let primary = RedisConnectionConfiguration.Endpoint.tcp(host: announced, port: port)
            if let index = shards.firstIndex(where: { $0.primary == primary }) {
                shards[index] = Shard(primary: primary, slots: shards[index].slots + [low...high])
            } else {
                shards.append(Shard(primary: primary, slots: [low...high]))
            }
        }
        return RedisClusterSlotMap(shards: shards)
    }

    /// A flat `[key, value, key, value...]` array as a dictionary.
    private static func pairs(_ value: RESPValue) -> [String: RESPValue]? {
        guard case .array(let items?) = value, items.count % 2 == 0 else { return nil }
        var result: [String: RESPValue] = [:]
        for index in stride(from: 0, to: items.count, by: 2) {
            guard let key = items[index].string else { return nil }
            result[key] = items[index + 1]
        }
        return result
    }

    /// `low...high` is a range of slots: a slot number outside 0–16383 is not one, and a shard
    /// anchored on it could never be found again (found by FuzzRedisTopology's invariants).
    private static func isSlotRange(_ low: Int, _ high: Int) -> Bool {
        0 <= low && low <= high && high < RedisClusterSlot.count
    }

    private static func integer(_ value: RESPValue) -> Int? {
        switch value {
        case .integer(let number): Int(exactly: number)
        case .bulkString, .simpleString: value.string.flatMap { Int($0) }
        default: nil
        }
    }

    private static func malformed(_ command: String, _ value: RESPValue) -> RedisConnectionError {
        RedisConnectionError(.protocolError, "Unexpected \(command) reply: \(String(describing: value).prefix(200))")
    }
}
