import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `reverb-bench`: load scenarios against a running swift-reverb (and redis-server for the baseline).
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reverb-bench",
        abstract:
            "Load scenarios for swift-reverb: idle connections, fan-out, HTTP API, cluster, Redis baseline, "
            + "soak, Redis outage.",
        subcommands: [
            ConnectionsCommand.self, FanoutCommand.self, HTTPCommand.self, ClusterCommand.self,
            RedisBaselineCommand.self, SoakCommand.self, RedisOutageCommand.self,
        ])
}

/// Options every scenario has.
struct CommonOptions: ParsableArguments {
    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    @Option(help: "PIDs of server processes whose CPU (and RSS) to report; repeatable.")
    var serverPid: [Int32] = []

    @Option(help: "Event loop threads of the client (default: the number of cores).")
    var threads: Int = System.coreCount

    func validate() throws {
        try require(threads, atLeast: 1, flag: "--threads")
        for pid in serverPid where pid <= 0 {
            throw ValidationError("--server-pid must be a positive process id, got \(pid).")
        }
    }

    func withGroup<T>(_ body: (any EventLoopGroup) async throws -> T) async throws -> T {
        ResourceUsage.raiseOpenFileLimit()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        do {
            let value = try await body(group)
            try? await group.shutdownGracefully()
            return value
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }
}

/// The Reverb server and app to use.
struct ReverbOptions: ParsableArguments {
    @Option(help: "The Reverb server, http://HOST:PORT[/PATH].")
    var url: String = "http://127.0.0.1:8080"

    @Option(help: "App id (default: REVERB_APP_ID or 123456).")
    var appId: String = ProcessInfo.processInfo.environment["REVERB_APP_ID"] ?? "123456"

    @Option(help: "App key (default: REVERB_APP_KEY or reverb-key).")
    var appKey: String = ProcessInfo.processInfo.environment["REVERB_APP_KEY"] ?? "reverb-key"

    @Option(help: "App secret (default: REVERB_APP_SECRET or reverb-secret).")
    var appSecret: String = ProcessInfo.processInfo.environment["REVERB_APP_SECRET"] ?? "reverb-secret"

    var app: BenchApp { BenchApp(id: appId, key: appKey, secret: appSecret) }

    func target(flag: String = "--url") throws -> BenchTarget {
        try BenchTarget(parsing: url, flag: flag, schemes: ["http", "ws"])
    }

    func validate() throws {
        _ = try target()
        for (flag, value) in [("--app-id", appId), ("--app-key", appKey), ("--app-secret", appSecret)]
        where value.isEmpty {
            throw ValidationError("\(flag) must not be empty.")
        }
    }
}

/// The fan-out shape shared by `fanout`, `cluster` and `redis-baseline`.
struct FanoutOptions: ParsableArguments {
    @Option(help: "Subscribers on the channel.")
    var subscribers: Int = 1000

    @Option(help: "Publish rates in events/s, or `max` (as fast as delivery allows); repeatable, one phase each.")
    var rate: [String] = ["100", "max"]

    @Option(help: "Seconds per phase.")
    var duration: Double = 5

    @Option(help: "Bytes of the event's data string (at least \(PayloadTimestamp.headerLength)).")
    var payloadSize: Int = 200

    @Option(help: "Publishing connections (HTTP keep-alive or Redis).")
    var publishers: Int = 4

    @Option(help: "With --rate max: events in flight that have not yet reached every subscriber.")
    var window: Int = 16

    func validate() throws {
        try require(subscribers, atLeast: 1, flag: "--subscribers")
        try require(payloadSize, atLeast: PayloadTimestamp.headerLength, flag: "--payload-size")
        try require(publishers, atLeast: 1, flag: "--publishers")
        try require(window, atLeast: 1, flag: "--window")
        guard duration > 0 else { throw ValidationError("--duration must be more than 0 seconds, got \(duration).") }
        _ = try paces()
    }

    func paces() throws -> [PublishPace] {
        guard !rate.isEmpty else { throw ValidationError("--rate needs at least one value.") }
        return try rate.map { value in
            if value == "max" { return .window(window) }
            guard let rate = Double(value), rate > 0 else {
                throw ValidationError("--rate must be a number of events/s above 0 or `max`, got \"\(value)\".")
            }
            return .rate(rate)
        }
    }

    var durationAmount: TimeAmount { .nanoseconds(Int64(duration * 1e9)) }

    var parameters: [String: String] {
        [
            "subscribers": String(subscribers), "payload_size": String(payloadSize), "duration_s": String(duration),
            "publishers": String(publishers), "window": String(window),
        ]
    }

