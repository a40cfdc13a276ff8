import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// The `redis-outage` scenario: subscribers on A and B, numbered events triggered on A over one
/// keep-alive connection (so A handles them in order), the outage commands run on schedule, the
/// nodes watched for exits, then every event classified by when it was sent: before the outage,
/// during it (until the end command returned), after it.
struct RedisOutageRun: Sendable {
    var nodeA: BenchTarget
    var nodeB: BenchTarget
    var app: BenchApp
    var serverPIDs: [Int32]
    var subscribers: Int
    var rate: Double
    var duration: Double
    var outageStart: Double
    var outageSeconds: Double
    var beginCommand: ShellCommand?
    var endCommand: ShellCommand?
    var payloadSize: Int
    var drainSeconds: Double

    static let channel = "bench-outage"

    private struct Outage: Sendable {
        var beganAt: UInt64
        var endedAt: UInt64
        var begin: ShellCommand.Outcome?
        var end: ShellCommand.Outcome?
    }

    private static func sleep(until wall: Double) async throws {
        let left = wall - ResourceUsage.wallSeconds()
        if left > 0 { try await Task.sleep(for: .milliseconds(Int64(left * 1000))) }
    }

    private func runOutage(loadStart: Double) async throws -> Outage {
        try await Self.sleep(until: loadStart + outageStart)
        let beganAt = PayloadTimestamp.now()
        printError("redis-outage: outage begins" + (beginCommand.map { ": \($0.command)" } ?? ""))
        let begin = await beginCommand?.run()
        if let begin, begin.status != 0 { printError("redis-outage: --outage-begin-command exited \(begin.status)") }
        try await Self.sleep(until: Double(beganAt) / 1e9 + outageSeconds)
        printError("redis-outage: outage ends" + (endCommand.map { ": \($0.command)" } ?? ""))
        let end = await endCommand?.run()
        if let end, end.status != 0 { printError("redis-outage: --outage-end-command exited \(end.status)") }
        return Outage(beganAt: beganAt, endedAt: PayloadTimestamp.now(), begin: begin, end: end)
    }

    private func pools(
        target: BenchTarget, flag: String, name: String, loops: [any EventLoop], stats: DeliveryStats
    ) async throws -> [NIOLoopBound<ClientPool>] {
        let address = try target.socketAddress(flag: flag)
        let request = WebSocketSubscriberHandler.upgradeRequest(target: target, appKey: app.key)
        return try await .make(loops: loops, stats: stats) { [app, subscribers] index in
            ClientPool.Configuration(
                address: address, request: request, app: app, channels: [Self.channel], publicChannels: 0..<1,
                presenceChannels: 0..<0,
                members: subscribers / loops.count + (index < subscribers % loops.count ? 1 : 0),
                recordArrivals: true, userPrefix: "\(name)\(index)")
        }
    }

