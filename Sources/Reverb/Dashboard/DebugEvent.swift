/// One line of the debug console (docs.md "Dashboard"): what happened to an app's connection,
/// channel or event, built only while somebody watches the app.
struct DebugEvent: Sendable {
    enum Kind: String, Sendable {
        case connectionOpened = "connection_opened"
        case connectionClosed = "connection_closed"
        case subscribed
        case unsubscribed
        case clientEvent = "client_event"
        case apiEvent = "api_event"
        case error
    }

    /// Bytes of an event's data the console shows.
    static let previewBytes = 300

    var kind: Kind
    var socketID: String?
    var channels: [String] = []
    var event: String?
    /// The data, cut to `previewBytes`.
    var data: String?
    var origin: String?
    var code: Int?
    var message: String?

    init(
        _ kind: Kind, socketID: String? = nil, channels: [String] = [], event: String? = nil, data: String? = nil,
        origin: String? = nil, code: Int? = nil, message: String? = nil
    ) {
        self.kind = kind
        self.socketID = socketID
        self.channels = channels
        self.event = event
        self.data = data.map(Self.preview)
        self.origin = origin
        self.code = code
        self.message = message
    }

    /// `text` cut to at most `previewBytes` UTF-8 bytes on a character boundary, `…` marking a cut.
    static func preview(_ text: String) -> String {
        guard text.utf8.count > previewBytes else { return text }
        var cut = ""
        var bytes = 0
        for character in text {
            bytes += character.utf8.count
            if bytes > previewBytes { break }
            cut.append(character)
        }
        return cut + "…"
    }

    /// The JSON text the console receives; `node` names the node it happened on in a cluster.
    func json(node: String, timeMilliseconds: UInt64) -> String {
        var object = JSONObject([
            ("kind", .string(kind.rawValue)), ("time", .number(String(timeMilliseconds))), ("node", .string(node)),
        ])
        if let socketID { object["socket_id"] = .string(socketID) }
        if !channels.isEmpty { object["channels"] = .array(channels.map(JSONValue.string)) }
        if let event { object["event"] = .string(event) }
        if let data { object["data"] = .string(data) }
        if let origin { object["origin"] = .string(origin) }
        if let code { object["code"] = .number(String(code)) }
        if let message { object["message"] = .string(message) }
        return JSONWriter.string(.object(object))
    }
}
