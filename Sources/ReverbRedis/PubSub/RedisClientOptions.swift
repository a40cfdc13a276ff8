/// Behaviour shared by `RedisPublisher` and `RedisSubscriber` (spec `scaling.md` §5).
public struct RedisClientOptions: Sendable {
    /// Names the connection in logs, e.g. `publisher`. Default `redis`.
    public var role: String
    /// Sent with `CLIENT SETNAME`, e.g. `swift-reverb:<node>:publisher`. Default `nil`: none.
    public var clientName: String?
    /// Waits between connection attempts. Default: 100 ms doubling to 5 s, ±20 % jitter.
    public var reconnectPolicy: RedisReconnectPolicy
    /// Health-check `PING` period and reply deadline. Default 10 s; `nil` disables it.
    public var pingInterval: Duration?
    /// After this long without a connection an error is logged once (`REDIS_TIMEOUT`). Default 60 s.
    public var unreachableTimeout: Duration

    /// Options with the defaults above; see each property.
    public init(
        role: String = "redis",
        clientName: String? = nil,
        reconnectPolicy: RedisReconnectPolicy = RedisReconnectPolicy(),
        pingInterval: Duration? = .seconds(10),
        unreachableTimeout: Duration = .seconds(60)
    ) {
        self.role = role
        self.clientName = clientName
        self.reconnectPolicy = reconnectPolicy
        self.pingInterval = pingInterval
        self.unreachableTimeout = unreachableTimeout
    }
}
