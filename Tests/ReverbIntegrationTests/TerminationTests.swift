import NIOCore
import Reverb
import Testing

@Suite("Connections ended or counted through the HTTP API (protocol.md §1.5, http-api.md §3.6–3.7)")
struct TerminationTests {
    @Test(
        "§1.5 terminate_connections closes the user's sockets with 1008 Connection terminated; peers get member_removed"
    )
    func terminateUserConnections() async throws {
        try await withTestServer { server in
            let observer = try await server.connect()
            try await observer.joinPresence("presence-room", channelData: #"{"user_id":"obs"}"#)
            _ = try await observer.nextText()
            let target = try await server.connect()
            try await target.joinPresence("presence-room", channelData: #"{"user_id":42}"#)
            _ = try await target.nextText()
            try await observer.expectText(
                PusherFrames.internalEvent(
                    "pusher_internal:member_added", inner: #"{"user_id":42}"#, channel: "presence-room"))
            let privateTarget = try await server.connect()
            let channelData = #"{"user_id":"42"}"#
            try await privateTarget.subscribe(
                "private-x", auth: privateTarget.auth("private-x", channelData: channelData), channelData: channelData)
            try await privateTarget.expectSubscribed("private-x")
            // A public channel's channel_data gives no identity (§4.2 step 4).
            let spoofer = try await server.connect()
            try await spoofer.subscribe("public", channelData: #"{"user_id":42}"#)
            try await spoofer.expectSubscribed("public")

            let response = try await server.api("POST", "/apps/123456/users/42/terminate_connections", body: "{}")
            #expect(response.status == 200, "\(response)")
            #expect(response.bodyText == "{}")
            try await target.expectClose(code: 1008, reason: "Connection terminated")
            try await privateTarget.expectClose(code: 1008, reason: "Connection terminated")
            try await observer.expectText(
                PusherFrames.internalEvent(
                    "pusher_internal:member_removed", inner: #"{"user_id":42}"#, channel: "presence-room"))
            try await spoofer.sync()
            try await observer.sync()
        }
    }

    @Test("§1.3 every open socket counts, subscribed or not, until it closes (GET /connections)")
    func connectionCount() async throws {
        try await withTestServer { server in
            func count() async throws -> String {
                try await server.api("GET", "/apps/123456/connections").bodyText
            }
            #expect(try await count() == #"{"connections":0}"#)
            let a = try await server.connect()
            let b = try await server.connect()
            try await b.subscribePublic("x")
            #expect(try await count() == #"{"connections":2}"#)
            try await a.sendClose(code: 1000)
            try await a.expectClose(code: 1000, reason: "", echo: false)
            try await a.expectTCPClose()
            #expect(try await count() == #"{"connections":1}"#)
            // Refused sockets never count.
            let refused = try await server.upgrade(key: "nope")
            try await refused.expectError(4001, "Application does not exist")
            #expect(try await count() == #"{"connections":1}"#)
        }
    }
}
