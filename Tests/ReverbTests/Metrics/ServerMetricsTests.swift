import NIOCore
import Testing

@testable import Reverb

/// `/metrics` rendering (`http-api.md` §8.2): names, labels, types and the values of a snapshot.
@Suite struct ServerMetricsTests {
    static func snapshot() -> ServerMetrics.Snapshot {
        var loops = LoopMetrics(appCount: 2)
        loops.apps[0].connected = 3
        loops.apps[0].messagesSent = 42
        loops.apps[1].httpCalls = 7
        loops.pusherErrors[LoopMetrics.ErrorKey(app: 0, code: 4009)] = 2
        loops.pusherErrors[LoopMetrics.ErrorKey(app: -1, code: 4001)] = 1
        loops.slowConsumerDrops = 5
        loops.slowConsumerDisconnections = 1
        var snapshot = ServerMetrics.Snapshot(
            port: 8080, loops: loops,
            apps: [.init(id: "app1", channels: 4, webhooksSent: 9), .init(id: "app2")], inboxFullDrops: 6)
        snapshot.redis = .init(publisherConnected: true, subscriberReconnects: 2, publishQueueDepth: 11)
        snapshot.clusterNodes = 3
        snapshot.clusterBusMessages = 40
        snapshot.clusterBusBytes = 4096
        snapshot.clusterBucketsSubscribed = 7
        snapshot.process = ProcessMetrics(
            residentMemoryBytes: 1024, cpuSeconds: 1.5, openFileDescriptors: 12, startTimeSeconds: 1_700_000_000)
        return snapshot
    }

    @Test func rendersEveryFamilyWithItsValues() {
        let metrics = ServerMetrics(prefix: "reverb_")
        metrics.recordRequest(route: "/apps/{appId}/events", status: 200, seconds: 0.003)
        metrics.recordRequest(route: "/apps/{appId}/events", status: 200, seconds: 0.2)
        let text = String(decoding: metrics.render(Self.snapshot()), as: UTF8.self)
        let lines = Set(text.split(separator: "\n").map(String.init))
        for expected in [
            #"reverb_connected{app_id="app1",port="8080"} 3.0"#,
            #"reverb_ws_messages_sent_total{app_id="app1",port="8080"} 42"#,
            #"reverb_http_calls_received_total{app_id="app2",port="8080"} 7"#,
            #"reverb_new_connections_total{app_id="app2",port="8080"} 0"#,
            #"reverb_channels{app_id="app1"} 4.0"#,
            #"reverb_webhooks_sent_total{app_id="app1"} 9"#,
            #"reverb_pusher_errors_total{app_id="app1",code="4009"} 2"#,
            #"reverb_pusher_errors_total{app_id="",code="4001"} 1"#,
            #"reverb_deliveries_dropped_total{reason="slow_consumer"} 5"#,
            #"reverb_deliveries_dropped_total{reason="inbox_full"} 6"#,
            "reverb_slow_consumer_disconnections_total 1",
            #"reverb_redis_connected{role="publisher"} 1.0"#,
            #"reverb_redis_connected{role="subscriber"} 0.0"#,
            #"reverb_redis_reconnects_total{role="subscriber"} 2"#,
            "reverb_redis_publish_queue_depth 11.0",
            "reverb_cluster_nodes 3.0",
            "reverb_cluster_query_timeouts_total 0",
            "reverb_cluster_bus_messages_received_total 40",
            "reverb_cluster_bus_received_bytes_total 4096",
            "reverb_cluster_buckets_subscribed 7.0",
            #"reverb_http_requests_total{route="/apps/{appId}/events",status="200"} 2"#,
            #"reverb_http_request_duration_seconds_bucket{route="/apps/{appId}/events",le="0.005"} 1"#,
            #"reverb_http_request_duration_seconds_bucket{route="/apps/{appId}/events",le="0.25"} 2"#,
            #"reverb_http_request_duration_seconds_count{route="/apps/{appId}/events"} 2"#,
            "process_resident_memory_bytes 1024.0",
            "process_cpu_seconds_total 1.5",
            "process_open_fds 12.0",
            "# TYPE reverb_connected gauge",
            "# TYPE reverb_new_connections_total counter",
            "# TYPE reverb_http_request_duration_seconds histogram",
            "# HELP reverb_deliveries_dropped_total Frames not delivered.",
        ] {
            #expect(lines.contains(expected), "missing \(expected)")
        }
        // Every family has its HELP and TYPE.
        let families = Set(lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
        let helped = Set(lines.filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
        #expect(families == helped)
        #expect(families.count == 33)
    }

    @Test func aSecondScrapeReplacesTheValues() {
        let metrics = ServerMetrics(prefix: "")
        var snapshot = Self.snapshot()
        _ = metrics.render(snapshot)
        snapshot.loops.apps[0].messagesSent = 50
        let text = String(decoding: metrics.render(snapshot), as: UTF8.self)
        #expect(text.contains(#"ws_messages_sent_total{app_id="app1",port="8080"} 50"#))
        #expect(!text.contains("reverb_"))
    }

    @Test func payloadBytesOfFrames() {
        for payload in [0, 125, 126, 65_535, 65_536, 100_000] {
            let frame = OutboundFrame.build { $0.writeRepeatingByte(0x20, count: payload) }
            #expect(LoopMetrics.payloadBytes(ofFrame: frame.bytes.readableBytes) == payload)
        }
    }
}
