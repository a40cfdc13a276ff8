// Compiled only where `@testable` works: debug builds (corpus replay) and `make fuzz` (`-enable-testing
// -DFUZZING`). A release build (`make run`) gets a stub that says so.
#if DEBUG || FUZZING
    import FuzzSupport
    import Logging
    import NIOCore
    import NIOPosix
    import ReverbRedis

    @testable import Reverb

    /// Bus messages from other nodes (`scaling.md` §4): the input is a header byte, then messages
    /// separated by NUL bytes (which valid JSON never holds), handed one after another to
    /// `ClusterNode.receive` on a node that is never run (its publisher only queues), as the tests'
    /// harness does. Each message also goes through `ClusterEnvelope.frames(in:payload:)` directly.
    ///
    /// Invariants: nothing traps; every frame made from a `broadcast` payload is a JSON object whose
    /// `channel` is its channel and whose other members are the payload's, `channels` left out; frames
    /// are made exactly when the payload is an object with a `channels` list of strings or a `channel`
    /// string; and once every node that sent something has said `node_leave`, no presence member or
    /// subscriber count of any channel named in the messages is left.
    func fuzz(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let header = input.byte()
        let ages: [UInt64] = [0, 0, 2_000, 16_000]
        let age = ages[Int(header & 0x03)]
        let messages = input.rest().split(separator: 0, omittingEmptySubsequences: true)
        let harness = Harness()
        var senders: Set<String> = []
        var channels: Set<String> = []
        for message in messages.prefix(64) {
            let buffer = ByteBuffer(bytes: message)
            checkFrames(buffer)
            note(buffer, senders: &senders, channels: &channels)
            harness.node.receive(buffer, age: age)
        }
        for sender in senders {
            harness.node.receive(ByteBuffer(string: JSONWriter.string(leave(sender))))
        }
        harness.app.directory.withState { directory in
            for channel in channels {
                require(directory.users(channel).isEmpty, "presence members of \(channel) outlive their nodes")
                require(directory.subscriptionCount(channel) == 0, "subscribers of \(channel) outlive their nodes")
            }
        }
    }

    struct Harness {
        let node: ClusterNode
        let app: AppContext

        init() {
            var logger = Logger(label: "fuzz")
            logger.logLevel = .critical
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            let fanout = Fanout(eventLoops: [loop], logger: logger)
            let apps = AppRegistry([Application(id: "1", key: "k", secret: "s")], fanout: fanout)
            var scaling = ScalingConfiguration()
            scaling.enabled = true
            do {
                node = ClusterNode(
                    apps: apps, fanout: fanout,
                    factory: try RedisClientFactory(settings: RedisSettings(url: "redis://127.0.0.1:1")),
                    scaling: scaling, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
            } catch {
                fatalError("harness: \(error)")
            }
            app = apps.all[0]
        }
    }

    func leave(_ sender: String) -> JSONValue {
        .object(JSONObject([("v", .number("1")), ("type", .string("node_leave")), ("node", .string(sender))]))
    }

    /// The senders and channel names a message mentions, for the check after every node has left.
    func note(_ message: ByteBuffer, senders: inout Set<String>, channels: inout Set<String>) {
        guard case .object(let envelope)? = try? JSONParser.parse(message.readableBytesView) else { return }
        if let sender = envelope["node"]?.stringValue { senders.insert(sender) }
        if let channel = envelope["channel"]?.stringValue { channels.insert(channel) }
        for key in ["channels", "presence", "occupancy"] {
            for (name, value) in envelope[key]?.objectValue?.entries ?? [] {
                channels.insert(name)
                for (inner, _) in value.objectValue?.entries ?? [] { channels.insert(inner) }
            }
        }
    }

    /// `frames(in:payload:)` on the message's `payload` member, or on the whole message when it has none.
    func checkFrames(_ message: ByteBuffer) {
        let members = try? message.withUnsafeReadableBytes { bytes throws(JSONParseError) in
            try JSONParser.members(bytes)
        }
        let range = members?.last(where: { $0.key == "payload" })?.valueRange ?? 0..<message.readableBytes
        let payloadBytes = message.getSlice(at: message.readerIndex + range.lowerBound, length: range.count)!
        let payload = parse(payloadBytes, 0..<payloadBytes.readableBytes)
        let frames = ClusterEnvelope.frames(in: message, payload: range)

        var expectedChannels: [String]?
        if case .object(let object)? = payload {
            let rawMembers = try? payloadBytes.withUnsafeReadableBytes { bytes throws(JSONParseError) in
                try JSONParser.members(bytes)
            }
            // The first `channels` (or else `channel`) member as it stands, repeats included.
            if let list = rawMembers?.first(where: { $0.key == "channels" }) {
                if case .array(let names)? = parse(payloadBytes, list.valueRange),
                    names.allSatisfy({ $0.stringValue != nil })
                {
                    expectedChannels = names.compactMap(\.stringValue)
                }
            } else if let single = rawMembers?.first(where: { $0.key == "channel" }) {
                if case .string(let name)? = parse(payloadBytes, single.valueRange) { expectedChannels = [name] }
            }
            guard let frames else {
                return require(expectedChannels == nil, "no frames for a payload naming channels \(expectedChannels!)")
            }
            require(
                frames.map(\.channel) == expectedChannels,
                "frames for \(frames.map(\.channel)), payload names \(String(describing: expectedChannels))")
            for (channel, frame) in frames {
                let text = String(buffer: frame.payload)
                guard case .object(let written)? = try? JSONParser.parse(frame.payload.readableBytesView) else {
                    return require(false, "a frame that is not a JSON object: \(text.debugDescription)")
                }
                require(
                    written["channel"] == .string(channel),
                    "a frame for \(channel) says channel \(String(describing: written["channel"]))")
                var expected = object
                expected["channels"] = nil
                expected["channel"] = .string(channel)
                require(written == expected, "frame \(text.debugDescription) is not the payload for \(channel)")
                checkFrameHeader(frame)
            }
        } else {
            require(frames == nil, "frames from a payload that is not a JSON object")
        }
    }

    /// The JSON value at `range` of `buffer`'s readable bytes.
    func parse(_ buffer: ByteBuffer, _ range: Range<Int>) -> JSONValue? {
        let slice = buffer.getSlice(at: buffer.readerIndex + range.lowerBound, length: range.count)!
        return try? JSONParser.parse(slice.readableBytesView)
    }

    /// An unmasked final text frame whose length field is the payload's.
    func checkFrameHeader(_ frame: OutboundFrame) {
        let bytes = Array(frame.bytes.readableBytesView)
        let length = frame.payload.readableBytes
        require(bytes.count >= 2 && bytes[0] == 0x81, "a frame header \(bytes.prefix(2))")
        let headerSize = length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)
        require(bytes.count == headerSize + length, "a \(length)-byte payload in a \(bytes.count)-byte frame")
    }

    #if FUZZING
        @_cdecl("LLVMFuzzerTestOneInput")
        public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
            fuzz(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }

        @_cdecl("FuzzClusterEnvelope_main")
        public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
            runFuzzer(argc, argv, fuzzEntry)
        }
    #else
        @main struct Replay {
            static func main() { CorpusReplay.run(target: "FuzzClusterEnvelope", fuzz) }
        }
    #endif
#else
    import FuzzSupport

    @main struct Unavailable {
        static func main() { CorpusReplay.unavailable(target: "FuzzClusterEnvelope") }
    }
#endif
