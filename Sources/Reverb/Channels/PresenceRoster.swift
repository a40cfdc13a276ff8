import NIOCore

/// The members of one presence channel across the cluster (`scaling.md` §4.6): per user identity,
/// the data of the first join seen and the nodes that hold a connection of that user, listed in
/// creation order. A plain value, changed under its app's `ChannelDirectory` lock.
struct PresenceRoster {
    struct Entry {
        var member: PresenceMember
        /// Nodes with a connection of this user in the channel; `ChannelDirectoryState.localNode`
        /// stands for this one. Almost always one element, so an array beats a set.
        var nodes: [String]
        var sequence: Int
        /// Bytes charged to the other nodes' cap when another node created the entry.
        var charged: Int
    }

    private(set) var entries: [String: Entry] = [:]
    /// Identities in creation order; an element is stale when its sequence no longer matches the
    /// entry (removed, or removed and created again), and stale elements are compacted away.
    private var order: [(identity: String, sequence: Int)] = []
    private var nextSequence = 0

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    func contains(_ identity: String) -> Bool { entries[identity] != nil }

    func holds(_ identity: String, node: String) -> Bool {
        entries[identity]?.nodes.contains(node) ?? false
    }

    /// Records that `node` holds `member`'s user. Returns true when the entry was created (the
    /// user is new to the channel, cluster-wide: `member_added`).
    mutating func add(_ member: PresenceMember, node: String, charge: Int = 0) -> Bool {
        if entries[member.identity] != nil {
            if !entries[member.identity]!.nodes.contains(node) { entries[member.identity]!.nodes.append(node) }
            return false
        }
        nextSequence += 1
        entries[member.identity] = Entry(member: member, nodes: [node], sequence: nextSequence, charged: charge)
        order.append((member.identity, nextSequence))
        return true
    }

    /// Replaces the data of `member`'s entry, keeping its place (a re-subscribe of the user's only
    /// connection with new `user_info`).
    mutating func update(_ member: PresenceMember) {
        guard entries[member.identity] != nil else { return }
        entries[member.identity]!.member = member
    }

    /// Records that `node` no longer holds `identity`. Returns the entry when no node holds the user
    /// any more (`member_removed`).
    mutating func remove(_ identity: String, node: String) -> Entry? {
        guard var entry = entries.removeValue(forKey: identity) else { return nil }
        entry.nodes.removeAll { $0 == node }
        guard entry.nodes.isEmpty else {
            entries[identity] = entry
            return nil
        }
        if order.count > 32 && order.count > 2 * entries.count {
            order.removeAll { entries[$0.identity]?.sequence != $0.sequence }
        }
        return entry
    }

    /// Members in creation order, optionally only those `node` holds.
    func members(heldBy node: String? = nil) -> [PresenceMember] {
        order.compactMap { element in
            guard let entry = entries[element.identity], entry.sequence == element.sequence else { return nil }
            if let node, !entry.nodes.contains(node) { return nil }
            return entry.member
        }
    }

    /// Identities `node` holds.
    func identities(heldBy node: String) -> [String] {
        entries.compactMap { $0.value.nodes.contains(node) ? $0.key : nil }
    }

    /// `{"presence":{"count":N,"ids":[...],"hash":{...}}}` (`protocol.md` §5.2), in creation order,
    /// in one pass into a buffer sized once. Not kept: it would double the channel's memory.
    func presenceData() -> ByteBuffer {
        let members = members()
        var buffer = ByteBufferAllocator().buffer(
            capacity: 48 + members.reduce(0) { $0 + $1.identity.utf8.count * 2 + $1.userInfo.readableBytes + 8 })
        buffer.writeString(#"{"presence":{"count":\#(members.count),"ids":["#)
        for (index, member) in members.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            JSONWriter.write(member.userID, into: &buffer)
        }
        buffer.writeStaticString(#"],"hash":{"#)
        for (index, member) in members.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            JSONWriter.writeString(member.identity, into: &buffer)
            buffer.writeStaticString(":")
            buffer.writeImmutableBuffer(member.userInfo)
        }
        buffer.writeStaticString("}}}")
        return buffer
    }
}

extension Application.PresenceLimits {
    /// The 4100 error when `member` may not join `roster`, nil when it may (`protocol.md` §5.1).
    func refusal(for member: PresenceMember, in roster: PresenceRoster) -> PusherError? {
        if maxMemberSize > 0 && member.channelData.readableBytes > maxMemberSize {
            return PusherError(code: 4100, message: "Presence member data size limit (\(maxMemberSize) bytes) exceeded")
        }
        if maxMembers > 0 && !roster.contains(member.identity) && roster.count >= maxMembers {
            return PusherError(code: 4100, message: "Presence channel member limit (\(maxMembers)) reached")
        }
        return nil
    }
}
