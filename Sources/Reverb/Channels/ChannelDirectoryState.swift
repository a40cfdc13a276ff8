import NIOCore

/// The lock-protected state of a `ChannelDirectory`: one app's channels as this node sees the
/// cluster. Local subscriptions, the cluster-wide presence rosters (`scaling.md` §4.6), the other
/// nodes' subscriber counts, cached events (§4.7), and the cluster-wide signed-in users
/// (`protocol.md` §13). A plain value, tested without I/O.
struct ChannelDirectoryState {
    /// How long an unoccupied cache channel keeps its event.
    static let cacheLifetime = TimeAmount.minutes(30)
    /// This node's name in a roster's node set (peers are named by their 16-hex-digit id).
    static let localNode = ""

    /// Bounds on what other nodes can make this node hold for one app (docs.md "Scaling").
    struct Limits: Sendable {
        /// Cached events kept; the least recently written goes first.
        var cachedChannels = 100_000
        /// Presence memberships (user, node) held for other nodes.
        var remoteMembers = 100_000
        /// Bytes of member data in entries that other nodes created.
        var remoteMemberBytes = 64 * 1024 * 1024
        /// Subscriber counts (channel, node) held for other nodes.
        var remoteChannels = 100_000
        /// Signed-in users (user, node) held for other nodes.
        var remoteUsers = 100_000
        /// Bytes of user ids in entries that other nodes created.
        var remoteUserBytes = 16 * 1024 * 1024

        init() {}
    }

    struct Channel {
        /// Subscribed sockets.
        var subscribers: Set<String> = []
        /// Presence member data by socket (presence kinds only).
        var memberBySocket: [String: PresenceMember] = [:]
        /// Local sockets of each user identity (presence kinds only).
        var localConnections: [String: Int] = [:]
        var createdSequence: Int
    }

    /// A channel's subscribers on other nodes.
    struct RemoteChannel {
        var counts: [String: Int] = [:]
        var total = 0
        var createdSequence: Int
    }

    let limits: Limits
    private(set) var channels: [String: Channel] = [:]
    private(set) var rosters: [String: PresenceRoster] = [:]
    /// Signed-in users, cluster-wide, and the local watchers of each id.
    private(set) var userRoster = UserRoster()
    private var remoteUserEntries = 0
    private var remoteUserIDBytes = 0
    private var remote: [String: RemoteChannel] = [:]
    private var remoteMemberships = 0
    private var remoteMemberBytes = 0
    private var remoteCountEntries = 0
    /// Remote memberships and counts refused at the caps.
    private(set) var refusedAtCaps = 0
    private var cache: [String: CacheEntry] = [:]
    /// Cache writes in order, for eviction; an element is stale when the entry was written again.
    private var cacheWrites: [(name: String, write: Int)] = []
    private var cacheWritesHead = 0
    private var cacheWriteCount = 0
    /// When each cache channel last became empty.
    private var emptiedAt: [String: NIODeadline] = [:]
    private var sequence = 0

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    // MARK: Local subscriptions

