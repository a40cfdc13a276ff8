import Testing

@testable import Reverb

@Suite struct DotEnvParserTests {
    private func value(_ text: String, _ name: String, environment: [String: String] = [:]) throws -> String? {
        let entries = try DotEnvParser.parse(text, environment: environment)
        return entries.last(where: { $0.name == name })?.value
    }

    /// The example table of config.md §2, plus the rules listed above it.
    @Test(arguments: [
        ("REVERB_APP_KEY=abc123", "REVERB_APP_KEY", "abc123"),
        ("REVERB_HOST=\"localhost\"", "REVERB_HOST", "localhost"),
        ("REDIS_PASSWORD='p@ss#1 $x'", "REDIS_PASSWORD", "p@ss#1 $x"),
        ("REDIS_PASSWORD=p@ss#1", "REDIS_PASSWORD", "p@ss"),
        ("MSG=\"a\\nb\"", "MSG", "a\nb"),
        ("export REVERB_SERVER_PORT=8080 # local", "REVERB_SERVER_PORT", "8080"),
        ("A=b#c", "A", "b"),
        ("A = b ", "A", "b"),
        ("  A=b", "A", "b"),
        ("A=", "A", ""),
        ("A=\"\"", "A", ""),
        ("A=''", "A", ""),
        ("A=\"x # not a comment\"", "A", "x # not a comment"),
        ("A='x # not a comment'", "A", "x # not a comment"),
        ("A=\"quoted\" # comment", "A", "quoted"),
        ("A='single'   ", "A", "single"),
        ("A=# only a comment", "A", ""),
        ("\"A\"=quoted", "A", "quoted"),
        ("'A.B_1'=x", "A.B_1", "x"),
        ("A=\"\\\" \\\\ \\$ \\t \\r \\f \\v\"", "A", "\" \\ $ \t \r \u{0C} \u{0B}"),
        ("A='\\n stays'", "A", "\\n stays"),
        ("A=$NAME", "A", "$NAME"),
        ("A=${UNKNOWN}", "A", "${UNKNOWN}"),
        ("A=\"${UNKNOWN}-x\"", "A", "${UNKNOWN}-x"),
        ("A=\"\\${HOME}\"", "A", "${HOME}"),
        ("A=a=b=c", "A", "a=b=c"),
    ])
    func exampleLines(line: String, name: String, expected: String) throws {
        #expect(try value(line, name) == expected)
    }

    @Test func interpolatesEarlierLinesInUnquotedAndDoubleQuotedValues() throws {
        let text =
            "REVERB_HOST=\"ws.example.com\"\nVITE_REVERB_HOST=\"${REVERB_HOST}\"\nB=${REVERB_HOST}:8080\nC='${REVERB_HOST}'"
        let entries = try DotEnvParser.parse(text)
        #expect(entries.map(\.value) == ["ws.example.com", "ws.example.com", "ws.example.com:8080", "${REVERB_HOST}"])
    }

    @Test func interpolationSeesTheEnvironmentBeforeTheFile() throws {
        let text = "REVERB_HOST=file.example\nVITE_REVERB_HOST=\"${REVERB_HOST}\""
        #expect(try value(text, "VITE_REVERB_HOST", environment: ["REVERB_HOST": "env.example"]) == "env.example")
        // An empty environment value counts as unset, as everywhere in the configuration.
        #expect(try value(text, "VITE_REVERB_HOST", environment: ["REVERB_HOST": ""]) == "file.example")
    }

    @Test func laterLinesWinAndALineWithoutEqualsUnsets() throws {
        let entries = try DotEnvParser.parse("A=1\nA=2\nB=3\nB")
        #expect(
            entries == [
                .init(name: "A", value: "1", line: 1), .init(name: "A", value: "2", line: 2),
                .init(name: "B", value: "3", line: 3), .init(name: "B", value: nil, line: 4),
            ])
    }

    @Test(arguments: ["\n", "\r\n", "\r"])
    func lineEndings(separator: String) throws {
        let text = ["# comment", "A=1", "", "B=\"two\"", "C='3'"].joined(separator: separator) + separator
        let entries = try DotEnvParser.parse(text)
        #expect(entries.map(\.name) == ["A", "B", "C"])
        #expect(entries.map(\.value) == ["1", "two", "3"])
        #expect(entries.map(\.line) == [2, 4, 5])
    }

    @Test func multiLineDoubleQuotedValue() throws {
        let text = "A=1\r\nKEY=\"-----BEGIN-----\r\nabc\r\n-----END-----\"\r\nB=2"
        let entries = try DotEnvParser.parse(text)
        #expect(entries.map(\.name) == ["A", "KEY", "B"])
        #expect(entries[1].value == "-----BEGIN-----\nabc\n-----END-----")
        #expect(entries[1].line == 2)
        #expect(entries[2].line == 5)
    }

    @Test func commentsInsideAMultiLineValueAreKept() throws {
        #expect(try value("A=\"one\n# two\nthree\"", "A") == "one\n# two\nthree")
    }

    @Test(arguments: [
        ("A=1\nB=2\nREVERB_APP_ID=1 2", 3, "unexpected whitespace in value"),
        ("A=\"unterminated", 1, "missing closing quote in value"),
        ("A=1\nB='no end", 2, "missing closing quote in value"),
        ("A=\"bad \\q escape\"", 1, "unexpected escape sequence \"\\q\" in value"),
        ("A=\"x\"y", 1, "unexpected text after the closing quote"),
        ("A='x' y", 1, "unexpected text after the closing quote"),
        ("\n=value", 2, "missing name before \"=\""),
        ("BAD-NAME=1", 1, "invalid name \"BAD-NAME\""),
        ("A B=1", 1, "invalid name \"A B\""),
    ])
    func syntaxErrorsNameTheLine(text: String, line: Int, reason: String) {
        #expect(throws: DotEnvSyntaxError(line: line, reason: reason)) {
            try DotEnvParser.parse(text)
        }
    }

    @Test func errorMessageFormat() {
        #expect(
            DotEnvSyntaxError(line: 7, reason: "unexpected whitespace in value").message(fileName: ".env")
                == ".env:7: unexpected whitespace in value.")
    }
}
