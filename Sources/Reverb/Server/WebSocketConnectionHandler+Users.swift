import Logging
import NIOCore

/// User authentication on one connection: `pusher:signin`, the socket's watchlist, the end of its
/// sign-in, and the sign-in timeout (`protocol.md` §13).
extension WebSocketConnectionHandler {
    /// The user this connection signed in as.
    struct SignedInUser {
        var identity: String
        /// Watched ids, each with a fan-out subscription to `ChannelName.watchers(of:)`.
        var watchlist: [String]
    }

    /// `pusher:signin` (§13.1): every failure sends its error and changes nothing.
    func signIn(auth: String?, userData: String, app: AppContext) {
        let user: UserData
        switch UserAuthentication.check(
            auth: auth, userData: userData, secret: app.application.secret, socketID: socketID,
            signedInAs: signedInUser?.identity)
        {
        case .failure(let error):
            log(.debug, "Sign-in refused: \(error.message)")
            return sendError(error)
        case .success(let accepted):
            user = accepted
        }
        let previous = signedInUser?.watchlist
        let kept = Set(previous ?? [])
        let added = user.watchlist.filter { !kept.contains($0) }
        let removed = kept.subtracting(user.watchlist)
        // Interest first, then the sequence: a watchlist event after the initial state cannot miss
        // this loop (as for subscriptions).
        for identity in added { shardAddInterest(channel: ChannelName.watchers(of: identity), app: app) }
        let fanout = app.fanout
        let pubSub = node.pubSub
        let (outcome, joinedAt) = app.directory.withState { state in
            let outcome = state.signIn(identity: user.id, watchlist: user.watchlist, replacing: previous)
            let joinedAt = fanout.currentSequence()
            app.carryOut(outcome.changes, countChanged: nil, pubSub: pubSub)
            return (outcome, joinedAt)
        }
        for identity in added {
            shardSubscribe(channel: ChannelName.watchers(of: identity), app: app, joinedAt: joinedAt)
        }
        for identity in removed { shardUnsubscribe(channel: ChannelName.watchers(of: identity), app: app) }
        signedInUser = SignedInUser(identity: user.id, watchlist: user.watchlist)
        if stateMachine.signInSucceeded() { cancelUserAuthenticationTimer() }
        send(PusherFrames.signInSuccess(userData: userData))
        if user.watchlistTruncated { sendError(.watchlistLimitExceeded) }
        if !user.watchlist.isEmpty {
            send(PusherFrames.watchlistEvents(offline: outcome.offline, online: outcome.online))
        }
        log(.debug, "Signed in", ["user_id": "\(user.id)", "watchlist": "\(user.watchlist.count)"])
    }

    /// Whether `channel` (a `#server-to-user-` name) is this socket's own user channel (§13.2).
    func ownsUserChannel(_ channel: String) -> Bool {
        guard let identity = signedInUser?.identity else { return false }
        // Byte for byte: `String ==` would also match another normalisation of the same text.
        return channel.utf8.elementsEqual((ChannelName.serverToUserPrefix + identity).utf8)
    }

    /// The connection ended: its watchlist and its share of the user's presence go (§13.4).
    func signOut(app: AppContext) {
        guard let user = signedInUser else { return }
        signedInUser = nil
        for identity in user.watchlist { shardUnsubscribe(channel: ChannelName.watchers(of: identity), app: app) }
        let pubSub = node.pubSub
        app.directory.withState { state in
            app.carryOut(
                state.signOut(identity: user.identity, watchlist: user.watchlist), countChanged: nil, pubSub: pubSub)
        }
    }

    /// Right after `connection_established`: the app's sign-in timeout, if it has one (§13.5).
    func startUserAuthenticationTimer(app: AppContext, context: ChannelHandlerContext) {
        guard
            let deadline = stateMachine.startUserAuthenticationTimeout(
                seconds: app.application.userAuthenticationTimeout, now: context.eventLoop.now)
        else { return }
        userAuthenticationTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            [weak self] in
            guard let self, let context = self.context else { return }
            self.userAuthenticationTimer = nil
            guard self.stateMachine.userAuthenticationTimerFired(now: context.eventLoop.now) else { return }
            self.log(.debug, "Closing connection: not signed in within the timeout")
            self.fail(.userAuthenticationTimeout)
            self.flushPending()
        }
    }

    func cancelUserAuthenticationTimer() {
        userAuthenticationTimer?.cancel()
        userAuthenticationTimer = nil
    }
}
