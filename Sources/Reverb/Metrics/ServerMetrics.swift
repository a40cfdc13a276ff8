import NIOConcurrencyHelpers
import NIOCore
import Prometheus

/// `/metrics` (`http-api.md` §8.2) in Prometheus text format 0.0.4, through swift-prometheus.
///
/// Per-frame counters live in each loop's `LoopMetrics` and are summed at scrape time; what the
/// scrape reads (sums, gauges, other components' counters) is written into the registry's
/// collectors under one scrape lock, then the registry renders. HTTP requests (never per delivered
/// frame) count straight into their collectors.
final class ServerMetrics: Sendable {
    static let durationBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// What one scrape reads, besides the loops' counters.
    struct Snapshot: Sendable {
        struct App: Sendable {
            var id: String
            var channels = 0
            var webhooksSent = 0
            var webhooksFailed = 0
            var webhooksDropped = 0
            var webhookQueueDepth = 0
        }

        struct Redis: Sendable {
            var publisherConnected = false
            var subscriberConnected = false
            var publisherReconnects = 0
            var subscriberReconnects = 0
            var publishQueueDepth = 0
            var publishDropped = 0
            /// Redis Cluster: each shard connection, `(role, shard, connected)`; empty otherwise.
            var shards: [Shard] = []
        }

        struct Shard: Sendable, Hashable {
            var role: String
            var shard: String
            var connected: Bool
        }

        var port: Int
        var loops: LoopMetrics
        var apps: [App]
        var inboxFullDrops = 0
        var redis: Redis?
        var clusterNodes = 1
        var clusterQueryTimeouts = 0
        /// Bus messages and bytes this node heard (its own echoes included), and, with interest
        /// routing, the bucket channels it listens to.
        var clusterBusMessages = 0
        var clusterBusBytes = 0
        var clusterBucketsSubscribed = 0
        var process = ProcessMetrics()
    }

    let registry = PrometheusCollectorRegistry()
    let prefix: String
    private let requests = NIOLockedValueBox([String: Counter]())
    private let durations: [String: ValueHistogram]
    private let scrapeLock = NIOLock()
    /// The `(role, shard)` label pairs of `redis_shard_connected` written at the last scrape, so a
    /// shard whose primary moved stops being reported.
    private let shardLabels = NIOLockedValueBox<Set<[String]>>([])

    init(prefix: String) {
        self.prefix = prefix
        var durations: [String: ValueHistogram] = [:]
        for template in Route.allTemplates + ["unmatched"] {
            durations[template] = registry.makeValueHistogram(
                descriptor: Self.descriptor(
                    prefix + "http_request_duration_seconds",
                    "Time from a complete request to its response handed to the connection."),
                labels: [("route", template)], buckets: Self.durationBuckets)
        }
        self.durations = durations
    }

    /// One HTTP request of the main listener: its route template and status.
    func recordRequest(route template: String, status: Int, seconds: Double) {
        let key = "\(template) \(status)"
        let counter = requests.withLockedValue { counters -> Counter in
            if let counter = counters[key] { return counter }
            let counter = registry.makeCounter(
                descriptor: Self.descriptor(
                    prefix + "http_requests_total", "HTTP requests on the main listener, WebSocket handshakes included."
                ),
                labels: [("route", template), ("status", String(status))])
            counters[key] = counter
            return counter
        }
        counter.increment()
        durations[template]?.record(max(0, seconds))
    }

    /// The exposition text for `snapshot`.
    func render(_ snapshot: Snapshot) -> [UInt8] {
        scrapeLock.withLock {
            write(snapshot)
            return registry.emitToBuffer()
        }
    }

    /// A whole name (the descriptor joins its non-empty parts with `_`).
    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    private func counter(_ name: String, _ labels: [(String, String)], _ help: String, _ value: Int) {
        let counter = registry.makeCounter(descriptor: Self.descriptor(prefix + name, help), labels: labels)
        counter.reset()
        counter.increment(by: Int64(max(0, value)))
    }

    private func gauge(_ name: String, _ labels: [(String, String)], _ help: String, _ value: Double) {
        registry.makeGauge(descriptor: Self.descriptor(prefix + name, help), labels: labels).set(value)
    }

