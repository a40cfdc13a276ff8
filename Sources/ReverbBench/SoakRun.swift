import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// The `soak` scenario: opens the clients, runs churn, events, whispers and slow clients for the
/// given minutes while sampling the servers, then closes everything, waits for the servers' file
/// descriptors to come back, and audits every subscriber's deliveries.
struct SoakRun: Sendable {
    var target: BenchTarget
    var app: BenchApp
    var serverPIDs: [Int32]
    var connections: Int
    var members: Int
    var presenceMembers: Int
    var slowClients: Int
    var seconds: Double
    var churn: Double
    var channels: Int
    var presenceChannels: Int
    var eventRate: Double
    var whisperRate: Double
    var slowRate: Double
    var slowPayloadSize: Int
    var slowPause: Double
    var sampleSeconds: Double
    var payloadSize: Int
    var publishers: Int
    var concurrency: Int
    var parameters: [String: String]

    /// How long before a subscriber began to leave an event must have been accepted to count as owed.
    static let auditMargin: UInt64 = 1_000_000_000
    /// Seconds between the clients being gone and the last sample.
    static let quietSeconds = 15

    /// How far above the starting count a server's descriptors may stay once the clients are gone.
    static let descriptorSlack = 8

    init(options: SoakCommand, target: BenchTarget, app: BenchApp, serverPIDs: [Int32]) {
        self.target = target
        self.app = app
        self.serverPIDs = serverPIDs
        connections = options.connections
        members = options.members
        presenceMembers = options.presenceMembers
        slowClients = options.slowClients
        seconds = options.minutes * 60
        churn = options.churn
        channels = options.channels
        presenceChannels = options.presenceChannels
        eventRate = options.eventRate
        whisperRate = options.whisperRate
        slowRate = options.slowRate
        slowPayloadSize = options.slowPayloadSize
        slowPause = options.slowPause
        sampleSeconds = options.sampleSeconds
        payloadSize = options.payloadSize
        publishers = options.publishers
        concurrency = options.concurrency
        parameters = [
            "url": target.description, "connections": String(connections), "minutes": String(options.minutes),
            "churn_per_s": String(churn), "channels": String(channels), "presence_channels": String(presenceChannels),
            "presence_members": String(presenceMembers), "slow_clients": String(slowClients),
            "event_rate": String(eventRate), "whisper_rate": String(whisperRate), "slow_rate": String(slowRate),
            "slow_payload_size": String(slowPayloadSize), "slow_pause_s": String(slowPause),
            "payload_size": String(payloadSize), "publishers": String(publishers),
        ]
    }

    private static func share(_ total: Int, _ index: Int, of parts: Int) -> Int {
        total / parts + (index < total % parts ? 1 : 0)
    }

