import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// The fan-out machinery shared by `fanout`, `cluster`, `http` and `redis-baseline`: S subscribers on
/// one channel, K publishing connections, one phase per pace, the same latency measurement for all.
struct FanoutRun {
    var subscriberEndpoint: SubscriberEndpoint
    var subscriberFlag: String
    var publisherTarget: BenchTarget
    var publisherFlag: String
    var encoder: EventRequestEncoder
    var subscribers: Int
    var publishConnections: Int
    var duration: TimeAmount
    var drainTimeout: TimeAmount = .seconds(10)
    var serverPIDs: [Int32] = []

    func run(paces: [PublishPace], group: any EventLoopGroup) async throws -> [BenchReport.Phase] {
        let stats = DeliveryStats(group: group)
        let subscribeStart = ResourceUsage.wallSeconds()
        let channels = try await Connector.subscribe(
            count: subscribers, endpoint: subscriberEndpoint, flag: subscriberFlag, stats: stats, group: group
        ) { _ in benchChannel }
        let subscribeSeconds = ResourceUsage.wallSeconds() - subscribeStart
        let loop = group.next()
        let driver = try await loop.submit { [encoder, subscribers] in
            NIOLoopBound(
                PublishDriver(eventLoop: loop, encoder: encoder, deliveries: stats, subscribersPerEvent: subscribers),
                eventLoop: loop)
        }.get()
        let publishers: [any Channel]
        do {
            publishers = try await Connector.publishers(
                count: publishConnections, target: publisherTarget, flag: publisherFlag, kind: encoder.responseKind,
                driver: driver)
        } catch {
            await Connector.close(channels)
            throw error
        }
        defer { _ = publishers }
        var phases: [BenchReport.Phase] = []
        do {
            for pace in paces {
                phases.append(
                    try await phase(
                        pace: pace, driver: driver, stats: stats, subscribeSeconds: subscribeSeconds))
            }
        } catch {
            await Connector.close(publishers + channels)
            throw error
        }
        await Connector.close(publishers + channels)
        return phases
    }

    private var benchChannel: String { "bench-fanout" }

    private func phase(
        pace: PublishPace, driver: NIOLoopBound<PublishDriver>, stats: DeliveryStats, subscribeSeconds: Double
    ) async throws -> BenchReport.Phase {
        try await stats.resetLatencies()
        let deliveredBefore = stats.delivered.load(ordering: .relaxed)
        let disconnectedBefore = stats.disconnected.load(ordering: .relaxed)
        let clientStart = ResourceUsage.selfCPU()
        let serverStart = serverPIDs.compactMap { ResourceUsage.processCPU(pid: $0) }
        let start = ResourceUsage.wallSeconds()
        let duration = self.duration
        let future = try await driver.eventLoop.submit { driver.value.run(pace: pace, duration: duration) }.get()
        let abandon = driver.eventLoop.scheduleTask(in: duration + drainTimeout) { driver.value.abandon() }
        let result = try await future.get()
        abandon.cancel()
        // Wait until every accepted event reached every subscriber, or delivery stops progressing.
        let expected = result.succeeded * subscribers
        var delivered = stats.delivered.load(ordering: .relaxed) - deliveredBefore
        var lastProgress = ResourceUsage.wallSeconds()
        var lastDelivery = lastProgress
        let patience = Double(drainTimeout.nanoseconds) / 1e9
        while delivered < expected && ResourceUsage.wallSeconds() - lastProgress < patience {
            try await Task.sleep(for: .milliseconds(2))
            let now = stats.delivered.load(ordering: .relaxed) - deliveredBefore
            if now != delivered {
                delivered = now
                lastProgress = ResourceUsage.wallSeconds()
                lastDelivery = lastProgress
            }
        }
        if subscribers == 0 { lastDelivery = start + result.seconds }
        let clientEnd = ResourceUsage.selfCPU()
        let serverEnd = serverPIDs.compactMap { ResourceUsage.processCPU(pid: $0) }
        let latency = try await stats.latencies()
        let activeSeconds = max(lastDelivery - start, result.seconds)

        var phase = BenchReport.Phase(name: pace.description)
        phase.add("subscribers", Double(subscribers))
        phase.add("subscribe time", subscribeSeconds, "s")
        phase.add("events sent", Double(result.sent))
        phase.add("events accepted", Double(result.succeeded))
        phase.add("events failed", Double(result.failed + result.unanswered))
        phase.add("events/s", result.seconds > 0 ? Double(result.succeeded) / result.seconds : 0)
        phase.add("deliveries", Double(delivered))
        phase.add("deliveries/s", activeSeconds > 0 ? Double(delivered) / activeSeconds : 0)
        phase.add("lost", Double(max(0, expected - delivered)))
        phase.add("disconnected", Double(stats.disconnected.load(ordering: .relaxed) - disconnectedBefore))
        let summary = latency.summary
        phase.add("latency p50", summary.p50, "ms")
        phase.add("latency p90", summary.p90, "ms")
        phase.add("latency p99", summary.p99, "ms")
        phase.add("latency max", summary.max, "ms")
        let requests = result.latency.summary
        phase.add("publish p50", requests.p50, "ms")
        phase.add("publish p99", requests.p99, "ms")
        phase.add("publish max", requests.max, "ms")
        phase.add("client CPU", CPUSample.percent(from: clientStart, to: clientEnd), "% core")
        for (index, (from, to)) in zip(serverStart, serverEnd).enumerated() {
            phase.add(
                serverStart.count > 1 ? "server \(index + 1) CPU" : "server CPU", CPUSample.percent(from: from, to: to),
                "% core")
        }
        if let failure = result.firstFailure {
            printError("first failed publish: \(failure.prefix(200))")
        }
        return phase
    }
}

/// Writes a line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
