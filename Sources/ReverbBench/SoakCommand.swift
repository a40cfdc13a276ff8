import ArgumentParser
import NIOCore

/// A long run under churn on one server: loss for well-behaved clients, slow clients closed, and the
/// server's memory and descriptors over time and after everyone left.
struct SoakCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract:
            "N connections under churn on public and presence channels, HTTP events, whispers and slow clients; "
            + "loss, slow-client closes, server RSS and descriptors over time and after the clients left.")

    @OptionGroup var reverb: ReverbOptions
    @OptionGroup var common: CommonOptions

    @Option(help: "Connections kept open, slow ones included.")
    var connections: Int = 10_000

    @Option(help: "Minutes to run once the connections are open (fractions allowed, e.g. 0.5).")
    var minutes: Double = 30

    @Option(help: "Well-behaved connections replaced per second (half unsubscribe first, half just close).")
    var churn: Double = 50

    @Option(help: "Public channels.")
    var channels: Int = 100

    @Option(help: "Presence channels.")
    var presenceChannels: Int = 20

    @Option(help: "Fraction of the well-behaved connections that join a presence channel instead of a public one.")
    var presenceFraction: Double = 0.1

    @Option(help: "Signed HTTP events per second, round-robin over every channel (0: none).")
    var eventRate: Double = 100

    @Option(help: "Client events (client-x) per second, sent by presence members (0: none).")
    var whisperRate: Double = 10

    @Option(help: "Fraction of the connections that subscribe to a busy channel and stop reading.")
    var slowFraction: Double = 0.01

    @Option(help: "Events per second on the busy channel (only with slow clients).")
    var slowRate: Double = 100

    @Option(help: "Bytes of a busy-channel event's data string (the server's max_request_size bounds it).")
    var slowPayloadSize: Int = 8000

    @Option(help: "Seconds a slow client does not read before it reads again to see how it was closed.")
    var slowPause: Double = 12

    @Option(help: "Seconds between samples of each --server-pid's RSS and open file descriptors.")
    var sampleSeconds: Double = 10

    @Option(help: "Bytes of an ordinary event's data string (at least \(PayloadTimestamp.headerLength)).")
    var payloadSize: Int = 200

    @Option(help: "HTTP keep-alive connections publishing ordinary events.")
    var publishers: Int = 4

    @Option(help: "Handshakes in progress at once, per client thread.")
    var concurrency: Int = 64

    var slowClients: Int { Int((Double(connections) * slowFraction).rounded()) }
    var members: Int { connections - slowClients }
    var presenceMembers: Int { presenceChannels == 0 ? 0 : Int((Double(members) * presenceFraction).rounded()) }

    func validate() throws {
        try require(connections, atLeast: 1, flag: "--connections")
        guard minutes > 0 else { throw ValidationError("--minutes must be more than 0, got \(minutes).") }
        guard churn >= 0 else { throw ValidationError("--churn must be 0 or more per second, got \(churn).") }
        try require(channels, atLeast: 1, flag: "--channels")
        try require(presenceChannels, atLeast: 0, flag: "--presence-channels")
        guard (0...1).contains(presenceFraction) else {
            throw ValidationError("--presence-fraction must be between 0 and 1, got \(presenceFraction).")
        }
        guard eventRate >= 0 else { throw ValidationError("--event-rate must be 0 or more, got \(eventRate).") }
        guard whisperRate >= 0 else { throw ValidationError("--whisper-rate must be 0 or more, got \(whisperRate).") }
        guard slowFraction >= 0 && slowFraction < 1 else {
            throw ValidationError("--slow-fraction must be at least 0 and below 1, got \(slowFraction).")
        }
        guard members >= 1 else { throw ValidationError("--slow-fraction leaves no well-behaved connection.") }
        if whisperRate > 0 && presenceMembers == 0 {
            throw ValidationError(
                "--whisper-rate needs presence members: set --presence-channels and --presence-fraction above 0.")
        }
        guard churn <= Double(members) else {
            throw ValidationError("--churn must be at most the \(members) well-behaved connections, got \(churn).")
        }
        guard slowRate > 0 else { throw ValidationError("--slow-rate must be more than 0, got \(slowRate).") }
        try require(slowPayloadSize, atLeast: PayloadTimestamp.headerLength, flag: "--slow-payload-size")
        guard slowPause > 0 else { throw ValidationError("--slow-pause must be more than 0 s, got \(slowPause).") }
        guard sampleSeconds > 0 else {
            throw ValidationError("--sample-seconds must be more than 0, got \(sampleSeconds).")
        }
        try require(payloadSize, atLeast: PayloadTimestamp.headerLength, flag: "--payload-size")
        try require(publishers, atLeast: 1, flag: "--publishers")
        try require(concurrency, atLeast: 1, flag: "--concurrency")
    }

    func run() async throws {
        let target = try reverb.target()
        let run = SoakRun(options: self, target: target, app: reverb.app, serverPIDs: common.serverPid)
        let report = try await common.withGroup { try await run.run(group: $0) }
        try report.emit(json: common.json)
    }
}
