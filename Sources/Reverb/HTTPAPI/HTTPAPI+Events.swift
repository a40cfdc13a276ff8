import NIOCore
import NIOHTTP1

/// `POST /apps/{appId}/events` and `batch_events` (`http-api.md` §3.1, §3.2, §5).
extension HTTPAPI {
    static let maximumChannelsPerEvent = 100
    static let maximumBatchSize = 100
    static let maximumEventNameBytes = 200

    /// A validated event ready to deliver.
    struct EventRequest {
        var name: String
        var data: String
        var channels: [String]
        var socketID: String?
        var info: String?
    }

    func triggerEvent(_ request: HTTPAPIRequest, app: AppContext) -> Answer {
        guard let body = Self.jsonObject(request.body) else { return .now(Self.invalidJSONBody) }
        var errors = ValidationErrors()
        guard let event = Self.validateEvent(body, path: "", allowChannels: true, errors: &errors) else {
            return .now(errors.response)
        }
        if let refusal = Self.checkLimits(event) { return .now(refusal) }
        deliver(event, app: app, batchOrder: false)
        guard event.info != nil else { return .now(.json(.ok, "{}")) }
        let attributes = InfoAttributes(event.info)
        let names = event.channels
        return .afterQuery(.channels(prefix: "", names: names, users: attributes.userCount)) { view in
            var channels = JSONObject()
            for channel in names {
                let snapshot = view.snapshot(of: channel, app: app, includeCache: attributes.cache)
                channels[channel] = .object(
                    snapshot.infoObject(channel: channel, attributes: attributes, includeOccupied: false))
            }
            return .json(.ok, .object(JSONObject([("channels", .object(channels))])))
        }
    }

