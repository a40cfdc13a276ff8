import NIOCore
import NIOHTTP1
import Testing

@testable import Reverb

/// Deterministic random input through every parser a client reaches: nothing may trap.
@Suite("Random input never traps the parsers")
struct RandomInputTests {
    /// SplitMix64: reproducible across runs and platforms.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Bytes biased toward JSON punctuation so the parser gets past its first character.
    static func randomBytes(_ generator: inout SeededGenerator) -> [UInt8] {
        let alphabet: [UInt8] = Array(#"{}[]":,\-0123456789.eE+truefalsnul event data channel pusher: client- "#.utf8)
        let count = Int.random(in: 0...64, using: &generator)
        return (0..<count).map { _ in
            Bool.random(using: &generator)
                ? alphabet.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
        }
    }

    @Test("client messages and JSON")
    func clientMessages() {
        var generator = SeededGenerator(state: 42)
        var parsed = 0
        for _ in 0..<50_000 {
            let bytes = Self.randomBytes(&generator)
            if case .success = ClientMessage.parse(bytes) { parsed += 1 }
            if let value = try? JSONParser.parse(bytes) {
                // Whatever parses must write back to JSON that parses to the same value.
                #expect((try? JSONParser.parse(JSONWriter.string(value))) == value)
            }
        }
        #expect(parsed < 50_000)
    }

    @Test("raw object members accept exactly what the parser accepts, with each value's exact bytes")
    func rawMembers() throws {
        var generator = SeededGenerator(state: 99)
        var objects = 0
        for round in 0..<50_000 {
            var bytes = Self.randomBytes(&generator)
            switch round % 3 {
            case 0: bytes = Array(#"{"a":"#.utf8) + bytes + Array("}".utf8)
            case 1:
                // Valid objects with escapes, nesting and numbers, then one byte changed at random.
                let values = [
                    #""x\u00e9\/\"""#, "1.5e3", #"[1,{"b":null}]"#, #""\ud83d\ude00""#, "true", "-0", #""é""#,
                    #"{}"#,
                ]
                let count = Int.random(in: 0...4, using: &generator)
                let body = (0..<count).map { #""k\#($0)":"# + values.randomElement(using: &generator)! }
                bytes = Array(("{" + body.joined(separator: ",") + "}").utf8)
                if Bool.random(using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(
                        in: 0...255, using: &generator)
                }
            default: break
            }
            let parsed = try? JSONParser.parse(bytes)
            let members = try? bytes.withUnsafeBytes { raw throws(JSONParseError) in try JSONParser.members(raw) }
            guard case .object(let object)? = parsed else {
                #expect(members == nil, "members of non-object \(bytes)")
                continue
            }
            objects += 1
            let found = try #require(members, "object refused: \(bytes)")
            // Duplicate keys collapse in `JSONObject`; compare member by member only without them.
            guard Set(found.map(\.key)).count == found.count else { continue }
            #expect(found.count == object.entries.count)
            for (member, entry) in zip(found, object.entries) {
                #expect(member.key == entry.key)
                #expect((try? JSONParser.parse(bytes[member.valueRange])) == entry.value)
                #expect((try? JSONParser.parse(bytes[member.keyRange])) == .string(entry.key))
            }
        }
        #expect(objects > 5_000)
    }

    @Test("routes, query strings and signatures")
    func httpInputs() {
        var generator = SeededGenerator(state: 7)
        let app = Application(id: "1", key: "k", secret: "s")
        for _ in 0..<20_000 {
            let text = String(decoding: Self.randomBytes(&generator), as: UTF8.self)
            _ = Route.match(path: ("/" + text)[...], prefixSegments: [])
            _ = Route.match(path: ("/apps/1/channels/" + text)[...], prefixSegments: ["ws"])
            let request = HTTPAPIRequest(
                head: HTTPRequestHead(version: .http1_1, method: .POST, uri: "/apps/1/events?" + text),
                body: ByteBuffer(string: text))
            if case .success = RequestSignature.verify(request, application: app, prefix: "", now: 0) {
                Issue.record("random input passed the signature check: \(text)")
            }
            _ = PresenceMember(channelData: text)
            _ = OriginPolicy.allows(origin: text, patterns: ["*.example.com", text])
        }
    }
}
