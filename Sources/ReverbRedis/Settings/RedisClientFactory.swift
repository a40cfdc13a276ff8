public import Logging
public import NIOCore
public import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Builds the Redis endpoint from Laravel-style settings (spec `scaling.md` §6) and opens the
/// publisher and subscriber from it. It is given values; it never reads the environment.
public struct RedisClientFactory: Sendable {
    /// The validated endpoint.
    public let configuration: RedisConnectionConfiguration
    /// Seconds without Redis after which the link counts as degraded (`REDIS_TIMEOUT`, default 60 s).
    public let timeout: Duration
    /// Problems that do not stop startup: unknown URL query keys, a username without a password.
    public let warnings: [String]

    /// Parses and validates `settings`, and loads the TLS files to check them.
    ///
    /// - Throws: `RedisSettingsError` listing every problem, each naming its setting.
    public init(settings: RedisSettings) throws(RedisSettingsError) {
        let result = try RedisSettingsParser.parse(settings)
        if let tls = result.configuration.tls {
            try Self.checkFiles(tls, names: settings.names)
        }
        self.configuration = result.configuration
        self.timeout = result.timeout
        self.warnings = result.warnings
    }

    /// A factory for an endpoint built by other means (tests, embedding).
    public init(configuration: RedisConnectionConfiguration, timeout: Duration = .seconds(60)) {
        self.configuration = configuration
        self.timeout = timeout
        self.warnings = []
    }

    /// The options both clients use: `role`, `CLIENT SETNAME`, and the degraded timeout.
    public func options(role: String, clientName: String? = nil) -> RedisClientOptions {
        RedisClientOptions(role: role, clientName: clientName, unreachableTimeout: timeout)
    }

    /// A publisher for this endpoint; start it with `run()`.
    public func makePublisher(
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        queueCapacity: Int = RedisPublisher.defaultQueueCapacity,
        clientName: String? = nil,
        mode: RedisPublisher.Mode = .publish,
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil
    ) -> RedisPublisher {
        RedisPublisher(
            configuration: configuration,
            eventLoopGroup: eventLoopGroup,
            queueCapacity: queueCapacity,
            options: options(role: "publisher", clientName: clientName),
            mode: mode,
            logger: logger,
            onLinkStateChange: onLinkStateChange
        )
    }

    /// A subscriber to `channels` on this endpoint; start it with `run()`.
    public func makeSubscriber(
        channels: [String],
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        clientName: String? = nil,
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil,
        onMessage: @escaping @Sendable (RedisPubSubMessage) -> Void
    ) -> RedisSubscriber {
        RedisSubscriber(
            configuration: configuration,
            channels: channels,
            eventLoopGroup: eventLoopGroup,
            options: options(role: "subscriber", clientName: clientName),
            logger: logger,
            onLinkStateChange: onLinkStateChange,
            onMessage: onMessage
        )
    }

    /// A reader of `stream` on this endpoint; start it with `run()`.
    public func makeStreamReader(
        stream: String,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        clientName: String? = nil,
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil,
        onGap: @escaping @Sendable (String) -> Void = { _ in },
        onEntry: @escaping @Sendable (RedisStreamEntry) -> Void
    ) -> RedisStreamReader {
        RedisStreamReader(
            configuration: configuration,
            stream: stream,
            eventLoopGroup: eventLoopGroup,
            options: options(role: "subscriber", clientName: clientName),
            logger: logger,
            onLinkStateChange: onLinkStateChange,
            onGap: onGap,
            onEntry: onEntry
        )
    }

    /// Fails when a TLS file is unreadable or not valid PEM, naming the setting.
    private static func checkFiles(
        _ tls: RedisConnectionConfiguration.TLS,
        names: RedisSettings.Names
    ) throws(RedisSettingsError) {
        var problems: [String] = []
        func check(_ path: String?, _ name: String, kind: String, load: (String) throws -> Void) {
            guard let path else { return }
            if access(path, R_OK) != 0 {
                problems.append("\(name): cannot read \"\(path)\": \(String(cString: strerror(errno))).")
                return
            }
            do {
                try load(path)
            } catch {
                problems.append("\(name): \"\(path)\" is not a valid PEM \(kind): \(error).")
            }
        }
        check(tls.caFile, names.tlsCA, kind: "certificate") { _ = try NIOSSLCertificate.fromPEMFile($0) }
        check(tls.certificateFile, names.tlsCert, kind: "certificate") { _ = try NIOSSLCertificate.fromPEMFile($0) }
        check(tls.keyFile, names.tlsKey, kind: "private key") { _ = try NIOSSLPrivateKey(file: $0, format: .pem) }
        if !problems.isEmpty { throw RedisSettingsError(problems: problems) }
    }
}
