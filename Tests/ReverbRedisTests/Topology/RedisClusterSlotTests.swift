import ReverbRedis
import Testing

@Suite struct RedisClusterSlotTests {
    @Test func crc16MatchesTheXmodemCheckValue() {
        #expect(RedisClusterSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(RedisClusterSlot.crc16([UInt8]()) == 0)
    }

    // Expected slots from `redis-cli cluster keyslot` on Redis 7.0.
    @Test(arguments: [
        ("foo", 12182), ("bar", 5061), ("reverb", 1023), ("reverb:0", 506), ("reverb:1", 4571),
        ("{user1000}.following", 3443), ("{user1000}.followers", 3443), ("user1000", 3443),
        ("{}", 15257), ("{", 4092), ("}{", 12793), ("foo{}{bar}", 8363), ("foo{{bar}}zap", 4015),
        ("foo{bar}{zap}", 5061), ("", 0),
    ])
    func slotOfKey(key: String, slot: Int) {
        #expect(RedisClusterSlot.slot(forKey: key) == slot)
    }
}
