import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import Testing

@testable import Reverb

/// The debug console's bounds and the tap that feeds it (docs.md "Dashboard").
@Suite struct DebugStreamTests {
    @Test func bufferDropsPastItsBoundAndCountsThem() {
        var buffer = DebugStreamBuffer(capacity: 3)
        for index in 0..<5 { buffer.push("e\(index)") }
        let (events, dropped) = buffer.drain()
        #expect(events == ["e0", "e1", "e2"] && dropped == 2)
        #expect(buffer.drain() == ([], 0))
        buffer.push("e5")
        #expect(buffer.pending == ["e5"])
        #expect(buffer.droppedTotal == 2)
    }

    @Test func watcherIsBounded() {
        let watcher = DebugWatcher(capacity: 2)
        for index in 0..<4 { watcher.offer("\(index)") }
        #expect(watcher.drain() == (["0", "1"], 2))
        #expect(watcher.droppedTotal == 2)
    }

    @Test func nothingIsBuiltWhileNobodyWatches() {
        let tap = DebugTap()
        let built = Atomic<Int>(0)
        tap.record {
            built.add(1, ordering: .relaxed)
            return DebugEvent(.subscribed)
        }
        #expect(!tap.isActive && built.load(ordering: .relaxed) == 0)
        let watcher = DebugWatcher()
        tap.add(watcher)
        tap.record {
            built.add(1, ordering: .relaxed)
            return DebugEvent(.subscribed, socketID: "1.2", channels: ["c"])
        }
        #expect(built.load(ordering: .relaxed) == 1)
        let (events, _) = watcher.drain()
        #expect(events.count == 1 && events[0].contains(#""kind":"subscribed""#) && events[0].contains(#""c""#))
        tap.remove(watcher)
        #expect(!tap.isActive)
        tap.record {
            built.add(1, ordering: .relaxed)
            return DebugEvent(.subscribed)
        }
        #expect(built.load(ordering: .relaxed) == 1)
    }

    @Test func aRemoteWatchForwardsUntilItGoesStale() {
        let now = NIOLockedValueBox(NIODeadline.uptimeNanoseconds(1_000_000_000))
        let tap = DebugTap(clock: { now.withLockedValue { $0 } })
        let forwarded = NIOLockedValueBox<[String]>([])
        // Without a bus, a remote watch means nothing.
        tap.remoteWatchHeard()
        #expect(!tap.isActive)
        tap.connect(node: "n1") { text in forwarded.withLockedValue { $0.append(text) } }
        tap.remoteWatchHeard()
        #expect(tap.isActive)
        tap.record { DebugEvent(.apiEvent, channels: ["c"], event: "e", data: "{}") }
        #expect(forwarded.withLockedValue { $0.count } == 1)
        #expect(forwarded.withLockedValue { $0[0] }.contains(#""node":"n1""#))
        now.withLockedValue { $0 = $0 + DebugTap.remoteWatchLifetime }
        tap.record { DebugEvent(.apiEvent) }
        #expect(forwarded.withLockedValue { $0.count } == 1)
        #expect(!tap.isActive)
    }

    @Test func previewsAreCutOnACharacterBoundary() {
        let long = String(repeating: "é", count: 400)
        let preview = DebugEvent(.apiEvent, data: long).data!
        #expect(preview.hasSuffix("…"))
        #expect(preview.dropLast().utf8.count <= DebugEvent.previewBytes)
        #expect(DebugEvent(.apiEvent, data: "short").data == "short")
    }
}
