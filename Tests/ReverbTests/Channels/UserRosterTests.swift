import NIOCore
import Testing

@testable import Reverb

/// Signed-in users and watchlists in one app's directory (`protocol.md` §13.4), and their
/// replication (docs.md "Scaling": `user_join`, `user_leave`, `sync_state` `users`).
@Suite("Signed-in users and watchlist bookkeeping (protocol.md §13.4)")
struct UserRosterTests {
    static let peer = "00000000000000bb"
    static let other = "00000000000000cc"

    @Test("first socket of a user announces user_join; watchers hear online once; last socket: user_leave, offline")
    func localSockets() {
        var state = ChannelDirectoryState()
        // A watches u1 and u2, before either signs in.
        let watcher = state.signIn(identity: "a", watchlist: ["u1", "u2"], replacing: nil)
        #expect(watcher.offline == ["u1", "u2"] && watcher.online.isEmpty)
        #expect(watcher.changes.announcements == [.userJoin(userID: "a")])
        #expect(watcher.changes.watchlist.isEmpty)

        let first = state.signIn(identity: "u1", watchlist: [], replacing: nil)
        #expect(first.changes.announcements == [.userJoin(userID: "u1")])
        #expect(first.changes.watchlist == [.online("u1")])
        // A second socket of u1 changes nothing, anywhere.
        let second = state.signIn(identity: "u1", watchlist: [], replacing: nil)
        #expect(second.changes.isEmpty)
        #expect(state.isOnline("u1") && state.signedInUserCount == 2)

        let r1 = state.signOut(identity: "u1", watchlist: [])
        #expect(r1.isEmpty)
        let last = state.signOut(identity: "u1", watchlist: [])
        #expect(last.announcements == [.userLeave(userID: "u1")])
        #expect(last.watchlist == [.offline("u1")])
        #expect(!state.isOnline("u1"))

        // Nobody watches u9: no watchlist change, only the announcement.
        let unwatched = state.signIn(identity: "u9", watchlist: [], replacing: nil)
        #expect(unwatched.changes.watchlist.isEmpty && unwatched.changes.announcements == [.userJoin(userID: "u9")])

        // The watcher leaves: u1 coming online is nobody's business any more.
        _ = state.signOut(identity: "a", watchlist: ["u1", "u2"])
        let r2 = state.signIn(identity: "u1", watchlist: [], replacing: nil)
        #expect(r2.changes.watchlist.isEmpty)
        #expect(state.userRoster.watchers.isEmpty)
    }

    @Test("initial state: offline then online ids in watchlist order, the signing socket included")
    func initialState() {
        var state = ChannelDirectoryState()
        _ = state.signIn(identity: "u1", watchlist: [], replacing: nil)
        _ = state.remoteUserJoin(identity: "u3", node: Self.peer)
        let outcome = state.signIn(identity: "me", watchlist: ["u3", "u2", "me", "u1"], replacing: nil)
        #expect(outcome.offline == ["u2"])
        #expect(outcome.online == ["u3", "me", "u1"])
        // Watching itself, the socket is not told it came online: its initial frame says so.
        #expect(outcome.changes.watchlist.isEmpty)
    }

    @Test("same user signs in again on the socket: the watchlist is replaced, nothing announced")
    func signInAgain() {
        var state = ChannelDirectoryState()
        _ = state.signIn(identity: "a", watchlist: ["u1", "u2"], replacing: nil)
        let again = state.signIn(identity: "a", watchlist: ["u2", "u3"], replacing: ["u1", "u2"])
        #expect(again.changes.isEmpty)
        #expect(again.offline == ["u2", "u3"])
        #expect(state.userRoster.watchers == ["u2": 1, "u3": 1])
        #expect(state.userRoster.localSockets == ["a": 1])
        let gone = state.signOut(identity: "a", watchlist: ["u2", "u3"])
        #expect(gone.announcements == [.userLeave(userID: "a")])
        #expect(state.userRoster.watchers.isEmpty && state.userRoster.localSockets.isEmpty)
    }

    @Test("a user on two nodes is online until the last node lets go; local and remote sockets count as one")
    func acrossNodes() {
        var state = ChannelDirectoryState()
        _ = state.signIn(identity: "w", watchlist: ["u1"], replacing: nil)
        let r3 = state.remoteUserJoin(identity: "u1", node: Self.peer)
        #expect(r3.watchlist == [.online("u1")])
        let r4 = state.remoteUserJoin(identity: "u1", node: Self.peer)
        #expect(r4.isEmpty)
        let r5 = state.remoteUserJoin(identity: "u1", node: Self.other)
        #expect(r5.isEmpty)
        let local = state.signIn(identity: "u1", watchlist: [], replacing: nil)
        #expect(local.changes.watchlist.isEmpty && local.changes.announcements == [.userJoin(userID: "u1")])
        let r6 = state.remoteUserLeave(identity: "u1", node: Self.peer)
        #expect(r6.isEmpty)
        let r7 = state.signOut(identity: "u1", watchlist: [])
        #expect(r7.watchlist.isEmpty)
        let r8 = state.remoteUserLeave(identity: "u1", node: Self.other)
        #expect(r8.watchlist == [.offline("u1")])
        // A leave from a node that never held the user changes nothing.
        let r9 = state.remoteUserLeave(identity: "u1", node: Self.peer)
        #expect(r9.isEmpty)
    }

    @Test("sync_state replaces the sender's users; a dead node's users go offline")
    func replaceAndRemove() {
        var state = ChannelDirectoryState()
        _ = state.signIn(identity: "w", watchlist: ["u1", "u2", "u3"], replacing: nil)
        _ = state.remoteUserJoin(identity: "u1", node: Self.peer)
        _ = state.remoteUserJoin(identity: "u2", node: Self.peer)
        _ = state.remoteUserJoin(identity: "u2", node: Self.other)
        let replaced = state.replace(node: Self.peer, presence: [], counts: [], users: ["u2", "u3"])
        #expect(replaced.watchlist == [.offline("u1"), .online("u3")])
        let removed = state.removeNode(Self.peer)
        #expect(removed.watchlist == [.offline("u3")])
        #expect(state.isOnline("u2") && !state.isOnline("u3"))
        #expect(state.localState().users == ["w"])
    }

    @Test("users held for other nodes are capped by entries and id bytes; refusals are counted")
    func caps() {
        var limits = ChannelDirectoryState.Limits()
        limits.remoteUsers = 2
        limits.remoteUserBytes = 10
        var state = ChannelDirectoryState(limits: limits)
        let r10 = state.remoteUserJoin(identity: "1234", node: Self.peer)
        #expect(r10.refused == 0)
        let r11 = state.remoteUserJoin(identity: "12345678", node: Self.peer)
        #expect(r11.refused == 1)
        let r12 = state.remoteUserJoin(identity: "1234", node: Self.other)
        #expect(r12.refused == 0)
        let r13 = state.remoteUserJoin(identity: "5", node: Self.other)
        #expect(r13.refused == 1)
        #expect(state.refusedAtCaps == 2)
        _ = state.removeNode(Self.peer)
        _ = state.removeNode(Self.other)
        let r14 = state.remoteUserJoin(identity: "12345678", node: Self.peer)
        #expect(r14.refused == 0)
        // Local sign-ins are never refused by the caps.
        #expect(
            state.signIn(identity: String(repeating: "x", count: 100), watchlist: [], replacing: nil).changes.refused
                == 0)
    }
}