    private func write(_ snapshot: Snapshot) {
        let port = String(snapshot.port)
        for (index, app) in snapshot.apps.enumerated() {
            let labels = [("app_id", app.id), ("port", port)]
            let loop = index < snapshot.loops.apps.count ? snapshot.loops.apps[index] : LoopMetrics.App()
            gauge("connected", labels, "Open connections that got connection_established.", Double(loop.connected))
            counter("new_connections_total", labels, "Connections established.", loop.newConnections)
            counter("new_disconnections_total", labels, "Established connections closed.", loop.newDisconnections)
            counter(
                "socket_received_bytes", labels, "WebSocket data-message payload bytes from clients.",
                loop.receivedBytes)
            counter(
                "socket_transmitted_bytes", labels, "WebSocket data-message payload bytes to clients.",
                loop.transmittedBytes)
            counter(
                "ws_messages_received_total", labels, "WebSocket data messages from clients.", loop.messagesReceived)
            counter("ws_messages_sent_total", labels, "WebSocket data messages to clients.", loop.messagesSent)
            counter("http_received_bytes", labels, "HTTP API request body bytes.", loop.httpReceivedBytes)
            counter("http_transmitted_bytes", labels, "HTTP API response body bytes.", loop.httpTransmittedBytes)
            counter("http_calls_received_total", labels, "HTTP API requests.", loop.httpCalls)

            let appLabel = [("app_id", app.id)]
            gauge("channels", appLabel, "Occupied channels on this node.", Double(app.channels))
            counter("webhooks_sent_total", appLabel, "Webhook POSTs answered 2xx.", app.webhooksSent)
            counter(
                "webhooks_failed_total", appLabel, "Webhook attempts that failed (status, timeout, connection).",
                app.webhooksFailed)
            counter(
                "webhooks_dropped_total", appLabel, "Webhook events given up (retry window over, queue full).",
                app.webhooksDropped)
            gauge("webhook_queue_depth", appLabel, "Webhook events waiting.", Double(app.webhookQueueDepth))
        }
        for (key, value) in snapshot.loops.pusherErrors {
            let appID = key.app >= 0 && key.app < snapshot.apps.count ? snapshot.apps[key.app].id : ""
            counter(
                "pusher_errors_total", [("app_id", appID), ("code", String(key.code))],
                "pusher:error frames and Pusher-code closes sent, by code.", value)
        }
        let droppedHelp = "Frames not delivered."
        counter(
            "deliveries_dropped_total", [("reason", "slow_consumer")], droppedHelp, snapshot.loops.slowConsumerDrops)
        counter("deliveries_dropped_total", [("reason", "inbox_full")], droppedHelp, snapshot.inboxFullDrops)
        counter(
            "slow_consumer_disconnections_total", [], "Clients closed with 4100 for not reading.",
            snapshot.loops.slowConsumerDisconnections)
        if let redis = snapshot.redis {
            let connectedHelp = "Whether the Redis connection is up."
            gauge("redis_connected", [("role", "publisher")], connectedHelp, redis.publisherConnected ? 1 : 0)
            gauge("redis_connected", [("role", "subscriber")], connectedHelp, redis.subscriberConnected ? 1 : 0)
            let reconnectsHelp = "Redis connections made after the first."
            counter("redis_reconnects_total", [("role", "publisher")], reconnectsHelp, redis.publisherReconnects)
            counter("redis_reconnects_total", [("role", "subscriber")], reconnectsHelp, redis.subscriberReconnects)
            gauge(
                "redis_publish_queue_depth", [], "Messages waiting to be published to Redis.",
                Double(redis.publishQueueDepth))
            counter(
                "redis_publish_dropped_total", [], "Messages dropped because the publish queue was full.",
                redis.publishDropped)
            let shardHelp = "Redis Cluster: whether the connection to this shard's primary is up."
            var current: Set<[String]> = []
            for shard in redis.shards {
                current.insert([shard.role, shard.shard])
                gauge(
                    "redis_shard_connected", [("shard", shard.shard), ("role", shard.role)], shardHelp,
                    shard.connected ? 1 : 0)
            }
            let previous = shardLabels.withLockedValue { labels in
                defer { labels = current }
                return labels
            }
            for gone in previous.subtracting(current) {
                registry.unregisterGauge(
                    registry.makeGauge(
                        descriptor: Self.descriptor(prefix + "redis_shard_connected", shardHelp),
                        labels: [("shard", gone[1]), ("role", gone[0])]))
            }
        }
        gauge("cluster_nodes", [], "Live nodes, this one included.", Double(snapshot.clusterNodes))
        counter(
            "cluster_query_timeouts_total", [], "Cluster queries answered partial.", snapshot.clusterQueryTimeouts)
        counter(
            "cluster_bus_messages_received_total", [], "Bus messages this node heard from Redis.",
            snapshot.clusterBusMessages)
        counter(
            "cluster_bus_received_bytes_total", [], "Payload bytes of the bus messages this node heard.",
            snapshot.clusterBusBytes)
        gauge(
            "cluster_buckets_subscribed", [], "Bucket channels this node listens to (interest routing).",
            Double(snapshot.clusterBucketsSubscribed))

        let process = snapshot.process
        func processGauge(_ name: String, _ help: String, _ value: Double) {
            registry.makeGauge(descriptor: Self.descriptor(name, help), labels: []).set(value)
        }
        processGauge("process_resident_memory_bytes", "Resident memory size in bytes.", process.residentMemoryBytes)
        let cpu = registry.makeCounter(
            descriptor: Self.descriptor(
                "process_cpu_seconds_total", "Total user and system CPU time spent in seconds."),
            labels: [])
        cpu.reset()
        cpu.increment(by: process.cpuSeconds)
        processGauge("process_open_fds", "Number of open file descriptors.", process.openFileDescriptors)
        processGauge(
            "process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.",
            process.startTimeSeconds)
    }
}
