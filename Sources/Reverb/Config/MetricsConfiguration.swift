/// The Prometheus endpoint: `servers.reverb.metrics.*` (`config.md` §4.1, `http-api.md` §8.2).
public struct MetricsConfiguration: Sendable, Hashable {
    /// `metrics.enabled`, `REVERB_METRICS_ENABLED`: serve `{prefix}/metrics`. Default false.
    public var enabled: Bool
    /// `metrics.token`, `REVERB_METRICS_TOKEN`: bearer token for `/metrics`. Default none.
    public var token: String?
    /// `metrics.port`, `REVERB_METRICS_PORT`: a listener of its own (1-65535). Default none: the main port.
    public var port: Int?
    /// `metrics.host`, `REVERB_METRICS_HOST`: bind address of that listener. Default `127.0.0.1`.
    public var host: String
    /// `metrics.prefix`, `REVERB_METRICS_PREFIX`: prefix of every name but the process metrics.
    /// Default `reverb_`.
    public var prefix: String

    public init(
        enabled: Bool = false, token: String? = nil, port: Int? = nil, host: String = "127.0.0.1",
        prefix: String = "reverb_"
    ) {
        self.enabled = enabled
        self.token = token
        self.port = port
        self.host = host
        self.prefix = prefix
    }

    /// Letters, digits, `_` and `:` (a Prometheus name may not start with a digit; the prefix is
    /// followed by a letter, so only its first character matters).
    static func isValidPrefix(_ prefix: String) -> Bool {
        guard let first = prefix.unicodeScalars.first else { return true }
        if case "0"..."9" = first { return false }
        return prefix.unicodeScalars.allSatisfy {
            switch $0 {
            case "a"..."z", "A"..."Z", "0"..."9", "_", ":": true
            default: false
            }
        }
    }
}
