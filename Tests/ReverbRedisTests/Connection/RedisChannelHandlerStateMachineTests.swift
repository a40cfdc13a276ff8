import NIOCore
import Testing

@testable import ReverbRedis

/// The handler's rules without a socket: commands are named by an `Int` instead of a promise, and the
/// health check is driven by calling `healthCheckTick()` where the handler's timer would fire.
@Suite("RedisChannelHandler.StateMachine")
struct RedisChannelHandlerStateMachineTests {
    typealias Machine = RedisChannelHandler.StateMachine<Int>

    private func makeMachine(pingInterval: TimeAmount? = .seconds(10)) -> Machine {
        Machine(peer: "127.0.0.1:6379", pingInterval: pingInterval)
    }

    private func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    private func push(_ parts: String...) -> RESPValue { .array(parts.map(bulk)) }

    private func confirmation(_ kind: String, _ channel: String, _ count: Int64) -> RESPValue {
        .array([bulk(kind), bulk(channel), .integer(count)])
    }

    private func message(_ channel: String, _ payload: String) -> Machine.Action {
        .deliver(RedisPubSubMessage(channel: channel, payload: ByteBuffer(string: payload)))
    }

    @Test("pipelined replies complete commands in the order they were sent")
    func pipelinedReplies() {
        var machine = makeMachine()
        #expect(machine.commandSent(expectedReplies: 1, promise: 1) == .write)
        #expect(machine.commandSent(expectedReplies: 1, promise: 2) == .write)
        #expect(machine.replyDecoded(.simpleString("OK")) == .succeed(1, .simpleString("OK")))
        #expect(machine.replyDecoded(.integer(3)) == .succeed(2, .integer(3)))
        #expect(machine.replyDecoded(.integer(4)) == .logUnexpected(.integer(4)))
    }

