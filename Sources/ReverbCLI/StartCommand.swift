import ArgumentParser
import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Prometheus
import Reverb
import ServiceLifecycle
import UnixSignals

/// `reverb start`: load the configuration, bind, print the banner, serve until SIGINT/SIGTERM.
struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Start the server.",
        version: "swift-reverb \(ReverbCommand.version)"
    )

    @Option(help: "The address to bind (REVERB_SERVER_HOST, default 0.0.0.0).")
    var host: String?

    @Option(help: "The port to bind; 0 picks a free port (REVERB_SERVER_PORT, default 8080).")
    var port: String?

    @Option(help: "Route prefix for every WebSocket and HTTP route (REVERB_SERVER_PATH).")
    var path: String?

    @Option(help: "Public host name, shown in the banner (REVERB_HOST).")
    var hostname: String?

    @Option(help: "Configuration file (REVERB_CONFIG, default config/reverb.json if present).")
    var config: String?

    @Flag(help: "Log every connection, subscription and message.")
    var debug = false

    func run() async throws {
        let flags = ConfigurationFlags(
            host: host, port: port, path: path, hostname: hostname, configFile: config, debug: debug)
        let configuration = try CommandSupport.loadConfiguration(flags)
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "reverb")
        for warning in configuration.warnings { logger.warning("\(warning)") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let boundAddress = NIOLockedValueBox<String?>(nil)
        let host = configuration.server.host
        // The banner is printed once the listener is bound inside the service group, so a signal
        // arriving right after it is already handled gracefully.
        let server: ReverbServer
        do {
            server = try ReverbServer(configuration: configuration, eventLoopGroup: group, logger: logger) { address in
                let port = address.port ?? configuration.server.port
                boundAddress.withLockedValue { $0 = "\(host):\(port)" }
                Self.printBanner(configuration: configuration, port: port)
            }
        } catch let setup as ReverbServer.ScalingSetupError {
            try? await group.shutdownGracefully()
            CommandSupport.fail(setup.description, exitCode: 78)
        }
        if let registry = server.metricsRegistry {
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        }
        let watcher = RestartWatcher(path: configuration.restartFile) {
            boundAddress.withLockedValue { $0 } ?? "\(host):\(configuration.server.port)"
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: server.services.map { .init(service: $0) }
                + [.init(service: watcher, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // In-flight work gets 10 s (config.md §6.1), then everything is cancelled.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(10)
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let serviceGroup = ServiceGroup(configuration: groupConfiguration)
        do {
            try await serviceGroup.run()
        } catch {
            try? await group.shutdownGracefully()
            if let setup = error as? ReverbServer.ScalingSetupError {
                CommandSupport.fail(setup.description, exitCode: 78)
            }
            CommandSupport.fail("\(error)", exitCode: 1)
        }
        try? await group.shutdownGracefully()
    }

    private static func printBanner(configuration: ReverbConfiguration, port: Int) {
        let server = configuration.server
        let secure = server.tls != nil ? "secure " : ""
        var location = "\(server.host):\(port)\(server.routePrefix)"
        if let hostname = server.hostname, hostname != server.host { location += " (\(hostname))" }
        var lines = ["   INFO  Starting \(secure)server on \(location)."]
        for app in configuration.apps {
            lines.append("   INFO  Serving app \(app.id) (key: \(app.key)).")
        }
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
