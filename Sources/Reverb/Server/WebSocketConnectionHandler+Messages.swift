import Logging
import NIOCore
import NIOWebSocket

/// Pusher messages: `protocol.md` §2 (processing), §4 (subscriptions), §7 (client events), §10 (rate
/// limit); sign-in (§13) is in `WebSocketConnectionHandler+Users.swift`.
extension WebSocketConnectionHandler {
    /// - Parameter now: the event loop's time when the message's last frame was read.
    func handleMessage(_ payload: ByteBuffer, isText: Bool, now: NIODeadline) {
        guard let app else { return }
        countReceived(payloadBytes: payload.readableBytes, app: app)
        let parsed = ClientMessage.parse(payload.readableBytesView)
        // A message that parses is valid UTF-8 (the parser validates every string and accepts only
        // ASCII outside them), so the text is validated on its own only when parsing failed.
        if isText, case .failure = parsed, String(validating: payload.readableBytesView, as: UTF8.self) == nil {
            return close(code: .dataInconsistentWithMessage, reason: "Invalid UTF-8 in text message")
        }
        if rateLimiter?.admit(now: now) == false {
            sendError(.rateLimitExceeded)
            if app.application.rateLimiting.terminateOnLimit {
                close(code: .policyViolation, reason: "Rate limit exceeded")
            }
            return
        }
        log(.debug, "Message received", ["message": "\(String(buffer: payload))"])
        switch parsed {
        case .failure(let error):
            sendError(error)
        case .success(let message):
            handle(message, app: app)
        }
    }

    private func handle(_ message: ClientMessage, app: AppContext) {
        switch message {
        case .ping:
            send(PusherFrames.pong)
        case .pong, .ignored:
            break
        case .connectionEstablished:
            send(
                PusherFrames.connectionEstablished(socketID: socketID, activityTimeout: app.application.activityTimeout)
            )
        case .subscribe(let channel, let auth, let channelData):
            subscribe(channel: channel, auth: auth, channelData: channelData, app: app)
        case .unsubscribe(let channel):
            unsubscribe(channel: channel, app: app)
        case .clientEvent(let name, let channel, let data):
            clientEvent(name: name, channel: channel, data: data, app: app)
        case .signIn(let auth, let userData):
            signIn(auth: auth, userData: userData, app: app)
        }
    }

    private func subscribe(channel: String, auth: String?, channelData: String?, app: AppContext) {
        let kind = ChannelName.kind(of: channel)
        // A signed-in socket's own user channel, and no other (§13.2); `auth` is ignored.
        if ChannelName.isServerToUser(channel) && !ownsUserChannel(channel) {
            log(.debug, "Subscription refused: not this socket's user", ["channel": "\(channel)"])
            return sendError(.unauthorized)
        }
        if kind.requiresSignature {
            guard
                ChannelAuthorization.verify(
                    auth: auth, secret: app.application.secret, socketID: socketID, channel: channel,
                    channelData: channelData)
            else {
                log(.debug, "Subscription refused: bad signature", ["channel": "\(channel)"])
                return sendError(.unauthorized)
            }
        }
        var member: PresenceMember?
        var userID: JSONValue?
        if kind.isPresence {
            guard let presenceMember = PresenceMember(channelData: channelData) else {
                return sendError(.invalidMessageFormat)
            }
            member = presenceMember
            userID = presenceMember.userID
        } else if kind.requiresSignature, let channelData,
            case .object(let object)? = try? JSONParser.parse(channelData),
            let id = object["user_id"], !id.isNull
        {
            userID = id
        }
        let now = NIODeadline.now()
        let socketID = self.socketID
        let fanout = app.fanout
        let pubSub = node.pubSub
        let isNew = subscriptions[channel] == nil
        if isNew { shardAddInterest(channel: channel, app: app) }
        let (outcome, joinedAt) = app.directory.withState { state in
            let outcome = state.subscribe(
                channel: channel, socketID: socketID, member: member, isCache: kind.isCache,
                presenceLimits: app.application.presenceLimits, now: now)
            let joinedAt = fanout.currentSequence()
            // Carried out under the lock: member events and announcements leave in the order the
            // changes happened, whichever loop made them.
            app.carryOut(outcome.changes, countChanged: outcome.countChanged ? channel : nil, pubSub: pubSub)
            return (outcome, joinedAt)
        }
        if let refusal = outcome.refused {
            if isNew { shardRemoveInterest(channel: channel, app: app) }
            log(.debug, "Subscription refused: \(refusal.message)", ["channel": "\(channel)"])
            return sendError(refusal)
        }
        subscriptions[channel] = Subscription(userID: userID)
        shardSubscribe(channel: channel, app: app, joinedAt: joinedAt)
        send(PusherFrames.subscriptionSucceeded(channel: channel, data: outcome.succeededData))
        if kind.isCache {
            if let cached = outcome.cachedFrame {
                send(cached)
            } else {
                send(PusherFrames.cacheMiss(channel: channel))
                app.webhooks?.cacheMiss(channel: channel)
            }
        }
        app.debug.record { DebugEvent(.subscribed, socketID: socketID, channels: [channel]) }
        log(.debug, "Subscribed", ["channel": "\(channel)"])
    }

    /// Leaves `channel`; nothing is sent to this connection (`protocol.md` §4.5).
    func unsubscribe(channel: String, app: AppContext) {
        guard subscriptions.removeValue(forKey: channel) != nil else { return }
        shardUnsubscribe(channel: channel, app: app)
        let now = NIODeadline.now()
        let socketID = self.socketID
        let pubSub = node.pubSub
        app.directory.withState { state in
            let outcome = state.unsubscribe(channel: channel, socketID: socketID, now: now)
            app.carryOut(outcome.changes, countChanged: outcome.wasSubscribed ? channel : nil, pubSub: pubSub)
        }
        app.debug.record { DebugEvent(.unsubscribed, socketID: socketID, channels: [channel]) }
        log(.debug, "Unsubscribed", ["channel": "\(channel)"])
    }

    private func clientEvent(name: String, channel: String, data: JSONValue?, app: AppContext) {
        // Only the server sends to a user (§13.2), whatever `accept_client_events_from` says.
        if ChannelName.isServerToUser(channel) { return sendError(.unauthorized) }
        switch app.application.acceptClientEventsFrom {
        case .members:
            guard subscriptions[channel] != nil else { return sendError(.notAMember) }
        case .all:
            break
        case .none:
            return sendError(.clientEventsDisabled)
        }
        let frame = PusherFrames.clientEvent(
            name: name, channel: channel, data: data ?? .null, userID: subscriptions[channel]?.userID)
        node.pubSub.publish(.client(frame: frame, channel: channel, except: socketID), app: app)
        app.debug.record {
            DebugEvent(
                .clientEvent, socketID: socketID, channels: [channel], event: name,
                data: JSONWriter.string(data ?? .null))
        }
        app.webhooks?.clientEvent(
            channel: channel, event: name, data: data ?? .null, socketID: socketID,
            userID: subscriptions[channel]?.userID)
    }
}
