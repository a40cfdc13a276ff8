import NIOCore

/// The `info` attributes a request asked for (`http-api.md` §4).
struct InfoAttributes: Equatable {
    var occupied = false
    var userCount = false
    var subscriptionCount = false
    var cache = false

    /// Parses a comma-separated list; spaces trimmed, unknown names ignored.
    init(_ text: String?) {
        guard let text else { return }
        for item in text.split(separator: ",") {
            switch item.trimmingSpaces() {
            case "occupied": occupied = true
            case "user_count": userCount = true
            case "subscription_count": subscriptionCount = true
            case "cache": cache = true
            default: break
            }
        }
    }

    var isEmpty: Bool { !occupied && !userCount && !subscriptionCount && !cache }
}

/// What one node knows of a channel, the input of an info object.
struct ChannelSnapshot {
    var subscriptionCount: Int
    var users: [JSONValue]
    /// The cached frame's JSON and its remaining lifetime in seconds.
    var cache: (payload: JSONValue, ttl: Int)?

    var occupied: Bool { subscriptionCount > 0 }

    /// The info object with the requested attributes that apply to `channel`, keys in spec order.
    func infoObject(channel: String, attributes: InfoAttributes, includeOccupied: Bool) -> JSONObject {
        let kind = ChannelName.kind(of: channel)
        var object = JSONObject()
        if includeOccupied || attributes.occupied { object["occupied"] = .bool(occupied) }
        if occupied && attributes.userCount && kind.isPresence {
            object["user_count"] = .number(String(users.count))
        }
        if occupied && attributes.subscriptionCount && !kind.isPresence {
            object["subscription_count"] = .number(String(subscriptionCount))
        }
        if attributes.cache, kind.isCache, let cache, case .object(var frame) = cache.payload {
            frame["ttl"] = .number(String(cache.ttl))
            object["cache"] = .object(frame)
        }
        return object
    }
}

extension AppContext {
    /// The cached event of `channel` as JSON with its remaining lifetime in seconds; nil without one.
    /// Only the lookup runs under the directory lock, the parse after it.
    func cachedEvent(on channel: String) -> (payload: JSONValue, ttl: Int)? {
        let now = NIODeadline.now()
        guard let info = directory.withState({ $0.cacheInfo(for: channel, now: now) }),
            let payload = try? JSONParser.parse(info.frame.payload.readableBytesView)
        else { return nil }
        return (payload, info.ttl)
    }
}
