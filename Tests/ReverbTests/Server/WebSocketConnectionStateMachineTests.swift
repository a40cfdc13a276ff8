import NIOCore
import NIOWebSocket
import Testing

@testable import Reverb

/// The connection's rules with explicit times (`protocol.md` §1.3, §1.5, §9; `style.md` §4.3).
@Suite("WebSocket connection state machine")
struct WebSocketConnectionStateMachineTests {
    typealias StateMachine = WebSocketConnectionHandler.StateMachine

    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func at(seconds: Double) -> NIODeadline {
        start + .nanoseconds(Int64(seconds * 1e9))
    }

    /// `#require` for the result of a mutating call (the macro cannot capture one).
    static func unwrap<T>(_ value: T?, sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
        try #require(value, sourceLocation: sourceLocation)
    }

    /// An open state machine, opened at `start`.
    static func opened() -> StateMachine {
        var machine = StateMachine()
        let action = machine.open(now: start, appFound: true, reserveSlot: { true }, originAllowed: { true })
        precondition(action == .establish)
        return machine
    }

    // MARK: Opening sequence

    /// One opening with the given check results: its action, the checks evaluated, the state after.
    static func opening(appFound: Bool, slot: Bool, origin: Bool) -> (
        StateMachine.OpenAction, [String], StateMachine.State
    ) {
        var calls: [String] = []
        var machine = StateMachine()
        let action = machine.open(
            now: start, appFound: appFound,
            reserveSlot: {
                calls.append("slot")
                return slot
            },
            originAllowed: {
                calls.append("origin")
                return origin
            })
        return (action, calls, machine.state)
    }

    @Test("§1.3 the checks run in order and stop at the first failure")
    func openingOrder() {
        let noApp = Self.opening(appFound: false, slot: true, origin: true)
        #expect(noApp == (.fail(.applicationDoesNotExist), [], .opening))
        let overQuota = Self.opening(appFound: true, slot: false, origin: true)
        #expect(overQuota == (.fail(.overConnectionQuota), ["slot"], .opening))
        let badOrigin = Self.opening(appFound: true, slot: true, origin: false)
        #expect(badOrigin == (.fail(.originNotAllowed), ["slot", "origin"], .opening))
        let established = Self.opening(appFound: true, slot: true, origin: true)
        #expect(established == (.establish, ["slot", "origin"], .open))
        var machine = Self.opened()
        #expect(machine.open(now: Self.start, appFound: true, reserveSlot: { true }, originAllowed: { true }) == .none)
    }

    @Test("§1.5 a failed opening closes with the error's code; the reserved slot is released once")
    func failedOpeningReleasesSlot() throws {
        var machine = StateMachine()
        _ = machine.open(now: Self.start, appFound: true, reserveSlot: { true }, originAllowed: { false })
        let close = try Self.unwrap(
            machine.close(code: WebSocketErrorCode(codeNumber: 4009), reason: "Origin not allowed", now: Self.start))
        #expect(close.code == WebSocketErrorCode(codeNumber: 4009))
        #expect(close.teardown == StateMachine.Teardown(unregister: false, releaseConnectionSlot: true))
        #expect(machine.channelInactive() == StateMachine.Teardown())
        #expect(machine.handlerRemoved() == StateMachine.Teardown())
    }

    @Test("§1.3 over quota holds no slot: nothing to release")
    func overQuotaReleasesNothing() throws {
        var machine = StateMachine()
        _ = machine.open(now: Self.start, appFound: true, reserveSlot: { false }, originAllowed: { true })
        let close = try Self.unwrap(
            machine.close(code: WebSocketErrorCode(codeNumber: 4004), reason: "", now: Self.start))
        #expect(close.teardown == StateMachine.Teardown())
    }

    @Test("§1.5 the slot and registration are released exactly once, whichever ending comes first")
    func releasedExactlyOnce() throws {
        let everything = StateMachine.Teardown(unregister: true, releaseConnectionSlot: true)
        // Our Close first.
        var machine = Self.opened()
        #expect(try Self.unwrap(machine.close(code: .goingAway, reason: "", now: Self.start)).teardown == everything)
        #expect(machine.channelInactive() == StateMachine.Teardown())
        #expect(machine.handlerRemoved() == StateMachine.Teardown())
        // TCP closed first.
        machine = Self.opened()
        #expect(machine.channelInactive() == everything)
        #expect(machine.close(code: .goingAway, reason: "", now: Self.start) == nil)
        #expect(machine.handlerRemoved() == StateMachine.Teardown())
        // Handler removed first.
        machine = Self.opened()
        #expect(machine.handlerRemoved() == everything)
        #expect(machine.channelInactive() == StateMachine.Teardown())
    }

    // MARK: States and frames

