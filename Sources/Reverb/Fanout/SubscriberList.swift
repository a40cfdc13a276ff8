/// A channel's subscribers on one event loop: a dense array for fan-out, an index for removal.
///
/// Loop-bound, owned by a `LoopShard`.
final class SubscriberList {
    struct Entry {
        var connection: WebSocketConnectionHandler
        /// The broadcast sequence when the subscription was recorded.
        var joinedAt: UInt64
    }

    private(set) var entries: ContiguousArray<Entry> = []
    private var positions: [ObjectIdentifier: Int] = [:]

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// Adds `connection`; false when it was already there.
    @discardableResult
    func insert(_ connection: WebSocketConnectionHandler, joinedAt: UInt64) -> Bool {
        let id = ObjectIdentifier(connection)
        guard positions[id] == nil else { return false }
        positions[id] = entries.count
        entries.append(Entry(connection: connection, joinedAt: joinedAt))
        return true
    }

    /// Removes `connection`; false when it was not there.
    @discardableResult
    func remove(_ connection: WebSocketConnectionHandler) -> Bool {
        guard let position = positions.removeValue(forKey: ObjectIdentifier(connection)) else { return false }
        let last = entries.removeLast()
        if position < entries.count {
            entries[position] = last
            positions[ObjectIdentifier(last.connection)] = position
        }
        return true
    }
}

@available(*, unavailable)
extension SubscriberList: Sendable {}
