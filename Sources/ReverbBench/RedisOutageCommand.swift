import ArgumentParser

/// Two scaling nodes under steady load while their Redis goes away and comes back.
struct RedisOutageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis-outage",
        abstract:
            "Subscribers on nodes A and B of one channel, numbered events triggered on A, Redis stopped and "
            + "started by caller-given commands: node exits, loss at A, what crossed to B and in what order.")

    @Option(help: "Node A, where events are triggered and half the subscribers connect, http://HOST:PORT[/PATH].")
    var nodeAUrl: String

    @Option(help: "Node B, where the other half connect, http://HOST:PORT[/PATH].")
    var nodeBUrl: String

    @OptionGroup var reverb: ReverbOptions
    @OptionGroup var common: CommonOptions

    @Option(help: "Subscribers on each node.")
    var subscribers: Int = 100

    @Option(help: "Events per second triggered on node A.")
    var rate: Double = 50

    @Option(help: "Seconds of load.")
    var duration: Double = 150

    @Option(help: "Seconds after the load starts when the outage begins.")
    var outageStart: Double = 30

    @Option(help: "Seconds from the start of the outage to the end command.")
    var outageSeconds: Double = 60

    @Option(help: "Shell command (/bin/sh -c) run when the outage begins, e.g. one that stops redis-server.")
    var outageBeginCommand: String?

    @Option(
        help: "Shell command run when the outage ends, e.g. one that starts redis-server and waits for PING.")
    var outageEndCommand: String?

    @Option(help: "Bytes of an event's data string (at least \(PayloadTimestamp.headerLength)).")
    var payloadSize: Int = 200

    @Option(help: "Seconds to wait after the load for late deliveries (queued publishes, replayed entries).")
    var drainSeconds: Double = 30

    func validate() throws {
        _ = try BenchTarget(parsing: nodeAUrl, flag: "--node-a-url", schemes: ["http", "ws"])
        _ = try BenchTarget(parsing: nodeBUrl, flag: "--node-b-url", schemes: ["http", "ws"])
        try require(subscribers, atLeast: 1, flag: "--subscribers")
        guard rate > 0 else { throw ValidationError("--rate must be more than 0 events/s, got \(rate).") }
        guard duration > 0 else { throw ValidationError("--duration must be more than 0 seconds, got \(duration).") }
        guard outageStart >= 0 else {
            throw ValidationError("--outage-start must be 0 or more seconds, got \(outageStart).")
        }
        guard outageSeconds > 0 else {
            throw ValidationError("--outage-seconds must be more than 0 seconds, got \(outageSeconds).")
        }
        guard outageStart + outageSeconds < duration else {
            throw ValidationError(
                "--outage-start + --outage-seconds (\(outageStart + outageSeconds) s) must end before --duration "
                    + "(\(duration) s), so that load continues after the outage.")
        }
        try require(payloadSize, atLeast: PayloadTimestamp.headerLength, flag: "--payload-size")
        guard drainSeconds >= 0 else {
            throw ValidationError("--drain-seconds must be 0 or more, got \(drainSeconds).")
        }
    }

    func run() async throws {
        let run = RedisOutageRun(
            nodeA: try BenchTarget(parsing: nodeAUrl, flag: "--node-a-url", schemes: ["http", "ws"]),
            nodeB: try BenchTarget(parsing: nodeBUrl, flag: "--node-b-url", schemes: ["http", "ws"]),
            app: reverb.app, serverPIDs: common.serverPid, subscribers: subscribers, rate: rate, duration: duration,
            outageStart: outageStart, outageSeconds: outageSeconds,
            beginCommand: outageBeginCommand.map(ShellCommand.init),
            endCommand: outageEndCommand.map(ShellCommand.init),
            payloadSize: payloadSize, drainSeconds: drainSeconds)
        let report = try await common.withGroup { try await run.run(group: $0) }
        try report.emit(json: common.json)
    }
}