    func run(group: any EventLoopGroup) async throws -> BenchReport {
        let loops = Array(group.makeIterator())
        let statsA = DeliveryStats(group: group)
        let statsB = DeliveryStats(group: group)
        let poolsA = try await pools(target: nodeA, flag: "--node-a-url", name: "a", loops: loops, stats: statsA)
        let poolsB = try await pools(target: nodeB, flag: "--node-b-url", name: "b", loops: loops, stats: statsB)
        let all = poolsA + poolsB
        try await all.each { $0.startFilling() }
        let subscribeDeadline = ResourceUsage.wallSeconds() + 60
        while ResourceUsage.wallSeconds() < subscribeDeadline {
            let a = try await poolsA.counts
            let b = try await poolsB.counts
            if a.members >= subscribers && b.members >= subscribers { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await all.each { $0.stop() }
        let (subscribedA, subscribedB) = (try await poolsA.counts.members, try await poolsB.counts.members)
        guard subscribedA == subscribers, subscribedB == subscribers else {
            try await all.each { $0.closeAll() }
            throw BenchError(
                "only \(subscribedA) subscribers on --node-a-url \(nodeA) and \(subscribedB) on --node-b-url "
                    + "\(nodeB) of \(subscribers) each subscribed within 60 s")
        }

        let publishLoop = loops[0]
        let encoder = EventRequestEncoder.reverb(
            .init(target: nodeA, app: app, channel: Self.channel, payloadSize: payloadSize))
        let addressA = try nodeA.socketAddress(flag: "--node-a-url")
        let publisher = try await publishLoop.submit { [rate] in
            NIOLoopBound(
                SequencedPublisher(
                    eventLoop: publishLoop, encoders: [encoder], rate: rate, connections: 1, address: addressA),
                eventLoop: publishLoop)
        }.get()
        do {
            try await publishLoop.flatSubmit { publisher.value.connect() }.get()
        } catch {
            try await all.each { $0.closeAll() }
            throw BenchError("cannot connect to --node-a-url \(nodeA): \(Connector.describe(error))")
        }

        // Load, with the outage on its schedule and the nodes watched.
        var exits: [Int32: UInt64] = [:]
        func watch() {
            for pid in serverPIDs where exits[pid] == nil && !ResourceUsage.isAlive(pid: pid) {
                exits[pid] = PayloadTimestamp.now()
                printError("redis-outage: server pid \(pid) is gone")
            }
        }
        let clientStart = ResourceUsage.selfCPU()
        let loadStart = ResourceUsage.wallSeconds()
        let loadStartNanos = PayloadTimestamp.now()
        try await publishLoop.submit { publisher.value.run() }.get()
        async let outageResult = runOutage(loadStart: loadStart)
        var nextReport = loadStart + 10
        while ResourceUsage.wallSeconds() < loadStart + duration {
            watch()
            if ResourceUsage.wallSeconds() >= nextReport {
                nextReport += 10
                let sent = try await publishLoop.submit { publisher.value.result.sent }.get()
                printError(
                    "redis-outage \(Int(ResourceUsage.wallSeconds() - loadStart))/\(Int(duration)) s: \(sent) events, "
                        + "deliveries A \(statsA.delivered.load(ordering: .relaxed)), "
                        + "B \(statsB.delivered.load(ordering: .relaxed))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await publishLoop.submit { publisher.value.stop() }.get()
        let outage = try await outageResult
        try await publisher.awaitAnswers(seconds: 10)
        let accepted = try await publishLoop.submit { publisher.value.result.succeeded }.get()
        // Wait for late deliveries: until both nodes have everything, or nothing moved for 5 s.
        var last = (statsA.delivered.load(ordering: .relaxed), statsB.delivered.load(ordering: .relaxed))
        var lastProgress = ResourceUsage.wallSeconds()
        let drainDeadline = ResourceUsage.wallSeconds() + drainSeconds
        while ResourceUsage.wallSeconds() < drainDeadline && ResourceUsage.wallSeconds() - lastProgress < 5 {
            let now = (statsA.delivered.load(ordering: .relaxed), statsB.delivered.load(ordering: .relaxed))
            if now.0 >= accepted * subscribers && now.1 >= accepted * subscribers { break }
            if now != last {
                last = now
                lastProgress = ResourceUsage.wallSeconds()
            }
            watch()
            try await Task.sleep(for: .milliseconds(100))
        }
        watch()
        // Stay subscribed past the audit margin, so that the last events count as owed too.
        try await Task.sleep(for: .nanoseconds(Int64(SoakRun.auditMargin) * 3 / 2))
        let clientEnd = ResourceUsage.selfCPU()

        try await all.each { $0.closeAll() }
        try await publishLoop.submit { publisher.value.closeConnections() }.get()
        let closeDeadline = ResourceUsage.wallSeconds() + 10
        while ResourceUsage.wallSeconds() < closeDeadline, try await all.counts.live > 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        let summaryA = try await poolsA.summary
        let summaryB = try await poolsB.summary
        let (log, result) = try await publishLoop.submit { (publisher.value.log, publisher.value.result) }.get()
        if let failure = result.firstFailure { printError("first failed publish: \(failure.prefix(200))") }
        let auditA = DeliveryAudit(records: summaryA.records, log: log, margin: SoakRun.auditMargin)
        let auditB = DeliveryAudit(records: summaryB.records, log: log, margin: SoakRun.auditMargin)

        // Classify each event by when it was sent.
        let sendTimes = log.sendTimes[0]
        func phaseOf(_ time: UInt64) -> Int {
            time < outage.beganAt ? 0 : (time < outage.endedAt ? 1 : 2)
        }
        var phases = ["before", "during", "after", "all"].map { BenchReport.Phase(name: $0) }
        struct Tally {
            var sent = 0
            var accepted = 0
            var failed = 0
            var shortAtA = 0
            var lostAtA = 0
            var crossed = 0
            var partial = 0
            var notCrossed = 0
            var lostAtB = 0
            var delayA = LatencyHistogram()
            var delayB = LatencyHistogram()
            var lastArrivalB: UInt64 = 0
        }
        var tallies = Array(repeating: Tally(), count: 4)
        var missedByB: [(sequence: Int, sentAfterOutage: Double)] = []
        for (index, sentAt) in sendTimes.enumerated() {
            for slot in [phaseOf(sentAt), 3] {
                tallies[slot].sent += 1
                guard log.accepted(channel: 0, sequence: index + 1) != nil else {
                    tallies[slot].failed += 1
                    continue
                }
                tallies[slot].accepted += 1
                let (expectedA, receivedA) = (auditA.expectedBy[0][index], auditA.receivedBy[0][index])
                if receivedA < expectedA {
                    tallies[slot].shortAtA += 1
                    tallies[slot].lostAtA += Int(expectedA - receivedA)
                }
                let (expectedB, receivedB) = (auditB.expectedBy[0][index], auditB.receivedBy[0][index])
                if expectedB > 0 {
                    if receivedB == expectedB {
                        tallies[slot].crossed += 1
                    } else if receivedB == 0 {
                        tallies[slot].notCrossed += 1
                    } else {
                        tallies[slot].partial += 1
                    }
                    tallies[slot].lostAtB += Int(expectedB - receivedB)
                    if slot == 3 && receivedB < expectedB {
                        missedByB.append((index + 1, (Double(sentAt) - Double(outage.beganAt)) / 1e9))
                    }
                }
                if index < summaryA.arrivals.count, summaryA.arrivals[index] > 0 {
                    tallies[slot].delayA.record(nanoseconds: summaryA.arrivals[index] &- sentAt)
                }
                if index < summaryB.arrivals.count, summaryB.arrivals[index] > 0 {
                    tallies[slot].delayB.record(nanoseconds: summaryB.arrivals[index] &- sentAt)
                    tallies[slot].lastArrivalB = max(tallies[slot].lastArrivalB, summaryB.arrivals[index])
                }
            }
        }
        for (slot, tally) in tallies.enumerated() {
            phases[slot].add("events sent", Double(tally.sent))
            phases[slot].add("events accepted by A", Double(tally.accepted))
            phases[slot].add("HTTP failures", Double(tally.failed))
            phases[slot].add("A: events not at every subscriber", Double(tally.shortAtA))
            phases[slot].add("A: lost deliveries", Double(tally.lostAtA))
            phases[slot].add("A: delay p50", tally.delayA.summary.p50, "ms")
            phases[slot].add("A: delay max", tally.delayA.summary.max, "ms")
            phases[slot].add("B: events crossed", Double(tally.crossed))
            phases[slot].add("B: events not crossed", Double(tally.notCrossed))
            phases[slot].add("B: events at some subscribers", Double(tally.partial))
            phases[slot].add("B: lost deliveries", Double(tally.lostAtB))
            phases[slot].add("B: delay p50", tally.delayB.summary.p50, "ms")
            phases[slot].add("B: delay max", tally.delayB.summary.max, "ms")
        }
        if !missedByB.isEmpty {
            let listed = missedByB.prefix(20).map { String(format: "#%d (%+.3f s)", $0.sequence, $0.sentAfterOutage) }
            printError(
                "redis-outage: \(missedByB.count) events missed at B, by sequence number and send time from the "
                    + "outage start: \(listed.joined(separator: ", "))\(missedByB.count > 20 ? ", …" : "")")
        }
        let lastQueued = tallies[1].lastArrivalB
        phases[3].add("node exits", Double(exits.count))
        phases[3].add("A: out of order", Double(auditA.outOfOrder))
        phases[3].add("B: out of order", Double(auditB.outOfOrder))
        phases[3].add("B: duplicates", Double(auditB.duplicates + auditA.duplicates))
        phases[3].add("A: gaps", Double(auditA.gaps))
        phases[3].add("B: gaps", Double(auditB.gaps))
        phases[3].add(
            "subscribers closed by a node", Double(summaryA.membersClosedByServer + summaryB.membersClosedByServer))
        phases[3].add(
            "pusher:error frames",
            Double(statsA.errors.load(ordering: .relaxed) + statsB.errors.load(ordering: .relaxed)))
        phases[3].add("outage start", Double(outage.beganAt - loadStartNanos) / 1e9, "s")
        phases[3].add("Redis away (begin to end command done)", Double(outage.endedAt - outage.beganAt) / 1e9, "s")
        if let begin = outage.begin {
            phases[3].add("begin command exit", Double(begin.status))
            phases[3].add("begin command time", begin.seconds, "s")
        }
        if let end = outage.end {
            phases[3].add("end command exit", Double(end.status))
            phases[3].add("end command time", end.seconds, "s")
        }
        phases[3].add(
            "B: last outage event arrived after Redis back",
            lastQueued > outage.endedAt ? Double(lastQueued - outage.endedAt) / 1e9 : 0, "s")
        if let first = missedByB.first {
            phases[3].add("B: first missed event, sent after outage start", first.sentAfterOutage, "s")
        }
        phases[3].add("client CPU", CPUSample.percent(from: clientStart, to: clientEnd), "% core")

        var report = BenchReport(
            scenario: "redis-outage",
            parameters: [
                "node_a_url": nodeA.description, "node_b_url": nodeB.description,
                "subscribers_per_node": String(subscribers), "rate": String(rate), "duration_s": String(duration),
                "outage_start_s": String(outageStart), "outage_s": String(outageSeconds),
                "payload_size": String(payloadSize),
            ])
        report.phases = phases
        return report
    }
}