    /// Records `socketID` in `channel`; `member` is the presence data for presence kinds, checked
    /// against the app's cluster-wide presence limits (`protocol.md` §5.1).
    mutating func subscribe(
        channel name: String, socketID: String, member: PresenceMember?, isCache: Bool,
        presenceLimits: Application.PresenceLimits = .init(), now: NIODeadline
    ) -> SubscribeOutcome {
        let wasOccupied = subscriptionCount(name) > 0
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
            var roster = rosters.removeValue(forKey: name) ?? PresenceRoster()
            let previous = channel.memberBySocket[socketID]
            if previous?.identity != member.identity {
                if let refusal = presenceLimits.refusal(for: member, in: roster) {
                    if !roster.isEmpty { rosters[name] = roster }
                    if !channel.subscribers.isEmpty { channels[name] = channel }
                    outcome.refused = refusal
                    return outcome
                }
                if let previous {
                    leaveLocally(
                        previous, socketID: socketID, channel: name, in: &channel, roster: &roster,
                        outcome: &outcome.changes)
                }
                channel.memberBySocket[socketID] = member
                channel.localConnections[member.identity, default: 0] += 1
                if channel.localConnections[member.identity] == 1 {
                    outcome.changes.announcements.append(.join(channel: name, member: member))
                    if roster.add(member, node: Self.localNode) {
                        outcome.changes.members.append(.added(channel: name, member: member, except: socketID))
                    }
                }
            } else {
                // The same user again on the same socket: its new data replaces the old when this is
                // the user's only connection anywhere (other nodes keep what they were told).
                channel.memberBySocket[socketID] = member
                if channel.localConnections[member.identity] == 1,
                    roster.entries[member.identity]?.nodes == [Self.localNode]
                {
                    roster.update(member)
                }
            }
            outcome.succeededData = roster.presenceData()
            rosters[name] = roster
        }
        outcome.countChanged = channel.subscribers.insert(socketID).inserted
        channels[name] = channel
        if outcome.countChanged {
            if !wasOccupied { outcome.changes.occupancy.append(.occupied(name)) }
            outcome.changes.occupancy.append(.count(name, subscriptionCount(name)))
        }
        if isCache {
            emptiedAt[name] = nil
            outcome.cachedFrame = cachedFrame(for: name, now: now)
        }
        return outcome
    }

    /// Removes `socketID` from `channel`; nothing changes when it was not subscribed.
    mutating func unsubscribe(channel name: String, socketID: String, now: NIODeadline) -> UnsubscribeOutcome {
        // Taken out of the dictionary so that the removal does not copy the set (see `subscribe`).
        guard var channel = channels.removeValue(forKey: name) else { return UnsubscribeOutcome() }
        guard channel.subscribers.remove(socketID) != nil else {
            channels[name] = channel
            return UnsubscribeOutcome()
        }
        var outcome = UnsubscribeOutcome(wasSubscribed: true)
        if let member = channel.memberBySocket.removeValue(forKey: socketID) {
            var roster = rosters.removeValue(forKey: name) ?? PresenceRoster()
            leaveLocally(
                member, socketID: socketID, channel: name, in: &channel, roster: &roster, outcome: &outcome.changes)
            if !roster.isEmpty { rosters[name] = roster }
        }
        if channel.subscribers.isEmpty {
            if cache[name] != nil { emptiedAt[name] = now }
        } else {
            channels[name] = channel
        }
        let left = subscriptionCount(name)
        outcome.changes.occupancy.append(.count(name, left))
        if left == 0 { outcome.changes.occupancy.append(.vacated(name)) }
        return outcome
    }

    private mutating func leaveLocally(
        _ member: PresenceMember, socketID: String, channel name: String, in channel: inout Channel,
        roster: inout PresenceRoster, outcome: inout DirectoryChanges
    ) {
        let left = (channel.localConnections[member.identity] ?? 1) - 1
        guard left == 0 else {
            channel.localConnections[member.identity] = left
            return
        }
        channel.localConnections[member.identity] = nil
        outcome.announcements.append(.leave(channel: name, userID: member.userID))
        if let removed = roster.remove(member.identity, node: Self.localNode) {
            remoteMemberBytes -= removed.charged
            outcome.members.append(.removed(channel: name, userID: removed.member.userID))
        }
    }

    // MARK: Other nodes (`scaling.md` §4.6)

    /// `node` holds a connection of `member`'s user in `channel`.
    mutating func remoteJoin(channel name: String, member: PresenceMember, node: String) -> DirectoryChanges {
        var changes = DirectoryChanges()
        var roster = rosters.removeValue(forKey: name) ?? PresenceRoster()
        defer { if !roster.isEmpty { rosters[name] = roster } }
        guard !roster.holds(member.identity, node: node) else { return changes }
        let bytes = roster.contains(member.identity) ? 0 : member.size
        guard remoteMemberships < limits.remoteMembers, remoteMemberBytes + bytes <= limits.remoteMemberBytes else {
            refusedAtCaps += 1
            changes.refused += 1
            return changes
        }
        remoteMemberships += 1
        if roster.add(member, node: node, charge: bytes) {
            remoteMemberBytes += bytes
            changes.members.append(.added(channel: name, member: member, except: nil))
        }
        return changes
    }

    /// `node` no longer holds a connection of `identity` in `channel`.
    mutating func remoteLeave(channel name: String, identity: String, node: String) -> DirectoryChanges {
        var changes = DirectoryChanges()
        guard var roster = rosters.removeValue(forKey: name) else { return changes }
        defer { if !roster.isEmpty { rosters[name] = roster } }
        guard roster.holds(identity, node: node) else { return changes }
        remoteMemberships -= 1
        if let removed = roster.remove(identity, node: node) {
            remoteMemberBytes -= removed.charged
            changes.members.append(.removed(channel: name, userID: removed.member.userID))
        }
        return changes
    }

    /// `node` has `count` subscribers of `channel` (0: none).
    mutating func setRemoteCount(channel name: String, node: String, count: Int) -> DirectoryChanges {
        var changes = DirectoryChanges()
        let before = subscriptionCount(name)
        var entry =
            remote.removeValue(forKey: name)
            ?? { () -> RemoteChannel in
                sequence += 1
                return RemoteChannel(createdSequence: channels[name]?.createdSequence ?? sequence)
            }()
        defer { if entry.total > 0 { remote[name] = entry } }
        let previous = entry.counts[node] ?? 0
        guard previous != count else { return changes }
        if previous == 0 {
            guard remoteCountEntries < limits.remoteChannels else {
                refusedAtCaps += 1
                changes.refused += 1
                return changes
            }
            remoteCountEntries += 1
        }
        if count == 0 {
            entry.counts[node] = nil
            remoteCountEntries -= 1
        } else {
            entry.counts[node] = count
        }
        entry.total += count - previous
        changes.countsChanged.append(name)
        let after = localSubscriptionCount(name) + entry.total
        if before == 0 && after > 0 { changes.occupancy.append(.occupied(name)) }
        changes.occupancy.append(.count(name, after))
        if before > 0 && after == 0 { changes.occupancy.append(.vacated(name)) }
        return changes
    }

    /// Replaces everything attributed to `node` with its `sync_state` (`scaling.md` §4.6):
    /// `presence` per channel in creation order, `counts` per occupied channel, signed-in `users`.
    mutating func replace(
        node: String, presence: [(channel: String, members: [PresenceMember])], counts: [(channel: String, count: Int)],
        users signedIn: [String] = []
    ) -> DirectoryChanges {
        var changes = DirectoryChanges()
        var kept: [String: Set<String>] = [:]
        for (channel, members) in presence { kept[channel, default: []].formUnion(members.map(\.identity)) }
        for (channel, roster) in rosters {
            for identity in roster.identities(heldBy: node) where kept[channel]?.contains(identity) != true {
                changes.merge(remoteLeave(channel: channel, identity: identity, node: node))
            }
        }
        for (channel, members) in presence {
            for member in members { changes.merge(remoteJoin(channel: channel, member: member, node: node)) }
        }
        let newCounts = Dictionary(counts.map { ($0.channel, $0.count) }, uniquingKeysWith: { $1 })
        for (channel, entry) in remote where entry.counts[node] != nil && newCounts[channel] == nil {
            changes.merge(setRemoteCount(channel: channel, node: node, count: 0))
        }
        for (channel, count) in counts { changes.merge(setRemoteCount(channel: channel, node: node, count: count)) }
        let keptUsers = Set(signedIn)
        for identity in userRoster.identities(heldBy: node) where !keptUsers.contains(identity) {
            changes.merge(remoteUserLeave(identity: identity, node: node))
        }
        for identity in signedIn { changes.merge(remoteUserJoin(identity: identity, node: node)) }
        changes.fromSync = true
        return changes
    }

    /// A node left or expired: everything attributed to it goes.
    mutating func removeNode(_ node: String) -> DirectoryChanges {
        replace(node: node, presence: [], counts: [])
    }

    /// This node's part, for its `sync_state`: local members per presence channel, local counts and
    /// the users signed in here.
    func localState() -> (
        presence: [(channel: String, members: [PresenceMember])], counts: [(channel: String, count: Int)],
        users: [String]
    ) {
        var presence: [(String, [PresenceMember])] = []
        for (name, roster) in rosters {
            let members = roster.members(heldBy: Self.localNode)
            if !members.isEmpty { presence.append((name, members)) }
        }
        return (
            presence, channels.map { ($0.key, $0.value.subscribers.count) },
            userRoster.identities(heldBy: Self.localNode).sorted()
        )
    }

    // MARK: Signed-in users (`protocol.md` §13, docs.md "Scaling")

    /// A local socket signed in as `identity`, watching `watchlist`. `previous` is the watchlist of
    /// an earlier sign-in of the same socket as the same user: then only the watchlist changes.
    /// The outcome's state of `watchlist` includes this sign-in.
    mutating func signIn(identity: String, watchlist: [String], replacing previous: [String]?) -> SignInOutcome {
        var changes = DirectoryChanges()
        if let previous {
            userRoster.unwatch(previous)
        } else if userRoster.addLocalSocket(identity) {
            changes.announcements.append(.userJoin(userID: identity))
            // Watchers are told before this socket's own watchlist counts: it gets only its
            // initial frame, even when it watches itself.
            if userRoster.add(identity, node: Self.localNode), userRoster.isWatched(identity) {
                changes.watchlist.append(.online(identity))
            }
        }
        userRoster.watch(watchlist)
        let state = userRoster.state(of: watchlist)
        return SignInOutcome(changes: changes, offline: state.offline, online: state.online)
    }

    /// A signed-in local socket ended (closed, pruned, terminated, timed out).
    mutating func signOut(identity: String, watchlist: [String]) -> DirectoryChanges {
        var changes = DirectoryChanges()
        userRoster.unwatch(watchlist)
        guard userRoster.removeLocalSocket(identity) else { return changes }
        changes.announcements.append(.userLeave(userID: identity))
        if let removed = userRoster.remove(identity, node: Self.localNode) {
            remoteUserIDBytes -= removed.charged
            if userRoster.isWatched(identity) { changes.watchlist.append(.offline(identity)) }
        }
        return changes
    }

    /// `node` holds a socket signed in as `identity` (`user_join`).
    mutating func remoteUserJoin(identity: String, node: String) -> DirectoryChanges {
        var changes = DirectoryChanges()
        guard !userRoster.holds(identity, node: node) else { return changes }
        let bytes = userRoster.isOnline(identity) ? 0 : identity.utf8.count
        guard remoteUserEntries < limits.remoteUsers, remoteUserIDBytes + bytes <= limits.remoteUserBytes else {
            refusedAtCaps += 1
            changes.refused += 1
            return changes
        }
        remoteUserEntries += 1
        if userRoster.add(identity, node: node, charge: bytes) {
            remoteUserIDBytes += bytes
            if userRoster.isWatched(identity) { changes.watchlist.append(.online(identity)) }
        }
        return changes
    }

    /// `node` no longer holds a socket signed in as `identity` (`user_leave`).
    mutating func remoteUserLeave(identity: String, node: String) -> DirectoryChanges {
        var changes = DirectoryChanges()
        guard userRoster.holds(identity, node: node) else { return changes }
        remoteUserEntries -= 1
        if let removed = userRoster.remove(identity, node: node) {
            remoteUserIDBytes -= removed.charged
            if userRoster.isWatched(identity) { changes.watchlist.append(.offline(identity)) }
        }
        return changes
    }

    /// Whether any node holds a socket signed in as `identity`.
    func isOnline(_ identity: String) -> Bool { userRoster.isOnline(identity) }

    /// Distinct signed-in users in the cluster.
    var signedInUserCount: Int { userRoster.count }

    // MARK: Cache

    /// Stores the last event of a cache channel, occupied or not; beyond `limits.cachedChannels`
    /// the least recently written entry is evicted.
    mutating func storeCachedEvent(channel name: String, frame: OutboundFrame, now: NIODeadline) {
        cacheWriteCount += 1
        cache[name] = CacheEntry(frame: frame, storedAt: now, write: cacheWriteCount)
        cacheWrites.append((name, cacheWriteCount))
        if channels[name] == nil { emptiedAt[name] = now } else { emptiedAt[name] = nil }
        while cache.count > limits.cachedChannels, cacheWritesHead < cacheWrites.count {
            let oldest = cacheWrites[cacheWritesHead]
            cacheWritesHead += 1
            if cache[oldest.name]?.write == oldest.write {
                cache[oldest.name] = nil
                emptiedAt[oldest.name] = nil
            }
        }
        if cacheWritesHead > 1024 && cacheWritesHead * 2 > cacheWrites.count {
            cacheWrites.removeFirst(cacheWritesHead)
            cacheWritesHead = 0
            cacheWrites.removeAll { cache[$0.name]?.write != $0.write }
        }
    }

    /// Cached events held.
    var cachedChannelCount: Int { cache.count }

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

    /// Subscribed connections of `name` in the cluster.
    func subscriptionCount(_ name: String) -> Int {
        localSubscriptionCount(name) + (remote[name]?.total ?? 0)
    }

    /// Subscribed connections of `name` on this node.
    func localSubscriptionCount(_ name: String) -> Int {
        channels[name]?.subscribers.count ?? 0
    }

    /// Distinct users of a presence channel in the cluster, creation order, `user_id` with its JSON type.
    func users(_ name: String) -> [JSONValue] {
        rosters[name]?.members().map(\.userID) ?? []
    }

    /// Distinct users of a presence channel with a connection on this node.
    func localUsers(_ name: String) -> [JSONValue] {
        rosters[name]?.members(heldBy: Self.localNode).map(\.userID) ?? []
    }

    /// Users of a presence channel in the cluster.
    func userCount(_ name: String) -> Int {
        rosters[name]?.count ?? 0
    }

    /// Channels occupied anywhere in the cluster, in the order this node first saw them occupied.
    func occupiedChannels() -> [String] {
        var all = channels.map { ($0.key, $0.value.createdSequence) }
        for (name, entry) in remote where channels[name] == nil { all.append((name, entry.createdSequence)) }
        return all.sorted { $0.1 < $1.1 }.map(\.0)
    }

    /// Channels occupied on this node.
    var localChannelCount: Int { channels.count }

    /// Channels occupied on this node, in creation order.
    func localOccupiedChannels() -> [String] {
        channels.sorted { $0.value.createdSequence < $1.value.createdSequence }.map(\.key)
    }
}

