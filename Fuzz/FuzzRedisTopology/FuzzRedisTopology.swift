// Compiled only where `@testable` works: debug builds (corpus replay) and `make fuzz` (`-enable-testing
// -DFUZZING`). A release build (`make run`) gets a stub that says so.
#if DEBUG || FUZZING
    import FuzzSupport
    import NIOCore

    @testable import ReverbRedis

    /// What Redis Cluster nodes and sentinels answer, through the readers of `Sources/ReverbRedis/Topology/`.
    /// The first byte picks the reader, the rest is its input:
    /// - 0: RESP bytes through `HiredisReader`; every reply read as a `CLUSTER SHARDS` reply (plain and
    ///   TLS ports), a `CLUSTER SLOTS` reply, a `SENTINEL get-master-addr-by-name` reply and a `ROLE` reply;
    /// - 1: an error reply's text for `RedisClusterRedirect`;
    /// - 2: a sentinel's `+switch-master` message.
    ///
    /// Invariants: nothing traps; a refused slot map is a `.protocolError` naming the command; every shard
    /// of a map serves slots, only slots in 0–16383, from a primary with a host and a port in 1–65535;
    /// each slot's owner is the first shard claiming it, `coveredSlotCount` counts the claimed slots, and
    /// `shard(forKey:)` agrees with the key's slot; redirects carry a slot in range and a usable address
    /// and read back from their own text; sentinel addresses and `+switch-master` endpoints are usable.
    func fuzz(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        guard !input.isAtEnd else { return }
        let mode = input.byte() % 3
        let rest = input.rest()
        switch mode {
        case 0: readReplies(rest)
        case 1: readRedirect(String(decoding: rest, as: UTF8.self))
        default: readSwitchMaster(String(decoding: rest, as: UTF8.self))
        }
    }

    let askedHost = "10.9.8.7"

    func readReplies(_ stream: [UInt8]) {
        let reader = HiredisReader()
        var replies: [RESPValue] = []
        do {
            try reader.feed(ByteBuffer(bytes: stream))
            while replies.count < 16, let reply = try reader.nextReply() { replies.append(reply) }
        } catch {
            // FuzzRESP covers the reader's own failures; what it read before failing is still read below.
        }
        for reply in replies {
            for tls in [false, true] {
                check(command: "CLUSTER SHARDS") { () throws(RedisConnectionError) in
                    try RedisClusterSlotMap.parse(shardsReply: reply, host: askedHost, tls: tls)
                }
            }
            check(command: "CLUSTER SLOTS") { () throws(RedisConnectionError) in
                try RedisClusterSlotMap.parse(slotsReply: reply, host: askedHost)
            }
            if let address = RedisSentinelEndpoint.address(fromReply: reply) {
                requireUsable(address, "a sentinel's primary address")
            }
            if let role = RedisSentinelEndpoint.role(fromReply: reply) {
                guard case .array(let items?) = reply else { return require(false, "a role from a non-array reply") }
                require(items.first?.string == role, "role \(role) is not the reply's first element")
            }
        }
    }

    func check(command: String, _ parse: () throws(RedisConnectionError) -> RedisClusterSlotMap) {
        let map: RedisClusterSlotMap
        do {
            map = try parse()
        } catch {
            require(error.kind == .protocolError, "\(command) refused with kind \(error.kind)")
            require(
                error.message.hasPrefix("Unexpected \(command) reply: "), "\(command) refused with \(error.message)")
            return
        }
        var claimed = [Int](repeating: -1, count: RedisClusterSlot.count)
        for (index, shard) in map.shards.enumerated() {
            require(!shard.slots.isEmpty, "\(command): a shard without slots")
            requireUsable(shard.primary, "\(command): a primary")
            for range in shard.slots {
                require(
                    range.lowerBound >= 0 && range.upperBound < RedisClusterSlot.count, "\(command): slots \(range)")
                for slot in range where claimed[slot] < 0 { claimed[slot] = index }
            }
            require(
                zip(shard.slots, shard.slots.dropFirst()).allSatisfy { $0.lowerBound <= $1.lowerBound },
                "\(command): ranges out of order")
            if claimed[shard.anchor] == index {
                require(map.shard(anchor: shard.anchor) == shard, "\(command): a shard is not found by its anchor")
            }
        }
        var covered = 0
        for slot in 0..<RedisClusterSlot.count {
            let owner = map.shard(forSlot: slot)
            if claimed[slot] < 0 {
                require(owner == nil, "\(command): slot \(slot) has an owner nobody claimed")
            } else {
                covered += 1
                require(owner == map.shards[claimed[slot]], "\(command): slot \(slot) is not its first claimer's")
            }
        }
        require(
            map.coveredSlotCount == covered, "\(command): \(map.coveredSlotCount) slots covered, \(covered) claimed")
        require(
            map.shard(forSlot: -1) == nil && map.shard(forSlot: RedisClusterSlot.count) == nil, "a slot out of range")
        for key in ["reverb", "{reverb}:control", "reverb:4095"] {
            require(map.shard(forKey: key) == map.shard(forSlot: RedisClusterSlot.slot(forKey: key)), "key \(key)")
        }
    }

    func readRedirect(_ text: String) {
        let redirect = RedisClusterRedirect(errorReply: text, host: askedHost)
        let kind = text.split(separator: " ", omittingEmptySubsequences: true).first
        switch redirect {
        case nil:
            require(kind != "CLUSTERDOWN" && kind != "TRYAGAIN", "\(text) is not a redirect")
        case .tryAgain?:
            require(kind == "CLUSTERDOWN" || kind == "TRYAGAIN", "\(text) read as try-again")
        case .moved(let slot, let endpoint)?:
            checkRedirect(text, word: kind, as: "MOVED", redirect: redirect!, slot: slot, endpoint: endpoint)
        case .ask(let slot, let endpoint)?:
            checkRedirect(text, word: kind, as: "ASK", redirect: redirect!, slot: slot, endpoint: endpoint)
        }
    }

    /// A `-MOVED` or `-ASK` read from `text`: named by its first word, a slot in range, a usable target,
    /// and the same redirect read back from its own text.
    func checkRedirect(
        _ text: String, word: Substring?, as kind: String, redirect: RedisClusterRedirect, slot: Int,
        endpoint: RedisConnectionConfiguration.Endpoint
    ) {
        require(word == Substring(kind), "\(text) read as \(redirect)")
        require((0..<RedisClusterSlot.count).contains(slot), "\(text): slot \(slot)")
        requireUsable(endpoint, "\(text): the target")
        guard case .tcp(let host, let port) = endpoint, !host.contains("["), !host.contains("]") else { return }
        let again = "\(kind) \(slot) \(host.contains(":") ? "[\(host)]" : host):\(port)"
        require(RedisClusterRedirect(errorReply: again, host: "elsewhere") == redirect, "\(again) reads otherwise")
    }

    func readSwitchMaster(_ text: String) {
        let any = RedisSentinelEndpoint.switchMaster(text, master: nil)
        let master = text.split(separator: " ", omittingEmptySubsequences: true).first.map(String.init) ?? ""
        let named = RedisSentinelEndpoint.switchMaster(text, master: master)
        require((any == nil) == (named == nil), "\(text): read for any master and not for \(master), or back")
        require(
            RedisSentinelEndpoint.switchMaster(text, master: master + "x") == nil, "\(text) read for another master")
        if let any {
            requireUsable(any.old, "\(text): the old primary")
            requireUsable(any.new, "\(text): the new primary")
        }
    }

    func requireUsable(_ endpoint: RedisConnectionConfiguration.Endpoint, _ what: @autoclosure () -> String) {
        guard case .tcp(let host, let port) = endpoint else { return require(false, "\(what()) is not TCP") }
        require(!host.isEmpty, "\(what()) has no host")
        require((1...65_535).contains(port), "\(what()) has port \(port)")
    }

    #if FUZZING
        @_cdecl("LLVMFuzzerTestOneInput")
        public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
            fuzz(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }

        @_cdecl("FuzzRedisTopology_main")
        public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
            runFuzzer(argc, argv, fuzzEntry)
        }
    #else
        @main struct Replay {
            static func main() { CorpusReplay.run(target: "FuzzRedisTopology", fuzz) }
        }
    #endif
#else
    import FuzzSupport

    @main struct Unavailable {
        static func main() { CorpusReplay.unavailable(target: "FuzzRedisTopology") }
    }
#endif
