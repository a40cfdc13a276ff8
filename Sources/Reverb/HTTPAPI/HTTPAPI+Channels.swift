import NIOCore
import NIOHTTP1

/// Channel queries (`http-api.md` §3.3–§3.5) and user termination (§3.7).
extension HTTPAPI {
    func channels(_ request: HTTPAPIRequest, app: AppContext) -> HTTPResponse {
        let prefix = request.query("filter_by_prefix") ?? ""
        let attributes = InfoAttributes(request.query("info"))
        let names = app.directory.withState { $0.occupiedChannels() }.filter { $0.hasPrefix(prefix) }
        var channels = JSONObject()
        for name in names {
            let snapshot = app.snapshot(of: name, includeCache: attributes.cache)
            guard snapshot.occupied else { continue }
            channels[name] = .object(snapshot.infoObject(channel: name, attributes: attributes, includeOccupied: false))
        }
        return .json(.ok, .object(JSONObject([("channels", .object(channels))])))
    }

    func channelInfo(_ name: String, request: HTTPAPIRequest, app: AppContext) -> HTTPResponse {
        let attributes = InfoAttributes(request.query("info"))
        let snapshot = app.snapshot(of: name, includeCache: attributes.cache)
        return .json(.ok, .object(snapshot.infoObject(channel: name, attributes: attributes, includeOccupied: true)))
    }

    func users(of channel: String, app: AppContext) -> HTTPResponse {
        let snapshot = app.snapshot(of: channel, includeCache: false)
        guard snapshot.occupied else { return .json(.notFound, "{}") }
        guard ChannelName.kind(of: channel).isPresence else { return .json(.badRequest, "{}") }
        let users: [JSONValue] = snapshot.users.map { .object(JSONObject([("id", $0)])) }
        return .json(.ok, .object(JSONObject([("users", .array(users))])))
    }

    func terminate(userID: String, request: HTTPAPIRequest, app: AppContext) -> HTTPResponse {
        if request.body.readableBytes > 0 && Self.jsonObject(request.body) == nil {
            return Self.invalidJSONBody
        }
        _ = app.terminateLocally(identity: userID)
        return .json(.ok, "{}")
    }
}
