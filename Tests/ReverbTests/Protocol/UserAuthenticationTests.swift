import NIOCore
import Testing

@testable import Reverb

@Suite("User authentication: pusher:signin, user_data, frames (protocol.md §13)")
struct UserAuthenticationTests {
    static let key = "278d425bdf160c739803"
    static let secret = "7ad3773142a6692b25b8"
    static let userData = #"{"id":"12345","user_info":{"name":"Mr. Channels"}}"#
    static let vector = "278d425bdf160c739803:abe963eb4a43a3393065608e9b0a2b9a57fb808546d6cdfe9b62511684afb82f"

    func check(_ auth: String?, _ userData: String = Self.userData, signedInAs: String? = nil)
        -> Result<UserData, PusherError>
    {
        UserAuthentication.check(
            auth: auth, userData: userData, secret: Self.secret, socketID: "1234.1234", signedInAs: signedInAs)
    }

    @Test("§13.1 signature vector; key part unchecked; uppercase, absent, empty and foreign signatures fail")
    func signatureVector() {
        #expect(
            UserAuthentication.auth(key: Self.key, secret: Self.secret, socketID: "1234.1234", userData: Self.userData)
                == Self.vector)
        #expect(UserAuthentication.stringToSign(socketID: "1234.1234", userData: "{}") == "1234.1234::user::{}")
        let signature = String(Self.vector.split(separator: ":")[1])
        #expect(check(Self.vector) == .success(UserData(id: "12345")))
        #expect(check("another-key:" + signature) == .success(UserData(id: "12345")))
        #expect(check(signature) == .success(UserData(id: "12345")))
        for bad in [
            nil, "", Self.key + ":", Self.key + ":" + signature.uppercased(), "x:" + String(repeating: "0", count: 64),
        ] {
            #expect(check(bad) == .failure(.unauthorized))
        }
        // The same user_data signed for another socket, or with another app's secret.
        let otherSocket = UserAuthentication.auth(
            key: Self.key, secret: Self.secret, socketID: "1234.1235", userData: Self.userData)
        let otherApp = UserAuthentication.auth(
            key: Self.key, secret: "another-secret", socketID: "1234.1234", userData: Self.userData)
        #expect(check(otherSocket) == .failure(.unauthorized))
        #expect(check(otherApp) == .failure(.unauthorized))
        // user_data bytes exactly as received: the same object with a space is another string.
        #expect(check(Self.vector, #"{"id":"12345", "user_info":{"name":"Mr. Channels"}}"#) == .failure(.unauthorized))
    }

    @Test(
        "user_data must be a JSON object with a non-empty string id: format before signature (4200)",
        arguments: [
            "{}", #"{"id":12345}"#, #"{"id":""}"#, #"{"id":null}"#, #"{"id":["a"]}"#, "not json", #""12345""#, "[]",
            "", #"{"user_info":{}}"#,
        ])
    func invalidUserData(_ text: String) {
        #expect(UserData(text) == nil)
        #expect(check(Self.vector, text) == .failure(.invalidMessageFormat))
        #expect(check(nil, text) == .failure(.invalidMessageFormat))
    }

    @Test("one user per connection: another id is 4009, the same id signs in again")
    func signInTwice() {
        #expect(check(Self.vector, signedInAs: "12345") == .success(UserData(id: "12345")))
        #expect(check(Self.vector, signedInAs: "999") == .failure(.unauthorized))
    }

    @Test("watchlist: non-empty strings, first occurrence, in order; other entries and non-arrays ignored")
    func watchlist() throws {
        let parsed = try #require(UserData(#"{"id":"a","watchlist":["u1",2,"u2","",null,"u1",{"x":1},["u3"],"u3"]}"#))
        #expect(parsed.watchlist == ["u1", "u2", "u3"])
        #expect(!parsed.watchlistTruncated)
        #expect(UserData(#"{"id":"a","watchlist":"u1"}"#)?.watchlist == [])
        #expect(UserData(#"{"id":"a","watchlist":{"u1":true}}"#)?.watchlist == [])
        #expect(UserData(#"{"id":"a"}"#)?.watchlist == [])
    }

    @Test("watchlist limit: 100 distinct ids kept; the 101st distinct one marks truncation")
    func watchlistLimit() throws {
        let hundred = (0..<100).map { "\"u\($0)\"" }
        let exactly = try #require(
            UserData(#"{"id":"a","watchlist":[\#((hundred + hundred).joined(separator: ","))]}"#))
        #expect(exactly.watchlist.count == 100 && !exactly.watchlistTruncated)
        let many = (0..<10_000).map { "\"u\($0)\"" }.joined(separator: ",")
        let truncated = try #require(UserData(#"{"id":"a","watchlist":[\#(many)]}"#))
        #expect(truncated.watchlist == (0..<100).map { "u\($0)" })
        #expect(truncated.watchlistTruncated)
    }

    @Test("signin messages: data an object, user_data a string, auth absent, null or a string")
    func parse() {
        func parse(_ text: String) -> Result<ClientMessage, PusherError> { ClientMessage.parse(Array(text.utf8)) }
        #expect(
            parse(#"{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\"}"}}"#)
                == .success(.signIn(auth: "k:s", userData: #"{"id":"1"}"#)))
        #expect(
            parse(#"{"event":"pusher:signin","data":"{\"user_data\":\"{}\",\"auth\":null}"}"#)
                == .success(.signIn(auth: nil, userData: "{}")))
        for bad in [
            #"{"event":"pusher:signin","data":{}}"#, #"{"event":"pusher:signin","data":[]}"#,
            #"{"event":"pusher:signin","data":""}"#, #"{"event":"pusher:signin","data":{"user_data":{"id":"1"}}}"#,
            #"{"event":"pusher:signin","data":{"user_data":"{}","auth":5}}"#,
            #"{"event":"pusher:signin","data":{"user_data":null}}"#,
        ] {
            #expect(parse(bad) == .failure(.invalidMessageFormat), "\(bad)")
        }
        // `#server-to-user-` takes any characters; other `#` names stay invalid.
        #expect(
            parse(##"{"event":"pusher:subscribe","data":{"channel":"#server-to-user-ü x"}}"##)
                == .success(.subscribe(channel: "#server-to-user-ü x", auth: nil, channelData: nil)))
        #expect(
            parse(##"{"event":"pusher:subscribe","data":{"channel":"#watchlist:u1"}}"##)
                == .failure(.invalidMessageFormat))
    }

    @Test("signin_success, watchlist and error frames, byte for byte")
    func frames() {
        func text(_ frame: OutboundFrame) -> String { String(buffer: frame.payload) }
        #expect(
            text(PusherFrames.signInSuccess(userData: Self.userData))
                == #"{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"12345\\\",\\\"user_info\\\":{\\\"name\\\":\\\"Mr. Channels\\\"}}\"}"}"#
        )
        #expect(
            text(PusherFrames.watchlistEvents(offline: ["u3"], online: ["u1"]))
                == #"{"event":"pusher_internal:watchlist_events","data":"{\"events\":[{\"name\":\"offline\",\"user_ids\":[\"u3\"]},{\"name\":\"online\",\"user_ids\":[\"u1\"]}]}"}"#
        )
        #expect(
            text(PusherFrames.watchlistEvents(offline: [], online: ["u3"]))
                == #"{"event":"pusher_internal:watchlist_events","data":"{\"events\":[{\"name\":\"online\",\"user_ids\":[\"u3\"]}]}"}"#
        )
        #expect(
            text(PusherFrames.error(.watchlistLimitExceeded))
                == #"{"event":"pusher:error","data":"{\"code\":4302,\"message\":\"Watchlist limit exceeded. Only the first 100 user IDs are accepted.\"}"}"#
        )
        #expect(
            text(PusherFrames.error(.userAuthenticationTimeout))
                == #"{"event":"pusher:error","data":"{\"code\":4009,\"message\":\"Connection not authorized within timeout.\"}"}"#
        )
    }
}
