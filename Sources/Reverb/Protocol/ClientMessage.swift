/// A data message from a client, parsed and checked per `protocol.md` §2, §4.1, §4.5, §7.1 and §13.1.
enum ClientMessage: Equatable {
    /// `pusher:subscribe`.
    case subscribe(channel: String, auth: String?, channelData: String?)
    /// `pusher:unsubscribe`.
    case unsubscribe(channel: String)
    /// `pusher:ping`.
    case ping
    /// `pusher:pong`.
    case pong
    /// `pusher:signin`: `user_data` is checked by `UserAuthentication.check`, after this step 1.
    case signIn(auth: String?, userData: String)
    /// A client-sent `pusher:connection_established`, answered with the handshake frame again.
    case connectionEstablished
    /// A `client-` event; `data` is `nil` when absent.
    case clientEvent(name: String, channel: String, data: JSONValue?)
    /// A non-`pusher:` event not starting with `client-`: silently ignored.
    case ignored

    /// Parses one complete message. Every failure is 4200 `Invalid message format`.
    static func parse<Bytes: Collection>(_ bytes: Bytes) -> Result<ClientMessage, PusherError>
    where Bytes.Element == UInt8 {
        guard case .object(var object)? = try? JSONParser.parse(bytes) else {
            return .failure(.invalidMessageFormat)
        }
        if case .string(let text)? = object["data"], let parsed = try? JSONParser.parse(text) {
            object["data"] = parsed
        }
        guard case .string(let event)? = object["event"] else { return .failure(.invalidMessageFormat) }
        let data = object["data"]
        if event.hasPrefix("pusher:") {
            return parsePusherEvent(event, data: data)
        }
        guard case .string(let channel)? = object["channel"] else { return .failure(.invalidMessageFormat) }
        switch data {
        case nil, .null?, .object?, .array?, .string("")?:
            break
        default:
            return .failure(.invalidMessageFormat)
        }
        guard event.hasPrefix("client-") else { return .success(.ignored) }
        return .success(.clientEvent(name: event, channel: channel, data: data))
    }

    private static func parsePusherEvent(_ event: String, data: JSONValue?) -> Result<ClientMessage, PusherError> {
        switch data {
        case nil, .null?, .object?, .array?, .string("")?:
            break
        default:
            return .failure(.invalidMessageFormat)
        }
        switch event {
        case "pusher:ping":
            return .success(.ping)
        case "pusher:pong":
            return .success(.pong)
        case "pusher:connection_established":
            return .success(.connectionEstablished)
        case "pusher:unsubscribe":
            guard case .string(let channel)? = data?["channel"] else { return .failure(.invalidMessageFormat) }
            return .success(.unsubscribe(channel: channel))
        case "pusher:subscribe":
            return parseSubscribe(data)
        case "pusher:signin":
            return parseSignIn(data)
        default:
            return .failure(.invalidMessageFormat)
        }
    }

    private static func parseSubscribe(_ data: JSONValue?) -> Result<ClientMessage, PusherError> {
        // `#server-to-user-` names are any string (`protocol.md` §13.2); the handler checks the id.
        guard case .string(let channel)? = data?["channel"],
            ChannelName.isValid(channel) || ChannelName.isServerToUser(channel)
        else {
            return .failure(.invalidMessageFormat)
        }
        var auth: String?
        switch data?["auth"] {
        case nil, .null?: auth = nil
        case .string(let value)?: auth = value
        default: return .failure(.invalidMessageFormat)
        }
        var channelData: String?
        switch data?["channel_data"] {
        case nil, .null?, .string("")?:
            channelData = nil
        case .string(let value)?:
            guard (try? JSONParser.parse(value)) != nil else { return .failure(.invalidMessageFormat) }
            channelData = value
        default:
            return .failure(.invalidMessageFormat)
        }
        return .success(.subscribe(channel: channel, auth: auth, channelData: channelData))
    }

    /// §13.1 step 1: `data` an object, `user_data` a string, `auth` absent, null or a string.
    private static func parseSignIn(_ data: JSONValue?) -> Result<ClientMessage, PusherError> {
        guard case .object(let object)? = data, case .string(let userData)? = object["user_data"] else {
            return .failure(.invalidMessageFormat)
        }
        switch object["auth"] {
        case nil, .null?: return .success(.signIn(auth: nil, userData: userData))
        case .string(let auth)?: return .success(.signIn(auth: auth, userData: userData))
        default: return .failure(.invalidMessageFormat)
        }
    }
}
