import NIOCore

/// The lock-protected state of a `ChannelDirectory`: a plain value, tested without I/O.
struct ChannelDirectoryState {
    /// How long an unoccupied cache channel keeps its event.
    static let cacheLifetime = TimeAmount.minutes(30)

    struct Channel {
        /// Subscribed sockets.
        var subscribers: Set<String> = []
        /// Presence member data by socket (presence kinds only).
        var memberBySocket: [String: PresenceMember] = [:]
        /// Presence members in join order; the earliest connection of each user comes first.
        var members: [PresenceMember] = []
        var createdSequence: Int
    }

    private(set) var channels: [String: Channel] = [:]
    private var cache: [String: CacheEntry] = [:]
    /// When each cache channel last became empty.
    private var emptiedAt: [String: NIODeadline] = [:]
    private var sequence = 0

    // MARK: Subscriptions

    /// Records `socketID` in `channel`; `member` is the presence data for presence kinds.
    mutating func subscribe(
        channel name: String, socketID: String, member: PresenceMember?, isCache: Bool, now: NIODeadline
    ) -> SubscribeOutcome {
        // Taken out of the dictionary, so the sets below are uniquely referenced and change in
        // place: with the dictionary still holding it, every insert would copy the whole set
        // (O(subscribers) per subscribe, quadratic for a busy channel).
        var channel =
            channels.removeValue(forKey: name)
            ?? { () -> Channel in
                sequence += 1
                return Channel(createdSequence: sequence)
            }()
        var outcome = SubscribeOutcome(succeededData: ByteBuffer(string: "{}"))
        if let member {
            let previous = channel.memberBySocket[socketID]
            if let previous, previous.identity == member.identity {
                if let index = channel.members.firstIndex(where: { $0.socketID == socketID }) {
                    channel.members[index] = member
                }
            } else {
                if let previous {
                    channel.members.removeAll { $0.socketID == socketID }
                    if !channel.members.contains(where: { $0.identity == previous.identity }) {
                        outcome.removedUserID = previous.userID
                    }
                }
                if !channel.members.contains(where: { $0.identity == member.identity }) {
                    outcome.addedMember = member
                }
                channel.members.append(member)
            }
            channel.memberBySocket[socketID] = member
            channel.subscribers.insert(socketID)
            outcome.succeededData = Self.presenceData(channel.members)
        } else {
            channel.subscribers.insert(socketID)
        }
        channels[name] = channel
        if isCache {
            emptiedAt[name] = nil
            outcome.cachedFrame = cachedFrame(for: name, now: now)
        }
        return outcome
    }

    /// Removes `socketID` from `channel`. Returns whether it was subscribed and, for presence, the
    /// `user_id` whose last connection left.
    mutating func unsubscribe(channel name: String, socketID: String, now: NIODeadline) -> (
        wasSubscribed: Bool, removedUserID: JSONValue?
    ) {
        // Taken out of the dictionary so that the removal does not copy the set (see `subscribe`).
        guard var channel = channels.removeValue(forKey: name) else { return (false, nil) }
        guard channel.subscribers.remove(socketID) != nil else {
            channels[name] = channel
            return (false, nil)
        }
        var removed: JSONValue?
        if let member = channel.memberBySocket.removeValue(forKey: socketID) {
            channel.members.removeAll { $0.socketID == socketID }
            if !channel.members.contains(where: { $0.identity == member.identity }) {
                removed = member.userID
            }
        }
        if channel.subscribers.isEmpty {
            if cache[name] != nil { emptiedAt[name] = now }
        } else {
            channels[name] = channel
        }
        return (true, removed)
    }

    /// `{"presence":{"count":N,"ids":[...],"hash":{...}}}` over distinct users in join order.
    static func presenceData(_ members: [PresenceMember]) -> ByteBuffer {
        var seen = Set<String>()
        var ids: [JSONValue] = []
        var hash: [(key: String, value: JSONValue)] = []
        for member in members where seen.insert(member.identity).inserted {
            ids.append(member.userID)
            hash.append((member.identity, member.userInfo))
        }
        let presence: JSONValue = .object(
            JSONObject([
                ("count", .number(String(ids.count))),
                ("ids", .array(ids)),
                ("hash", .object(JSONObject(hash))),
            ]))
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        JSONWriter.write(.object(JSONObject([("presence", presence)])), into: &buffer)
        return buffer
    }

    // MARK: Cache

    /// Stores the last event of a cache channel, occupied or not.
    mutating func storeCachedEvent(channel name: String, frame: OutboundFrame, now: NIODeadline) {
        cache[name] = CacheEntry(frame: frame, storedAt: now)
        if channels[name] == nil { emptiedAt[name] = now } else { emptiedAt[name] = nil }
    }

    /// The cached event when it has not expired.
    mutating func cachedFrame(for name: String, now: NIODeadline) -> OutboundFrame? {
        guard let entry = cache[name] else { return nil }
        if let ttl = cacheTTL(for: name, entry: entry, now: now), ttl <= .zero {
            cache[name] = nil
            emptiedAt[name] = nil
            return nil
        }
        return entry.frame
    }

    /// Whole seconds left before the cached event expires (1800 while occupied), nil without one.
    mutating func cacheInfo(for name: String, now: NIODeadline) -> (frame: OutboundFrame, ttl: Int)? {
        guard let frame = cachedFrame(for: name, now: now), let entry = cache[name] else { return nil }
        let ttl = cacheTTL(for: name, entry: entry, now: now) ?? Self.cacheLifetime
        return (frame, Int((ttl.nanoseconds + 999_999_999) / 1_000_000_000))
    }

    private func cacheTTL(for name: String, entry: CacheEntry, now: NIODeadline) -> TimeAmount? {
        guard channels[name] == nil else { return nil }
        let since = max(entry.storedAt, emptiedAt[name] ?? entry.storedAt)
        return Self.cacheLifetime - (now - since)
    }

    /// Drops expired cached events of unoccupied channels.
    mutating func purgeExpiredCache(now: NIODeadline) {
        for name in cache.keys where channels[name] == nil {
            _ = cachedFrame(for: name, now: now)
        }
    }

    // MARK: Queries

    func subscriptionCount(_ name: String) -> Int {
        channels[name]?.subscribers.count ?? 0
    }

    /// Distinct users of a presence channel, first-join order, `user_id` with its JSON type.
    func users(_ name: String) -> [JSONValue] {
        guard let channel = channels[name] else { return [] }
        var seen = Set<String>()
        return channel.members.compactMap { seen.insert($0.identity).inserted ? $0.userID : nil }
    }

    /// Occupied channel names in creation order.
    func occupiedChannels() -> [String] {
        channels.sorted { $0.value.createdSequence < $1.value.createdSequence }.map(\.key)
    }
}
