/// The node's apps, looked up by key (WebSocket URL) or id (HTTP API, bus): fixed at start-up.
struct AppRegistry: Sendable {
    let all: [AppContext]
    private let byKey: [String: AppContext]
    private let byID: [String: AppContext]

    /// - Parameter webhookSignal: when given, apps with `webhooks` get their `AppWebhooks`, which
    ///   wake the sender through it.
    init(
        _ applications: [Application], fanout: Fanout, limits: ChannelDirectoryState.Limits = .init(),
        webhookSignal: WakeSignal? = nil
    ) {
        all = applications.enumerated().map { index, application in
            let webhooks = webhookSignal.flatMap { signal in
                application.webhooks.isEmpty ? nil : AppWebhooks(application: application, wake: signal)
            }
            return AppContext(
                application: application, fanout: fanout, limits: limits, webhooks: webhooks, index: index)
        }
        byKey = Dictionary(all.map { ($0.application.key, $0) }, uniquingKeysWith: { _, last in last })
        byID = Dictionary(all.map { ($0.application.id, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// The app with this key, compared exactly.
    func app(key: String) -> AppContext? { byKey[key] }

    /// The app with this id, compared exactly.
    func app(id: String) -> AppContext? { byID[id] }
}
