/// One tenant of the server: its credentials and the options that shape its connections.
///
/// Option names follow Reverb's `config/reverb.php` (`ping_interval`, `max_message_size`, ...);
/// `config.md` §4.3 lists each one with its environment variable and default.
public struct Application: Sendable, Hashable {
    /// Who may send client events (whispers), `accept_client_events_from`.
    public enum ClientEventPolicy: String, Sendable, Hashable, CaseIterable {
        /// Any connection of the app, subscribed to the channel or not.
        case all
        /// Only connections subscribed to the channel (the default).
        case members
        /// Nobody: client events are refused with 4301.
        case none
    }

    /// Per-connection message rate limiting (`rate_limiting`); off by default.
    public struct RateLimiting: Sendable, Hashable {
        public var enabled: Bool
        /// Messages accepted per window. Default 60.
        public var maxAttempts: Int
        /// Window length in seconds. Default 60.
        public var decaySeconds: Int
        /// Close the connection (1008) after sending the 4301 error. Default false.
        public var terminateOnLimit: Bool

        public init(
            enabled: Bool = false, maxAttempts: Int = 60, decaySeconds: Int = 60, terminateOnLimit: Bool = false
        ) {
            self.enabled = enabled
            self.maxAttempts = maxAttempts
            self.decaySeconds = decaySeconds
            self.terminateOnLimit = terminateOnLimit
        }
    }

    /// Pusher's presence limits, counted cluster-wide (`max_presence_members`,
    /// `max_presence_member_size`; `protocol.md` §5.1). 0 = unlimited, the default (as Reverb).
    public struct PresenceLimits: Sendable, Hashable {
        /// Users per presence channel.
        public var maxMembers: Int
        /// Bytes of one member's `channel_data`.
        public var maxMemberSize: Int

        public init(maxMembers: Int = 0, maxMemberSize: Int = 0) {
            self.maxMembers = maxMembers
            self.maxMemberSize = maxMemberSize
        }
    }

    /// Where the Laravel app sends HTTP API calls (`options`); used by `reverb events:trigger`.
    public struct Options: Sendable, Hashable {
        /// `options.host`, `REVERB_HOST`. Default none.
        public var host: String?
        /// `options.port`, `REVERB_PORT`. Default 443.
        public var port: Int
        /// `options.scheme`, `REVERB_SCHEME`: `http` or `https`. Default `https`.
        public var scheme: String
        /// `options.use_tls`. Default: scheme is `https`.
        public var useTLS: Bool

        public init(host: String? = nil, port: Int = 443, scheme: String = "https", useTLS: Bool? = nil) {
            self.host = host
            self.port = port
            self.scheme = scheme
            self.useTLS = useTLS ?? (scheme == "https")
        }
    }

    /// `app_id`, `REVERB_APP_ID`: one path segment.
    public var id: String
    /// `key`, `REVERB_APP_KEY`: what clients put in `/app/{key}`.
    public var key: String
    /// `secret`, `REVERB_APP_SECRET`: signs channel auth and HTTP API requests.
    public var secret: String
    /// Host patterns allowed in `Origin` (`*` wildcard). Default `["*"]`.
    public var allowedOrigins: [String]
    /// Seconds of client silence before the server pings. Default 60.
    public var pingInterval: Int
    /// Advertised in `connection_established`, seconds. Default 30.
    public var activityTimeout: Int
    /// Open connections allowed per node; `nil` means no limit.
    public var maxConnections: Int?
    /// Largest client message in bytes; 0 means no app limit (16 MiB ceiling). Default 10 000.
    public var maxMessageSize: Int
    /// Default `members`.
    public var acceptClientEventsFrom: ClientEventPolicy
    public var rateLimiting: RateLimiting
    /// `max_presence_members`, `max_presence_member_size`.
    public var presenceLimits: PresenceLimits
    /// `subscription_count`: send `pusher_internal:subscription_count` to subscribers of
    /// non-presence channels when the cluster-wide count changes, at most once per channel per 5 s.
    public var subscriptionCount: Bool
    /// `webhooks` (`http-api.md` §8.1). Default none.
    public var webhooks: [Webhook]
    /// `user_authentication_timeout`: seconds a connection has to sign in (`pusher:signin`) before it
    /// is closed with 4009; 0 (the default) = no limit (`protocol.md` §13.5).
    public var userAuthenticationTimeout: Int
    public var options: Options

    public init(
        id: String,
        key: String,
        secret: String,
        allowedOrigins: [String] = ["*"],
        pingInterval: Int = 60,
        activityTimeout: Int = 30,
        maxConnections: Int? = nil,
        maxMessageSize: Int = 10_000,
        acceptClientEventsFrom: ClientEventPolicy = .members,
        rateLimiting: RateLimiting = RateLimiting(),
        presenceLimits: PresenceLimits = PresenceLimits(),
        subscriptionCount: Bool = false,
        webhooks: [Webhook] = [],
        userAuthenticationTimeout: Int = 0,
        options: Options = Options()
    ) {
        self.id = id
        self.key = key
        self.secret = secret
        self.allowedOrigins = allowedOrigins
        self.pingInterval = pingInterval
        self.activityTimeout = activityTimeout
        self.maxConnections = maxConnections
        self.maxMessageSize = maxMessageSize
        self.acceptClientEventsFrom = acceptClientEventsFrom
        self.rateLimiting = rateLimiting
        self.presenceLimits = presenceLimits
        self.subscriptionCount = subscriptionCount
        self.webhooks = webhooks
        self.userAuthenticationTimeout = userAuthenticationTimeout
        self.options = options
    }

    /// The development app of `config.md` §3.2, served when nothing else is configured.
    public static let development = Application(
        id: "123456",
        key: "reverb-key",
        secret: "reverb-secret",
        options: Options(host: "localhost", port: 8080, scheme: "http", useTLS: false)
    )

    /// The ceiling applied when `max_message_size` is 0.
    public static let messageSizeCeiling = 16 * 1024 * 1024

    /// The limit the WebSocket handler enforces for this app, in bytes.
    public var effectiveMaxMessageSize: Int {
        maxMessageSize == 0 ? Self.messageSizeCeiling : maxMessageSize
    }

    /// True for Reverb's published test credentials, which `start` warns about.
    public var usesDevelopmentCredentials: Bool {
        key == "reverb-key" && secret == "reverb-secret"
    }
}
