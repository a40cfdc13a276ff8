/// The Prometheus endpoint: `servers.reverb.metrics.*` in `config.md` §4.1 (phase 2).
public struct MetricsConfiguration: Sendable, Hashable {
    /// `metrics.enabled`, `REVERB_METRICS_ENABLED`. Default false; `true` is refused until `/metrics` is built.
    public var enabled: Bool
    /// `metrics.token`, `REVERB_METRICS_TOKEN`: bearer token for `/metrics`. Default none.
    public var token: String?

    public init(enabled: Bool = false, token: String? = nil) {
        self.enabled = enabled
        self.token = token
    }
}
