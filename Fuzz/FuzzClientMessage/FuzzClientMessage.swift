// Compiled only where `@testable` works: debug builds (corpus replay) and `make fuzz` (`-enable-testing
// -DFUZZING`). A release build (`make run`) gets a stub that says so.
#if DEBUG || FUZZING
    import FuzzSupport
    import NIOCore

    @testable import Reverb

    /// A client's WebSocket message as `ClientMessage.parse` sees it, and the JSON parser and writer
    /// under it (`protocol.md` §2, §4, §7).
    func fuzz(_ bytes: UnsafeRawBufferPointer) {
        checkClientMessage(bytes)
        checkJSON(bytes)
    }

    /// A parsed message is consistent with its bytes; a refused one is refused with 4200.
    func checkClientMessage(_ bytes: UnsafeRawBufferPointer) {
        switch ClientMessage.parse(bytes) {
        case .failure(let error):
            require(
                error == .invalidMessageFormat, "a refused message must be 4200 Invalid message format, got \(error)")
        case .success(let message):
            // The handler relies on this: it skips its own UTF-8 check for messages that parse.
            require(String(validating: bytes, as: UTF8.self) != nil, "a message that parses is valid UTF-8")
            guard case .object(let object)? = try? JSONParser.parse(bytes) else {
                return require(false, "a message that parses is a JSON object")
            }
            guard case .string(let event)? = object["event"] else {
                return require(false, "a message that parses has a string event")
            }
            switch message {
            case .subscribe(let channel, _, let channelData):
                require(event == "pusher:subscribe", "subscribe from event \(event)")
                require(
                    ChannelName.isValid(channel) || ChannelName.isServerToUser(channel),
                    "subscribe to an invalid channel name \(channel.debugDescription)")
                if let channelData {
                    require(!channelData.isEmpty, "empty channel_data is reported as none")
                    require((try? JSONParser.parse(channelData)) != nil, "channel_data that is not JSON")
                }
            case .signIn(let auth, let userData):
                require(event == "pusher:signin", "signin from event \(event)")
                guard case .object(let data)? = object["data"] else {
                    return require(false, "signin without data object")
                }
                require(data["user_data"] == .string(userData), "signin's user_data is not the message's")
                require(
                    auth.map { data["auth"] == .string($0) } ?? (data["auth"] == nil || data["auth"] == .null),
                    "signin's auth is not the message's")
            case .unsubscribe:
                require(event == "pusher:unsubscribe", "unsubscribe from event \(event)")
            case .ping:
                require(event == "pusher:ping", "ping from event \(event)")
            case .pong:
                require(event == "pusher:pong", "pong from event \(event)")
            case .connectionEstablished:
                require(event == "pusher:connection_established", "connection_established from event \(event)")
            case .clientEvent(let name, let channel, let data):
                require(name == event && name.hasPrefix("client-"), "client event from event \(event)")
                require(object["channel"] == .string(channel), "client event's channel is not the message's")
                switch data {
                case nil, .null?, .object?, .array?, .string("")?: break
                default: require(false, "client event data of another type: \(String(describing: data))")
                }
            case .ignored:
                require(!event.hasPrefix("pusher:") && !event.hasPrefix("client-"), "ignored event \(event)")
            }
        }
    }

    /// `parse` and `members` accept the same objects; whatever parses writes back to JSON that parses
    /// to the same value.
    func checkJSON(_ bytes: UnsafeRawBufferPointer) {
        let value = try? JSONParser.parse(bytes)
        let members = try? JSONParser.members(bytes)
        guard case .object(let object)? = value else {
            require(members == nil, "members accepts what parse refuses or finds no object")
            if let value { checkRoundTrip(value) }
            return
        }
        guard let members else { return require(false, "members refuses an object that parse accepts") }
        // `JSONObject` keeps a repeated key's last value in its first place; compare without repeats.
        if Set(members.map(\.key)).count == members.count {
            require(members.map(\.key) == object.entries.map(\.key), "members and parse give different keys")
            for member in members {
                let keyToken = UnsafeRawBufferPointer(rebasing: bytes[member.keyRange])
                require((try? JSONParser.parse(keyToken)) == .string(member.key), "a key's range is not its token")
                let valueToken = UnsafeRawBufferPointer(rebasing: bytes[member.valueRange])
                require(
                    (try? JSONParser.parse(valueToken)) == object[member.key],
                    "the value range of \(member.key.debugDescription) does not parse to its value")
            }
        }
        checkRoundTrip(.object(object))
    }

    func checkRoundTrip(_ value: JSONValue) {
        let text = JSONWriter.string(value)
        require((try? JSONParser.parse(text)) == value, "written JSON \(text.debugDescription) does not parse back")
    }

    #if FUZZING
        @_cdecl("LLVMFuzzerTestOneInput")
        public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
            fuzz(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }

        @_cdecl("FuzzClientMessage_main")
        public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
            runFuzzer(argc, argv, fuzzEntry)
        }
    #else
        @main struct Replay {
            static func main() { CorpusReplay.run(target: "FuzzClientMessage", fuzz) }
        }
    #endif
#else
    import FuzzSupport

    @main struct Unavailable {
        static func main() { CorpusReplay.unavailable(target: "FuzzClientMessage") }
    }
#endif
