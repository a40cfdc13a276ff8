import NIOCore
import ReverbRedis
import Synchronization

/// The dashboard over the bus (docs.md "Dashboard"): only while a console is open somewhere.
///
/// A node with an open console says `debug_watch` (with the apps it watches) every second. Each
/// peer answers with its `dashboard_stats` (host, uptime, connections, Redis links) and, for
/// `DebugTap.remoteWatchLifetime` after, forwards the watched apps' activity as `debug_event`s.
/// Nobody watching means no message at all.
extension ClusterNode {
    /// Connects every app's debug tap to the bus and gives the dashboard's peer table the apps.
    func connectDashboard(apps: AppRegistry) {
        dashboardPeers.attach(apps)
        for app in apps.all {
            let appID = app.id
            app.debug.connect(node: nodeID) { [weak self] text in
                guard let self else { return }
                self.publisher.publish(
                    ClusterEnvelope.debugEvent(node: self.nodeID, app: appID, event: text), to: self.channel)
            }
        }
    }

    /// Tells the peers that consoles here watch `apps` (or only the overview, when empty).
    func announceDebugWatch(apps: [String]) {
        publisher.publish(ClusterEnvelope.debugWatch(node: nodeID, apps: apps), to: channel)
    }

    /// `debug_watch`, `debug_event` and `dashboard_stats` from `sender`.
    func receiveDashboard(type: String, envelope: JSONObject, from sender: String) {
        switch type {
        case "debug_watch":
            let registry = dashboardPeers.apps
            for id in envelope["apps"]?.arrayValue ?? [] {
                guard let id = id.stringValue else { continue }
                registry?.app(id: id)?.debug.remoteWatchHeard()
            }
            if let registry { publisher.publish(dashboardStats(apps: registry), to: channel) }
        case "debug_event":
            guard let id = envelope["app"]?.stringValue, case .object(let event)? = envelope["event"] else { return }
            dashboardPeers.apps?.app(id: id)?.debug.deliverRemote(JSONWriter.string(.object(event)))
        case "dashboard_stats":
            guard case .object(let stats)? = envelope["stats"] else { return }
            dashboardPeers.record(node: sender, stats: stats)
        default:
            break
        }
    }

    private func dashboardStats(apps: AppRegistry) -> ByteBuffer {
        var perApp = JSONObject()
        var total = 0
        for app in apps.all {
            let count = app.connectionCount.load(ordering: .relaxed)
            perApp[app.id] = .number(String(count))
            total += count
        }
        let stats = JSONObject([
            ("host", .string(Self.hostName())), ("started_at", .number(String(dashboardPeers.startedAt))),
            ("connections", .number(String(total))), ("apps", .object(perApp)),
            ("publisher", .bool(publisher.linkState.isConnected)),
            ("subscriber", .bool(subscriber.linkState.isConnected)),
            ("queue", .number(String(publisher.queuedMessageCount))),
        ])
        return ClusterEnvelope.dashboardStats(node: nodeID, stats: stats)
    }
}
