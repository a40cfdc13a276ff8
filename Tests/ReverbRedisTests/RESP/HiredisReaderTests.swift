import NIOCore
import ReverbRedis
import Testing

@Suite("HiredisReader")
struct HiredisReaderTests {
    private func replies(_ chunks: [String]) throws -> [RESPValue] {
        let reader = HiredisReader()
        var values: [RESPValue] = []
        for chunk in chunks {
            try reader.feed(ByteBuffer(string: chunk))
            while let value = try reader.nextReply() { values.append(value) }
        }
        return values
    }

    @Test func scalarReplies() throws {
        let values = try replies([
            "+OK\r\n-WRONGPASS invalid username-password pair\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n"
        ])
        #expect(
            values == [
                .simpleString("OK"),
                .error("WRONGPASS invalid username-password pair"),
                .integer(42),
                .integer(-7),
                .bulkString(ByteBuffer(string: "hello")),
                .bulkString(ByteBuffer()),
                .bulkString(nil),
            ]
        )
    }

    @Test func replySplitAcrossFeeds() throws {
        let whole = "*3\r\n$7\r\nmessage\r\n$6\r\nreverb\r\n$12\r\nhello\r\nworld\r\n"
        let expected: [RESPValue] = [
            .array([
                .bulkString(ByteBuffer(string: "message")),
                .bulkString(ByteBuffer(string: "reverb")),
                .bulkString(ByteBuffer(string: "hello\r\nworld")),
            ])
        ]
        for cut in 1..<whole.utf8.count {
            let bytes = Array(whole.utf8)
            let first = String(decoding: bytes[..<cut], as: UTF8.self)
            let second = String(decoding: bytes[cut...], as: UTF8.self)
            #expect(try replies([first, second]) == expected, "cut at \(cut)")
        }
        let byteByByte = whole.map { String($0) }
        #expect(try replies(byteByByte) == expected)
    }

    @Test func nestedArraysAndNils() throws {
        let values = try replies(["*3\r\n*2\r\n:1\r\n*1\r\n+x\r\n*0\r\n*-1\r\n"])
        #expect(
            values == [.array([.array([.integer(1), .array([.simpleString("x")])]), .array([]), .bulkString(nil)])])
    }

    @Test func binaryBulkStringsAreCopiedExactly() throws {
        let payload: [UInt8] = [0, 13, 10, 255, 128, 36]
        let reader = HiredisReader()
        var input = ByteBuffer(string: "$6\r\n")
        input.writeBytes(payload)
        input.writeString("\r\n")
        try reader.feed(input)
        let value = try reader.nextReply()
        #expect(value == .bulkString(ByteBuffer(bytes: payload)))
        #expect(try reader.nextReply() == nil)
    }

    @Test func incompleteReplyYieldsNothingYet() throws {
        let reader = HiredisReader()
        try reader.feed(ByteBuffer(string: "$10\r\nabc"))
        #expect(try reader.nextReply() == nil)
        try reader.feed(ByteBuffer(string: "defghij\r\n"))
        #expect(try reader.nextReply() == .bulkString(ByteBuffer(string: "abcdefghij")))
    }

    @Test func corruptStreamThrowsAndReaderStaysFailed() throws {
        let reader = HiredisReader()
        try reader.feed(ByteBuffer(string: "+OK\r\n!bogus\r\n"))
        #expect(try reader.nextReply() == .simpleString("OK"))
        let error = #expect(throws: RESPError.self) { try reader.nextReply() }
        #expect(error?.message.contains("Protocol error") == true)
        #expect(throws: RESPError.self) { try reader.feed(ByteBuffer(string: "+OK\r\n")) }
        #expect(throws: RESPError.self) { try reader.nextReply() }
    }

    /// Found by FuzzRESP (`Fuzz/FuzzRESP/regressions/huge-array-header`): hiredis 0.14 allocated the
    /// element table of `*1111111111` (8.9 GB) on reading the header.
    @Test func arrayHeaderOverTheLimitFailsTheReaderWithoutAllocating() throws {
        let reader = HiredisReader()
        try reader.feed(ByteBuffer(string: "+OK\r\n*1111111111\r\n"))
        #expect(try reader.nextReply() == .simpleString("OK"))
        let error = #expect(throws: RESPError.self) { try reader.nextReply() }
        #expect(error?.message == "array of 1111111111 elements exceeds the limit of 1048576")
        #expect(throws: RESPError.self) { try reader.nextReply() }
    }

    @Test func nestedArrayAtTheLimitIsAccepted() throws {
        let reader = HiredisReader()
        let limit = HiredisReader.maximumArrayElements
        var input = ByteBuffer(string: "*2\r\n*\(limit)\r\n")
        for _ in 0..<limit { input.writeString(":7\r\n") }
        input.writeString("+end\r\n")
        try reader.feed(input)
        guard case .array(let outer?) = try reader.nextReply() else {
            Issue.record("no array")
            return
        }
        #expect(outer.count == 2)
        guard case .array(let inner?) = outer[0] else {
            Issue.record("no inner array")
            return
        }
        #expect(inner.count == limit)
        #expect(inner.allSatisfy { $0 == .integer(7) })
        #expect(outer[1] == .simpleString("end"))
        // One over, nested: refused in the child task too (the guard reaches every level).
        let second = HiredisReader()
        try second.feed(ByteBuffer(string: "*1\r\n*\(limit + 1)\r\n"))
        let error = #expect(throws: RESPError.self) { try second.nextReply() }
        #expect(error?.message == "array of \(limit + 1) elements exceeds the limit of \(limit)")
    }
}