    @Test("frames: ignored while opening and closed; after our Close only the client's Close counts")
    func framesByState() throws {
        var machine = StateMachine()
        #expect(machine.frameReceived(opcode: .text, now: Self.start) == .ignore)
        machine = Self.opened()
        #expect(machine.frameReceived(opcode: .text, now: Self.start) == .process)
        _ = try Self.unwrap(machine.close(code: .normalClosure, reason: "", now: Self.start))
        #expect(machine.state == .closing)
        #expect(machine.close(code: .normalClosure, reason: "", now: Self.start) == nil)
        #expect(machine.frameReceived(opcode: .text, now: Self.start) == .ignore)
        #expect(machine.frameReceived(opcode: .ping, now: Self.start) == .ignore)
        #expect(machine.frameReceived(opcode: .connectionClose, now: Self.start) == .closeChannel)
        _ = machine.channelInactive()
        #expect(machine.state == .closed)
        #expect(machine.frameReceived(opcode: .connectionClose, now: Self.start) == .ignore)
    }

    // MARK: Keep-alive

    @Test("§9 idle for ping_interval → pusher:ping; the next sweep with no activity prunes")
    func pingThenPrune() {
        var machine = Self.opened()
        let interval = TimeAmount.seconds(60)
        #expect(machine.sweep(now: Self.at(seconds: 59.999), pingInterval: interval) == .none)
        #expect(machine.sweep(now: Self.at(seconds: 60), pingInterval: interval) == .ping(controlFrame: false))
        #expect(machine.sweep(now: Self.at(seconds: 120), pingInterval: interval) == .prune)
    }

    @Test("§9 any frame resets activity and clears the ping mark")
    func activityResets() {
        var machine = Self.opened()
        let interval = TimeAmount.seconds(10)
        #expect(machine.sweep(now: Self.at(seconds: 10), pingInterval: interval) == .ping(controlFrame: false))
        #expect(machine.frameReceived(opcode: .binary, now: Self.at(seconds: 15)) == .process)
        #expect(machine.sweep(now: Self.at(seconds: 20), pingInterval: interval) == .none)
        #expect(machine.sweep(now: Self.at(seconds: 25), pingInterval: interval) == .ping(controlFrame: false))
        #expect(machine.frameReceived(opcode: .text, now: Self.at(seconds: 26)) == .process)
        #expect(machine.sweep(now: Self.at(seconds: 30), pingInterval: interval) == .none)
    }

    @Test(
        "§9 a ping or pong control frame from the client switches to control-frame pings",
        arguments: [
            WebSocketOpcode.ping, .pong,
        ])
    func controlFramePings(opcode: WebSocketOpcode) {
        var machine = Self.opened()
        #expect(!machine.controlFramePings)
        _ = machine.frameReceived(opcode: opcode, now: Self.start)
        #expect(machine.controlFramePings)
        #expect(machine.sweep(now: Self.at(seconds: 1), pingInterval: .seconds(1)) == .ping(controlFrame: true))
    }

    @Test("§9 sweeps do nothing unless open")
    func sweepOnlyWhenOpen() {
        var machine = StateMachine()
        #expect(machine.sweep(now: Self.at(seconds: 100), pingInterval: .seconds(1)) == .none)
        machine = Self.opened()
        _ = machine.close(code: .goingAway, reason: "", now: Self.start)
        #expect(machine.sweep(now: Self.at(seconds: 100), pingInterval: .seconds(1)) == .none)
    }

    // MARK: Close handshake

    @Test("§1.5 after our Close, TCP closes at the 1 s timeout")
    func closeTimeout() throws {
        var machine = Self.opened()
        let close = try Self.unwrap(machine.close(code: .policyViolation, reason: "x", now: Self.at(seconds: 3)))
        #expect(close.closeTimeout == Self.at(seconds: 4))
        #expect(!close.restartTimeoutWhenWritten)
        #expect(machine.closeTimeoutFired(now: Self.at(seconds: 3.999)) == false)
        #expect(machine.closeFrameWritten(now: Self.at(seconds: 3.5)) == nil)
        #expect(machine.closeTimeoutFired(now: Self.at(seconds: 4)) == true)
        #expect(machine.closeTimeoutFired(now: Self.at(seconds: 5)) == false)
    }

    @Test("the close timer does nothing once TCP is closed")
    func closeTimeoutAfterInactive() throws {
        var machine = Self.opened()
        _ = try Self.unwrap(machine.close(code: .policyViolation, reason: "x", now: Self.start))
        _ = machine.channelInactive()
        #expect(machine.closeTimeoutFired(now: Self.at(seconds: 10)) == false)
    }

    // MARK: Slow consumer

    @Test("§4.3 unwritable stops reading and starts the 5 s grace; writable again resumes and cancels it")
    func writabilityToggles() {
        var machine = Self.opened()
        let off = machine.writabilityChanged(isWritable: false, now: Self.at(seconds: 2))
        #expect(off == .init(autoRead: false, slowConsumerTimer: .start(Self.at(seconds: 7))))
        #expect(!machine.isWritable)
        #expect(machine.broadcastDropped(now: Self.at(seconds: 3)) == .none)
        let on = machine.writabilityChanged(isWritable: true, now: Self.at(seconds: 4))
        #expect(on == .init(autoRead: true, slowConsumerTimer: .cancel))
        #expect(machine.isWritable)
        #expect(machine.slowConsumerTimerFired(now: Self.at(seconds: 7)) == nil)
        #expect(machine.state == .open)
    }

