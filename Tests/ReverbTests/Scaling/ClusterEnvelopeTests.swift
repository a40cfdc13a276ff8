import NIOCore
import Testing

@testable import Reverb

@Suite("Cluster bus format (scaling.md §4)")
struct ClusterEnvelopeTests {
    @Test("broadcast carries the client frame as payload, socket_id only when excluding")
    func broadcast() {
        let frame = PusherFrames.channelEvent(name: "NewEvent", channel: "a", data: #"{"some":"data"}"#)
        let excluded = ClusterEnvelope.broadcast(
            node: "9f2c4e1a7b3d5f60", app: "123456", socketID: "1234.5678", frame: frame)
        #expect(
            String(buffer: excluded)
                == #"{"v":1,"type":"broadcast","node":"9f2c4e1a7b3d5f60","app":"123456","socket_id":"1234.5678","payload":{"event":"NewEvent","data":"{\"some\":\"data\"}","channel":"a"}}"#
        )
        let everyone = ClusterEnvelope.broadcast(node: "n", app: "1", socketID: nil, frame: frame)
        #expect(!String(buffer: everyone).contains("socket_id"))
    }

    @Test("payload with channels gives one frame per channel, channel appended last, values kept")
    func framesFromPayload() throws {
        let payload = try #require(
            try JSONParser.parse(#"{"event":"E","channels":["a","b"],"data":"{\"n\":1.0}"}"#).objectValue)
        let frames = ClusterEnvelope.frames(fromPayload: payload)
        #expect(frames.map(\.channel) == ["a", "b"])
        #expect(String(buffer: frames[0].frame.payload) == #"{"event":"E","data":"{\"n\":1.0}","channel":"a"}"#)
        let whisper = try #require(
            try JSONParser.parse(#"{"event":"client-x","channel":"c","data":{"n":1.0},"user_id":7}"#).objectValue)
        #expect(
            String(buffer: ClusterEnvelope.frames(fromPayload: whisper)[0].frame.payload)
                == #"{"event":"client-x","channel":"c","data":{"n":1.0},"user_id":7}"#)
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
