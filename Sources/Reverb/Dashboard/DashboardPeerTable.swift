import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The dashboard's view of the other nodes of a cluster: the figures each sent in answer to this
/// node's "a console watches" announcement (`ClusterNode+Debug`), kept for `lifetime`.
final class DashboardPeerTable: Sendable {
    /// How long a peer's figures are shown without a newer answer.
    static let lifetime = TimeAmount.seconds(5)
    /// Peers remembered at most.
    static let maximumPeers = 256

    private struct Entry {
        var stats: JSONObject
        var receivedAt: NIODeadline
    }

    private let entries = NIOLockedValueBox([String: Entry]())
    private let registry = NIOLockedValueBox<AppRegistry?>(nil)
    /// This process's start, Unix seconds, for the uptime peers show.
    let startedAt = Int64(time(nil))

    /// The apps whose figures this node sends.
    var apps: AppRegistry? { registry.withLockedValue { $0 } }

    func attach(_ apps: AppRegistry) {
        registry.withLockedValue { $0 = apps }
    }

    func record(node: String, stats: JSONObject, now: NIODeadline = .now()) {
        entries.withLockedValue { entries in
            if entries[node] == nil && entries.count >= Self.maximumPeers {
                entries = entries.filter { now - $0.value.receivedAt < Self.lifetime }
                guard entries.count < Self.maximumPeers else { return }
            }
            entries[node] = Entry(stats: stats, receivedAt: now)
        }
    }

    /// Peers heard from within `lifetime`, by node id.
    func fresh(now: NIODeadline = .now()) -> [(String, JSONObject)] {
        entries.withLockedValue { entries in
            entries = entries.filter { now - $0.value.receivedAt < Self.lifetime }
            return entries.map { ($0.key, $0.value.stats) }.sorted { $0.0 < $1.0 }
        }
    }

    /// A peer's row of the overview: the app's connections there when `app` is given.
    static func describe(node: String, stats: JSONObject, app: String?) -> JSONObject {
        var row = JSONObject([("id", .string(node)), ("self", .bool(false))])
        row["host"] = stats["host"] ?? .string("?")
        if let started = stats["started_at"]?.integerValue {
            row["uptime"] = .number(String(max(0, Int(time(nil)) - started)))
        }
        let connections = app.map { stats["apps"]?.objectValue?[$0] } ?? stats["connections"]
        row["connections"] = connections ?? .number("0")
        for key in ["publisher", "subscriber", "queue"] { row[key] = stats[key] ?? .null }
        return row
    }
}
