import NIOConcurrencyHelpers
import NIOCore

/// One WebSocket frame as it travelled on the wire (never reassembled).
struct WebSocketFrame: Sendable, Equatable, CustomStringConvertible {
    static let continuation: UInt8 = 0x0
    static let text: UInt8 = 0x1
    static let binary: UInt8 = 0x2
    static let close: UInt8 = 0x8
    static let ping: UInt8 = 0x9
    static let pong: UInt8 = 0xA

    var fin: Bool
    var rsv: UInt8
    var opcode: UInt8
    var masked: Bool
    var payload: [UInt8]

    /// The payload as UTF-8 text, for text frames only.
    var text: String? {
        opcode == Self.text ? String(validating: payload, as: UTF8.self) : nil
    }

    /// The status code of a Close frame with a payload.
    var closeCode: UInt16? {
        guard opcode == Self.close, payload.count >= 2 else { return nil }
        return UInt16(payload[0]) << 8 | UInt16(payload[1])
    }

    /// The reason of a Close frame (empty when there is none).
    var closeReason: String? {
        guard opcode == Self.close else { return nil }
        return String(decoding: payload.dropFirst(2), as: UTF8.self)
    }

    var description: String {
        let name: String
        switch opcode {
        case Self.text: name = "text \(String(decoding: payload, as: UTF8.self))"
        case Self.binary: name = "binary \(payload.count) bytes"
        case Self.close: name = "close \(closeCode.map(String.init) ?? "-") \(closeReason ?? "")"
        case Self.ping: name = "ping \(payload)"
        case Self.pong: name = "pong \(payload)"
        default: name = "opcode \(opcode) \(payload.count) bytes"
        }
        return "[\(fin ? "fin " : "")\(rsv != 0 ? "rsv\(rsv) " : "")\(name)]"
    }
}

/// A raw HTTP response head, headers kept in wire order.
struct RawHTTPResponse: Sendable, CustomStringConvertible {
    struct Field: Sendable, Equatable {
        var name: String
        var value: String
    }

    var statusLine: String
    var status: Int
    var headers: [Field]
    /// Filled by `RawHTTP` once the body has been read; empty for upgrades.
    var body: [UInt8] = []

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// Values of a header, case-insensitive name, in order.
    func values(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    var description: String {
        ([statusLine] + headers.map { "\($0.name): \($0.value)" }).joined(separator: "\n") + "\n\n" + bodyText
    }
}

/// What a raw client observed, in order.
enum ClientEvent: Sendable, CustomStringConvertible {
    case response(RawHTTPResponse)
    case frame(WebSocketFrame)
    case body([UInt8])
    /// The TCP connection ended (sticky: every later read returns it again).
    case eof

    var description: String {
        switch self {
        case .response(let response): return "response \(response.statusLine)"
        case .frame(let frame): return "frame \(frame)"
        case .body(let bytes): return "body \(String(decoding: bytes, as: UTF8.self))"
        case .eof: return "TCP closed"
        }
    }
}

/// A queue between the client's event loop and the test task: one reader at a time, with a timeout.
final class ClientInbox: Sendable {
    private struct State {
        var items: [ClientEvent] = []
        var head = 0
        var ended = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<ClientEvent?, Never>)?
        var nextWaiterID: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())

    func push(_ event: ClientEvent) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<ClientEvent?, Never>? in
            if state.ended { return nil }
            if case .eof = event { state.ended = true }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter.continuation
            }
            state.items.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    /// The next event, or nil when nothing arrived within `timeout`.
    func next(timeout: TimeAmount, on eventLoop: any EventLoop) async -> ClientEvent? {
        await withCheckedContinuation { (continuation: CheckedContinuation<ClientEvent?, Never>) in
            let waiting = state.withLockedValue { state -> UInt64? in
                if state.head < state.items.count {
                    let event = state.items[state.head]
                    state.head += 1
                    continuation.resume(returning: event)
                    return nil
                }
                if state.ended {
                    continuation.resume(returning: .eof)
                    return nil
                }
                precondition(state.waiter == nil, "one reader at a time")
                state.nextWaiterID += 1
                state.waiter = (state.nextWaiterID, continuation)
                return state.nextWaiterID
            }
            guard let id = waiting else { return }
            eventLoop.scheduleTask(in: timeout) { self.expire(id) }
        }
    }

    private func expire(_ id: UInt64) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<ClientEvent?, Never>? in
            guard let waiter = state.waiter, waiter.id == id else { return nil }
            state.waiter = nil
            return waiter.continuation
        }
        waiter?.resume(returning: nil)
    }
}
