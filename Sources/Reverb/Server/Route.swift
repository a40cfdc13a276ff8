/// The routes of the listener (`http-api.md` §1, `protocol.md` §1.1), matched on percent-decoded
/// path segments after the server's path prefix.
enum Route: Equatable {
    case webSocket(key: String)
    case up
    case events(appID: String)
    case batchEvents(appID: String)
    case channels(appID: String)
    case channel(appID: String, channel: String)
    case channelUsers(appID: String, channel: String)
    case connections(appID: String)
    case terminateUserConnections(appID: String, userID: String)
    /// The Python SDK's path; the app is found by `auth_key`.
    case terminateUserConnectionsByKey(userID: String)
    /// `{prefix}/metrics` on the main listener when metrics are on without a port of their own.
    case metrics
    /// `{prefix}/dashboard/...` when the dashboard is on.
    case dashboard(DashboardRoute)

    /// Methods the route accepts (`HEAD` wherever `GET` is, except the WebSocket endpoint).
    /// Whether a request to this route publishes events (and so waits out a fan-out backlog).
    var publishes: Bool {
        switch self {
        case .events, .batchEvents: return true
        default: return false
        }
    }

    var allowedMethods: [String] {
        switch self {
        case .webSocket: return ["GET"]
        case .up, .metrics, .channels, .channel, .channelUsers, .connections: return ["GET", "HEAD"]
        case .events, .batchEvents, .terminateUserConnections, .terminateUserConnectionsByKey: return ["POST"]
        case .dashboard(let route): return route.allowedMethods
        }
    }

    /// The route template, for logs and metrics (never a raw path).
    var template: String {
        switch self {
        case .webSocket: return "/app/{key}"
        case .up: return "/up"
        case .metrics: return "/metrics"
        case .events: return "/apps/{appId}/events"
        case .batchEvents: return "/apps/{appId}/batch_events"
        case .channels: return "/apps/{appId}/channels"
        case .channel: return "/apps/{appId}/channels/{channel}"
        case .channelUsers: return "/apps/{appId}/channels/{channel}/users"
        case .connections: return "/apps/{appId}/connections"
        case .terminateUserConnections: return "/apps/{appId}/users/{userId}/terminate_connections"
        case .terminateUserConnectionsByKey: return "/users/{userId}/terminate_connections"
        case .dashboard: return "/dashboard"
        }
    }

    /// Every route template, for `/metrics` series.
    static let allTemplates = [
        "/app/{key}", "/up", "/metrics", "/apps/{appId}/events", "/apps/{appId}/batch_events", "/apps/{appId}/channels",
        "/apps/{appId}/channels/{channel}", "/apps/{appId}/channels/{channel}/users", "/apps/{appId}/connections",
        "/apps/{appId}/users/{userId}/terminate_connections", "/users/{userId}/terminate_connections",
    ]

    /// The app id in the path of an HTTP API route.
    var appID: String? {
        switch self {
        case .events(let id), .batchEvents(let id), .channels(let id), .channel(let id, _), .channelUsers(let id, _),
            .connections(let id), .terminateUserConnections(let id, _):
            return id
        case .webSocket, .up, .metrics, .terminateUserConnectionsByKey, .dashboard:
            return nil
        }
    }

    /// Matches a request path (query removed, still percent-encoded) under `prefixSegments`.
    /// - Parameters:
    ///   - metrics: whether `{prefix}/metrics` is a route.
    ///   - dashboard: whether `{prefix}/dashboard/...` are routes.
    static func match(path: Substring, prefixSegments: [String], metrics: Bool = false, dashboard: Bool = false)
        -> Route?
    {
        guard path.first == "/" else { return nil }
        var segments: [String] = []
        for raw in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            guard let decoded = PercentDecoding.decode(raw, plusAsSpace: false), !decoded.isEmpty else { return nil }
            segments.append(decoded)
        }
        guard segments.count > prefixSegments.count, Array(segments.prefix(prefixSegments.count)) == prefixSegments
        else { return nil }
        let s = Array(segments.dropFirst(prefixSegments.count))
        if dashboard && s[0] == "dashboard" { return DashboardRoute.match(Array(s.dropFirst())).map(Route.dashboard) }
        switch s.count {
        case 1 where s[0] == "up":
            return .up
        case 1 where metrics && s[0] == "metrics":
            return .metrics
        case 2 where s[0] == "app":
            return .webSocket(key: s[1])
        case 3 where s[0] == "apps":
            switch s[2] {
            case "events": return .events(appID: s[1])
            case "batch_events": return .batchEvents(appID: s[1])
            case "channels": return .channels(appID: s[1])
            case "connections": return .connections(appID: s[1])
            default: return nil
            }
        case 3 where s[0] == "users" && s[2] == "terminate_connections":
            return .terminateUserConnectionsByKey(userID: s[1])
        case 4 where s[0] == "apps" && s[2] == "channels":
            return .channel(appID: s[1], channel: s[3])
        case 5 where s[0] == "apps" && s[2] == "channels" && s[4] == "users":
            return .channelUsers(appID: s[1], channel: s[3])
        case 5 where s[0] == "apps" && s[2] == "users" && s[4] == "terminate_connections":
            return .terminateUserConnections(appID: s[1], userID: s[3])
        default:
            return nil
        }
    }
}

/// Percent-decoding for paths and query strings.
enum PercentDecoding {
    /// Decodes `%XX` escapes (and `+` as a space when asked); nil for a bad escape or invalid UTF-8.
    static func decode<S: StringProtocol>(_ text: S, plusAsSpace: Bool) -> String? {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) })
        else { return String(text) }
        let utf8 = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count)
        var i = 0
        while i < utf8.count {
            let byte = utf8[i]
            if byte == UInt8(ascii: "%") {
                guard i + 2 < utf8.count, let high = hexValue(utf8[i + 1]), let low = hexValue(utf8[i + 2]) else {
                    return nil
                }
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(plusAsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                i += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
