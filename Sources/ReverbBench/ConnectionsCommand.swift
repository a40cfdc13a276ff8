import ArgumentParser
import NIOCore
import NIOPosix
import Synchronization

/// Opens N subscribed idle connections and reports the server's memory per connection.
struct ConnectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connections",
        abstract: "N subscribed idle connections: server RSS before and after, KiB per connection, connect rate.")

    @OptionGroup var reverb: ReverbOptions
    @OptionGroup var common: CommonOptions

    @Option(help: "Connections to open (one process holds at most about 19 000).")
    var connections: Int = 10_000

    @Option(help: "Channels the connections are spread over.")
    var channels: Int = 100

    @Option(help: "Handshakes in progress at once.")
    var concurrency: Int = 256

    @Option(help: "Loopback source addresses to spread connections over (127.0.0.1, 127.0.0.2, ...).")
    var sourceAddresses: Int = 1

    @Option(help: "Seconds to hold the connections idle before measuring RSS.")
    var hold: Double = 2

    func validate() throws {
        try require(connections, atLeast: 1, flag: "--connections")
        try require(channels, atLeast: 1, flag: "--channels")
        try require(concurrency, atLeast: 1, flag: "--concurrency")
        try require(sourceAddresses, atLeast: 1, flag: "--source-addresses")
        guard sourceAddresses <= 254 else {
            throw ValidationError("--source-addresses must be at most 254, got \(sourceAddresses).")
        }
        guard hold >= 0 else { throw ValidationError("--hold must be 0 or more seconds, got \(hold).") }
    }

    func run() async throws {
        let target = try reverb.target()
        let pid = common.serverPid.first
        let channelCount = channels
        let report = try await common.withGroup { group in
            let stats = DeliveryStats(group: group)
            let rssBefore = pid.flatMap(ResourceUsage.residentKiB)
            let clientStart = ResourceUsage.selfCPU()
            let serverStart = pid.flatMap(ResourceUsage.processCPU)
            let start = ResourceUsage.wallSeconds()
            let opened = try await Connector.subscribe(
                count: connections, endpoint: .reverb(target, reverb.app), flag: "--url", stats: stats, group: group,
                concurrency: concurrency, sourceAddresses: sourceAddresses
            ) { "bench-idle-\($0 % channelCount)" }
            let seconds = ResourceUsage.wallSeconds() - start
            let clientEnd = ResourceUsage.selfCPU()
            let serverEnd = pid.flatMap(ResourceUsage.processCPU)
            if hold > 0 { try await Task.sleep(for: .milliseconds(Int(hold * 1000))) }
            let rssAfter = pid.flatMap(ResourceUsage.residentKiB)
            let stillOpen = opened.count - stats.disconnected.load(ordering: .relaxed)
            await Connector.close(opened)

            var phase = BenchReport.Phase(name: "\(connections) conns")
            phase.add("connections", Double(stillOpen))
            phase.add("connect time", seconds, "s")
            phase.add("connect rate", Double(opened.count) / seconds, "conn/s")
            if let rssBefore, let rssAfter {
                phase.add("server RSS before", Double(rssBefore), "KiB")
                phase.add("server RSS after", Double(rssAfter), "KiB")
                phase.add("KiB per connection", Double(rssAfter - rssBefore) / Double(opened.count), "KiB")
            }
            phase.add("client CPU", CPUSample.percent(from: clientStart, to: clientEnd), "% core")
            if let serverStart, let serverEnd {
                phase.add("server CPU", CPUSample.percent(from: serverStart, to: serverEnd), "% core")
            }
            var report = BenchReport(
                scenario: "connections",
                parameters: [
                    "url": target.description, "connections": String(connections), "channels": String(channels),
                    "source_addresses": String(sourceAddresses),
                ])
            report.phases = [phase]
            return report
        }
        try report.emit(json: common.json)
    }
}
