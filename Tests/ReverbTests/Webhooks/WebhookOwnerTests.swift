import Testing

@testable import Reverb

/// The cluster's webhook owner rule (`ClusterNode.sendsWebhooks(for:)`, docs.md "Webhooks").
@Suite struct WebhookOwnerTests {
    static let nodes: Set<String> = ["00000000000000a1", "7f3e000000000002", "ffffffffffff0003"]

    @Test func everyNodeNamesTheSameSingleOwner() {
        var owned: [String: Int] = [:]
        for index in 0..<300 {
            let channel = "channel-\(index)"
            let owner = ClusterNode.webhookOwner(of: channel, among: Self.nodes)
            // Each node asks with its own live set: itself plus the peers it hears.
            let answers = Self.nodes.filter { node in
                ClusterNode.webhookOwner(of: channel, among: Self.nodes.subtracting([node]).union([node])) == node
            }
            #expect(answers == [owner!])
            owned[owner!, default: 0] += 1
        }
        // Spread over the nodes rather than all on one.
        #expect(owned.count == 3)
        #expect(owned.values.allSatisfy { $0 > 50 })
    }

    @Test func aLeavingOwnerHandsOverToOneSurvivor() {
        for index in 0..<50 {
            let channel = "presence-\(index)"
            let owner = ClusterNode.webhookOwner(of: channel, among: Self.nodes)!
            let survivors = Self.nodes.subtracting([owner])
            let next = ClusterNode.webhookOwner(of: channel, among: survivors)
            #expect(next != nil && next != owner)
            // A channel owned by a survivor keeps its owner when another node leaves.
            for leaving in Self.nodes where leaving != owner {
                #expect(ClusterNode.webhookOwner(of: channel, among: Self.nodes.subtracting([leaving])) == owner)
            }
        }
    }

    @Test func weightsAreFixedAcrossRuns() {
        // FNV-1a of "a/b", finalised: not Swift's per-process seeded hasher, so every node computes the same.
        #expect(ClusterNode.webhookWeight(node: "a", channel: "b") == 0xf2a5_b2f6_0b00_6aec)
        #expect(ClusterNode.webhookOwner(of: "x", among: []) == nil)
    }
}
