import NIOCore
import NIOHTTP1

/// Channel queries (`http-api.md` §3.3–§3.6) and user termination (§3.7), cluster-wide.
extension HTTPAPI {
    func channels(_ request: HTTPAPIRequest, app: AppContext) -> Answer {
        let prefix = request.query("filter_by_prefix") ?? ""
        let attributes = InfoAttributes(request.query("info"))
        return .afterQuery(.channels(prefix: prefix, names: nil, users: attributes.userCount)) { view in
            var channels = JSONObject()
            // Users' own channels are never listed, whatever the filter (`protocol.md` §13.2).
            for name in view.order where !ChannelName.isServerToUser(name) {
                let snapshot = view.snapshot(of: name, app: app, includeCache: attributes.cache)
                guard snapshot.occupied else { continue }
                channels[name] = .object(
                    snapshot.infoObject(channel: name, attributes: attributes, includeOccupied: false))
            }
            return .json(.ok, .object(JSONObject([("channels", .object(channels))])))
        }
    }

    func channelInfo(_ name: String, request: HTTPAPIRequest, app: AppContext) -> Answer {
        let attributes = InfoAttributes(request.query("info"))
        return .afterQuery(.channels(prefix: "", names: [name], users: attributes.userCount)) { view in
            let snapshot = view.snapshot(of: name, app: app, includeCache: attributes.cache)
            return .json(
                .ok, .object(snapshot.infoObject(channel: name, attributes: attributes, includeOccupied: true)))
        }
    }

    func users(of channel: String, app: AppContext) -> Answer {
        .afterQuery(.channels(prefix: "", names: [channel], users: true)) { view in
            let snapshot = view.snapshot(of: channel, app: app, includeCache: false)
            guard snapshot.occupied else { return .json(.notFound, "{}") }
            guard ChannelName.kind(of: channel).isPresence else { return .json(.badRequest, "{}") }
            let users: [JSONValue] = snapshot.users.map { .object(JSONObject([("id", $0)])) }
            return .json(.ok, .object(JSONObject([("users", .array(users))])))
        }
    }

    func terminate(userID: String, request: HTTPAPIRequest, app: AppContext) -> HTTPResponse {
        if request.body.readableBytes > 0 && Self.jsonObject(request.body) == nil {
            return Self.invalidJSONBody
        }
        _ = pubSub.terminate(identity: userID, app: app)
        return .json(.ok, "{}")
    }
}
