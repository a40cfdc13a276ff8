public import Logging
public import ReverbRedis

/// The whole configuration of one node, built once at start-up and passed down.
///
/// Nothing but the configuration loader reads the environment; everything else receives this value.
public struct ReverbConfiguration: Sendable {
    public var server: ServerConfiguration
    public var apps: [Application]
    public var scaling: ScalingConfiguration
    /// `log_level`, `REVERB_LOG_LEVEL`; `--debug` means `.debug`. Default `.info`.
    public var logLevel: Logger.Level
    /// `restart_file`, `REVERB_RESTART_FILE`: the file `reverb restart` writes and servers watch.
    public var restartFile: String
    /// True when no config file and no environment app exist, so the development app is served.
    public var usesEmbeddedDefault: Bool
    /// Warnings gathered while loading (unknown keys, development credentials, ...), printed at start.
    public var warnings: [String]
    /// `/metrics` settings (`metrics.*`, `http-api.md` §8.2).
    public var metrics: MetricsConfiguration
    /// The dashboard and debug console (`dashboard.*`, docs.md "Dashboard").
    public var dashboard: DashboardConfiguration

    public init(
        server: ServerConfiguration = ServerConfiguration(),
        apps: [Application] = [.development],
        scaling: ScalingConfiguration = ScalingConfiguration(),
        logLevel: Logger.Level = .info,
        restartFile: String = ReverbConfiguration.defaultRestartFile,
        usesEmbeddedDefault: Bool = false,
        warnings: [String] = [],
        metrics: MetricsConfiguration = MetricsConfiguration(),
        dashboard: DashboardConfiguration = DashboardConfiguration()
    ) {
        self.server = server
        self.apps = apps
        self.scaling = scaling
        self.logLevel = logLevel
        self.restartFile = restartFile
        self.usesEmbeddedDefault = usesEmbeddedDefault
        self.warnings = warnings
        self.metrics = metrics
        self.dashboard = dashboard
    }

    /// `swift-reverb.restart` in `TMPDIR`, else `/tmp`.
    public static var defaultRestartFile: String {
        defaultRestartFile(temporaryDirectory: nil)
    }

    static func defaultRestartFile(temporaryDirectory: String?) -> String {
        var directory = temporaryDirectory ?? "/tmp"
        if directory.isEmpty { directory = "/tmp" }
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        return directory == "/" ? "/swift-reverb.restart" : directory + "/swift-reverb.restart"
    }
}

/// The listener: `servers.reverb.*` in `config.md` §4.1.
public struct ServerConfiguration: Sendable, Hashable {
    /// Bind address, `REVERB_SERVER_HOST`. Default `0.0.0.0`.
    public var host: String
    /// `REVERB_SERVER_PORT`; 0 picks a free port. Default 8080.
    public var port: Int
    /// Route prefix, `REVERB_SERVER_PATH`, stored without leading or trailing slashes. Default "".
    public var path: String
    /// Public name for the banner and certificate discovery, `REVERB_HOST`. Default none.
    public var hostname: String?
    /// Largest HTTP request (line + headers + body) in bytes, `REVERB_MAX_REQUEST_SIZE`. Default 10 000.
    public var maxRequestSize: Int
    /// TLS for the listener; `nil` serves plain ws:// and http://.
    public var tls: TLSFiles?
    /// `pulse_ingest_interval`, `REVERB_PULSE_INGEST_INTERVAL`: accepted, unused (no Pulse). Default 15.
    public var pulseIngestInterval: Int
    /// `telescope_ingest_interval`, `REVERB_TELESCOPE_INGEST_INTERVAL`: accepted, unused. Default 15.
    public var telescopeIngestInterval: Int

    public init(
        host: String = "0.0.0.0",
        port: Int = 8080,
        path: String = "",
        hostname: String? = nil,
        maxRequestSize: Int = 10_000,
        tls: TLSFiles? = nil,
        pulseIngestInterval: Int = 15,
        telescopeIngestInterval: Int = 15
    ) {
        self.host = host
        self.port = port
        self.path = ServerConfiguration.normalizedPath(path)
        self.hostname = hostname
        self.maxRequestSize = maxRequestSize
        self.tls = tls
        self.pulseIngestInterval = pulseIngestInterval
        self.telescopeIngestInterval = telescopeIngestInterval
    }

    /// The route prefix as it appears in URLs: "" or "/" + path.
    public var routePrefix: String { path.isEmpty ? "" : "/" + path }

    /// Trims slashes: `ws`, `/ws`, `/ws/` all give `ws`.
    public static func normalizedPath(_ path: String) -> String {
        var p = Substring(path)
        while p.first == "/" { p.removeFirst() }
        while p.last == "/" { p.removeLast() }
        return String(p)
    }
}

