/// What a Redis Cluster error reply asks the client to do (`-MOVED`, `-ASK`, `-CLUSTERDOWN`,
/// `-TRYAGAIN`); any other error reply is none of these.
public enum RedisClusterRedirect: Sendable, Equatable {
    /// The slot has a new owner for good: refresh the slot map and send there.
    case moved(slot: Int, to: RedisConnectionConfiguration.Endpoint)
    /// The slot is migrating: send `ASKING` and then the command to that node, once.
    case ask(slot: Int, to: RedisConnectionConfiguration.Endpoint)
    /// The cluster cannot serve the slot now (failing over, or a multi-key command mid-migration):
    /// refresh the slot map and try again later.
    case tryAgain

    /// The redirect an error reply's text (without the `-`) asks for, if any.
    ///
    /// - Parameter host: The host of the node that answered, used when the reply leaves the host
    ///   empty (Redis does when it does not know the node's announced endpoint).
    public init?(errorReply text: String, host: String) {
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        guard let kind = words.first else { return nil }
        switch kind {
        case "CLUSTERDOWN", "TRYAGAIN":
            self = .tryAgain
        case "MOVED", "ASK":
            guard words.count == 3, let slot = Int(words[1]), (0..<RedisClusterSlot.count).contains(slot),
                let colon = words[2].lastIndex(of: ":"), let port = Int(words[2][words[2].index(after: colon)...]),
                (1...65_535).contains(port)
            else { return nil }
            var target = String(words[2][..<colon])
            if target.hasPrefix("[") && target.hasSuffix("]") { target = String(target.dropFirst().dropLast()) }
            let endpoint = RedisConnectionConfiguration.Endpoint.tcp(host: target.isEmpty ? host : target, port: port)
            self = kind == "MOVED" ? .moved(slot: slot, to: endpoint) : .ask(slot: slot, to: endpoint)
        default:
            return nil
        }
    }
}
