import NIOCore
import Testing

@testable import Reverb

/// Webhook bodies and signatures (`http-api.md` §8.1).
@Suite struct WebhookEventTests {
    @Test func signatureOfTheSpecVector() {
        let body = WebhookEvent.body([.occupied("test-channel")], timeMilliseconds: 1_700_000_000_000)
        #expect(
            String(buffer: body)
                == #"{"time_ms":1700000000000,"events":[{"name":"channel_occupied","channel":"test-channel"}]}"#)
        #expect(
            WebhookEvent.signature(of: body, secret: "7ad3773142a6692b25b8")
                == "c7f99839c5df006529a61d1236687af10fae79eb1d4e701d644fab3e9e81f5e8")
    }

    @Test func keysInTheTablesOrder() throws {
        let data = try JSONParser.parse(#"{"x":1,"y":[true,null]}"#)
        let events: [WebhookEvent] = [
            .memberAdded("presence-a", userID: "7"),
            .memberRemoved("presence-a", userID: "7"),
            .clientEvent(channel: "presence-a", event: "client-t", data: data, socketID: "1.2", userID: "7"),
            .clientEvent(channel: "private-b", event: "client-t", data: .string("plain"), socketID: "1.2", userID: nil),
            .count("c", 3),
            .cacheMiss("cache-c"),
            .vacated("c"),
        ]
        #expect(
            String(buffer: WebhookEvent.body(events, timeMilliseconds: 5))
                == #"{"time_ms":5,"events":["#
                + #"{"name":"member_added","channel":"presence-a","user_id":"7"},"#
                + #"{"name":"member_removed","channel":"presence-a","user_id":"7"},"#
                + #"{"name":"client_event","channel":"presence-a","event":"client-t","data":"{\"x\":1,\"y\":[true,null]}","socket_id":"1.2","user_id":"7"},"#
                + #"{"name":"client_event","channel":"private-b","event":"client-t","data":"plain","socket_id":"1.2"},"#
                + #"{"name":"subscription_count","channel":"c","subscription_count":3},"#
                + #"{"name":"cache_miss","channel":"cache-c"},"#
                + #"{"name":"channel_vacated","channel":"c"}]}"#)
    }
}
