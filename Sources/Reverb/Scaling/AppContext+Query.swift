import ReverbRedis
import Synchronization

/// This node's answer to a cluster query (`scaling.md` §4.4), also the requester's own part.
extension AppContext {
    /// Whose subscribers a channel query counts.
    enum QueryScope {
        /// This node's, the answer to a peer's `query` (`scaling.md` §4.4).
        case local
        /// The whole cluster's, from the replicated state (§4.6): the HTTP API's answer.
        case cluster
    }

    func queryResult(_ request: ClusterQueryRequest, scope: QueryScope) -> JSONObject {
        switch request {
        case .connections:
            return JSONObject([("connections", .number(String(connectionCount.load(ordering: .relaxed))))])
        case .channels(let prefix, let names, let wantsUsers):
            return directory.withState { state in
                var counts = JSONObject()
                var users = JSONObject()
                let candidates =
                    names ?? (scope == .local ? state.localOccupiedChannels() : state.occupiedChannels())
                for name in candidates where name.hasPrefix(prefix) {
                    let count =
                        scope == .local ? state.localSubscriptionCount(name) : state.subscriptionCount(name)
                    guard count > 0 else { continue }
                    counts[name] = .number(String(count))
                    if wantsUsers && ChannelName.kind(of: name).isPresence {
                        users[name] = .array(scope == .local ? state.localUsers(name) : state.users(name))
                    }
                }
                var result = JSONObject([("channels", .object(counts))])
                if wantsUsers { result["users"] = .object(users) }
                return result
            }
        }
    }
}

/// Channel counts and users gathered from this node and its peers, merged per `scaling.md` §4.4.
struct ClusterChannelView {
    struct Entry {
        var subscriptionCount = 0
        var users: [JSONValue] = []
        var identities: Set<String> = []
    }

    private(set) var order: [String] = []
    private(set) var entries: [String: Entry] = [:]
    /// Open connections summed over the nodes that answered a `connections` query.
    private(set) var connections = 0
    /// Some node did not answer in time (`X-Reverb-Partial: 1`).
    var partial = false

    init() {}

    /// The view of this node's result and its peers' replies, its own first (`scaling.md` §4.4).
    init(merging local: JSONObject, _ replies: [JSONObject] = [], partial: Bool = false) {
        merge(local)
        for reply in replies { merge(reply) }
        self.partial = partial
    }

    /// Merges one node's `channels` result; the requester's own comes first.
    mutating func merge(_ result: JSONObject) {
        if let count = result["connections"]?.integerValue { connections += count }
        guard case .object(let counts)? = result["channels"] else { return }
        let users = result["users"]?.objectValue
        for (name, value) in counts.entries {
            guard let count = value.integerValue else { continue }
            if entries[name] == nil {
                entries[name] = Entry()
                order.append(name)
            }
            entries[name]!.subscriptionCount += count
            for userID in users?[name]?.arrayValue ?? [] {
                guard let identity = PresenceMember.identity(of: userID) else { continue }
                if entries[name]!.identities.insert(identity).inserted {
                    entries[name]!.users.append(userID)
                }
            }
        }
    }
}

extension ClusterChannelView {
    /// The merged view of `name`, with the local cached event when asked for.
    func snapshot(of name: String, app: AppContext, includeCache: Bool) -> ChannelSnapshot {
        let entry = entries[name] ?? Entry()
        var snapshot = ChannelSnapshot(subscriptionCount: entry.subscriptionCount, users: entry.users, cache: nil)
        if includeCache { snapshot.cache = app.cachedEvent(on: name) }
        return snapshot
    }
}
