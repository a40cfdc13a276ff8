/// The signed-in users of one app across the cluster (`protocol.md` §13.4, docs.md "Scaling"): per
/// user identity, the nodes with at least one socket signed in as that user, this node's socket
/// count, and how many local sockets watch each identity. Modelled on `PresenceRoster`; a plain
/// value, changed under its app's `ChannelDirectory` lock.
///
/// A user is online while any node holds it. Nodes are named as in presence rosters
/// (`ChannelDirectoryState.localNode` for this one).
struct UserRoster {
    struct Entry {
        /// Nodes with a socket of this user; almost always one, so an array beats a set.
        var nodes: [String]
        /// Bytes charged to the other nodes' cap when another node created the entry.
        var charged: Int
    }

    private(set) var entries: [String: Entry] = [:]
    /// Local sockets signed in as each identity.
    private(set) var localSockets: [String: Int] = [:]
    /// Local sockets watching each identity; only watched identities make watchlist events.
    private(set) var watchers: [String: Int] = [:]

    var count: Int { entries.count }

    func isOnline(_ identity: String) -> Bool { entries[identity] != nil }

    func holds(_ identity: String, node: String) -> Bool {
        entries[identity]?.nodes.contains(node) ?? false
    }

    func isWatched(_ identity: String) -> Bool { watchers[identity] != nil }

    /// Records that `node` holds `identity`. Returns true when the user came online cluster-wide.
    mutating func add(_ identity: String, node: String, charge: Int = 0) -> Bool {
        if entries[identity] != nil {
            if !entries[identity]!.nodes.contains(node) { entries[identity]!.nodes.append(node) }
            return false
        }
        entries[identity] = Entry(nodes: [node], charged: charge)
        return true
    }

    /// Records that `node` no longer holds `identity`. Returns the entry when the user went offline
    /// cluster-wide.
    mutating func remove(_ identity: String, node: String) -> Entry? {
        guard var entry = entries.removeValue(forKey: identity) else { return nil }
        entry.nodes.removeAll { $0 == node }
        guard entry.nodes.isEmpty else {
            entries[identity] = entry
            return nil
        }
        return entry
    }

    /// One more local socket of `identity`; true when it is the first.
    mutating func addLocalSocket(_ identity: String) -> Bool {
        localSockets[identity, default: 0] += 1
        return localSockets[identity] == 1
    }

    /// One local socket of `identity` fewer; true when it was the last.
    mutating func removeLocalSocket(_ identity: String) -> Bool {
        let left = (localSockets[identity] ?? 1) - 1
        localSockets[identity] = left > 0 ? left : nil
        return left <= 0
    }

    mutating func watch(_ identities: [String]) {
        for identity in identities { watchers[identity, default: 0] += 1 }
    }

    mutating func unwatch(_ identities: [String]) {
        for identity in identities {
            let left = (watchers[identity] ?? 1) - 1
            watchers[identity] = left > 0 ? left : nil
        }
    }

    /// Identities `node` holds, in no particular order.
    func identities(heldBy node: String) -> [String] {
        entries.compactMap { $0.value.nodes.contains(node) ? $0.key : nil }
    }

    /// `watchlist` split into its offline and online ids, in watchlist order (`protocol.md` §13.4).
    func state(of watchlist: [String]) -> (offline: [String], online: [String]) {
        var offline: [String] = []
        var online: [String] = []
        for identity in watchlist {
            if isOnline(identity) { online.append(identity) } else { offline.append(identity) }
        }
        return (offline, online)
    }
}