    @Test("SUBSCRIBE to N channels completes after N confirmations, as one array")
    func multiReplySubscribe() {
        var machine = makeMachine()
        #expect(!machine.isSubscribed)
        #expect(machine.commandSent(expectedReplies: 3, promise: 1) == .write)
        #expect(machine.replyDecoded(confirmation("subscribe", "a", 1)) == .none)
        #expect(machine.isSubscribed)
        #expect(machine.replyDecoded(confirmation("subscribe", "b", 2)) == .none)
        #expect(
            machine.replyDecoded(confirmation("subscribe", "c", 3))
                == .succeed(
                    1,
                    .array([
                        confirmation("subscribe", "a", 1), confirmation("subscribe", "b", 2),
                        confirmation("subscribe", "c", 3),
                    ])))
    }

    @Test("a one-channel SUBSCRIBE completes with the confirmation itself")
    func singleSubscribe() {
        var machine = makeMachine()
        #expect(machine.commandSent(expectedReplies: 1, promise: 7) == .write)
        #expect(
            machine.replyDecoded(confirmation("subscribe", "a", 1)) == .succeed(7, confirmation("subscribe", "a", 1)))
    }

    @Test("pushes interleaved with confirmations are delivered, not matched to a command")
    func interleavedPushes() {
        var machine = makeMachine()
        #expect(machine.commandSent(expectedReplies: 2, promise: 1) == .write)
        #expect(machine.replyDecoded(confirmation("subscribe", "a", 1)) == .none)
        #expect(machine.replyDecoded(push("message", "a", "first")) == message("a", "first"))
        #expect(machine.replyDecoded(push("pmessage", "a*", "ab", "second")) == message("ab", "second"))
        #expect(machine.commandSent(expectedReplies: 1, promise: 2) == .write)
        #expect(
            machine.replyDecoded(confirmation("subscribe", "b", 2))
                == .succeed(1, .array([confirmation("subscribe", "a", 1), confirmation("subscribe", "b", 2)])))
        #expect(machine.replyDecoded(push("message", "b", "third")) == message("b", "third"))
        #expect(machine.replyDecoded(push("pong", "")) == .succeed(2, push("pong", "")))
    }

    @Test("a message-shaped reply before any subscription answers a command")
    func messageShapeUnsubscribed() {
        var machine = makeMachine()
        #expect(machine.commandSent(expectedReplies: 1, promise: 1) == .write)
        #expect(machine.replyDecoded(push("message", "a", "b")) == .succeed(1, push("message", "a", "b")))
    }

    @Test("UNSUBSCRIBE down to zero subscriptions ends pub/sub mode")
    func unsubscribeToZero() {
        var machine = makeMachine()
        _ = machine.commandSent(expectedReplies: 1, promise: 1)
        _ = machine.replyDecoded(confirmation("subscribe", "a", 1))
        #expect(machine.commandSent(expectedReplies: 1, promise: 2) == .write)
        #expect(
            machine.replyDecoded(confirmation("unsubscribe", "a", 0))
                == .succeed(2, confirmation("unsubscribe", "a", 0)))
        #expect(!machine.isSubscribed)
        #expect(machine.replyDecoded(push("message", "a", "late")) == .logUnexpected(push("message", "a", "late")))
    }

    @Test("an error reply completes its command at once, even one expecting several replies")
    func errorReplies() {
        var machine = makeMachine()
        #expect(machine.commandSent(expectedReplies: 2, promise: 1) == .write)
        #expect(machine.commandSent(expectedReplies: 1, promise: 2) == .write)
        #expect(machine.replyDecoded(.error("ERR unknown command")) == .succeed(1, .error("ERR unknown command")))
        #expect(machine.replyDecoded(.simpleString("PONG")) == .succeed(2, .simpleString("PONG")))
    }

    @Test("fire-and-forget commands: error replies are logged, others dropped")
    func fireAndForget() {
        var machine = makeMachine()
        #expect(machine.commandSent(expectedReplies: 1, promise: nil) == .write)
        #expect(machine.commandSent(expectedReplies: 1, promise: nil) == .write)
        #expect(machine.replyDecoded(.integer(1)) == .none)
        #expect(machine.replyDecoded(.error("READONLY replica")) == .logRefused("READONLY replica"))
    }

    @Test("health check: each answered PING allows the next; +PONG and the subscribed pong array both count")
    func healthCheckAnswered() {
        var machine = makeMachine()
        #expect(machine.healthCheckTick() == .sendPing)
        #expect(machine.replyDecoded(.simpleString("PONG")) == .none)
        #expect(machine.healthCheckTick() == .sendPing)
        #expect(machine.replyDecoded(.simpleString("PONG")) == .none)
        _ = machine.commandSent(expectedReplies: 1, promise: 1)
        _ = machine.replyDecoded(confirmation("subscribe", "a", 1))
        #expect(machine.healthCheckTick() == .sendPing)
        #expect(machine.replyDecoded(push("message", "a", "x")) == message("a", "x"))
        #expect(machine.replyDecoded(push("pong", "")) == .none)
        #expect(machine.healthCheckTick() == .sendPing)
    }

    @Test("health-check PING queues behind commands already sent")
    func healthCheckOrder() {
        var machine = makeMachine()
        _ = machine.commandSent(expectedReplies: 1, promise: 1)
        #expect(machine.healthCheckTick() == .sendPing)
        _ = machine.commandSent(expectedReplies: 1, promise: 2)
        #expect(machine.replyDecoded(.integer(1)) == .succeed(1, .integer(1)))
        #expect(machine.replyDecoded(.simpleString("PONG")) == .none)
        #expect(machine.replyDecoded(.integer(2)) == .succeed(2, .integer(2)))
        #expect(machine.healthCheckTick() == .sendPing)
    }

    @Test("a PING still unanswered at the next tick closes; waiting commands fail with that reason")
    func healthCheckTimeout() {
        var machine = makeMachine(pingInterval: .milliseconds(1500))
        _ = machine.commandSent(expectedReplies: 1, promise: 1)
        #expect(machine.healthCheckTick() == .sendPing)
        let reason = RedisConnectionError(
            .connectionClosed, "Redis at 127.0.0.1:6379 did not answer PING within 1500 ms")
        #expect(machine.healthCheckTick() == .close(reason))
        #expect(machine.closeReason == reason)
        #expect(machine.healthCheckTick() == .none)
        #expect(machine.commandSent(expectedReplies: 1, promise: 2) == .fail(2, reason))
        #expect(machine.connectionClosed() == .failAll([1], reason))
        #expect(machine.healthCheckTick() == .none)
        #expect(machine.commandSent(expectedReplies: 1, promise: nil) == .fail(nil, reason))
    }

    @Test("the peer closing fails waiting commands, not the health check or fire-and-forget ones")
    func peerClosed() {
        var machine = makeMachine()
        _ = machine.commandSent(expectedReplies: 2, promise: 1)
        _ = machine.replyDecoded(confirmation("subscribe", "a", 1))
        _ = machine.commandSent(expectedReplies: 1, promise: nil)
        _ = machine.healthCheckTick()
        _ = machine.commandSent(expectedReplies: 1, promise: 2)
        let reason = RedisConnectionError(.connectionClosed, "Redis at 127.0.0.1:6379 closed the connection")
        #expect(machine.connectionClosed() == .failAll([1, 2], reason))
        #expect(machine.connectionClosed() == .none)
        #expect(machine.commandSent(expectedReplies: 1, promise: 3) == .fail(3, reason))
    }

    @Test("a corrupt stream or a pipeline error closes once; the first reason is kept")
    func firstReasonWins() {
        var machine = makeMachine()
        _ = machine.commandSent(expectedReplies: 1, promise: 1)
        let corrupt = RedisConnectionError(
            .protocolError, "Invalid reply from Redis at 127.0.0.1:6379: Protocol error, got \"x\" as reply type byte")
        #expect(machine.decodeFailed(#"Protocol error, got "x" as reply type byte"#) == .close(corrupt))
        #expect(machine.errorCaught(RedisConnectionError(.connectionClosed, "reset")) == .none)
        #expect(machine.connectionClosed() == .failAll([1], corrupt))

        var tls = makeMachine()
        let handshake = RedisConnectionError(.connectFailed, "TLS with Redis failed")
        #expect(tls.errorCaught(handshake) == .close(handshake))
        #expect(tls.connectionClosed() == .failAll([], handshake))
    }

    @Test("the unanswered-PING reason names whole-second intervals in s")
    func describesWholeSeconds() {
        var machine = makeMachine(pingInterval: .seconds(10))
        _ = machine.healthCheckTick()
        #expect(
            machine.healthCheckTick()
                == .close(
                    RedisConnectionError(.connectionClosed, "Redis at 127.0.0.1:6379 did not answer PING within 10 s")))
    }
}
