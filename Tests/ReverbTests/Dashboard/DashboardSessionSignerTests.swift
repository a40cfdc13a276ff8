import Testing

@testable import Reverb

/// Session cookies: signed, scoped, expiring; CSRF tokens tied to the session.
@Suite struct DashboardSessionSignerTests {
    let signer = DashboardSessionSigner(key: "test-key")
    let now: Int64 = 1_800_000_000

    @Test(arguments: [DashboardSessionSigner.Session.Scope.all, .app("123"), .app("ünï.c0de|x")])
    func roundTrip(_ scope: DashboardSessionSigner.Session.Scope) throws {
        let (token, session) = signer.issue(scope: scope, now: now)
        #expect(session.expiresAt == now + DashboardSessionSigner.lifetime)
        #expect(session.nonce.utf8.count == 32)
        #expect(signer.verify(token, now: now) == session)
        // A cookie value: no separator, space or quote.
        #expect(!token.contains { ";, \"\\".contains($0) })
    }

    @Test func expires() {
        let (token, _) = signer.issue(scope: .app("1"), now: now)
        #expect(signer.verify(token, now: now + DashboardSessionSigner.lifetime - 1) != nil)
        #expect(signer.verify(token, now: now + DashboardSessionSigner.lifetime) == nil)
    }

    @Test func tamperingIsDetected() {
        let (token, session) = signer.issue(scope: .app("1"), now: now)
        let parts = token.split(separator: ".").map(String.init)
        var widened = parts
        widened[3] = "*"
        var extended = parts
        extended[1] = String(session.expiresAt + 3600)
        var otherNonce = parts
        otherNonce[2] = String(repeating: "0", count: 32)
        var badMAC = parts
        badMAC[4] = String(badMAC[4].dropLast()) + (badMAC[4].last == "0" ? "1" : "0")
        for forged in [widened, extended, otherNonce, badMAC] {
            #expect(signer.verify(forged.joined(separator: "."), now: now) == nil)
        }
        #expect(DashboardSessionSigner(key: "another key").verify(token, now: now) == nil)
        for garbage in ["", "1", "1.2.3.4", "1.x.n.*.mac", "2" + token.dropFirst(), token + ".x"] {
            #expect(signer.verify(garbage, now: now) == nil)
        }
        // The same session signed under the same key is the same token: nothing random after issue.
        #expect(signer.token(for: session) == token)
    }

    @Test func cookieHeader() {
        #expect(DashboardSessionSigner.cookie(in: ["a=1; reverb_dashboard=tok.en; b=2"]) == "tok.en")
        #expect(DashboardSessionSigner.cookie(in: ["a=1", "reverb_dashboard=x"]) == "x")
        #expect(DashboardSessionSigner.cookie(in: ["xreverb_dashboard=x"]) == nil)
        #expect(DashboardSessionSigner.cookie(in: []) == nil)
    }

    @Test func csrfTokenBelongsToItsSession() {
        let (_, session) = signer.issue(scope: .all, now: now)
        let (_, other) = signer.issue(scope: .all, now: now)
        let token = signer.csrfToken(for: session)
        #expect(signer.checkCSRF(token, session: session))
        #expect(!signer.checkCSRF(token, session: other))
        #expect(!signer.checkCSRF(nil, session: session))
        #expect(!signer.checkCSRF("", session: session))
        #expect(!signer.checkCSRF(String(token.dropLast()), session: session))
        #expect(!DashboardSessionSigner(key: "another key").checkCSRF(token, session: session))
    }

    @Test func scope() {
        let app = DashboardSessionSigner.Session(scope: .app("a"), expiresAt: 0, nonce: "")
        let all = DashboardSessionSigner.Session(scope: .all, expiresAt: 0, nonce: "")
        #expect(app.canSee(appID: "a") && !app.canSee(appID: "b") && !app.canSee(appID: "a "))
        #expect(all.canSee(appID: "a") && all.canSee(appID: "b"))
    }
}
