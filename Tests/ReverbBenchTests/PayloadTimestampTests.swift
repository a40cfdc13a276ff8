import NIOCore
import Testing

@testable import ReverbBench

@Suite("Payload timestamp")
struct PayloadTimestampTests {
    @Test("the data string is padded to the requested size and decodes back", arguments: [35, 36, 200, 4096])
    func roundTrip(size: Int) throws {
        let data = PayloadTimestamp.string(timestamp: 123_456_789_012_345, sequence: 42, size: size)
        #expect(data.utf8.count == size)
        #expect(data.hasPrefix("ts:00000123456789012345:0000000042:"))
        let decoded = try #require(PayloadTimestamp.decode(ByteBuffer(string: data)))
        #expect(decoded.timestamp == 123_456_789_012_345)
        #expect(decoded.sequence == 42)
    }

    @Test("the largest timestamp survives")
    func largest() throws {
        let data = PayloadTimestamp.string(timestamp: .max, sequence: 9_999_999_999, size: 35)
        let decoded = try #require(PayloadTimestamp.decode(ByteBuffer(string: data)))
        #expect(decoded.timestamp == .max)
        #expect(decoded.sequence == 9_999_999_999)
    }

    @Test("found inside the Pusher frame the server sends and inside a Redis message push")
    func insideFrames() throws {
        let data = PayloadTimestamp.string(timestamp: 987_654_321, sequence: 7, size: 64)
        let frame = #"{"event":"bench","data":"\#(data)","channel":"bench-fanout"}"#
        #expect(try #require(PayloadTimestamp.decode(ByteBuffer(string: frame))).timestamp == 987_654_321)
        let push = "*3\r\n$7\r\nmessage\r\n$12\r\nbench-fanout\r\n$64\r\n\(data)\r\n"
        #expect(try #require(PayloadTimestamp.decode(ByteBuffer(string: push))).sequence == 7)
    }

    @Test(
        "frames without a complete header decode to nil",
        arguments: [
            #"{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"bench-fanout"}"#,
            "ts:0000000000000000123:0000000001:",  // 19 timestamp digits
            "ts:000000000000000001x3:0000000001:",
            "ts:",
            "",
        ])
    func incomplete(text: String) {
        #expect(PayloadTimestamp.decode(ByteBuffer(string: text)) == nil)
    }

    @Test("RESP replies are framed only when complete")
    func respFraming() {
        let complete = "*3\r\n$9\r\nsubscribe\r\n$5\r\nbench\r\n:1\r\n"
        for cut in 0..<complete.utf8.count {
            let prefix = Array(complete.utf8.prefix(cut))
            #expect(prefix.withUnsafeBytes { RESP.valueEnd($0, from: 0) } == nil)
        }
        #expect(Array(complete.utf8).withUnsafeBytes { RESP.valueEnd($0, from: 0) } == complete.utf8.count)
        #expect(Array(":12\r\n".utf8).withUnsafeBytes { PublisherHandler.respReply($0)?.receivers } == 12)
    }

    @Test("HTTP responses are framed by Content-Length")
    func httpFraming() {
        let response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        let parsed = Array(response.utf8).withUnsafeBytes { PublisherHandler.httpResponse($0) }
        #expect(parsed?.length == response.utf8.count)
        #expect(parsed?.ok == true)
        #expect(Array(response.utf8.dropLast()).withUnsafeBytes { PublisherHandler.httpResponse($0) } == nil)
        let refused = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
        #expect(Array(refused.utf8).withUnsafeBytes { PublisherHandler.httpResponse($0) }?.ok == false)
    }
}
