// Compiled only where `@testable` works: debug builds (corpus replay) and `make fuzz` (`-enable-testing
// -DFUZZING`). A release build (`make run`) gets a stub that says so.
#if DEBUG || FUZZING
    import FuzzSupport
    import NIOCore

    @testable import ReverbRedis

    /// Replies from Redis through `HiredisReader` (`Sources/ReverbRedis/RESP/`). The input is a list
    /// of chunk sizes (up to 8 bytes, a 0 ends it), then the byte stream. The stream is fed once whole
    /// and once cut into those chunks, pulling replies after every feed as the connection does.
    ///
    /// Invariants: nothing traps; both ways give the same replies and then the same error or none; a
    /// failed reader keeps failing with the same error; every reply survives `RedisStreamEntry`'s parse
    /// (an XREAD entry) without trapping.
    func fuzz(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let sizes = input.chunkSizes()
        let stream = input.rest()
        let whole = read([stream[...]])
        var chunks: [ArraySlice<UInt8>] = []
        var offset = 0
        var index = 0
        while offset < stream.count {
            let end =
                sizes.isEmpty ? min(stream.count, offset + 1) : min(stream.count, offset + sizes[index % sizes.count])
            chunks.append(stream[offset..<end])
            offset = end
            index += 1
        }
        let chunked = read(chunks)
        require(
            whole.replies == chunked.replies,
            "\(whole.replies.count) replies fed whole, \(chunked.replies.count) fed in \(chunks.count) chunks")
        require(
            whole.error == chunked.error,
            "fed whole: \(String(describing: whole.error)); in chunks: \(String(describing: chunked.error))")
        for reply in whole.replies { parseStreamEntries(reply, depth: 0) }
    }

    func read(_ chunks: [ArraySlice<UInt8>]) -> (replies: [RESPValue], error: RESPError?) {
        let reader = HiredisReader()
        var replies: [RESPValue] = []
        do {
            for chunk in chunks {
                try reader.feed(ByteBuffer(bytes: chunk))
                while let reply = try reader.nextReply() { replies.append(reply) }
            }
            return (replies, nil)
        } catch {
            // Failed for good: the same error from every later call.
            do {
                _ = try reader.nextReply()
                require(false, "a failed reader returned a reply")
            } catch let again {
                require(again == error, "a failed reader changed its error: \(error) then \(again)")
            }
            do {
                try reader.feed(ByteBuffer(string: "+OK\r\n"))
                require(false, "a failed reader accepted bytes")
            } catch let again {
                require(again == error, "a failed reader changed its error on feed: \(error) then \(again)")
            }
            require(!error.message.isEmpty, "an empty protocol error message")
            return (replies, error)
        }
    }

    /// XREAD's shape is `[[stream, [[id, [field, value, …]], …]], …]`: every array inside may be tried.
    func parseStreamEntries(_ value: RESPValue, depth: Int) {
        guard depth < 4, case .array(let elements?) = value else { return }
        if let entry = RedisStreamEntry(value) {
            require(RedisStreamID(entry.id.description) == entry.id, "stream id \(entry.id) does not read back")
        }
        for element in elements { parseStreamEntries(element, depth: depth + 1) }
    }

    #if FUZZING
        @_cdecl("LLVMFuzzerTestOneInput")
        public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
            fuzz(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }

        @_cdecl("FuzzRESP_main")
        public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
            runFuzzer(argc, argv, fuzzEntry)
        }
    #else
        @main struct Replay {
            static func main() { CorpusReplay.run(target: "FuzzRESP", fuzz) }
        }
    #endif
#else
    import FuzzSupport

    @main struct Unavailable {
        static func main() { CorpusReplay.unavailable(target: "FuzzRESP") }
    }
#endif