    func run(group: any EventLoopGroup) async throws -> BenchReport {
        let address = try target.socketAddress(flag: "--url")
        let loops = Array(group.makeIterator())
        let stats = DeliveryStats(group: group)
        var servers = ServerSamples(pids: serverPIDs)
        let start = servers.sample(extra: ["open_connections": 0])

        let names =
            (0..<channels).map { "bench-soak-\($0)" } + (0..<presenceChannels).map { "presence-bench-soak-\($0)" }
        let request = WebSocketSubscriberHandler.upgradeRequest(target: target, appKey: app.key)
        let pools = try await [NIOLoopBound<ClientPool>].make(loops: loops, stats: stats) { index in
            ClientPool.Configuration(
                address: address, request: request, app: app, channels: names, publicChannels: 0..<channels,
                presenceChannels: channels..<(channels + presenceChannels),
                members: Self.share(members, index, of: loops.count),
                presenceMembers: Self.share(presenceMembers, index, of: loops.count),
                slowClients: Self.share(slowClients, index, of: loops.count),
                slowPause: .nanoseconds(Int64(slowPause * 1e9)),
                churnPerSecond: churn / Double(loops.count), whispersPerSecond: whisperRate / Double(loops.count),
                userPrefix: "soak\(index)", maxConnecting: concurrency)
        }
        let publishLoop = loops[0]
        let encoders = names.map {
            EventRequestEncoder.reverb(.init(target: target, app: app, channel: $0, payloadSize: payloadSize))
        }
        let busyEncoder = EventRequestEncoder.reverb(
            .init(target: target, app: app, channel: "bench-soak-busy", payloadSize: slowPayloadSize))
        let (publisher, busy) = try await publishLoop.submit { [eventRate, publishers, slowRate] in
            (
                NIOLoopBound(
                    SequencedPublisher(
                        eventLoop: publishLoop, encoders: encoders, rate: eventRate, connections: publishers,
                        address: address), eventLoop: publishLoop),
                NIOLoopBound(
                    SequencedPublisher(
                        eventLoop: publishLoop, encoders: [busyEncoder], rate: slowRate, connections: 1,
                        address: address), eventLoop: publishLoop)
            )
        }.get()
        do {
            try await publishLoop.flatSubmit { publisher.value.connect() }.get()
            if slowClients > 0 { try await publishLoop.flatSubmit { busy.value.connect() }.get() }
        } catch {
            try? await publishLoop.submit {
                publisher.value.closeConnections()
                busy.value.closeConnections()
            }.get()
            throw BenchError("cannot connect to --url \(target): \(Connector.describe(error))")
        }

        // Open every connection.
        let rampStart = ResourceUsage.wallSeconds()
        try await pools.each { $0.startFilling() }
        let rampDeadline = rampStart + max(60, Double(connections) / 100)
        var counts = ClientPool.Counts()
        while ResourceUsage.wallSeconds() < rampDeadline {
            counts = try await pools.counts
            if counts.members >= members && counts.connecting == 0 && counts.live >= connections { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let rampSeconds = ResourceUsage.wallSeconds() - rampStart
        guard counts.members > 0 else {
            try await pools.each {
                $0.stop()
                $0.closeAll()
            }
            throw BenchError("no subscription through --url \(target) succeeded")
        }
        if counts.members < members {
            printError(
                "soak: only \(counts.members) of \(members) well-behaved connections subscribed in \(Int(rampSeconds)) s"
            )
        }
        let loaded = servers.sample(extra: ["open_connections": Double(counts.live)])
        printError(
            "soak: \(counts.live) connections open in \(String(format: "%.1f", rampSeconds)) s; "
                + ServerSamples.describe(loaded, pids: serverPIDs))

        // The run.
        let clientStart = ResourceUsage.selfCPU()
        let serverStart = serverPIDs.map { ResourceUsage.processCPU(pid: $0) }
        let runStart = ResourceUsage.wallSeconds()
        try await publishLoop.submit {
            publisher.value.run()
            if self.slowClients > 0 { busy.value.run() }
        }.get()
        try await pools.each { $0.startChurn() }
        var nextSample = runStart + sampleSeconds
        let runEnd = runStart + seconds
        while ResourceUsage.wallSeconds() < runEnd {
            try await Task.sleep(
                for: .milliseconds(Int64(max(0, min(nextSample, runEnd) - ResourceUsage.wallSeconds()) * 1000)))
            guard ResourceUsage.wallSeconds() >= nextSample else { continue }
            nextSample += sampleSeconds
            counts = try await pools.counts
            let sample = servers.sample(extra: ["open_connections": Double(counts.live)])
            let sent = try await publishLoop.submit { publisher.value.result.sent }.get()
            printError(
                "soak \(Int(ResourceUsage.wallSeconds() - runStart))/\(Int(seconds)) s: \(counts.members) members, "
                    + "\(counts.slow) slow, \(counts.connecting) connecting; \(sent) events, "
                    + "\(stats.delivered.load(ordering: .relaxed)) deliveries; "
                    + ServerSamples.describe(sample, pids: serverPIDs))
        }

        // Stop, let deliveries drain, then close everyone.
        try await pools.each { $0.stop() }
        try await publishLoop.submit {
            publisher.value.stop()
            busy.value.stop()
        }.get()
        try await publisher.awaitAnswers(seconds: 10)
        var delivered = stats.delivered.load(ordering: .relaxed)
        let drainDeadline = ResourceUsage.wallSeconds() + 10
        repeat {
            try await Task.sleep(for: .seconds(1))
            let now = stats.delivered.load(ordering: .relaxed)
            if now == delivered { break }
            delivered = now
        } while ResourceUsage.wallSeconds() < drainDeadline
        // Stay subscribed past the audit margin, so that the last events count as owed too.
        try await Task.sleep(for: .nanoseconds(Int64(Self.auditMargin) / 2))
        let runSeconds = ResourceUsage.wallSeconds() - runStart
        let clientEnd = ResourceUsage.selfCPU()
        let serverEnd = serverPIDs.map { ResourceUsage.processCPU(pid: $0) }
        counts = try await pools.counts
        let beforeClose = servers.sample(extra: ["open_connections": Double(counts.live)])

        let closeStart = ResourceUsage.wallSeconds()
        try await pools.each { $0.closeAll() }
        try await publishLoop.submit {
            publisher.value.closeConnections()
            busy.value.closeConnections()
        }.get()
        while ResourceUsage.wallSeconds() < closeStart + 30, try await pools.counts.live > 0 {
            try await Task.sleep(for: .milliseconds(100))
        }
        // Wait for each server's descriptors to come back near where they started.
        var end = servers.sample(extra: ["open_connections": 0])
        func settled(_ samples: [ServerSamples.Sample]) -> Bool {
            zip(start, samples).allSatisfy { first, now in
                guard let before = first.descriptors, let after = now.descriptors else { return true }
                return after <= before + Self.descriptorSlack
            }
        }
        while !settled(end) && ResourceUsage.wallSeconds() < closeStart + 30 {
            try await Task.sleep(for: .milliseconds(250))
            end = servers.sample(extra: ["open_connections": 0])
        }
        let settleSeconds = ResourceUsage.wallSeconds() - closeStart
        printError(
            "soak: clients closed, \(String(format: "%.1f", settleSeconds)) s; "
                + ServerSamples.describe(end, pids: serverPIDs))
        // A quiet while longer: the server gives freed heap back a few seconds after the load
        // dropped (MemoryTrimmer checks every 5 s).
        let atClose = end
        try await Task.sleep(for: .seconds(Self.quietSeconds))
        end = servers.sample(extra: ["open_connections": 0])
        printError("soak: \(Self.quietSeconds) s later; " + ServerSamples.describe(end, pids: serverPIDs))

        let summary = try await pools.summary
        let (log, result, skipped, reconnects) = try await publishLoop.submit {
            (publisher.value.log, publisher.value.result, publisher.value.skipped, publisher.value.reconnects)
        }.get()
        let (busyResult, busySkipped) = try await publishLoop.submit { (busy.value.result, busy.value.skipped) }.get()
        if let failure = result.firstFailure ?? busyResult.firstFailure {
            printError("first failed publish: \(failure.prefix(200))")
        }
        let audit = DeliveryAudit(records: summary.records, log: log, margin: Self.auditMargin)
        let latency = try await stats.latencies().summary

        var phase = BenchReport.Phase(name: "\(Self.format(minutes: seconds / 60)) min")
        phase.add("connections", Double(connections))
        phase.add("ramp time", rampSeconds, "s")
        phase.add("run time", runSeconds, "s")
        phase.add("connections opened", Double(summary.opened))
        phase.add("connect failures", Double(summary.connectFailures + summary.subscribeFailures))
        phase.add("left: unsubscribed, then closed", Double(summary.leftUnsubscribing))
        phase.add("left: closed", Double(summary.leftClosing))
        phase.add("events sent", Double(result.sent))
        phase.add("events accepted", Double(result.succeeded))
        phase.add(
            "HTTP failures", Double(result.failed + result.unanswered + busyResult.failed + busyResult.unanswered))
        phase.add("events skipped (connection down)", Double(skipped + busySkipped))
        phase.add("publisher reconnects", Double(reconnects))
        phase.add("busy-channel events sent", Double(busyResult.sent))
        phase.add("deliveries", Double(stats.delivered.load(ordering: .relaxed)))
        phase.add("deliveries audited", Double(audit.expected))
        phase.add("lost", Double(audit.missing + audit.gaps))
        phase.add("lost: gaps in received ranges", Double(audit.gaps))
        phase.add("lost: owed but not received", Double(audit.missing))
        phase.add("out of order", Double(audit.outOfOrder))
        phase.add("duplicates", Double(audit.duplicates))
        phase.add("latency p50", latency.p50, "ms")
        phase.add("latency p99", latency.p99, "ms")
        phase.add("latency max", latency.max, "ms")
        phase.add("members closed by server", Double(summary.membersClosedByServer))
        phase.add("slow clients opened", Double(summary.slowOpened))
        phase.add(
            "slow clients closed by server",
            Double(summary.slowClosedWith4100 + summary.slowClosedOtherCode + summary.slowDropped))
        phase.add("… with Close 4100", Double(summary.slowClosedWith4100))
        phase.add("… with another Close code", Double(summary.slowClosedOtherCode))
        phase.add("… without a Close frame", Double(summary.slowDropped))
        phase.add("slow clients not closed", Double(summary.slowNotClosed))
        phase.add("slow clients still in their pause at the end", Double(summary.slowOpenAtEnd))
        phase.add("whispers sent", Double(summary.whispersSent))
        phase.add("whispers received", Double(summary.whispersReceived))
        phase.add("pusher:error frames", Double(stats.errors.load(ordering: .relaxed)))
        phase.add("client CPU", CPUSample.percent(from: clientStart, to: clientEnd), "% core")
        let label = serverPIDs.count > 1
        for index in serverPIDs.indices {
            let name = label ? "server \(index + 1) " : "server "
            if let from = serverStart[index], let to = serverEnd[index] {
                phase.add(name + "CPU", CPUSample.percent(from: from, to: to), "% core")
            }
            let rssStart = start[index].residentKiB ?? 0
            let rssEnd = end[index].residentKiB ?? 0
            phase.add(name + "RSS start", Double(rssStart), "KiB")
            phase.add(name + "RSS loaded, first", Double(loaded[index].residentKiB ?? 0), "KiB")
            phase.add(name + "RSS loaded, last", Double(beforeClose[index].residentKiB ?? 0), "KiB")
            phase.add(name + "RSS peak", Double(servers.peakResidentKiB[index]), "KiB")
            phase.add(name + "RSS when the clients were gone", Double(atClose[index].residentKiB ?? 0), "KiB")
            phase.add(name + "RSS end (\(Self.quietSeconds) s later)", Double(rssEnd), "KiB")
            phase.add(name + "RSS end / start", rssStart > 0 ? Double(rssEnd) / Double(rssStart) : 0)
            phase.add(name + "fds start", Double(start[index].descriptors ?? 0))
            phase.add(name + "fds peak", Double(servers.peakDescriptors[index]))
            phase.add(name + "fds end", Double(end[index].descriptors ?? 0))
        }
        phase.add("fds settle time", settleSeconds, "s")
        if !summary.memberCloseCodes.isEmpty {
            printError("members closed by server, by code: \(summary.memberCloseCodes.sorted { $0.key < $1.key })")
        }
        var report = BenchReport(scenario: "soak", parameters: parameters)
        report.phases = [phase]
        report.series = servers.series
        return report
    }

    static func format(minutes: Double) -> String {
        minutes == minutes.rounded() ? String(Int(minutes)) : String(format: "%.2g", minutes)
    }
}
