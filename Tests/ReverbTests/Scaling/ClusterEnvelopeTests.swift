import NIOCore
import Testing

@testable import Reverb

@Suite("Cluster bus format (scaling.md §4)")
struct ClusterEnvelopeTests {
    /// The frames a receiving node builds from a whole bus message.
    static func received(_ message: ByteBuffer) throws -> [(channel: String, frame: OutboundFrame)] {
        let members = try message.withUnsafeReadableBytes { bytes throws(JSONParseError) in
            try JSONParser.members(bytes)
        }
        let payload = try #require(members.first { $0.key == "payload" })
        return try #require(ClusterEnvelope.frames(in: message, payload: payload.valueRange))
    }

    static func received(payload: String) throws -> [(channel: String, frame: OutboundFrame)] {
        try received(ByteBuffer(string: #"{"v":1,"type":"broadcast","node":"n","app":"1","payload":"# + payload + "}"))
    }

    @Test("one broadcast per HTTP event: channels array, data escaped once, socket_id only when excluding")
    func broadcast() {
        let event = BroadcastEvent.http(
            name: "NewEvent", data: #"{"some":"data"}"#, channels: ["a", "b", "a"], except: "1234.5678")
        #expect(event.targets.map(\.channel) == ["a", "b"])
        let excluded = ClusterEnvelope.broadcast(node: "9f2c4e1a7b3d5f60", app: "123456", event: event)
        #expect(
            String(buffer: excluded)
                == #"{"v":1,"type":"broadcast","node":"9f2c4e1a7b3d5f60","app":"123456","socket_id":"1234.5678","payload":{"event":"NewEvent","channels":["a","b"],"data":"{\"some\":\"data\"}"}}"#
        )
        var everyoneEvent = event
        everyoneEvent.exceptSocketID = nil
        let everyone = ClusterEnvelope.broadcast(node: "n", app: "1", event: everyoneEvent)
        #expect(!String(buffer: everyone).contains("socket_id"))
    }

    @Test("a frame published on one node arrives byte-identical on another, for every event kind")
    func roundTrip() throws {
        let events: [BroadcastEvent] = [
            .http(name: "E", data: #"{"n":1.0,"s":"é\/\u0041"}"#, channels: ["a", "cache-b"], except: nil),
            .http(name: "E", data: "x", channels: ["a"], except: nil, batchOrder: true),
            .client(
                frame: PusherFrames.clientEvent(
                    name: "client-x", channel: "private-c", data: .number("1.0"), userID: .string("7")),
                channel: "private-c", except: "1.2"),
        ]
        for event in events {
            let message = ClusterEnvelope.broadcast(node: "n", app: "1", event: event)
            let frames = try Self.received(message)
            #expect(frames.map(\.channel) == event.targets.map(\.channel))
            for (frame, target) in zip(frames, event.targets) {
                #expect(frame.frame.bytes == target.frame.bytes)
            }
        }
    }

    @Test("escaping is copied as it stands, never decoded and encoded again")
    func escapingKept() throws {
        let frames = try Self.received(payload: #"{"event":"E","channels":["a"],"data":"\u00e9\/x"}"#)
        #expect(String(buffer: frames[0].frame.payload) == #"{"event":"E","data":"\u00e9\/x","channel":"a"}"#)
    }

    @Test("an older node's per-channel broadcast (channel, not channels) still yields its frame")
    func olderNodeFormat() throws {
        let frames = try Self.received(payload: #"{"event":"E","data":"{\"n\":1.0}","channel":"a"}"#)
        #expect(frames.map(\.channel) == ["a"])
        #expect(String(buffer: frames[0].frame.payload) == #"{"event":"E","data":"{\"n\":1.0}","channel":"a"}"#)
        let whisper = try Self.received(payload: #"{"event":"client-x","channel":"c","data":{"n":1.0},"user_id":7}"#)
        #expect(
            String(buffer: whisper[0].frame.payload)
                == #"{"event":"client-x","channel":"c","data":{"n":1.0},"user_id":7}"#)
    }

    @Test("a payload that is not an object with channel names yields nothing")
    func malformedPayload() throws {
        for payload in [#"[]"#, #"{"event":"E"}"#, #"{"channels":[1]}"#, #"{"channel":2}"#, #"{"channels":"a"}"#] {
            let message = ByteBuffer(string: #"{"payload":"# + payload + "}")
            let members = try message.withUnsafeReadableBytes { bytes throws(JSONParseError) in
                try JSONParser.members(bytes)
            }
            #expect(ClusterEnvelope.frames(in: message, payload: members[0].valueRange) == nil, "\(payload)")
        }
    }

    @Test("query and reply round trip")
    func query() throws {
        let query = ClusterEnvelope.query(
            node: "a", app: "1", id: "q1", request: .channels(prefix: "presence-", names: nil, users: true))
        #expect(
            String(buffer: query)
                == #"{"v":1,"type":"query","node":"a","app":"1","id":"q1","kind":"channels","prefix":"presence-","names":null,"users":true}"#
        )
        let parsed = try #require(try JSONParser.parse(query.readableBytesView).objectValue)
        #expect(ClusterQueryRequest(parsed) == .channels(prefix: "presence-", names: nil, users: true))
        #expect(
            ClusterQueryRequest(JSONObject([("kind", .string("connections"))])) == .connections)
        #expect(ClusterQueryRequest(JSONObject([("kind", .string("metrics"))])) == nil)
    }

    @Test("merged view: counts summed, users united by identity, requester first")
    func merge() throws {
        var view = ClusterChannelView()
        view.merge(
            try #require(
                try JSONParser.parse(#"{"channels":{"presence-r":1,"x":2},"users":{"presence-r":[1]}}"#).objectValue))
        view.merge(
            try #require(
                try JSONParser.parse(#"{"channels":{"presence-r":2,"y":1},"users":{"presence-r":["1","abc"]}}"#)
                    .objectValue))
        view.merge(try #require(try JSONParser.parse(#"{"connections":4}"#).objectValue))
        view.merge(try #require(try JSONParser.parse(#"{"connections":3}"#).objectValue))
        #expect(view.order == ["presence-r", "x", "y"])
        #expect(view.entries["presence-r"]?.subscriptionCount == 3)
        #expect(view.entries["presence-r"]?.users == [.number("1"), .string("abc")])
        #expect(view.entries["x"]?.subscriptionCount == 2)
        #expect(view.connections == 7)
    }

    @Test("node ids are 16 lowercase hex digits")
    func nodeID() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let id = ClusterNode.randomHex(using: &generator)
            #expect(id.count == 16)
            #expect(id.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        }
    }
}
