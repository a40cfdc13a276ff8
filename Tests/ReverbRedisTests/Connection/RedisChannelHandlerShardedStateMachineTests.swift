import NIOCore
import Testing

@testable import ReverbRedis

/// Sharded pub/sub (`SSUBSCRIBE`, `SUNSUBSCRIBE`, `smessage`) in the handler's rules, without a socket.
@Suite("RedisChannelHandler.StateMachine, sharded pub/sub")
struct RedisChannelHandlerShardedStateMachineTests {
    typealias Machine = RedisChannelHandler.StateMachine<Int>

    private func makeMachine() -> Machine { Machine(peer: "127.0.0.1:7000", pingInterval: .seconds(10)) }
    private func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }
    private func confirmation(_ kind: String, _ channel: String, _ count: Int64) -> RESPValue {
        .array([bulk(kind), bulk(channel), .integer(count)])
    }

    @Test("SSUBSCRIBE confirmations answer the command, then smessage pushes are delivered")
    func ssubscribeThenSmessage() {
        var machine = makeMachine()
        #expect(
            machine.replyDecoded(.array([bulk("smessage"), bulk("a"), bulk("early")]))
                != .deliver(
                    RedisPubSubMessage(channel: "a", payload: ByteBuffer(string: "early"))))
        #expect(machine.commandSent(expectedReplies: 1, promise: 1) == .write)
        #expect(
            machine.replyDecoded(confirmation("ssubscribe", "a", 1)) == .succeed(1, confirmation("ssubscribe", "a", 1)))
        #expect(machine.isSubscribed)
        #expect(
            machine.replyDecoded(.array([bulk("smessage"), bulk("a"), bulk("hello")]))
                == .deliver(RedisPubSubMessage(channel: "a", payload: ByteBuffer(string: "hello"))))
    }

    @Test("a sunsubscribe push nobody asked for is reported, and does not answer the pending command")
    func unsolicitedSunsubscribe() {
        var machine = makeMachine()
        #expect(machine.commandSent(expectedReplies: 2, promise: 1) == .write)
        #expect(machine.replyDecoded(confirmation("ssubscribe", "a", 1)) == .none)
        #expect(machine.replyDecoded(confirmation("ssubscribe", "b", 2)) != .none)
        // A PING is waiting when the slot of "a" moves away.
        #expect(machine.commandSent(expectedReplies: 1, promise: 2) == .write)
        #expect(machine.replyDecoded(confirmation("sunsubscribe", "a", 1)) == .shardUnsubscribed("a"))
        #expect(machine.isSubscribed)
        #expect(machine.replyDecoded(.simpleString("PONG")) == .succeed(2, .simpleString("PONG")))
        // The node became a replica: its last shard channel goes too, and subscribed mode ends.
        #expect(machine.replyDecoded(confirmation("sunsubscribe", "b", 0)) == .shardUnsubscribed("b"))
        #expect(!machine.isSubscribed)
    }

    @Test("the confirmations of our own SUNSUBSCRIBE answer it, an unasked one in between is reported")
    func solicitedSunsubscribe() {
        var machine = makeMachine()
        #expect(machine.commandSent(expectedReplies: 3, promise: 1) == .write)
        for (index, channel) in ["a", "b", "c"].enumerated() {
            _ = machine.replyDecoded(confirmation("ssubscribe", channel, Int64(index + 1)))
        }
        #expect(machine.commandSent(expectedReplies: 2, promise: 2, unsubscribing: ["a", "b"]) == .write)
        #expect(machine.replyDecoded(confirmation("sunsubscribe", "a", 2)) == .none)
        #expect(machine.replyDecoded(confirmation("sunsubscribe", "c", 1)) == .shardUnsubscribed("c"))
        #expect(
            machine.replyDecoded(confirmation("sunsubscribe", "b", 0))
                == .succeed(2, .array([confirmation("sunsubscribe", "a", 2), confirmation("sunsubscribe", "b", 0)])))
        #expect(!machine.isSubscribed)
    }

    @Test("-MOVED to an SSUBSCRIBE of several channels completes it at once with the error")
    func movedCompletesTheCommand() {
        var machine = makeMachine()
        #expect(machine.commandSent(expectedReplies: 2, promise: 1) == .write)
        #expect(machine.commandSent(expectedReplies: 1, promise: 2) == .write)
        let moved = RESPValue.error("MOVED 12182 127.0.0.1:7002")
        #expect(machine.replyDecoded(moved) == .succeed(1, moved))
        #expect(machine.replyDecoded(.simpleString("PONG")) == .succeed(2, .simpleString("PONG")))
    }
}
