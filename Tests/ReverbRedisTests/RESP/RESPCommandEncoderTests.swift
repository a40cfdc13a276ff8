import CHiredis
import NIOCore
import ReverbRedis
import Testing

@Suite("RESPCommandEncoder")
struct RESPCommandEncoderTests {
    static let cases: [(String, [[UInt8]])] = [
        ("simple", [Array("PUBLISH".utf8), Array("reverb".utf8), Array("hello".utf8)]),
        ("empty argument", [Array("SET".utf8), Array("key".utf8), []]),
        ("binary", [Array("PUBLISH".utf8), [0, 1, 2, 0xFF, 0xFE, 0x80], Array(repeating: 0, count: 40)]),
        ("CRLF inside", [Array("PUBLISH".utf8), Array("a\r\nb".utf8), Array("\r\n\r\n$3\r\n*1\r\n".utf8)]),
        ("single", [Array("PING".utf8)]),
    ]

    @Test("matches hiredis' redisFormatCommandArgv", arguments: cases)
    func matchesHiredis(_ name: String, _ arguments: [[UInt8]]) {
        var buffer = ByteBuffer()
        RESPCommandEncoder.encode(arguments.map { ByteBuffer(bytes: $0) }, into: &buffer)
        #expect(Array(buffer.readableBytesView) == hiredisFormat(arguments), "\(name)")
    }

    @Test func stringArgumentsEncodeAsUTF8() {
        var buffer = ByteBuffer()
        RESPCommandEncoder.encode(["SET", "clé", ""], into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$4\r\nclé\r\n$0\r\n\r\n")
        #expect(Array(buffer.readableBytesView) == hiredisFormat([Array("SET".utf8), Array("clé".utf8), []]))
    }

    @Test func publishEncodingEqualsGenericEncoding() {
        let payload = ByteBuffer(bytes: Array("{\"event\":\"x\"}\r\n".utf8) + [0, 255])
        var direct = ByteBuffer()
        RESPCommandEncoder.encodePublish(channel: "reverb", payload: payload, into: &direct)
        var generic = ByteBuffer()
        RESPCommandEncoder.encode(
            [ByteBuffer(string: "PUBLISH"), ByteBuffer(string: "reverb"), payload], into: &generic)
        #expect(direct == generic)
    }

    /// The command as hiredis formats it.
    private func hiredisFormat(_ arguments: [[UInt8]]) -> [UInt8] {
        let copies: [UnsafeMutableRawPointer] = arguments.map { bytes in
            let copy = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            bytes.withUnsafeBytes { source in
                if let base = source.baseAddress { copy.copyMemory(from: base, byteCount: bytes.count) }
            }
            return copy
        }
        defer { for copy in copies { copy.deallocate() } }
        var argv: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) }
        var lengths: [Int] = arguments.map(\.count)
        var target: UnsafeMutablePointer<CChar>?
        let length = redisFormatCommandArgv(&target, Int32(arguments.count), &argv, &lengths)
        defer { redisFreeCommand(target) }
        guard let target, length > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: target, count: Int(length)))
    }
}