    func triggerBatch(_ request: HTTPAPIRequest, app: AppContext) -> Answer {
        guard let body = Self.jsonObject(request.body) else { return .now(Self.invalidJSONBody) }
        var errors = ValidationErrors()
        guard let batch = body["batch"], !ValidationErrors.isMissing(batch) else {
            errors.add("batch", "The batch field is required.")
            return .now(errors.response)
        }
        guard case .array(let items) = batch else {
            errors.add("batch", "The batch field must be an array.")
            return .now(errors.response)
        }
        var events: [EventRequest] = []
        for (index, item) in items.enumerated() {
            let object = item.objectValue ?? JSONObject()
            if let event = Self.validateEvent(object, path: "batch.\(index).", allowChannels: false, errors: &errors) {
                events.append(event)
            }
        }
        guard errors.isEmpty else { return .now(errors.response) }
        guard events.count <= Self.maximumBatchSize else {
            return .now(.text(.badRequest, "Too many events: at most \(Self.maximumBatchSize) per batch."))
        }
        for event in events {
            if let refusal = Self.checkLimits(event) { return .now(refusal) }
        }
        for event in events { deliver(event, app: app, batchOrder: true) }
        guard events.contains(where: { $0.info != nil }) else { return .now(.json(.ok, #"{"batch":{}}"#)) }
        let delivered = events
        let asked = events.filter { $0.info != nil }
        let names = Array(Set(asked.flatMap(\.channels)))
        let wantsUsers = asked.contains { InfoAttributes($0.info).userCount }
        return .afterQuery(.channels(prefix: "", names: names, users: wantsUsers)) { view in
            let results: [JSONValue] = delivered.map { event in
                guard let info = event.info, let channel = event.channels.first else { return .object(JSONObject()) }
                let attributes = InfoAttributes(info)
                let snapshot = view.snapshot(of: channel, app: app, includeCache: attributes.cache)
                return .object(snapshot.infoObject(channel: channel, attributes: attributes, includeOccupied: false))
            }
            return .json(.ok, .object(JSONObject([("batch", .array(results))])))
        }
    }

    /// Delivers the event to each distinct channel once, skipping `socket_id`, and sends it to
    /// the other nodes as one bus message.
    private func deliver(_ event: EventRequest, app: AppContext, batchOrder: Bool) {
        pubSub.publish(
            .http(
                name: event.name, data: event.data, channels: event.channels, except: event.socketID,
                batchOrder: batchOrder),
            app: app)
        app.debug.record {
            DebugEvent(
                .apiEvent, socketID: event.socketID, channels: event.channels, event: event.name, data: event.data)
        }
    }

    /// Laravel-style field validation; messages in field order (`http-api.md` §3.1).
    static func validateEvent(
        _ body: JSONObject, path: String, allowChannels: Bool, errors: inout ValidationErrors
    ) -> EventRequest? {
        let before = errors.count
        func field(_ name: String) -> String { path + name }
        func label(_ name: String) -> String { (path + name).replacingUnderscores() }
        func requiredString(_ key: String) -> String? {
            if ValidationErrors.isMissing(body[key]) {
                errors.add(field(key), "The \(label(key)) field is required.")
            } else if case .string(let value)? = body[key] {
                return value
            } else {
                errors.add(field(key), "The \(label(key)) field must be a string.")
            }
            return nil
        }

        let name = requiredString("name")
        let data = requiredString("data")

        var channels: [String] = []
        let channelsMissing = !allowChannels || ValidationErrors.isMissing(body["channels"])
        let channelMissing = ValidationErrors.isMissing(body["channel"])
        if allowChannels && channelsMissing && channelMissing {
            errors.add(field("channels"), "The \(label("channels")) field is required when channel is not present.")
        }
        if !channelsMissing {
            if case .array(let list)? = body["channels"] {
                for (index, element) in list.enumerated() {
                    if case .string(let channel) = element {
                        channels.append(channel)
                    } else {
                        errors.add(
                            field("channels.\(index)"), "The \(label("channels")).\(index) field must be a string.")
                    }
                }
            } else {
                errors.add(field("channels"), "The \(label("channels")) field must be an array.")
            }
        }
        if channelMissing {
            if channelsMissing {
                let message =
                    allowChannels
                    ? "The \(label("channel")) field is required when channels is not present."
                    : "The \(label("channel")) field is required."
                errors.add(field("channel"), message)
            }
        } else if channelsMissing {
            if case .string(let channel)? = body["channel"] {
                channels = [channel]
            } else {
                errors.add(field("channel"), "The \(label("channel")) field must be a string.")
            }
        }

        var socketID: String?
        switch body["socket_id"] {
        case nil, .null?: break
        case .string(let value)?: socketID = value
        default: errors.add(field("socket_id"), "The \(label("socket id")) field must be a string.")
        }
        var info: String?
        switch body["info"] {
        case nil, .null?: break
        case .string(let value)?: info = value
        default: errors.add(field("info"), "The \(label("info")) field must be a string.")
        }
        guard errors.count == before, let name, let data else { return nil }
        return EventRequest(name: name, data: data, channels: channels, socketID: socketID, info: info)
    }

    /// `http-api.md` §5 limits: `400` with a text body naming the problem.
    static func checkLimits(_ event: EventRequest) -> HTTPResponse? {
        if Set(event.channels).count > maximumChannelsPerEvent {
            return .text(.badRequest, "Too many channels: at most \(maximumChannelsPerEvent) per event.")
        }
        if event.name.utf8.count > maximumEventNameBytes {
            return .text(.badRequest, "Event name too long: at most \(maximumEventNameBytes) bytes.")
        }
        for channel in event.channels where !isValidEventChannel(channel) {
            return .text(.badRequest, "Invalid channel name: \(channel).")
        }
        return nil
    }

    /// A subscribable name, or `#server-to-user-` followed by one.
    static func isValidEventChannel(_ channel: String) -> Bool {
        if ChannelName.isServerToUser(channel) {
            return ChannelName.isValid(String(channel.dropFirst(ChannelName.serverToUserPrefix.count)))
        }
        return ChannelName.isValid(channel)
    }
}

extension String {
    /// `socket_id` → `socket id`, as Laravel names fields in messages.
    fileprivate func replacingUnderscores() -> String {
        String(map { $0 == "_" ? " " : $0 })
    }
}
