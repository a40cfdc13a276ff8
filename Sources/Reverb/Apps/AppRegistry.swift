/// The node's apps, looked up by key (WebSocket URL) or id (HTTP API, bus): fixed at start-up.
struct AppRegistry: Sendable {
    let all: [AppContext]
    private let byKey: [String: AppContext]
    private let byID: [String: AppContext]

    init(_ applications: [Application], fanout: Fanout, limits: ChannelDirectoryState.Limits = .init()) {
        all = applications.map { AppContext(application: $0, fanout: fanout, limits: limits) }
        byKey = Dictionary(all.map { ($0.application.key, $0) }, uniquingKeysWith: { _, last in last })
        byID = Dictionary(all.map { ($0.application.id, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// The app with this key, compared exactly.
    func app(key: String) -> AppContext? { byKey[key] }

    /// The app with this id, compared exactly.
    func app(id: String) -> AppContext? { byID[id] }
}