    /// Runs every `--rate` phase of one fan-out scenario and prints (and saves) its report.
    func runScenario(
        _ scenario: String, subscriberEndpoint: SubscriberEndpoint, subscriberFlag: String,
        publisherTarget: BenchTarget, publisherFlag: String, encoder: EventRequestEncoder,
        parameters extra: [String: String], common: CommonOptions
    ) async throws {
        let report = try await common.withGroup { group in
            let run = FanoutRun(
                subscriberEndpoint: subscriberEndpoint, subscriberFlag: subscriberFlag,
                publisherTarget: publisherTarget,
                publisherFlag: publisherFlag, encoder: encoder, subscribers: subscribers,
                publishConnections: publishers,
                duration: durationAmount, serverPIDs: common.serverPid)
            var report = BenchReport(scenario: scenario, parameters: parameters.merging(extra) { $1 })
            report.phases = try await run.run(paces: try paces(), group: group)
            return report
        }
        try report.emit(json: common.json)
    }
}

func require(_ value: Int, atLeast minimum: Int, flag: String) throws {
    guard value >= minimum else { throw ValidationError("\(flag) must be at least \(minimum), got \(value).") }
}

struct FanoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "S subscribers on one channel, events triggered over the signed HTTP API.")

    @OptionGroup var reverb: ReverbOptions
    @OptionGroup var fanout: FanoutOptions
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let target = try reverb.target()
        try await fanout.runScenario(
            "fanout", subscriberEndpoint: .reverb(target, reverb.app), subscriberFlag: "--url", publisherTarget: target,
            publisherFlag: "--url",
            encoder: .reverb(
                .init(target: target, app: reverb.app, channel: "bench-fanout", payloadSize: fanout.payloadSize)),
            parameters: ["url": target.description], common: common)
    }
}

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "The fan-out scenario across nodes: subscribers on node B, triggers on node A.")

    @Option(help: "Node A, where events are triggered, http://HOST:PORT[/PATH].")
    var triggerUrl: String

    @Option(help: "Node B, where the subscribers connect, http://HOST:PORT[/PATH].")
    var subscriberUrl: String

    @OptionGroup var reverb: ReverbOptions
    @OptionGroup var fanout: FanoutOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        _ = try BenchTarget(parsing: triggerUrl, flag: "--trigger-url", schemes: ["http", "ws"])
        _ = try BenchTarget(parsing: subscriberUrl, flag: "--subscriber-url", schemes: ["http", "ws"])
    }

    func run() async throws {
        let triggers = try BenchTarget(parsing: triggerUrl, flag: "--trigger-url", schemes: ["http", "ws"])
        let subscribers = try BenchTarget(parsing: subscriberUrl, flag: "--subscriber-url", schemes: ["http", "ws"])
        try await fanout.runScenario(
            "cluster", subscriberEndpoint: .reverb(subscribers, reverb.app), subscriberFlag: "--subscriber-url",
            publisherTarget: triggers, publisherFlag: "--trigger-url",
            encoder: .reverb(
                .init(target: triggers, app: reverb.app, channel: "bench-fanout", payloadSize: fanout.payloadSize)),
            parameters: ["trigger_url": triggers.description, "subscriber_url": subscribers.description],
            common: common)
    }
}

struct RedisBaselineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis-baseline",
        abstract: "The same fan-out done by redis-server: S SUBSCRIBE connections, PUBLISH at the same pace.")

    @Option(help: "The redis-server, redis://HOST:PORT.")
    var redisUrl: String = "redis://127.0.0.1:6379"

    @OptionGroup var fanout: FanoutOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        _ = try BenchTarget(parsing: redisUrl, flag: "--redis-url", schemes: ["redis"])
    }

    func run() async throws {
        let target = try BenchTarget(parsing: redisUrl, flag: "--redis-url", schemes: ["redis"])
        try await fanout.runScenario(
            "redis-baseline", subscriberEndpoint: .redis(target), subscriberFlag: "--redis-url",
            publisherTarget: target,
            publisherFlag: "--redis-url", encoder: .redis(channel: "bench-fanout", payloadSize: fanout.payloadSize),
            parameters: ["url": target.description], common: common)
    }
}

struct HTTPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Signed POST /events throughput and latency over K keep-alive connections.")

    @OptionGroup var reverb: ReverbOptions
    @OptionGroup var common: CommonOptions

    @Option(help: "Concurrent HTTP/1.1 keep-alive connections.")
    var connections: Int = 16

    @Option(help: "Requests in flight per connection (1: wait for each response).")
    var pipeline: Int = 1

    @Option(help: "Subscribers on the triggered channel (0: none).")
    var subscribers: Int = 0

    @Option(help: "Seconds to publish.")
    var duration: Double = 5

    @Option(help: "Bytes of the event's data string.")
    var payloadSize: Int = 200

    func validate() throws {
        try require(connections, atLeast: 1, flag: "--connections")
        try require(pipeline, atLeast: 1, flag: "--pipeline")
        try require(subscribers, atLeast: 0, flag: "--subscribers")
        try require(payloadSize, atLeast: PayloadTimestamp.headerLength, flag: "--payload-size")
        guard duration > 0 else { throw ValidationError("--duration must be more than 0 seconds, got \(duration).") }
    }

    func run() async throws {
        let target = try reverb.target()
        let report = try await common.withGroup { group in
            let run = FanoutRun(
                subscriberEndpoint: .reverb(target, reverb.app), subscriberFlag: "--url", publisherTarget: target,
                publisherFlag: "--url",
                encoder: .reverb(
                    .init(target: target, app: reverb.app, channel: "bench-fanout", payloadSize: payloadSize)),
                subscribers: subscribers, publishConnections: connections,
                duration: .nanoseconds(Int64(duration * 1e9)), serverPIDs: common.serverPid)
            var report = BenchReport(
                scenario: "http",
                parameters: [
                    "url": target.description, "connections": String(connections), "pipeline": String(pipeline),
                    "subscribers": String(subscribers), "duration_s": String(duration),
                ])
            report.phases = try await run.run(paces: [.closedLoop(depth: pipeline)], group: group)
            report.phases[0].name = "\(subscribers) subs"
            return report
        }
        try report.emit(json: common.json)
    }
}