    @Test("§1.5 unwritable for the whole grace → Close 4100 Over capacity; timeout restarts when the Close is written")
    func slowConsumerCloses() throws {
        var machine = Self.opened()
        _ = machine.writabilityChanged(isWritable: false, now: Self.at(seconds: 2))
        #expect(machine.slowConsumerTimerFired(now: Self.at(seconds: 6.999)) == nil)
        let close = try Self.unwrap(machine.slowConsumerTimerFired(now: Self.at(seconds: 7)))
        #expect(close.code == WebSocketErrorCode(codeNumber: 4100))
        #expect(close.reason == "Over capacity")
        #expect(close.teardown == StateMachine.Teardown(unregister: true, releaseConnectionSlot: true))
        // Bounded by the grace period while the Close waits behind what the client has not read.
        #expect(close.restartTimeoutWhenWritten)
        #expect(close.closeTimeout == Self.at(seconds: 13))
        #expect(machine.state == .closing)
        #expect(machine.closeTimeoutFired(now: Self.at(seconds: 9)) == false)
        #expect(machine.closeFrameWritten(now: Self.at(seconds: 9)) == Self.at(seconds: 10))
        #expect(machine.closeFrameWritten(now: Self.at(seconds: 9.5)) == nil)
        #expect(machine.closeTimeoutFired(now: Self.at(seconds: 10)) == true)
    }

    @Test("§4.3 a dropped broadcast starts the grace when no timer runs")
    func dropStartsGrace() throws {
        // Unwritable before the connection opened: no grace then, so the first drop starts it.
        var machine = StateMachine()
        #expect(machine.writabilityChanged(isWritable: false, now: Self.start).slowConsumerTimer == .none)
        _ = machine.open(now: Self.start, appFound: true, reserveSlot: { true }, originAllowed: { true })
        #expect(machine.broadcastDropped(now: Self.at(seconds: 1)) == .start(Self.at(seconds: 6)))
        #expect(machine.broadcastDropped(now: Self.at(seconds: 2)) == .none)
        let close = try Self.unwrap(machine.slowConsumerTimerFired(now: Self.at(seconds: 6)))
        #expect(close.code == WebSocketErrorCode(codeNumber: 4100))
        // Closing: no new grace.
        #expect(machine.broadcastDropped(now: Self.at(seconds: 7)) == .none)
    }

    @Test("§4.3 the grace is not started after the connection ends")
    func graceOnlyWhenOpen() {
        var machine = Self.opened()
        _ = machine.channelInactive()
        let action = machine.writabilityChanged(isWritable: false, now: Self.start)
        #expect(action == .init(autoRead: false, slowConsumerTimer: .none))
    }
}

/// `user_authentication_timeout` (`protocol.md` §13.5) with explicit times.
@Suite("WebSocket connection state machine: sign-in timeout")
struct UserAuthenticationTimeoutTests {
    typealias Machine = WebSocketConnectionStateMachineTests

    @Test("off at 0; fires at T unless a sign-in succeeded; never after our Close")
    func timeout() throws {
        var off = Machine.opened()
        let none = off.startUserAuthenticationTimeout(seconds: 0, now: Machine.start)
        #expect(none == nil)

        var machine = Machine.opened()
        let deadline = try Machine.unwrap(machine.startUserAuthenticationTimeout(seconds: 3, now: Machine.start))
        #expect(deadline == Machine.at(seconds: 3))
        let early = machine.userAuthenticationTimerFired(now: Machine.at(seconds: 2.9))
        let onTime = machine.userAuthenticationTimerFired(now: Machine.at(seconds: 3))
        let again = machine.userAuthenticationTimerFired(now: Machine.at(seconds: 4))
        #expect(!early && onTime && !again, "fires once, at the deadline")

        var signedIn = Machine.opened()
        _ = signedIn.startUserAuthenticationTimeout(seconds: 3, now: Machine.start)
        let cancel = signedIn.signInSucceeded()
        let fired = signedIn.userAuthenticationTimerFired(now: Machine.at(seconds: 3))
        let cancelAgain = signedIn.signInSucceeded()
        #expect(cancel && !fired && !cancelAgain)

        var closing = Machine.opened()
        _ = closing.startUserAuthenticationTimeout(seconds: 3, now: Machine.start)
        _ = closing.close(code: .normalClosure, reason: "", now: Machine.at(seconds: 1))
        let afterClose = closing.userAuthenticationTimerFired(now: Machine.at(seconds: 3))
        #expect(!afterClose)
    }

    @Test("a huge timeout is clamped instead of trapping")
    func huge() throws {
        var machine = Machine.opened()
        let deadline = try Machine.unwrap(machine.startUserAuthenticationTimeout(seconds: .max, now: Machine.start))
        #expect(deadline > Machine.at(seconds: 3e9))
    }
}
