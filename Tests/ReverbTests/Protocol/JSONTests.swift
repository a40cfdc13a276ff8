import NIOCore
import Testing

@testable import Reverb

@Suite("JSON parser and writer")
struct JSONTests {
    @Test("round trip keeps key order, number text and empty objects")
    func roundTrip() throws {
        let text = #"{"b":1.0,"a":{},"c":[],"d":"x/é","e":12345678901234567890,"f":null,"g":true}"#
        let value = try JSONParser.parse(text)
        #expect(JSONWriter.string(value) == text)
        #expect(value["b"] == .number("1.0"))
    }

    @Test(
        "invalid documents are refused",
        arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "tru", "{} x", "\"\u{01}\"", "\"\\ud800\""])
    func invalid(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test("errors carry line and column")
    func position() {
        do {
            _ = try JSONParser.parse("{\n  \"a\": 1\n  \"b\": 2\n}")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 3)
            #expect(error.column == 3)
            #expect(error.reason == "expected \",\" or \"}\"")
        }
    }

    @Test("nesting is limited")
    func depth() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
    }

    @Test("escapes are decoded and re-encoded")
    func escapes() throws {
        let value = try JSONParser.parse(#""a\"b\\c\n\u00e9\ud83d\ude00\/""#)
        #expect(value == .string("a\"b\\c\né😀/"))
        #expect(JSONWriter.string(value) == #""a\"b\\c\né😀/""#)
        #expect(JSONWriter.string(.string("\u{01}")) == #""\u0001""#)
    }
}