/// What a change of the directory means for clients and for the other nodes, for the caller to
/// carry out (under the directory's lock, so that changes go out in the order they happened).
struct DirectoryChanges {
    /// `member_added` / `member_removed` to send to this node's subscribers.
    var members: [MemberChange] = []
    /// `presence_join` / `presence_leave` to publish to the other nodes.
    var announcements: [PresenceAnnouncement] = []
    /// Channels whose cluster-wide subscriber count changed through another node.
    var countsChanged: [String] = []
    /// Watched users that came online or went offline: frames to this node's watchers.
    var watchlist: [WatchlistChange] = []
    /// Remote memberships or counts refused at the caps.
    var refused = 0
    /// Cluster-wide occupancy transitions and counts, in order, for webhooks.
    var occupancy: [OccupancyChange] = []
    /// The changes replay a peer's `sync_state` (`replace`): arrivals in it are not new to the cluster.
    var fromSync = false

    var isEmpty: Bool { members.isEmpty && announcements.isEmpty && countsChanged.isEmpty && watchlist.isEmpty }

    mutating func merge(_ other: DirectoryChanges) {
        members += other.members
        announcements += other.announcements
        countsChanged += other.countsChanged
        watchlist += other.watchlist
        refused += other.refused
        occupancy += other.occupancy
        fromSync = fromSync || other.fromSync
    }
}

/// A channel's cluster-wide subscriber count as this node sees it: 0 → n, n → 0, or any change.
enum OccupancyChange: Equatable {
    case occupied(String)
    case vacated(String)
    case count(String, Int)
}

/// A presence entry created or emptied, cluster-wide (`protocol.md` §5.3, §5.4).
enum MemberChange: Equatable {
    case added(channel: String, member: PresenceMember, except: String?)
    case removed(channel: String, userID: JSONValue)
}

/// A local 0 → 1 or 1 → 0 of a user's connections in a presence channel (`scaling.md` §4.6), or of
/// a user's signed-in sockets (`user_join` / `user_leave`, docs.md "Scaling"), for the other nodes.
enum PresenceAnnouncement: Equatable {
    case join(channel: String, member: PresenceMember)
    case leave(channel: String, userID: JSONValue)
    /// `userID` is the signed-in identity.
    case userJoin(userID: String)
    case userLeave(userID: String)
}

/// A watched user came online or went offline, cluster-wide (`protocol.md` §13.4).
enum WatchlistChange: Equatable {
    case online(String)
    case offline(String)
}