/// Certificate files for the listener (`options.tls`).
public struct TLSFiles: Sendable, Hashable {
    /// `local_cert`, `REVERB_TLS_CERT`: PEM chain, may also hold the key.
    public var certificatePath: String
    /// `local_pk`, `REVERB_TLS_KEY`: PEM private key; `nil` when the certificate file holds it.
    public var privateKeyPath: String?
    /// `passphrase`, `REVERB_TLS_PASSPHRASE`.
    public var passphrase: String?
    /// `cafile`: CA bundle for client certificates.
    public var caFile: String?
    /// `verify_peer`: require client certificates signed by `caFile`. Default false.
    public var verifyPeer: Bool

    public init(
        certificatePath: String,
        privateKeyPath: String? = nil,
        passphrase: String? = nil,
        caFile: String? = nil,
        verifyPeer: Bool = false
    ) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.passphrase = passphrase
        self.caFile = caFile
        self.verifyPeer = verifyPeer
    }
}

/// Multi-node operation over Redis: `servers.reverb.scaling.*` in `config.md` §4.2.
public struct ScalingConfiguration: Sendable, Equatable {
    /// How nodes talk over Redis, `mode`, `REVERB_SCALING_MODE`.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// swift-reverb's own envelopes (the default).
        case native
        /// Reverb-compatible messages; refused by the loader until built.
        case reverb
    }

    /// What carries the bus, `transport`, `REVERB_SCALING_TRANSPORT`.
    public enum Transport: String, Sendable, Hashable, CaseIterable {
        /// Redis pub/sub: delivered to the nodes connected at that instant (the default).
        case pubsub
        /// A Redis Stream: every node reads from the last entry it processed, so nothing published
        /// while it was away is missed while the stream still holds it.
        case streams
    }

    /// Which nodes an event goes to, `routing`, `REVERB_SCALING_ROUTING`.
    public enum Routing: String, Sendable, Hashable, CaseIterable {
        /// Every event to every node over the one channel (the default).
        case broadcast
        /// Each event only to the nodes with local subscribers of its channel, over the channel's
        /// bucket `<channel>:<n>`; queries, presence and heartbeats stay on the control channel.
        case interest
    }

    /// `REVERB_SCALING_ENABLED`. Default false.
    public var enabled: Bool
    /// `REVERB_SCALING_ROUTING`. Default `.broadcast`.
    public var routing: Routing = .broadcast
    /// Hash buckets of channel names in interest routing, a power of two in 1...65536,
    /// `REVERB_SCALING_BUCKETS`. Default 4096.
    public var buckets: Int = 4096
    /// `REVERB_SCALING_TRANSPORT`. Default `.pubsub`.
    public var transport: Transport
    /// Entries the stream keeps (`XADD … MAXLEN ~`), `REVERB_SCALING_STREAM_LENGTH`. Default 100 000.
    public var streamLength: Int
    /// Seconds after which a stream entry read late (after an outage) no longer reaches clients,
    /// `REVERB_SCALING_REPLAY_WINDOW`; it still updates cache channels and presence. Default 60.
    public var replayWindow: Double
    /// Redis pub/sub channel, `REVERB_SCALING_CHANNEL`. Default `reverb`.
    public var channel: String
    /// `REVERB_SCALING_MODE`. Default `.native`.
    public var mode: Mode
    /// Seconds to wait for other nodes' query replies, `REVERB_SCALING_QUERY_TIMEOUT`. Default 2.
    public var queryTimeout: Double
    /// Publishes held while Redis is away, `REVERB_SCALING_QUEUE_SIZE`. Default 10 000.
    public var queueSize: Int
    /// Exit after `timeout` seconds without Redis, as Reverb does. Default false.
    public var exitOnTimeout: Bool
    /// Laravel-style Redis settings exactly as the sources gave them (`scaling.server.*`, `REDIS_*`);
    /// validated and turned into connections by `RedisClientFactory` only when scaling is enabled
    /// (`config.md` §4.2), since a Laravel `.env` often holds `REDIS_*` values meant for other uses.
    public var redis: RedisSettings

    public init(
        enabled: Bool = false,
        channel: String = "reverb",
        queryTimeout: Double = 2,
        queueSize: Int = 10_000,
        exitOnTimeout: Bool = false,
        redis: RedisSettings = RedisSettings(),
        mode: Mode = .native,
        transport: Transport = .pubsub,
        streamLength: Int = 100_000,
        replayWindow: Double = 60
    ) {
        self.enabled = enabled
        self.transport = transport
        self.streamLength = streamLength
        self.replayWindow = replayWindow
        self.channel = channel
        self.queryTimeout = queryTimeout
        self.queueSize = queueSize
        self.exitOnTimeout = exitOnTimeout
        self.redis = redis
        self.mode = mode
    }
}
