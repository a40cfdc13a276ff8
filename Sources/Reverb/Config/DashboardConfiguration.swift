/// The dashboard and debug console: `servers.reverb.dashboard.*` (`config.md` §4.1, docs.md "Dashboard").
public struct DashboardConfiguration: Sendable, Hashable {
    /// `dashboard.enabled`, `REVERB_DASHBOARD_ENABLED`: serve `{prefix}/dashboard` on the main port.
    /// Default false.
    public var enabled: Bool
    /// `dashboard.password`, `REVERB_DASHBOARD_PASSWORD`: a login that shows every app (at least
    /// `minimumPasswordLength` characters). Default none: log in with an app id and that app's secret.
    public var password: String?

    public static let minimumPasswordLength = 8

    public init(enabled: Bool = false, password: String? = nil) {
        self.enabled = enabled
        self.password = password
    }
}
